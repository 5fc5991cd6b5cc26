/**
 * @module Snapshot export and import routes (admin only): `npx convex export` requests an export
 * and downloads the zip; `npx convex import` uploads a file in parts, then confirms the import.
 * The work and its state are in src/snapshot/snapshots.ts.
 */
import type { Context, Hono } from 'hono'
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { isAbsolute } from 'node:path'
import { Readable } from 'node:stream'
import { SnapshotError, snapshotService } from '../snapshot/snapshots.ts'
import { restoreAt, RestoreError } from '../snapshot/restore.ts'
import { OutOfRetentionError } from '../database/errors.ts'
import { readLimited } from './body.ts'
import { MAX_IMPORT_PART } from './limits.ts'
import { badRequest, HttpError, notFound } from './errors.ts'
import { adminAuth } from './http-app.ts'
import type { HttpDeps } from './http-app.ts'
import type { DeploymentOp } from '../auth/admin-permissions.ts'

async function rawBody(c: Context, limit: number): Promise<Buffer> {
  const body = await readLimited(c.req.raw.body, limit)
  if (body === null) throw new HttpError(413, 'PayloadTooLarge', `Upload part is larger than ${limit} bytes`)
  return body
}

async function jsonBody(c: Context): Promise<Record<string, unknown>> {
  const text = (await rawBody(c, 1024 * 1024)).toString('utf8')
  try {
    const v = JSON.parse(text === '' ? '{}' : text) as unknown
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>
  } catch {
    // answered below
  }
  throw badRequest('BadJsonBody', 'The request body must be a JSON object')
}

export function bindSnapshotRoutes(app: Hono, deps: HttpDeps): void {
  const service = snapshotService(deps.db).attach(deps.files)
  const admin = (op: DeploymentOp, handler: (c: Context) => Promise<Response>) => async (c: Context) => {
    adminAuth(c, deps, true, op)
    try {
      return await handler(c)
    } catch (e) {
      if (e instanceof SnapshotError) throw badRequest(e.code, e.message)
      throw e
    }
  }
  app.post('/api/export/request/zip', admin('CreateBackups', async (c) => {
    // Concave's own: `ts` (ns) or `timestamp` (ms since the epoch, or ISO 8601) exports the past.
    service.requestExport(c.req.query('includeStorage') === 'true', pointInTime(c.req.query('ts'), c.req.query('timestamp')))
    return c.json({})
  }))
  // Point-in-time restore, in place as one commit, or into a new data folder or an empty Postgres
  // database (see src/snapshot/restore.ts and restore-into.ts).
  app.post('/api/restore', admin('WriteData', async (c) => {
    const body = (await c.req.json().catch(() => null)) as { ts?: unknown; timestamp?: unknown; tables?: unknown; componentPath?: unknown; into?: unknown; intoDbUrl?: unknown } | null
    const at = pointInTime(body?.ts, body?.timestamp)
    if (at === undefined) throw badRequest('InvalidTimestamp', 'Give the time to restore to as "ts" (nanoseconds) or "timestamp" (milliseconds since the epoch, or ISO 8601)')
    const tables = body?.tables
    if (tables !== undefined && !(Array.isArray(tables) && tables.every((t) => typeof t === 'string'))) throw badRequest('InvalidTableName', '"tables" must be a list of table names')
    const componentPath = typeof body?.componentPath === 'string' ? body.componentPath : ''
    try {
      const opts = { tables: tables as string[] | undefined, component: componentPath }
      const { into, intoDbUrl } = body ?? {}
      if (into !== undefined && intoDbUrl !== undefined) throw badRequest('InvalidPath', 'Give "into" (a new data folder) or "intoDbUrl" (an empty Postgres database), not both')
      if (into !== undefined && (typeof into !== 'string' || !isAbsolute(into))) throw badRequest('InvalidPath', '"into" must be an absolute path to a new (or empty) folder')
      if (intoDbUrl !== undefined && (typeof intoDbUrl !== 'string' || !/^postgres(ql)?:\/\//.test(intoDbUrl))) throw badRequest('InvalidDbUrl', '"intoDbUrl" must be the URL of an empty Postgres database (postgres://…)')
      const target = into !== undefined ? { folder: into as string } : intoDbUrl !== undefined ? { dbUrl: intoDbUrl as string } : null
      if (target !== null && deps.restoreInto === undefined) throw badRequest('Unsupported', 'This backend cannot restore into a new deployment')
      const result = target === null ? await restoreAt(deps.db, at, opts) : await deps.restoreInto!(target, at, opts)
      return c.json({ ts: String(result.ts), documents: result.documents })
    } catch (e) {
      if (e instanceof RestoreError) throw badRequest(e.code, e.message)
      if (e instanceof OutOfRetentionError) throw badRequest('OutOfRetention', `Cannot restore to ${at}: it is before the history retention (CONCAVE_HISTORY_RETENTION_MS) keeps`)
      throw e
    }
  }))
  app.get('/api/export/zip/:ts', admin('DownloadBackups', async (c) => {
    const ts = c.req.param('ts') ?? ''
    const path = /^\d+$/.test(ts) ? service.exportPath(BigInt(ts)) : null
    if (path === null) throw notFound(`No export at timestamp ${ts}`)
    const { size } = await stat(path)
    return c.body(Readable.toWeb(createReadStream(path)) as ReadableStream, 200, {
      'content-type': 'application/zip',
      'content-length': String(size),
      'content-disposition': `attachment; filename=snapshot_${ts}.zip`,
    })
  }))
  app.post('/api/import/start_upload', admin('ImportBackups', async (c) => c.json({ uploadToken: await service.startUpload() })))
  app.post('/api/import/upload_part', admin('ImportBackups', async (c) => c.json(await service.uploadPart(c.req.query('uploadToken'), c.req.query('partNumber'), await rawBody(c, MAX_IMPORT_PART)))))
  app.post('/api/import/finish_upload', admin('ImportBackups', async (c) => c.json({ importId: await service.finishUpload(await jsonBody(c)) })))
  app.post('/api/perform_import', admin('ImportBackups', async (c) => {
    service.performImport((await jsonBody(c)).importId)
    return c.json({})
  }))
}

/**
 * A point in time given as `ts` (a commit timestamp: nanoseconds, digits) or `timestamp`
 * (milliseconds since the epoch, or an ISO 8601 date): as a commit timestamp; undefined if
 * neither is given; a 400 if it can't be read.
 */
function pointInTime(ts: unknown, timestamp: unknown): bigint | undefined {
  if (ts !== undefined && ts !== null && ts !== '') {
    if ((typeof ts === 'string' && /^\d+$/.test(ts)) || (typeof ts === 'number' && Number.isSafeInteger(ts) && ts >= 0)) return BigInt(ts)
    throw badRequest('InvalidTimestamp', `"ts" must be a commit timestamp in nanoseconds, not ${JSON.stringify(ts)}`)
  }
  if (timestamp === undefined || timestamp === null || timestamp === '') return undefined
  const ms = typeof timestamp === 'number' ? timestamp : /^\d+$/.test(String(timestamp)) ? Number(timestamp) : Date.parse(String(timestamp))
  if (!Number.isFinite(ms) || ms < 0) throw badRequest('InvalidTimestamp', `"timestamp" must be milliseconds since the epoch or an ISO 8601 date, not ${JSON.stringify(timestamp)}`)
  return BigInt(Math.floor(ms)) * 1_000_000n
}
