import { afterAll, beforeAll, expect, test } from 'vitest'
import { ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { createHash } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { unzipSync } from 'fflate'
import { cleanup, convexCli, prepareFixture, startBackend, until } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'
import { startPostgres } from '../helpers/postgres.ts'
import type { PostgresCluster } from '../helpers/postgres.ts'

// With `--db-url`, stored files live in the Postgres database (file_blobs + 1 MiB file_chunks),
// not in the data directory: a process with another data directory on the same database serves them.
const api = anyApi as any
const MiB = 1024 * 1024
let cluster: PostgresCluster
let dbUrl: string
let backend: TestBackend
let appDir: string
let client: ConvexHttpClient
let work: string
const dataDirs: string[] = []

/** 2.5 MiB: three chunks (1 MiB, 1 MiB, 0.5 MiB). */
const big = Buffer.from(Array.from({ length: 2.5 * MiB }, (_, i) => (i * 7 + (i >> 11)) % 256))

async function sql<R extends pg.QueryResultRow = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<R[]> {
  const c = new pg.Client({ connectionString: dbUrl })
  await c.connect()
  try {
    return (await c.query<R>(text, params)).rows
  } finally {
    await c.end()
  }
}

const chunksOf = async (id: string) => (await sql<{ n: number; len: number }>('SELECT n, octet_length(data) AS len FROM file_chunks WHERE id = $1 ORDER BY n', [id])).map((r) => [r.n, r.len])

async function start(): Promise<void> {
  backend = await startBackend({ args: ['--db-url', dbUrl] })
  dataDirs.push(backend.dataDir)
  client = new ConvexHttpClient(backend.url)
}

async function upload(body: Buffer, type: string): Promise<string> {
  const res = await fetch(await client.mutation(api.files.generateUploadUrl, {}), { method: 'POST', headers: { 'content-type': type }, body })
  expect(res.status).toBe(200)
  return ((await res.json()) as { storageId: string }).storageId
}

beforeAll(async () => {
  cluster = await startPostgres()
  dbUrl = await cluster.newDatabase()
  work = mkdtempSync(join(tmpdir(), 'concave-pgfiles-'))
  await start()
  appDir = prepareFixture('basic')
  await convexCli(appDir, ['deploy', '--url', backend.url, '--admin-key', backend.adminKey, '-y'])
}, 120_000)

afterAll(async () => {
  await backend?.stop()
  for (const dir of dataDirs) cleanup(dir)
  cleanup(appDir)
  cleanup(work)
  await cluster?.stop()
})

test('an upload is stored in the database in 1 MiB chunks and served whole and by Range', async () => {
  const storageId = await upload(big, 'application/octet-stream')
  expect(await chunksOf(storageId)).toEqual([
    [0, MiB],
    [1, MiB],
    [2, MiB / 2],
  ])
  expect(await sql('SELECT id, size FROM file_blobs WHERE id = $1', [storageId])).toEqual([{ id: storageId, size: String(big.length) }])
  // Nothing in the data directory.
  expect(existsSync(join(backend.dataDir, 'storage'))).toBe(false)
  const url: string = await client.query(api.files.url, { storageId })
  const whole = await fetch(url)
  expect(whole.status).toBe(200)
  expect(whole.headers.get('content-length')).toBe(String(big.length))
  expect(whole.headers.get('digest')).toBe(`sha-256=${createHash('sha256').update(big).digest('base64')}`)
  expect(Buffer.from(await whole.arrayBuffer()).equals(big)).toBe(true)
  // Ranges within a chunk, across chunk boundaries, and the tail.
  for (const [start, end] of [
    [10, 19],
    [MiB - 5, MiB + 4],
    [MiB - 1, 2 * MiB],
    [0, big.length - 1],
  ] as const) {
    const part = await fetch(url, { headers: { range: `bytes=${start}-${end}` } })
    expect(part.status).toBe(206)
    expect(part.headers.get('content-range')).toBe(`bytes ${start}-${end}/${big.length}`)
    expect(Buffer.from(await part.arrayBuffer()).equals(big.subarray(start, end + 1))).toBe(true)
  }
  const tail = await fetch(url, { headers: { range: 'bytes=-7' } })
  expect(Buffer.from(await tail.arrayBuffer()).equals(big.subarray(big.length - 7))).toBe(true)
  expect((await fetch(url, { headers: { range: `bytes=${big.length}-` } })).status).toBe(416)
}, 60_000)

test('a Digest mismatch stores nothing; an empty file has a blob and no chunks', async () => {
  const blobs = async () => (await sql<{ n: string }>('SELECT count(*)::text AS n FROM file_blobs'))[0]!.n
  const before = await blobs()
  const chunksBefore = (await sql<{ n: string }>('SELECT count(*)::text AS n FROM file_chunks'))[0]!.n
  const wrong = createHash('sha256').update('other').digest('base64')
  const res = await fetch(await client.mutation(api.files.generateUploadUrl, {}), { method: 'POST', headers: { 'content-type': 'text/plain', digest: `sha-256=${wrong}` }, body: big })
  expect(res.status).toBe(400)
  expect(await res.json()).toEqual({ code: 'Sha256Mismatch', message: `Sha256 mismatch. Expected: ${wrong} Actual: ${createHash('sha256').update(big).digest('base64')}` })
  expect(await blobs()).toBe(before)
  expect((await sql<{ n: string }>('SELECT count(*)::text AS n FROM file_chunks'))[0]!.n).toBe(chunksBefore)
  const empty = await upload(Buffer.alloc(0), 'text/plain')
  expect(await chunksOf(empty)).toEqual([])
  expect(await sql('SELECT size FROM file_blobs WHERE id = $1', [empty])).toEqual([{ size: '0' }])
  expect(await (await fetch(await client.query(api.files.url, { storageId: empty }))).text()).toBe('')
})

test('two uploads at once on one URL each store their file, as in Convex: one blob each', async () => {
  const blobs = async () => (await sql<{ n: string }>("SELECT count(*)::text AS n FROM file_blobs WHERE id NOT LIKE '.%'"))[0]!.n
  const before = Number(await blobs())
  const url: string = await client.mutation(api.files.generateUploadUrl, {})
  const both = await Promise.all(['a', 'b'].map((body) => fetch(url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body })))
  expect(both.map((r) => r.status)).toEqual([200, 200])
  const ids = await Promise.all(both.map(async (r) => ((await r.json()) as { storageId: string }).storageId))
  expect(Number(await blobs())).toBe(before + 2)
  expect(await Promise.all(ids.map(async (storageId) => (await fetch(await client.query(api.files.url, { storageId }))).text()))).toEqual(['a', 'b'])
})

test('ctx.storage.store and get in an action, and delete in a mutation, which removes the chunks', async () => {
  const r = await client.action(api.files.storeAndRead, { text: 'stored by an action' })
  expect(r).toEqual({ text: 'stored by an action', type: 'text/plain', url: expect.stringMatching(/\/api\/storage\/[0-9a-z]+$/) })
  const storageId = /\/api\/storage\/([0-9a-z]+)$/.exec(r.url)![1]!
  expect(await chunksOf(storageId)).toEqual([[0, 'stored by an action'.length]])
  const bigId = await upload(big, 'application/octet-stream')
  for (const id of [storageId, bigId]) await client.mutation(api.files.remove, { storageId: id })
  // The bytes go once the delete has committed.
  await until(
    () => sql('SELECT id FROM file_blobs WHERE id = ANY($1)', [[storageId, bigId]]),
    (rows) => rows.length === 0,
  )
  expect(await sql('SELECT id FROM file_chunks WHERE id = ANY($1)', [[storageId, bigId]])).toEqual([])
  expect((await fetch(r.url)).status).toBe(404)
})

test('files outlive the process and its data directory: a new one on the same database serves them', async () => {
  const storageId = await upload(big, 'image/png')
  await backend.stop('SIGKILL')
  await start()
  expect(dataDirs.at(-1)).not.toBe(dataDirs.at(-2))
  const url: string = await client.query(api.files.url, { storageId })
  expect(url).toBe(`${backend.url}/api/storage/${storageId}`)
  const res = await fetch(url)
  expect(res.headers.get('content-type')).toBe('image/png')
  expect(Buffer.from(await res.arrayBuffer()).equals(big)).toBe(true)
  expect(existsSync(join(backend.dataDir, 'storage'))).toBe(false)
}, 60_000)

test('export with --include-file-storage, and an import over the same files, read and write the database', async () => {
  const storageId = await upload(Buffer.from('exported from postgres'), 'text/plain')
  const zip = join(work, 'snapshot.zip')
  const admin = ['--url', backend.url, '--admin-key', backend.adminKey]
  await convexCli(appDir, ['export', '--path', zip, '--include-file-storage', ...admin])
  const entries = unzipSync(readFileSync(zip))
  const file = Object.keys(entries).find((n) => n.startsWith(`_storage/${storageId}`))!
  expect(file).toBe(`_storage/${storageId}.txt`)
  expect(Buffer.from(entries[file]!).toString()).toBe('exported from postgres')
  const ids = Buffer.from(entries['_storage/documents.jsonl']!).toString().trim().split('\n').map((l) => JSON.parse(l)._id as string).sort()
  expect((await sql<{ id: string }>('SELECT id FROM file_blobs ORDER BY id')).map((r) => r.id)).toEqual(ids)
  // Importing it back replaces every file by the zip's copy (the ones in place are moved aside
  // and dropped once the import commits).
  const { stderr } = await convexCli(appDir, ['import', '--replace-all', zip, '-y', ...admin])
  expect(stderr).toMatch(/Added \d+ documents/)
  expect((await sql<{ id: string }>('SELECT id FROM file_blobs ORDER BY id')).map((r) => r.id)).toEqual(ids)
  expect(await (await fetch(`${backend.url}/api/storage/${storageId}`)).text()).toBe('exported from postgres')
}, 120_000)

test('the start-up sweep removes old orphaned blobs, and leaves recent ones (another process may be storing them)', async () => {
  const kept = await upload(Buffer.from('has a document'), 'text/plain')
  const gone = await upload(Buffer.from('deleted'), 'text/plain')
  await client.mutation(api.files.remove, { storageId: gone })
  await until(
    () => sql('SELECT id FROM file_blobs WHERE id = $1', [gone]),
    (rows) => rows.length === 0,
  )
  await backend.stop('SIGKILL')
  // As crashes would leave them, long ago and just now: a blob whose deletion committed without
  // the blob going, and blobs of uploads whose document never committed.
  const orphans = [gone, `${gone}x`, '.upload-old', '.upload-recent']
  await sql(`INSERT INTO file_blobs (id, size, stored_at) VALUES ($1, 1, now() - interval '2 hours'), ($2, 1, now() - interval '2 hours'), ($3, 1, now() - interval '2 hours'), ($4, 1, now())`, orphans)
  await sql("INSERT INTO file_chunks (id, n, data) SELECT id, 0, '\\x01' FROM file_blobs WHERE id = ANY($1)", [orphans])
  await start()
  // The recent one stays, and so does a name that is no storage id (not ours to remove).
  const left = ['.upload-recent', `${gone}x`].sort()
  expect((await sql<{ id: string }>('SELECT id FROM file_blobs WHERE id = ANY($1) ORDER BY id', [orphans])).map((r) => r.id)).toEqual(left)
  expect((await sql<{ id: string }>('SELECT id FROM file_chunks WHERE id = ANY($1) ORDER BY id', [orphans])).map((r) => r.id)).toEqual(left)
  expect(await sql('SELECT id FROM file_blobs WHERE id = $1', [kept])).toEqual([{ id: kept }])
  expect(await (await fetch(await client.query(api.files.url, { storageId: kept }))).text()).toBe('has a document')
}, 60_000)
