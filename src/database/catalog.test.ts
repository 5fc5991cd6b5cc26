import { afterEach, expect, test } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SqlitePersistence } from '../storage/sqlite/sqlite-persistence.ts'
import { decodeId } from '../values/index.ts'
import { Catalog } from './catalog.ts'
import { CursorCodec } from './cursors.ts'
import { Database } from './database.ts'

const SECRET = '4361726e697461732c206c69746572616c6c79206d65616e696e6720226c6974'
const cleanup: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c()
})

function store(): { path: string; open: (closedBy?: 'database') => SqlitePersistence } {
  const dir = mkdtempSync(join(tmpdir(), 'concave-catalog-'))
  cleanup.push(async () => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'db.sqlite3')
  return {
    path,
    open: (closedBy) => {
      const p = SqlitePersistence.open(path)
      if (closedBy === undefined) cleanup.push(() => p.close())
      return p
    },
  }
}

const numbers = (c: Catalog) => [...c.byName.values()].map((t) => [t.component, t.name, t.idNumber]).sort((a, b) => String(a).localeCompare(String(b)))

test('the app and each component number their tables on their own, user tables from 10001', async () => {
  const s = store()
  const catalog = new Catalog(s.open())
  await catalog.load()
  const appFirst = await catalog.ensureTable('messages')
  const compFirst = await catalog.ensureTable('messages', 'comp')
  const nested = await catalog.ensureTable('notes', 'comp/inner')
  const compSecond = await catalog.ensureTable('notes', 'comp')
  const appSecond = await catalog.ensureTable('users')
  expect([appFirst.idNumber, compFirst.idNumber, nested.idNumber, compSecond.idNumber, appSecond.idNumber]).toEqual([10001, 10001, 10001, 10002, 10002])
  // Their keys in the store stay distinct.
  expect(new Set([appFirst, compFirst, nested, compSecond, appSecond].map((t) => t.tableNumber)).size).toBe(5)
  expect(catalog.tableForId('', 10001)).toBe(appFirst)
  expect(catalog.tableForId('comp', 10001)).toBe(compFirst)
  expect(catalog.tableForId('comp', 10003)).toBe(undefined)
  expect(catalog.tablesForId(10001)).toHaveLength(3)
  // A reload finds the same numbers.
  const again = new Catalog(s.open())
  await again.load()
  expect(numbers(again)).toEqual(numbers(catalog))
  expect(again.tableForId('comp', 10002)?.name).toBe('notes')
})

test("system tables get Convex's default numbers in every component, when free; Concave's own stay apart", async () => {
  const catalog = new Catalog(store().open())
  await catalog.load()
  const got = async (name: string, component = '') => (await catalog.ensureTable(name, component)).idNumber
  expect(await got('_storage')).toBe(540)
  expect(await got('_scheduled_functions')).toBe(539)
  expect(await got('_storage', 'comp')).toBe(540)
  expect(await got('_scheduled_functions', 'comp')).toBe(539)
  expect([await got('_environment_variables'), await got('_session_requests'), await got('_cron_jobs'), await got('_snapshot_imports')]).toEqual([525, 529, 531, 541])
  expect([await got('_upload_tokens'), await got('_cron_runs'), await got('_replication')]).toEqual([9901, 9902, 9990])
  // A system table without a number of its own: the first free one from 9903.
  expect(await got('_other')).toBe(9903)
  // User tables are not pushed up by system tables' numbers.
  expect(await got('messages')).toBe(10001)
  // A wanted number (an import keeping its source's) when free in the component; else the default.
  expect(await got('_storage', 'taken')).toBe(540)
  expect(await got('docs', 'taken')).toBe(10001)
  expect((await catalog.ensureTable('wanted', 'taken', 10001)).idNumber).toBe(10002)
  expect((await catalog.ensureTable('wanted', 'free', 10007)).idNumber).toBe(10007)
  expect((await catalog.ensureTable('later', 'free')).idNumber).toBe(10008)
})

test('tables a transaction creates are numbered in their component; ids resolve only there', async () => {
  const db = await Database.open(store().open('database'), new CursorCodec(SECRET))
  cleanup.push(() => db.close())
  const [app, comp] = await db.mutate(async (txn) => [await txn.insert('messages', { text: 'app' }), await txn.insert('messages', { text: 'comp' }, 'comp')], { system: false })
  expect(decodeId(app)!.tableNumber).toBe(10001)
  expect(decodeId(comp)!.tableNumber).toBe(10001)
  const txn = await db.begin(false)
  try {
    expect(JSON.parse(await txn.get(app, undefined, false, '')).text).toBe('app')
    expect(JSON.parse(await txn.get(comp, undefined, false, 'comp')).text).toBe('comp')
    // The same number in the other component names that component's own table: not found there.
    expect(await txn.get(app, undefined, false, 'comp')).toBe('null')
    expect(await txn.get(comp, undefined, false, '')).toBe('null')
    expect(await txn.get(app, undefined, false, 'other')).toBe('null')
    expect(txn.normalizeId('messages', app, 'comp')).toBe(app)
    expect(txn.normalizeId('messages', app, 'other')).toBe(null)
    // System code naming no component finds a document wherever it is.
    expect((await txn.read(comp))?.text).toBe('comp')
    expect((await txn.read(app))?.text).toBe('app')
  } finally {
    db.end(txn)
  }
})

test('a table left without its system indexes (a crash between the two writes of earlier versions) gets them back, filled, when the catalog loads', async () => {
  const s = store()
  const half = s.open('database')
  await half.createTable('notes', 10001, 10001)
  await half.createTable('dated', 10002, 10002, [{ indexId: 7, tableNumber: 10002, name: 'by_id', fields: ['_id'] }])
  await half.write([
    {
      ts: 5n,
      documents: [
        { id: 'n1', tableNumber: 10001, json: JSON.stringify({ _id: 'n1', _creationTime: 2, text: 'b' }) },
        { id: 'n2', tableNumber: 10001, json: JSON.stringify({ _id: 'n2', _creationTime: 1, text: 'a' }) },
        { id: 'd1', tableNumber: 10002, json: JSON.stringify({ _id: 'd1', _creationTime: 3 }) },
      ],
      indexes: [],
    },
  ])
  await half.close()

  const p = s.open()
  const catalog = new Catalog(p)
  await catalog.load()
  const notes = catalog.table('', 'notes')!
  expect([...notes.indexes.keys()].sort()).toEqual(['by_creation_time', 'by_id'])
  // New index ids after the ones stored; by_id kept where it was.
  expect(notes.indexes.get('by_id')!.indexId).toBe(8)
  expect(notes.indexes.get('by_creation_time')!.indexId).toBe(9)
  expect(catalog.table('', 'dated')!.indexes.get('by_id')!.indexId).toBe(7)
  expect(catalog.table('', 'dated')!.indexes.get('by_creation_time')!.indexId).toBe(10)
  // Backfilled: the documents are found through them, in index order.
  const snapshot = await p.snapshot()
  try {
    const ids = async (indexId: number) => (await snapshot.scan(indexId, { lo: Buffer.alloc(0), hi: null }, 'asc', 10)).map((r) => r.doc.id)
    expect(await ids(notes.indexes.get('by_id')!.indexId)).toEqual(['n1', 'n2'])
    expect(await ids(notes.indexes.get('by_creation_time')!.indexId)).toEqual(['n2', 'n1'])
    expect(await ids(catalog.table('', 'dated')!.indexes.get('by_creation_time')!.indexId)).toEqual(['d1'])
  } finally {
    snapshot.release()
  }
  // Stored: a second load has nothing to repair and finds the same.
  const again = new Catalog(p)
  await again.load()
  expect([...again.table('', 'notes')!.indexes.values()].map((i) => [i.name, i.indexId])).toEqual([...notes.indexes.values()].map((i) => [i.name, i.indexId]))
})

test('a refresh takes in a table only with its by_id index, and keeps a listed table’s system indexes (its two reads are not one view)', async () => {
  const s = store()
  const p = s.open()
  const catalog = new Catalog(p)
  await catalog.load()
  const index = (indexId: number, tableNumber: number, name: string) => ({ indexId, tableNumber, name, fields: name === 'by_id' ? ['_id'] : ['_creationTime'] })
  // As another process's writes could be seen between the reads of tables and of indexes.
  await p.createTable('whole', 10001, 10001, [index(50, 10001, 'by_id'), index(51, 10001, 'by_creation_time')])
  await p.createTable('half', 10002, 10002)
  await catalog.refresh()
  expect(catalog.table('', 'whole')?.indexes.get('by_id')?.indexId).toBe(50)
  expect(catalog.table('', 'half')).toBe(undefined)
  // The table's indexes gone while it is still listed (dropped between the reads): kept for now.
  await p.dropIndex(50)
  await p.dropIndex(51)
  await catalog.refresh()
  expect([...catalog.table('', 'whole')!.indexes.keys()].sort()).toEqual(['by_creation_time', 'by_id'])
  // Once it is no longer listed, it goes.
  await p.dropTable(10001)
  await catalog.refresh()
  expect(catalog.table('', 'whole')).toBe(undefined)
})

test('two catalogs repairing the same half table at once (two processes starting on one store) both end with its one index', async () => {
  const s = store()
  const p = s.open()
  await p.createTable('notes', 10001, 10001)
  const [a, b] = [new Catalog(p), new Catalog(p)]
  await Promise.all([a.load(), b.load()])
  const byId = (c: Catalog) => c.table('', 'notes')!.indexes.get('by_id')!.indexId
  expect(byId(a)).toBe(byId(b))
  expect((await p.indexes()).filter((i) => i.name === 'by_id')).toHaveLength(1)
  expect((await p.indexes()).filter((i) => i.name === 'by_creation_time')).toHaveLength(1)
  expect(a.table('', 'notes')!.indexes.get('by_creation_time')!.indexId).toBe(b.table('', 'notes')!.indexes.get('by_creation_time')!.indexId)
})

test('a table another process makes between the reads of tables and indexes is left to the commit log, not a crash at start', async () => {
  const s = store()
  const first = new Catalog(s.open())
  await first.load()
  await first.ensureTable('before')
  // The tables as they were when read; then, before the indexes are read, another process makes a table.
  const p = s.open()
  const stale = await p.tables()
  await first.ensureTable('between')
  const tables = p.tables.bind(p)
  p.tables = async () => stale
  const second = new Catalog(p)
  await second.load()
  p.tables = tables
  expect(second.byName.has('before')).toBe(true)
  expect(second.byName.has('between')).toBe(false)
  // When the commit that made it is followed, the catalog is read again and has it, indexes and all.
  await second.refresh()
  expect([...second.byName.get('between')!.indexes.keys()].sort()).toEqual(['by_creation_time', 'by_id'])
})

test('a table made between the reads of indexes and tables is loaded with the system indexes already stored, none made twice', async () => {
  const s = store()
  const first = new Catalog(s.open())
  await first.load()
  const p = s.open()
  const stale = await p.indexes()
  const made = await first.ensureTable('meanwhile')
  // The load's first read of the indexes is from before; any later one sees the store as it is.
  const indexes = p.indexes.bind(p)
  p.indexes = async () => {
    p.indexes = indexes
    return stale
  }
  const second = new Catalog(p)
  await second.load()
  const loaded = second.byName.get('meanwhile')!
  expect([...loaded.indexes.values()].map((i) => [i.name, i.indexId]).sort()).toEqual([...made.indexes.values()].map((i) => [i.name, i.indexId]).sort())
  expect((await p.indexes()).filter((i) => i.tableNumber === made.tableNumber).length).toBe(2)
})
