import { afterAll, beforeAll, expect, test } from 'vitest'
import { createHash } from 'node:crypto'
import pg from 'pg'
import { PostgresPersistence } from './postgres-persistence.ts'
import { CHUNK_BYTES } from './postgres-blob-store.ts'
import type { PostgresBlobStore } from './postgres-blob-store.ts'
import { startPostgres, type PostgresCluster } from '../../../test/helpers/postgres.ts'

let cluster: PostgresCluster
let persistence: PostgresPersistence
let blobs: PostgresBlobStore
let url: string
beforeAll(async () => {
  cluster = await startPostgres()
  url = await cluster.newDatabase()
  persistence = await PostgresPersistence.open(url)
  blobs = persistence.blobStore()
}, 60_000)
afterAll(async () => {
  await persistence?.close()
  await cluster?.stop()
})

const sql = async (text: string, values: unknown[] = []) => (await blobs.pool.query(text, values)).rows
const bytes = (n: number, seed = 1) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed + (i >> 9)) % 256))
/** The source in uneven pieces, none aligned with a chunk. */
async function* pieces(b: Buffer, size = 300_001): AsyncIterable<Uint8Array> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size)
}
const text = async (s: NodeJS.ReadableStream) => {
  const parts: Buffer[] = []
  for await (const p of s) parts.push(p as Buffer)
  return Buffer.concat(parts)
}

test('put chunks a stream into CHUNK_BYTES pieces and returns its size and sha256; read and ranges give the bytes back', async () => {
  const b = bytes(2 * CHUNK_BYTES + 12345)
  const info = await blobs.put('abc', pieces(b))
  expect(info).toEqual({ size: b.length, sha256: createHash('sha256').update(b).digest() })
  expect(await sql('SELECT n, octet_length(data) AS len FROM file_chunks WHERE id = $1 ORDER BY n', ['abc'])).toEqual([
    { n: 0, len: CHUNK_BYTES },
    { n: 1, len: CHUNK_BYTES },
    { n: 2, len: 12345 },
  ])
  expect((await blobs.read('abc')).equals(b)).toBe(true)
  for (const [s, e] of [
    [0, 0],
    [CHUNK_BYTES - 1, CHUNK_BYTES],
    [5, 2 * CHUNK_BYTES + 5],
    [2 * CHUNK_BYTES, b.length - 1],
    [b.length - 1, b.length + 100],
  ] as const) {
    const { stream, size } = await blobs.stream('abc', s, e)
    expect(size).toBe(b.length)
    expect((await text(stream)).equals(b.subarray(s, e + 1))).toBe(true)
  }
  expect(await blobs.exists('abc')).toBe(true)
  expect(await blobs.exists('abd')).toBe(false)
  await expect(blobs.read('abd')).rejects.toThrow('No stored file abd')
})

test('a put that fails (too large, refused by verify, source error) stores nothing and keeps what was there', async () => {
  await blobs.put('kept', Buffer.from('first'))
  await expect(blobs.put('kept', pieces(bytes(3 * CHUNK_BYTES)), { maxBytes: CHUNK_BYTES + 1, tooLarge: () => new Error('too big') })).rejects.toThrow('too big')
  await expect(
    blobs.put('kept', Buffer.from('second'), {
      verify: () => {
        throw new Error('refused')
      },
    }),
  ).rejects.toThrow('refused')
  async function* failing(): AsyncIterable<Uint8Array> {
    yield bytes(CHUNK_BYTES + 1)
    throw new Error('connection reset')
  }
  await expect(blobs.put('kept', failing())).rejects.toThrow('connection reset')
  expect((await blobs.read('kept')).toString()).toBe('first')
  expect(await sql("SELECT n FROM file_chunks WHERE id = 'kept'")).toEqual([{ n: 0 }])
  // A successful put replaces it.
  await blobs.put('kept', Buffer.from('second'))
  expect((await blobs.read('kept')).toString()).toBe('second')
})

test('rename replaces the target; delete removes blob and chunks; list names every blob with its age', async () => {
  await blobs.put('from', pieces(bytes(CHUNK_BYTES + 3, 7)))
  await blobs.put('to', Buffer.from('old'))
  await blobs.rename('from', 'to')
  expect((await blobs.read('to')).equals(bytes(CHUNK_BYTES + 3, 7))).toBe(true)
  expect(await blobs.exists('from')).toBe(false)
  expect(await sql("SELECT count(*)::int AS n FROM file_chunks WHERE id = 'from'")).toEqual([{ n: 0 }])
  await expect(blobs.rename('missing', 'to')).rejects.toThrow('No stored file missing')
  expect((await blobs.read('to')).length).toBe(CHUNK_BYTES + 3)
  const listed = []
  for await (const e of blobs.list()) listed.push(e)
  expect(listed.map((e) => e.name)).toEqual(['abc', 'kept', 'to'])
  for (const e of listed) expect(e.ageMs).toBeGreaterThanOrEqual(0)
  await blobs.delete('to')
  await blobs.delete('never-there')
  expect(await sql("SELECT count(*)::int AS n FROM file_chunks WHERE id = 'to'")).toEqual([{ n: 0 }])
  expect(await blobs.exists('to')).toBe(false)
  await expect(blobs.put('../x', Buffer.from('x'))).rejects.toThrow('Invalid blob name "../x"')
})
