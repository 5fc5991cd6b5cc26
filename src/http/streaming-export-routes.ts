/**
 * @module Convex's streaming export routes (admin key), as the Fivetran and Airbyte connectors
 * call them: `GET/POST /api/list_snapshot`, `GET/POST /api/document_deltas`,
 * `GET /api/get_table_column_names`, `GET /api/test_streaming_export_connection`; and Concave's
 * `GET /api/concave/replication`, the state of `--replicate-from` (src/replicate/replicator.ts).
 * The work is in src/replicate/streaming-export.ts.
 */
import type { Context, Hono } from 'hono'
import { Selection, SelectionError } from '../replicate/selection.ts'
import { StreamingExport, StreamingExportError, valueFormat } from '../replicate/streaming-export.ts'
import type { StreamingArgs } from '../replicate/streaming-export.ts'
import { readLimited } from './body.ts'
import { badRequest, HttpError } from './errors.ts'
import { adminAuth } from './http-app.ts'
import type { HttpDeps } from './http-app.ts'

/** The request's arguments: the JSON body of a POST (timestamps kept exact), the query of a GET. */
async function argsOf(c: Context): Promise<Record<string, unknown>> {
  if (c.req.method === 'GET') return c.req.query()
  const body = await readLimited(c.req.raw.body, 1024 * 1024)
  if (body === null) throw new HttpError(413, 'PayloadTooLarge', 'Request body is too large')
  const text = body.toString('utf8')
  if (text.trim() === '') return {}
  let parsed: unknown
  try {
    parsed = JSON.parse(text, (key, value: unknown, context?: { source?: string }) =>
      (key === 'snapshot' || key === 'cursor') && typeof value === 'number' && context?.source !== undefined && /^-?\d+$/.test(context.source) ? BigInt(context.source) : value,
    )
  } catch (e) {
    throw badRequest('BadJsonBody', `Failed to parse the request body as JSON: ${(e as Error).message}`)
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw badRequest('BadJsonBody', 'The request body must be a JSON object')
  return parsed as Record<string, unknown>
}

/** A timestamp argument: a JSON integer, or digits in a query string; undefined when absent. */
function tsArg(v: unknown, name: string): bigint | undefined {
  if (v === undefined || v === null || v === '') return undefined
  if (typeof v === 'bigint') return v
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v)
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return BigInt(v)
  throw badRequest('BadJsonBody', `Invalid ${name}: expected a timestamp (an integer), got ${JSON.stringify(typeof v === 'bigint' ? String(v) : v)}`)
}

function streamingArgs(args: Record<string, unknown>): StreamingArgs {
  let selectionArgs = args
  if (typeof args.selection === 'string') {
    // A GET carries the selection as JSON text.
    try {
      selectionArgs = { ...args, selection: JSON.parse(args.selection) as unknown }
    } catch {
      throw badRequest('InvalidSelection', 'Invalid selection: not JSON')
    }
  }
  return { selection: Selection.fromArgs(selectionArgs), format: valueFormat(args.format) }
}

export function bindStreamingExportRoutes(app: Hono, deps: HttpDeps): void {
  const streaming = new StreamingExport(deps.db, deps.db.history.windowMs + 60_000)
  const route = (handler: (c: Context, args: Record<string, unknown>) => Promise<Response>) => async (c: Context) => {
    adminAuth(c, deps, true, 'ViewData')
    try {
      return await handler(c, await argsOf(c))
    } catch (e) {
      if (e instanceof StreamingExportError) throw badRequest(e.code, e.message)
      if (e instanceof SelectionError) throw badRequest('InvalidSelection', `Invalid selection: ${e.message}`)
      throw e
    }
  }
  const json = (c: Context, body: string) => c.body(body, 200, { 'content-type': 'application/json' })

  const listSnapshot = route(async (c, args) => {
    const snapshot = tsArg(args.snapshot, 'snapshot') ?? null
    const cursor = args.cursor === undefined || args.cursor === null ? null : String(args.cursor)
    return json(c, (await streaming.listSnapshot(streamingArgs(args), snapshot, cursor)).body)
  })
  app.get('/api/list_snapshot', listSnapshot)
  app.post('/api/list_snapshot', listSnapshot)

  const documentDeltas = route(async (c, args) => {
    const cursor = tsArg(args.cursor, 'cursor')
    if (cursor === undefined) throw badRequest('DocumentDeltasCursorRequired', '/api/document_deltas requires a cursor')
    return json(c, (await streaming.documentDeltas(streamingArgs(args), cursor)).body)
  })
  app.get('/api/document_deltas', documentDeltas)
  app.post('/api/document_deltas', documentDeltas)

  app.get('/api/get_table_column_names', route(async (c) => json(c, await streaming.tableColumnNames())))
  app.get('/api/test_streaming_export_connection', route(async (c) => c.json(null)))

  app.get('/api/concave/replication', async (c) => {
    adminAuth(c, deps, true, 'ViewData')
    const replication = deps.replication
    if (replication === undefined) return c.json({ replicating: false })
    return c.json({ replicating: true, ...(await replication.status()) })
  })
}
