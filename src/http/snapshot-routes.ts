/**
 * @module Snapshot export and import routes (admin only): `npx convex export` requests an export
 * and downloads the zip; `npx convex import` uploads a file in parts, then confirms the import.
 * The work and its state are in src/snapshot/snapshots.ts.
 */
import type { Context, Hono } from 'hono'
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { SnapshotError, snapshotService } from '../snapshot/snapshots.ts'
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
    service.requestExport(c.req.query('includeStorage') === 'true')
    return c.json({})
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
