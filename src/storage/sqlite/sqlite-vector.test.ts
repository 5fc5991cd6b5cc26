import { afterEach, expect, test } from 'vitest'
import Database from 'better-sqlite3'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MIGRATIONS } from './migrations.ts'
import { SqlitePersistence } from './sqlite-persistence.ts'
import type { VectorEntry, VectorQuery } from '../persistence.ts'

const dirs: string[] = []
function tempFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'concave-vector-'))
  dirs.push(dir)
  return join(dir, 'db.sqlite3')
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

const doc = (id: string) => ({ id, tableNumber: 10001, json: JSON.stringify({ _id: id, _creationTime: 1 }) })
/** Filter keys are 32 hex digits; these differ only in their last 16. */
const key = (n: number) => n.toString(16).padStart(32, '0')
const entry = (vector: number[], color: number, size: number): VectorEntry => ({ vector: new Float32Array(vector), filterKeys: [key(color), key(size)] })
const query = (vector: number[], more: Partial<VectorQuery> = {}): VectorQuery => ({ vector: new Float32Array(vector), limit: 10, filters: [], ...more })

function cosine(a: number[], b: number[]): number {
  let dot = 0
  let aa = 0
  let bb = 0
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!
    aa += a[i]! * a[i]!
    bb += b[i]! * b[i]!
  }
  return dot / Math.sqrt(aa * bb)
}

const vectors: Record<string, number[]> = {
  a: [1, 0, 0],
  b: [1, 1, 0],
  c: [0, 1, 0],
  d: [-1, 0.5, 0.25],
}

test('vector entries: nearest by cosine, limits, OR filters, updates, deletes, snapshots and drop', async () => {
  const p = SqlitePersistence.open(tempFile())
  try {
    await p.createTable('docs', 10001)
    const config = { vectorField: 'embedding', dimensions: 3, filterFields: ['color', 'size'] }
    const index = await p.createIndex({ indexId: 101, tableNumber: 10001, name: 'by_embedding', fields: [], vector: config }, [], [], [{ indexId: -1, id: 'a', entry: entry(vectors.a!, 1, 10) }])
    const staged = await p.createIndex({ indexId: 102, tableNumber: 10001, name: 'staged', fields: ['color'], staged: true }, [])
    expect((await p.indexes()).filter((i) => i.tableNumber === 10001)).toEqual([
      { indexId: index.indexId, tableNumber: 10001, name: 'by_embedding', fields: [], vector: config },
      { indexId: staged.indexId, tableNumber: 10001, name: 'staged', fields: ['color'], staged: true },
    ])
    await p.setIndexStaged(staged.indexId, false)
    expect((await p.indexes()).find((i) => i.name === 'staged')?.staged).toBeUndefined()

    await p.write([
      {
        ts: 10n,
        documents: [doc('a'), doc('b'), doc('c'), doc('d')],
        indexes: [],
        vectors: [
          { indexId: index.indexId, id: 'b', entry: entry(vectors.b!, 2, 10) },
          { indexId: index.indexId, id: 'c', entry: entry(vectors.c!, 1, 20) },
          { indexId: index.indexId, id: 'd', entry: entry(vectors.d!, 3, 30) },
        ],
      },
    ])
    const q = [1, 0.2, 0]
    const expected = ['a', 'b', 'c', 'd'].map((id) => ({ id, score: cosine(q, vectors[id]!) })).sort((x, y) => y.score - x.score)
    const before = await p.snapshot()
    const all = await before.vectorSearch!(index.indexId, query(q))
    expect(all.map((h) => h.id)).toEqual(expected.map((h) => h.id))
    all.forEach((h, i) => expect(h.score).toBeCloseTo(expected[i]!.score, 6))
    expect((await before.vectorSearch!(index.indexId, query(q, { limit: 2 }))).map((h) => h.id)).toEqual(expected.slice(0, 2).map((h) => h.id))
    expect(await before.vectorSearch!(index.indexId, query(q, { limit: 0 }))).toEqual([])
    // One filter: any of its keys; several: any of them (an OR across fields).
    expect((await before.vectorSearch!(index.indexId, query(q, { filters: [{ field: 0, keys: [key(1)] }] }))).map((h) => h.id)).toEqual(['a', 'c'])
    expect((await before.vectorSearch!(index.indexId, query(q, { filters: [{ field: 0, keys: [key(1), key(3)] }] }))).map((h) => h.id)).toEqual(['a', 'c', 'd'])
    expect((await before.vectorSearch!(index.indexId, query(q, { filters: [{ field: 0, keys: [key(2)] }, { field: 1, keys: [key(30)] }] }))).map((h) => h.id)).toEqual(['b', 'd'])
    expect((await before.vectorSearch!(index.indexId, query(q, { limit: 1, filters: [{ field: 0, keys: [key(3)] }, { field: 1, keys: [key(20)] }] }))).map((h) => h.id)).toEqual(['c'])
    expect(await before.vectorSearch!(index.indexId, query(q, { filters: [{ field: 0, keys: [key(9)] }] }))).toEqual([])

    // Move b away and delete a: later snapshots see it, the earlier one doesn't.
    await p.write([{ ts: 11n, documents: [], indexes: [], vectors: [{ indexId: index.indexId, id: 'b', entry: entry([-1, 0, 0], 2, 10) }, { indexId: index.indexId, id: 'a', entry: null }] }])
    const after = await p.snapshot()
    expect((await after.vectorSearch!(index.indexId, query(q))).map((h) => h.id)).toEqual(['c', 'd', 'b'])
    expect((await after.vectorSearch!(index.indexId, query(q)))[2]!.score).toBeCloseTo(cosine(q, [-1, 0, 0]), 6)
    expect((await before.vectorSearch!(index.indexId, query(q))).map((h) => h.id)).toEqual(expected.map((h) => h.id))
    before.release()
    after.release()

    // Survives a reopen.
    await p.close()
    const reopened = SqlitePersistence.open(p.path)
    try {
      const s = await reopened.snapshot()
      expect((await s.vectorSearch!(index.indexId, query(q))).map((h) => h.id)).toEqual(['c', 'd', 'b'])
      s.release()
      await reopened.dropIndex(index.indexId)
      expect((await reopened.indexes()).some((i) => i.indexId === index.indexId)).toBe(false)
      const db = new Database(p.path, { readonly: true })
      expect(db.prepare("SELECT count(*) FROM sqlite_master WHERE name LIKE 'vectors_%'").pluck().get()).toBe(0)
      db.close()
    } finally {
      await reopened.close()
    }
  } catch (e) {
    await p.close().catch(() => {})
    throw e
  }
})

test('a zero vector scores 0 against any query; a zero query scores 0 everywhere', async () => {
  const p = SqlitePersistence.open(tempFile())
  try {
    await p.createTable('docs', 10001)
    const config = { vectorField: 'embedding', dimensions: 2, filterFields: [] }
    const e = (vector: number[]) => ({ vector: new Float32Array(vector), filterKeys: [] })
    const index = await p.createIndex({ indexId: 103, tableNumber: 10001, name: 'v', fields: [], vector: config }, [], [], [
      { indexId: -1, id: 'zero', entry: e([0, 0]) },
      { indexId: -1, id: 'pos', entry: e([1, 0]) },
      { indexId: -1, id: 'neg', entry: e([-1, 0.5]) },
    ])
    const s = await p.snapshot()
    const hits = await s.vectorSearch!(index.indexId, { vector: new Float32Array([1, 0.1]), limit: 10, filters: [] })
    expect(hits.map((h) => h.id)).toEqual(['pos', 'zero', 'neg'])
    expect(hits[1]!.score).toBe(0)
    expect(hits[2]!.score).toBeCloseTo(cosine([1, 0.1], [-1, 0.5]), 6)
    const fromZero = await s.vectorSearch!(index.indexId, { vector: new Float32Array([0, 0]), limit: 10, filters: [] })
    expect(fromZero.map((h) => h.score)).toEqual([0, 0, 0])
    expect(fromZero.map((h) => h.id).sort()).toEqual(['neg', 'pos', 'zero'])
    s.release()
  } finally {
    await p.close()
  }
})

test('a version 2 file gains vector and staged columns; its indexes stay enabled', async () => {
  const path = tempFile()
  const old = new Database(path)
  old.exec('CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)')
  old.exec(MIGRATIONS[0]!)
  old.exec(MIGRATIONS[1]!)
  old.prepare("INSERT INTO meta (key, value) VALUES ('format_version', '2')").run()
  old.prepare("INSERT INTO indexes (table_number, name, fields, search) VALUES (10001, 'search_body', '[]', '{\"searchField\":\"body\",\"filterFields\":[]}')").run()
  old.close()
  const logs: string[] = []
  const p = SqlitePersistence.open(path, (m) => logs.push(m))
  try {
    expect(logs).toEqual(['Executing migration 3/3', 'MigrationComplete(3)'])
    expect(await p.indexes()).toEqual([{ indexId: 1, tableNumber: 10001, name: 'search_body', fields: [], search: { searchField: 'body', filterFields: [] } }])
  } finally {
    await p.close()
  }
})
