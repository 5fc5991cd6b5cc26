import { afterAll, beforeAll, expect, test } from 'vitest'
import { ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { unzipSync } from 'fflate'
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { cleanup, convexCli, prepareFixture, startBackend, TEST_INSTANCE, TEST_SECRET, until } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'
import { startPostgres } from '../helpers/postgres.ts'
import type { PostgresCluster } from '../helpers/postgres.ts'

// Point-in-time restore into a new deployment, whatever the store: from a Postgres-backed
// deployment into a new SQLite data folder, and from a SQLite one into an empty Postgres database.
// A backend started on the target serves the state at the time (an export of that time agrees),
// with the same credentials, push, environment variables, schedules and stored files.
const api = anyApi as any
let cluster: PostgresCluster
let appDir: string
const dirs: string[] = []

type Message = { _id: string; _creationTime: number; author: string; body: string }
type Deployment = { backend: TestBackend; client: ConvexHttpClient }

beforeAll(async () => {
  cluster = await startPostgres()
  appDir = prepareFixture('basic')
}, 120_000)

afterAll(async () => {
  for (const dir of dirs) cleanup(dir)
  cleanup(appDir)
  await cluster?.stop()
})

async function deployed(args: string[]): Promise<Deployment> {
  const backend = await startBackend({ args })
  dirs.push(backend.dataDir)
  await convexCli(appDir, ['deploy', '--url', backend.url, '--admin-key', backend.adminKey, '-y'])
  await convexCli(appDir, ['env', 'set', 'RESTORED_VAR', 'from the source', '--url', backend.url, '--admin-key', backend.adminKey])
  return { backend, client: new ConvexHttpClient(backend.url) }
}

function post(backend: TestBackend, path: string, body?: unknown): Promise<Response> {
  return fetch(`${backend.url}${path}`, { method: 'POST', headers: { authorization: `Convex ${backend.adminKey}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) })
}

async function upload(d: Deployment, text: string): Promise<string> {
  const res = await fetch(await d.client.mutation(api.files.generateUploadUrl, {}), { method: 'POST', headers: { 'content-type': 'text/plain' }, body: text })
  expect(res.status).toBe(200)
  return ((await res.json()) as { storageId: string }).storageId
}

/** The export's entries (no files) as text, at commit timestamp `ts` or the latest. */
async function exported(backend: TestBackend, ts?: bigint): Promise<Record<string, string>> {
  const before = ts ?? null
  expect((await post(backend, `/api/export/request/zip${before === null ? '' : `?ts=${before}`}`)).status).toBe(200)
  const admin = new ConvexHttpClient(backend.url)
  ;(admin as any).setAdminAuth(backend.adminKey)
  const done = await until(() => admin.query('_system/cli/exports:getLatest' as any, {}) as Promise<any>, (s) => s?.state === 'completed' || s?.state === 'failed')
  expect(done.state).toBe('completed')
  const startTs = BigInt(done.start_ts)
  if (ts !== undefined) expect(startTs).toBe(ts)
  const zip = await fetch(`${backend.url}/api/export/zip/${startTs}`, { headers: { authorization: `Convex ${backend.adminKey}` } })
  expect(zip.status).toBe(200)
  const entries = unzipSync(new Uint8Array(await zip.arrayBuffer()))
  return Object.fromEntries(Object.entries(entries).map(([name, bytes]) => [name, new TextDecoder().decode(bytes)]))
}

/**
 * Writes, notes the time, writes more (an edit, a deletion, an insert, a file, a scheduled job);
 * returns the time, the export at that time, the present messages, and the files and job.
 */
async function history(d: Deployment) {
  const one = await d.client.mutation(api.messages.send, { author: 'pitr', body: 'one' })
  const two = await d.client.mutation(api.messages.send, { author: 'pitr', body: 'two' })
  await d.client.mutation(api.counter.increment, { name: 'pitr' })
  const early = await upload(d, 'a file stored before the time')
  const job = await d.client.mutation(api.scheduling.runAfter, { name: 'pitr-later', delayMs: 3_600_000 })
  const atMs = Date.now()
  while (Date.now() === atMs) await new Promise((r) => setImmediate(r))
  const at = BigInt(atMs) * 1_000_000n
  await d.client.mutation(api.messages.edit, { id: one, body: 'one, edited later' })
  await d.client.mutation(api.messages.remove, { id: two })
  await d.client.mutation(api.messages.send, { author: 'pitr', body: 'three' })
  await d.client.mutation(api.counter.increment, { name: 'pitr' })
  const late = await upload(d, 'a file stored after the time')
  const then = await exported(d.backend, at)
  const thenMessages = then['messages/documents.jsonl']!.trim().split('\n').map((l) => JSON.parse(l) as Message).filter((m) => m.author === 'pitr')
  expect(thenMessages.map((m) => [m._id, m.body]).sort()).toEqual([[one, 'one'], [two, 'two']].sort())
  const now = ((await d.client.query(api.messages.list, { author: 'pitr' })) as Message[]).map((m) => m.body).sort()
  return { atMs, at, then, now, early, late, job }
}

/** The restored deployment serves the state at the time and everything that goes with it. */
async function expectRestored(restored: TestBackend, h: Awaited<ReturnType<typeof history>>) {
  const client = new ConvexHttpClient(restored.url)
  // Every user table as the export at the time has it (same ids, creation times, table numbers).
  expect(await exported(restored)).toEqual(h.then)
  // The push, the environment variables, the schedule and the files (bytes included) came along.
  expect(await client.query(api.values.env, { name: 'RESTORED_VAR' })).toEqual({ value: 'from the source', importedAtLoad: 'unset' })
  const admin = new ConvexHttpClient(restored.url)
  ;(admin as any).setAdminAuth(restored.adminKey)
  const jobs = await admin.query('_system/frontend/paginatedScheduledJobs:default' as any, { paginationOpts: { cursor: null, numItems: 10 } })
  expect(jobs.page.map((j: any) => [j._id, j.udfPath, j.udfArgs])).toContainEqual([h.job, 'scheduling.js:bump', expect.anything()])
  for (const [id, text] of [[h.early, 'a file stored before the time'], [h.late, 'a file stored after the time']] as const) {
    const url = (await client.query(api.files.url, { storageId: id })) as string
    const res = await fetch(url)
    expect([res.status, await res.text()]).toEqual([200, text])
  }
  // Writes go on there as usual.
  await client.mutation(api.messages.send, { author: 'pitr', body: 'after the restore' })
  expect(((await client.query(api.messages.list, { author: 'pitr' })) as Message[]).map((m) => m.body).sort()).toEqual(['after the restore', 'one', 'two'])
}

test('from Postgres into a new data folder: a SQLite backend started on it serves the deployment as it was', async () => {
  const dbUrl = await cluster.newDatabase()
  const source = await deployed(['--db-url', dbUrl])
  try {
    const h = await history(source)
    const into = join(mkdtempSync(join(tmpdir(), 'concave-pg-restore-')), 'restored')
    dirs.push(join(into, '..'))
    const r = await post(source.backend, '/api/restore', { timestamp: h.atMs, into })
    const result = (await r.json()) as { ts: string; documents: number }
    expect(r.status).toBe(200)
    // Put back: "one" (edited since), "two" (deleted since), "three" (left out); a counter too.
    expect(result.documents).toBe(4)
    // The folder holds an embedded store, the credentials and the files' bytes (Postgres kept them in the database).
    expect(JSON.parse(readFileSync(join(into, 'concave_credentials.json'), 'utf8'))).toEqual({ instanceName: TEST_INSTANCE, instanceSecret: TEST_SECRET })
    expect(readFileSync(join(into, 'storage', h.early), 'utf8')).toBe('a file stored before the time')
    // Started without a secret: the folder's credentials, so the source's admin key works there.
    const restored = await startBackend({ dataDir: into, withSecret: false })
    try {
      await expectRestored(restored, h)
    } finally {
      await restored.stop()
    }
    // The source is untouched.
    expect(((await source.client.query(api.messages.list, { author: 'pitr' })) as Message[]).map((m) => m.body).sort()).toEqual(h.now)
    // A folder that isn't empty is refused, and nothing is written.
    const again = await post(source.backend, '/api/restore', { timestamp: h.atMs, into })
    expect([again.status, ((await again.json()) as { code: string }).code]).toEqual([400, 'InvalidPath'])
  } finally {
    await source.backend.stop()
  }
})

test('from SQLite into an empty Postgres database: a backend on that database serves the deployment as it was; a database in use is refused', async () => {
  const source = await deployed([])
  try {
    const h = await history(source)
    const target = await cluster.newDatabase()
    const r = await post(source.backend, '/api/restore', { timestamp: h.atMs, intoDbUrl: target })
    expect([r.status, ((await r.json()) as { documents: number }).documents]).toEqual([200, 4])
    // Another data folder on that database: its credentials are in the database.
    const restored = await startBackend({ args: ['--db-url', target], withSecret: false })
    dirs.push(restored.dataDir)
    try {
      await expectRestored(restored, h)
      expect(existsSync(join(restored.dataDir, 'storage'))).toBe(false)
    } finally {
      await restored.stop()
    }
    // Not empty any more: refused, and left as it was.
    const count = async () => {
      const c = new pg.Client({ connectionString: target })
      await c.connect()
      try {
        return (await c.query<{ n: string }>('SELECT count(*) AS n FROM documents')).rows[0]!.n
      } finally {
        await c.end()
      }
    }
    const before = await count()
    const again = await post(source.backend, '/api/restore', { timestamp: h.atMs, intoDbUrl: target })
    expect([again.status, await again.json()]).toEqual([400, { code: 'InvalidDbUrl', message: `Cannot restore into the Postgres database at ${target}: it is not empty (restore into a new, empty database)` }])
    expect(await count()).toBe(before)
  } finally {
    await source.backend.stop()
  }
})

test('a restore into a new deployment refuses a target it cannot use, with the password hidden', async () => {
  const source = await deployed([])
  try {
    const refused = async (body: unknown) => {
      const r = await post(source.backend, '/api/restore', body)
      return { status: r.status, ...((await r.json()) as { code: string; message: string }) }
    }
    const at = Date.now()
    while (Date.now() === at) await new Promise((r) => setImmediate(r))
    await source.client.mutation(api.messages.send, { author: 'refused', body: 'a commit after the time' })
    expect(await refused({ timestamp: at, intoDbUrl: 'mysql://x' })).toEqual({ status: 400, code: 'InvalidDbUrl', message: '"intoDbUrl" must be the URL of an empty Postgres database (postgres://…)' })
    expect(await refused({ timestamp: at, into: '/tmp/x', intoDbUrl: 'postgres://x' })).toEqual({ status: 400, code: 'InvalidPath', message: 'Give "into" (a new data folder) or "intoDbUrl" (an empty Postgres database), not both' })
    const unreachable = await refused({ timestamp: at, intoDbUrl: 'postgres://someone:hunter2@127.0.0.1:1/nowhere' })
    expect(unreachable).toMatchObject({ status: 400, code: 'InvalidDbUrl' })
    expect(unreachable.message).toMatch(/^Cannot restore into the Postgres database at postgres:\/\/someone:\*\*\*@127\.0\.0\.1:1\/nowhere: Cannot connect/)
    expect(unreachable.message).not.toContain('hunter2')
    // A database with tables of its own is refused before anything is created in it.
    const other = await cluster.newDatabase()
    const tablesOf = async (url = other) => {
      const c = new pg.Client({ connectionString: url })
      await c.connect()
      try {
        return (await c.query<{ tablename: string }>('SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename')).rows.map((r) => r.tablename)
      } finally {
        await c.end()
      }
    }
    const c = new pg.Client({ connectionString: other })
    await c.connect()
    await c.query('CREATE TABLE someone_elses (x int)')
    await c.end()
    expect(await refused({ timestamp: at, intoDbUrl: other })).toEqual({ status: 400, code: 'InvalidDbUrl', message: `Cannot restore into the Postgres database at ${other}: it is not empty (restore into a new, empty database)` })
    expect(await tablesOf()).toEqual(['someone_elses'])
    // Before the history retention (pruned a moment after the first commits): refused, nothing created.
    // (A system table is refused too, after the time: this waits for the pruning without restoring anything.)
    const folder = join(mkdtempSync(join(tmpdir(), 'concave-pg-restore-')), 'restored')
    dirs.push(join(folder, '..'))
    await until(() => refused({ timestamp: 1000, tables: ['_storage'], into: folder }), (r) => r.code === 'OutOfRetention')
    const empty = await cluster.newDatabase()
    expect(await refused({ timestamp: 1000, intoDbUrl: empty })).toMatchObject({ status: 400, code: 'OutOfRetention' })
    expect(await tablesOf(empty)).toEqual([])
    expect(await refused({ timestamp: 1000, into: folder })).toMatchObject({ status: 400, code: 'OutOfRetention' })
    expect(readdirSync(join(folder, '..'))).toEqual([])
  } finally {
    await source.backend.stop()
  }
})
