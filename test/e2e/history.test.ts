/**
 * History retention: superseded revisions leave the write log once nothing can read them
 * (CONCAVE_HISTORY_RETENTION_MS=0 here: as soon as they are not the latest), in the background,
 * while a paginated query's cursor and an export taken meanwhile stay consistent; a query_at_ts
 * before the horizon gets Convex's out-of-retention answer.
 */
import { afterAll, beforeAll, expect, test } from 'vitest'
import Database from 'better-sqlite3'
import { ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { unzipSync } from 'fflate'
import { cleanup, convexCli, deploy, startBackend } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'

const api = anyApi as any
/** A commit timestamp as the HTTP API takes it: a u64, little-endian, base64. */
function encodeTs(ts: bigint): string {
  const b = Buffer.alloc(8)
  b.writeBigUInt64LE(ts)
  return b.toString('base64')
}

const COUNTERS = 5
const BUMPS = 600

let backend: TestBackend
let appDir: string
let work: string
let client: ConvexHttpClient

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'concave-history-'))
  backend = await startBackend({ env: { CONCAVE_HISTORY_RETENTION_MS: '0' } })
  appDir = (await deploy(backend, 'snapshot')).appDir
  client = new ConvexHttpClient(backend.url)
}, 120_000)

afterAll(async () => {
  await backend?.stop()
  cleanup(appDir)
  cleanup(work)
})

/** `/api/query_ts`: the latest commit timestamp, as query_at_ts takes it. */
async function queryTs(url = backend.url): Promise<string> {
  const res = await fetch(`${url}/api/query_ts`, { method: 'POST' })
  return ((await res.json()) as { ts: string }).ts
}

/** Row counts read from the data file itself (a second, read-only connection: WAL lets it in). */
function fileCounts(dataDir = backend.dataDir): { log: number; documents: number; notLatest: number } {
  const db = new Database(join(dataDir, 'concave_local_backend.sqlite3'), { readonly: true, fileMustExist: true })
  try {
    const count = (sql: string) => db.prepare(sql).pluck().get() as number
    return {
      log: count('SELECT count(*) FROM write_log'),
      documents: count('SELECT count(*) FROM documents'),
      // Revisions left that are not their document's current one.
      notLatest: count('SELECT count(*) FROM write_log w WHERE NOT EXISTS (SELECT 1 FROM documents d WHERE d.id = w.id AND d.ts = w.ts)'),
    }
  } finally {
    db.close()
  }
}

/** The file's counts once only current revisions are left (or as they are after 30 s). */
async function prunedCounts(dataDir = backend.dataDir) {
  const deadline = Date.now() + 30_000
  let counts = fileCounts(dataDir)
  while (counts.notLatest > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100))
    counts = fileCounts(dataDir)
  }
  return counts
}

test('history pruned after updates while a paginated read and an export stay consistent', async () => {
  for (let i = 0; i < COUNTERS; i++) await client.mutation(api.data.insert, { table: 'counters', doc: { i, value: 0 } })
  // A paginated read begun before the updates, and a consistent query's timestamp.
  const first = await client.query(api.data.page, { table: 'counters', paginationOpts: { numItems: 2, cursor: null } })
  expect(first.page.map((c: any) => [c.i, c.value])).toEqual([[0, 0], [1, 0]])
  const reader = new ConvexHttpClient(backend.url)
  expect((await (reader as any).consistentQuery(api.data.all, { table: 'counters' })).map((c: any) => c.value)).toEqual([0, 0, 0, 0, 0])
  const ts = await queryTs()

  // Every bump updates all five counters and inserts one tick, in one transaction; an export
  // is taken while they go on (they go on until it is done).
  let bumps = 0
  let exported: Promise<{ stderr: string }> | null = null
  let exportDone = false
  const path = join(work, 'during.zip')
  while (bumps < BUMPS || !exportDone) {
    await client.mutation(api.data.bump, {})
    bumps++
    if (bumps === 100) exported = convexCli(appDir, ['export', '--path', path], { CONVEX_SELF_HOSTED_URL: backend.url, CONVEX_SELF_HOSTED_ADMIN_KEY: backend.adminKey }).finally(() => (exportDone = true))
  }
  const { stderr } = await exported!
  const exportTs = BigInt(/Created snapshot export at timestamp (\d+)/.exec(stderr)![1]!)

  // 5 x 600+ counter revisions and 600+ tick inserts: pruned in the background to one per document.
  const counts = await prunedCounts()
  expect(counts).toEqual({ log: COUNTERS + bumps, documents: COUNTERS + bumps, notLatest: 0 })
  // Every counter revision but the last went; the metrics count them.
  const metrics = (await (await fetch(`${backend.url}/api/concave/metrics`, { headers: { authorization: `Convex ${backend.adminKey}` } })).json()) as Record<string, number>
  expect(metrics.historyRevisionsDeleted).toBe(COUNTERS * bumps)

  // The cursor from before the updates reads on: the rest of the counters, once each, as they are now.
  const second = await client.query(api.data.page, { table: 'counters', paginationOpts: { numItems: 2, cursor: first.continueCursor } })
  const third = await client.query(api.data.page, { table: 'counters', paginationOpts: { numItems: 2, cursor: second.continueCursor } })
  expect([...second.page, ...third.page].map((c: any) => [c.i, c.value])).toEqual([[2, bumps], [3, bumps], [4, bumps]])
  expect([second.isDone, third.isDone]).toEqual([false, true])

  // The export is the one snapshot it started at: five equal counters and that many ticks.
  const entries = unzipSync(readFileSync(path))
  const lines = (t: string) => Buffer.from(entries[`${t}/documents.jsonl`]!).toString().trim().split('\n').map((l) => JSON.parse(l))
  const values = lines('counters').map((c) => c.value as number)
  expect(new Set(values).size).toBe(1)
  expect(values).toHaveLength(COUNTERS)
  expect(values[0]).toBeGreaterThanOrEqual(100)
  expect(values[0]).toBeLessThan(bumps)
  expect(lines('ticks')).toHaveLength(values[0]!)

  // Reads at the old timestamps are now out of retention, answered as Convex does.
  for (const at of [ts, encodeTs(exportTs)]) {
    const res = await fetch(`${backend.url}/api/query_at_ts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: 'data:all', args: { table: 'counters' }, ts: at }) })
    expect(res.status).toBe(503)
    expect(await res.json()).toEqual({ code: 'InternalServerError', message: "Your request couldn't be completed. Try again later." })
  }
  const err = await (reader as any).consistentQuery(api.data.all, { table: 'counters' }).catch((e: Error) => e)
  expect(err.message).toBe('{"code":"InternalServerError","message":"Your request couldn\'t be completed. Try again later."}')
  // A read at the latest commit is never out of retention.
  const now = await queryTs()
  const res = await fetch(`${backend.url}/api/query_at_ts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: 'data:all', args: { table: 'counters' }, ts: now, format: 'json' }) })
  expect(((await res.json()) as any).value.map((c: any) => c.value)).toEqual(Array(COUNTERS).fill(bumps))
}, 120_000)

test('history kept under a longer window is pruned at the next start with a shorter one', async () => {
  await backend.stop()
  const kept = await startBackend({ dataDir: backend.dataDir, env: { CONCAVE_HISTORY_RETENTION_MS: '3600000' } })
  let documents: number
  try {
    const c = new ConvexHttpClient(kept.url)
    for (let i = 0; i < 20; i++) await c.mutation(api.data.bump, {})
    // Within the hour nothing goes: five counter revisions and one tick per bump stay.
    documents = fileCounts().documents
    expect(fileCounts()).toEqual({ log: documents + 20 * COUNTERS, documents, notLatest: 20 * COUNTERS })
    // A consistent query may read back within the window.
    const ts = await queryTs(kept.url)
    await c.mutation(api.data.bump, {})
    const res = await fetch(`${kept.url}/api/query_at_ts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: 'data:all', args: { table: 'counters' }, ts, format: 'json' }) })
    expect(((await res.json()) as any).value.map((x: any) => x.value)).toEqual(Array(COUNTERS).fill(documents - COUNTERS))
  } finally {
    await kept.stop()
  }
  backend = await startBackend({ dataDir: backend.dataDir, env: { CONCAVE_HISTORY_RETENTION_MS: '0' } })
  expect(await prunedCounts()).toEqual({ log: documents + 1, documents: documents + 1, notLatest: 0 })
}, 60_000)

test("a paused deployment still prunes its history (only its jobs and crons wait)", async () => {
  const auth = { authorization: `Convex ${backend.adminKey}` }
  const admin = new ConvexHttpClient(backend.url)
  ;(admin as any).setAdminAuth(backend.adminKey)
  expect((await fetch(`${backend.url}/api/v1/pause_deployment`, { method: 'POST', headers: auth })).status).toBe(200)
  try {
    // (The dashboard's functions still write while paused.)
    for (let i = 0; i < 3; i++) await admin.mutation('_system/frontend/patchDocumentsFields:default' as any, { table: 'counters', fields: { pausedEdit: i } })
    expect((await prunedCounts()).notLatest).toBe(0)
  } finally {
    expect((await fetch(`${backend.url}/api/v1/unpause_deployment`, { method: 'POST', headers: auth })).status).toBe(200)
  }
}, 60_000)
