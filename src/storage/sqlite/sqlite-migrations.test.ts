import { afterEach, expect, test } from 'vitest'
import Database from 'better-sqlite3'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MIGRATIONS } from './migrations.ts'
import { SqlitePersistence } from './sqlite-persistence.ts'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

test("a version 3 file keeps its tables' numbers as the numbers their ids carry", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'concave-migrate-'))
  dirs.push(dir)
  const path = join(dir, 'db.sqlite3')
  const old = new Database(path)
  old.exec('CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)')
  for (const m of MIGRATIONS.slice(0, 3)) old.exec(m)
  old.prepare("INSERT INTO meta (key, value) VALUES ('format_version', '3')").run()
  old.exec("INSERT INTO tables (table_number, name) VALUES (10001, 'messages'), (10002, 'comp:notes'), (10003, '~dropped~10003')")
  old.close()
  const logs: string[] = []
  const p = SqlitePersistence.open(path, (m) => logs.push(m))
  try {
    expect(logs).toEqual(['Executing migration 4/4', 'MigrationComplete(4)'])
    expect(await p.tables()).toEqual([
      { tableNumber: 10001, name: 'messages', idNumber: 10001 },
      { tableNumber: 10002, name: 'comp:notes', idNumber: 10002 },
      { tableNumber: 10003, name: '~dropped~10003', idNumber: 10003 },
    ])
  } finally {
    await p.close()
  }
})
