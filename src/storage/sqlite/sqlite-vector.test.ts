import { afterEach, expect, test } from 'vitest'
import Database from 'better-sqlite3'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MIGRATIONS } from './migrations.ts'
import { SqlitePersistence } from './sqlite-persistence.ts'

const dirs: string[] = []
function tempFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'concave-vector-'))
  dirs.push(dir)
  return join(dir, 'db.sqlite3')
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

test('a vector index is a vec0 table of its own, dropped with the index', async () => {
  const path = tempFile()
  const p = SqlitePersistence.open(path)
  const vecTables = (indexId: number) => {
    const db = new Database(path, { readonly: true })
    try {
      return db.prepare("SELECT name FROM sqlite_master WHERE name = ? OR name LIKE ? || '\\_%' ESCAPE '\\'").pluck().all(`vectors_${indexId}`, `vectors_${indexId}`)
    } finally {
      db.close()
    }
  }
  try {
    const index = await p.createIndex({ indexId: 201, tableNumber: 10001, name: 'v', fields: [], vector: { vectorField: 'embedding', dimensions: 2, filterFields: [] } }, [], [], [{ indexId: -1, id: 'a', entry: { vector: new Float32Array([1, 0]), filterKeys: [] } }])
    expect(vecTables(index.indexId)).toContain(`vectors_${index.indexId}`)
    await p.dropIndex(index.indexId)
    expect(vecTables(index.indexId)).toEqual([])
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
    expect(logs).toEqual(['Executing migration 3/4', 'Executing migration 4/4', 'MigrationComplete(4)'])
    expect(await p.indexes()).toEqual([{ indexId: 1, tableNumber: 10001, name: 'search_body', fields: [], search: { searchField: 'body', filterFields: [] } }])
  } finally {
    await p.close()
  }
})
