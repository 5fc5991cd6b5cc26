import { afterEach, expect, test } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SqlitePersistence } from '../storage/sqlite/sqlite-persistence.ts'
import { WriteNotApplied } from '../storage/persistence.ts'
import type { Persistence } from '../storage/persistence.ts'
import { CursorCodec } from './cursors.ts'
import { Database } from './database.ts'
import { OccConflictError } from './errors.ts'

const SECRET = '4361726e697461732c206c69746572616c6c79206d65616e696e6720226c6974'
const cleanup: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c()
})

/**
 * A SQLite store whose writes, once durable, wait for `gate` before they return (the moment
 * between a commit landing and the committer publishing it), and which asks for its quiescent
 * maintenance after every commit (so that every publish passes a checkpoint barrier, which ends
 * once the held write has landed).
 */
function gatedStore(): { persistence: Persistence; hold: (opts?: { fail?: boolean }) => { landed: Promise<void>; open: () => void } } {
  const dir = mkdtempSync(join(tmpdir(), 'concave-database-'))
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }))
  const real = SqlitePersistence.open(join(dir, 'db.sqlite3'))
  let gate: { landed: () => void; wait: Promise<void>; fail: boolean } | null = null
  // A checkpoint barrier opens the next snapshot when its maintenance ends: here, once the held write has landed.
  let maintenanceEnds: Promise<void> = Promise.resolve()
  const maintenance = { wanted: () => true, run: () => maintenanceEnds }
  const persistence = new Proxy(real, {
    get(target, key) {
      if (key === 'quiescentMaintenance') return maintenance
      if (key === 'write') {
        return async (...args: Parameters<SqlitePersistence['write']>) => {
          const g = gate
          gate = null
          // A failing write (a full disk, say) leaves the store as it was.
          if (g?.fail !== true) await target.write(...args)
          if (g !== null) {
            g.landed()
            await g.wait
            if (g.fail) throw new WriteNotApplied(new Error('disk full'))
          }
        }
      }
      const value: unknown = Reflect.get(target, key, target)
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value
    },
  })
  return {
    persistence,
    hold: (opts = {}) => {
      let landed!: () => void
      let open!: () => void
      const landedP = new Promise<void>((r) => (landed = r))
      gate = { landed, wait: new Promise<void>((r) => (open = r)), fail: opts.fail === true }
      maintenanceEnds = landedP
      return { landed: landedP, open }
    },
  }
}

/** Whether `p` settles within a turn of the event loop. */
async function settledSoon(p: Promise<unknown>): Promise<boolean> {
  let settled = false
  void p.then(
    () => (settled = true),
    () => (settled = true),
  )
  await new Promise((r) => setImmediate(r))
  return settled
}

test('a reader that comes while a table-creating change lands its commit waits for it to be published, and sees it', async () => {
  const { persistence, hold } = gatedStore()
  const db = await Database.open(persistence, new CursorCodec(SECRET))
  cleanup.push(() => db.close())
  await db.mutate(async (txn) => void (await txn.insert('before', { n: 1 })), { system: false })
  const published = db.committer.publishedTs

  // The catalog change's closing commit (the new table's name) is durable, not yet published.
  const gate = hold()
  const creating = db.ensureTable('created')
  await gate.landed
  expect(persistence.maxTs()).toBeGreaterThan(published)
  expect(db.committer.publishedTs).toBe(published)

  // A reader now neither fails nor reads a snapshot ahead of what the process published.
  const reading = db.begin(false)
  expect(await settledSoon(reading)).toBe(false)
  expect(db.unhealthy).toBe(null)

  gate.open()
  await creating
  const txn = await reading
  try {
    expect(txn.snapshotTs).toBe(persistence.maxTs())
    expect(db.committer.publishedTs).toBe(persistence.maxTs())
  } finally {
    db.end(txn)
  }
  expect(db.unhealthy).toBe(null)
})

test('a reader held back while a catalog change writes its closing commit goes on when that write fails', async () => {
  const { persistence, hold } = gatedStore()
  const db = await Database.open(persistence, new CursorCodec(SECRET))
  cleanup.push(() => db.close())
  await db.mutate(async (txn) => void (await txn.insert('before', { n: 1 })), { system: false })
  const published = db.committer.publishedTs

  const gate = hold({ fail: true })
  const creating = db.ensureTable('created')
  creating.catch(() => {})
  await gate.landed
  const reading = db.begin(false)
  expect(await settledSoon(reading)).toBe(false)

  gate.open()
  await expect(creating).rejects.toThrow('The database could not write: disk full')
  const txn = await reading
  try {
    expect(txn.snapshotTs).toBe(published)
  } finally {
    db.end(txn)
  }
  expect(db.unhealthy?.message).toBe('The database could not write: disk full')
})

test('restoring a document to what it holds is no change, also when it was stored with its fields in another order', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'concave-database-'))
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'db.sqlite3')
  const first = await Database.open(SqlitePersistence.open(path), new CursorCodec(SECRET))
  const id = await first.mutate((txn) => txn.insert('notes', { b: 1, a: 2 }), { system: false })
  const table = first.catalog.table('', 'notes')!
  const doc = (await first.mutate((txn) => txn.read(id, '')))!
  expect(Object.keys(doc)).toEqual(['_creationTime', '_id', 'a', 'b'])
  await first.close()
  // As an earlier version stored it: its fields in the order they were written.
  const raw = SqlitePersistence.open(path)
  await raw.write([{ ts: raw.maxTs() + 1n, documents: [{ id, tableNumber: table.tableNumber, json: JSON.stringify({ _id: id, _creationTime: doc._creationTime, b: 1, a: 2 }) }], indexes: [] }])
  await raw.close()

  const db = await Database.open(SqlitePersistence.open(path), new CursorCodec(SECRET))
  cleanup.push(() => db.close())
  expect(await db.mutate((txn) => txn.restoreSystem(id, { b: 1, _id: id, a: 2, _creationTime: doc._creationTime! }))).toBe(false)
  expect(await db.mutate((txn) => txn.restoreSystem(id, { b: 3, _id: id, a: 2, _creationTime: doc._creationTime! }))).toBe(true)
  expect(JSON.stringify(await db.mutate((txn) => txn.read(id, '')))).toBe(JSON.stringify({ _creationTime: doc._creationTime, _id: id, a: 2, b: 3 }))
})

test("a snapshot view (useStaleSnapshot) reads the mutation's starting snapshot without its writes, and its reads can't make the mutation conflict", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'concave-database-'))
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }))
  const db = await Database.open(SqlitePersistence.open(join(dir, 'db.sqlite3')), new CursorCodec(SECRET))
  cleanup.push(() => db.close())
  const watched = await db.mutate((txn) => txn.insert('watched', { n: 0 }), { system: false })
  const bump = () => db.mutate((txn) => txn.patch(watched, { n: 1 }, 'watched'), { system: false })

  // Read through the view, then another transaction changes that document: the commit stands.
  const viaView = await db.begin(true)
  try {
    const own = await viaView.insert('log', { line: 'mine' })
    const view = viaView.snapshotView()
    expect(view.mutable).toBe(false)
    expect(((await view.read(watched, '')) as { n: number }).n).toBe(0)
    expect(await view.read(own, '')).toBeNull()
    expect(await viaView.read(own, '')).not.toBeNull()
    await bump()
    await db.commit(viaView)
  } finally {
    db.end(viaView)
  }

  // The same read through the transaction itself conflicts.
  const direct = await db.begin(true)
  try {
    await direct.insert('log', { line: 'direct' })
    expect(((await direct.read(watched, '')) as { n: number }).n).toBe(1)
    await db.mutate((txn) => txn.patch(watched, { n: 2 }, 'watched'), { system: false })
    await expect(db.commit(direct)).rejects.toBeInstanceOf(OccConflictError)
  } finally {
    db.end(direct)
  }
  expect((await db.mutate((txn) => txn.readTable('log'))).map((d) => d.line)).toEqual(['mine'])
})

test('work to undo runs when a transaction ends without committing, or its savepoint rolls back; never after a commit', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'concave-database-'))
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }))
  const db = await Database.open(SqlitePersistence.open(join(dir, 'db.sqlite3')), new CursorCodec(SECRET))
  cleanup.push(() => db.close())
  const undone: string[] = []
  const undo = (what: string) => () => Promise.resolve(void undone.push(what))

  const committed = await db.begin(true)
  await committed.insert('t', { n: 1 })
  committed.afterAbort(undo('committed'))
  const rollback = committed.savepoint()
  committed.afterAbort(undo('nested, rolled back'))
  rollback()
  expect(undone).toEqual(['nested, rolled back'])
  await db.commit(committed)
  db.end(committed)

  const abandoned = await db.begin(true)
  await abandoned.insert('t', { n: 2 })
  abandoned.afterAbort(undo('abandoned'))
  db.end(abandoned)
  await Promise.resolve()
  expect(undone).toEqual(['nested, rolled back', 'abandoned'])

  // A conflict is a commit that didn't land.
  const conflicted = await db.begin(true)
  await conflicted.readTable('t')
  await conflicted.insert('t', { n: 3 })
  conflicted.afterAbort(undo('conflicted'))
  await db.mutate((txn) => txn.insert('t', { n: 4 }), { system: false })
  await expect(db.commit(conflicted)).rejects.toBeInstanceOf(OccConflictError)
  db.end(conflicted)
  await Promise.resolve()
  expect(undone).toEqual(['nested, rolled back', 'abandoned', 'conflicted'])
  expect((await db.mutate((txn) => txn.readTable('t'))).map((d) => d.n)).toEqual([1, 4])
})

test("a query stream reads from the store only the rows a batch takes: a function that stops at the first row doesn't conflict with a write to a later one", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'concave-database-'))
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }))
  const db = await Database.open(SqlitePersistence.open(join(dir, 'db.sqlite3')), new CursorCodec(SECRET))
  cleanup.push(() => db.close())
  const ids: string[] = []
  for (let n = 0; n < 10; n++) ids.push(await db.mutate((txn) => txn.insert('rows', { n }), { system: false }))
  const query = { source: { type: 'FullTableScan' as const, tableName: 'rows', order: 'asc' as const }, operators: [] }
  const readThenWrite = async (take: number) => {
    const txn = await db.begin(true)
    try {
      const batch = await txn.openStream('q', query).nextBatch(take)
      expect(batch.rows.map((r) => (JSON.parse(r) as { _id: string })._id)).toEqual(ids.slice(0, take))
      await txn.insert('log', { took: take })
      await db.mutate((other) => other.patch(ids[4]!, { n: 40 }, 'rows'), { system: false })
      await db.commit(txn)
    } finally {
      db.end(txn)
    }
  }
  await readThenWrite(1)
  await expect(readThenWrite(16)).rejects.toBeInstanceOf(OccConflictError)
})

test("a loop that deletes the first row until none is left reads past its own deletions in growing steps, not a row at a time", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'concave-database-'))
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }))
  const persistence = SqlitePersistence.open(join(dir, 'db.sqlite3'))
  let scans = 0
  const counted = new Proxy(persistence, {
    get(target, key) {
      if (key === 'snapshot') {
        return async () => {
          const snapshot = await target.snapshot()
          return new Proxy(snapshot, {
            get(s, k) {
              if (k === 'scan') return (...args: Parameters<typeof snapshot.scan>) => (scans++, s.scan(...args))
              const value: unknown = Reflect.get(s, k, s)
              return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(s) : value
            },
          })
        }
      }
      const value: unknown = Reflect.get(target, key, target)
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value
    },
  })
  const db = await Database.open(counted, new CursorCodec(SECRET))
  cleanup.push(() => db.close())
  await db.mutate(async (txn) => {
    for (let n = 0; n < 300; n++) await txn.insert('rows', { n })
  }, { system: false })
  const first = { source: { type: 'FullTableScan' as const, tableName: 'rows', order: 'asc' as const }, operators: [{ limit: 1 }] }
  scans = 0
  const deleted = await db.mutate(async (txn) => {
    let n = 0
    for (;;) {
      const stream = txn.openStream(`q${n}`, first)
      const { rows } = await stream.nextBatch(1)
      txn.closeStream(`q${n}`)
      if (rows.length === 0) return n
      await txn.remove((JSON.parse(rows[0]!) as { _id: string })._id, 'rows')
      n++
    }
  }, { system: false })
  expect(deleted).toBe(300)
  // A row at a time, the 300 streams would make 45,150 store reads; in doubling steps, each
  // makes about log2 of the rows it steps over.
  expect(scans).toBeLessThan(300 * 12)
})
