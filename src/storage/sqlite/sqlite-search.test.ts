import { afterEach, expect, test } from 'vitest'
import Database from 'better-sqlite3'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MIGRATIONS, FORMAT_VERSION } from './migrations.ts'
import { SqlitePersistence } from './sqlite-persistence.ts'
import type { SearchQuery } from '../persistence.ts'

const dirs: string[] = []
function tempFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'concave-search-'))
  dirs.push(dir)
  return join(dir, 'db.sqlite3')
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

const doc = (id: string) => ({ id, tableNumber: 10001, json: JSON.stringify({ _id: id, _creationTime: 1 }) })
const query = (q: Partial<SearchQuery>): SearchQuery => ({ terms: [], prefix: null, maxPrefixTerms: 16, filters: [], limit: 1024, ...q })

test('a version 1 file is migrated: its indexes stay database indexes and search tables exist', async () => {
  const path = tempFile()
  const old = new Database(path)
  old.exec('CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)')
  old.exec(MIGRATIONS[0]!)
  old.prepare("INSERT INTO meta (key, value) VALUES ('format_version', '1')").run()
  old.prepare("INSERT INTO indexes (table_number, name, fields) VALUES (10001, 'by_author', '[\"author\"]')").run()
  old.close()
  const logs: string[] = []
  const p = SqlitePersistence.open(path, (m) => logs.push(m))
  try {
    expect(FORMAT_VERSION).toBe(3)
    expect(logs).toEqual(['Executing migration 2/3', 'Executing migration 3/3', 'MigrationComplete(3)'])
    expect(await p.indexes()).toEqual([{ indexId: 1, tableNumber: 10001, name: 'by_author', fields: ['author'] }])
    const snapshot = await p.snapshot()
    expect((await snapshot.search!(1, query({ terms: ['x'] }))).documents).toEqual([])
    snapshot.release()
  } finally {
    await p.close()
  }
})

test('search entries: matching, prefix expansion, frequencies, filters, updates, snapshots and drop', async () => {
  const p = SqlitePersistence.open(tempFile())
  try {
    await p.createTable('messages', 10001)
    const entry = (terms: string[], tag: string) => ({ terms, filterKeys: [tag] })
    const index = await p.createIndex({ indexId: 101, tableNumber: 10001, name: 'search_body', fields: [], search: { searchField: 'body', filterFields: ['tag'] } }, [], [
      { indexId: -1, id: 'a', entry: entry(['apple', 'pie'], 'k1') },
    ])
    const other = await p.createIndex({ indexId: 102, tableNumber: 10001, name: 'search_other', fields: [], search: { searchField: 'other', filterFields: [] } }, [], [{ indexId: -1, id: 'a', entry: { terms: ['apricot'], filterKeys: [] } }])
    expect((await p.indexes()).find((i) => i.name === 'search_body')?.search).toEqual({ searchField: 'body', filterFields: ['tag'] })
    await p.write([
      {
        ts: 10n,
        documents: [doc('a'), doc('b'), doc('c')],
        indexes: [],
        search: [
          { indexId: index.indexId, id: 'b', entry: entry(['apple', 'apple', 'applesauce'], 'k2') },
          { indexId: index.indexId, id: 'c', entry: entry(['banana'], 'k1') },
        ],
      },
    ])
    const before = await p.snapshot()
    const r = await before.search!(index.indexId, query({ terms: ['banana'], prefix: 'app' }))
    expect(r.prefixTerms).toEqual(['apple', 'applesauce'])
    expect(r.documentCount).toBe(3)
    expect(r.termCount).toBe(6)
    expect(Object.fromEntries(r.documentFrequency)).toEqual({ banana: 1, apple: 2, applesauce: 1 })
    expect(r.documents.map((d) => d.id).sort()).toEqual(['a', 'b', 'c'])
    // Other indexes' terms are not this index's.
    expect((await before.search!(index.indexId, query({ prefix: 'apr' }))).prefixTerms).toEqual([])
    expect((await before.search!(other.indexId, query({ prefix: 'ap' }))).prefixTerms).toEqual(['apricot'])
    expect((await before.search!(index.indexId, query({ prefix: 'app', maxPrefixTerms: 1 }))).prefixTerms).toEqual(['apple'])
    expect((await before.search!(index.indexId, query({ terms: ['apple', 'banana'], filters: [{ field: 0, key: 'k1' }] }))).documents.map((d) => d.id).sort()).toEqual(['a', 'c'])
    expect((await before.search!(index.indexId, query({ terms: ['apple'], limit: 1 }))).documents).toHaveLength(1)

    // Replace b's entry and remove a's: later snapshots see it, the earlier one doesn't.
    await p.write([{ ts: 11n, documents: [], indexes: [], search: [{ indexId: index.indexId, id: 'b', entry: entry(['cherry'], 'k2') }, { indexId: index.indexId, id: 'a', entry: null }] }])
    const after = await p.snapshot()
    const r2 = await after.search!(index.indexId, query({ terms: ['cherry'], prefix: 'app' }))
    expect(r2.prefixTerms).toEqual([])
    expect(r2.documentCount).toBe(2)
    expect(r2.termCount).toBe(2)
    expect(r2.documents.map((d) => d.id)).toEqual(['b'])
    expect((await before.search!(index.indexId, query({ prefix: 'app' }))).documents.map((d) => d.id).sort()).toEqual(['a', 'b'])
    before.release()
    after.release()

    await p.dropIndex(index.indexId)
    const dropped = await p.snapshot()
    const r3 = await dropped.search!(index.indexId, query({ terms: ['cherry', 'banana'] }))
    expect([r3.documentCount, r3.documents.length]).toEqual([0, 0])
    expect((await dropped.search!(other.indexId, query({ prefix: 'ap' }))).documents.map((d) => d.id)).toEqual(['a'])
    dropped.release()
  } finally {
    await p.close()
  }
})
