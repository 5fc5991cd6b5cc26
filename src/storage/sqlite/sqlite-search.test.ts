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
    expect(FORMAT_VERSION).toBe(4)
    expect(logs).toEqual(['Executing migration 2/4', 'Executing migration 3/4', 'Executing migration 4/4', 'MigrationComplete(4)'])
    expect(await p.indexes()).toEqual([{ indexId: 1, tableNumber: 10001, name: 'by_author', fields: ['author'] }])
    const snapshot = await p.snapshot()
    expect((await snapshot.search!(1, query({ terms: ['x'] }))).documents).toEqual([])
    snapshot.release()
  } finally {
    await p.close()
  }
})
