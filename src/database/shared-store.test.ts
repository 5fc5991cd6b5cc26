import { afterAll, beforeAll, expect, test } from 'vitest'
import pg from 'pg'
import { PostgresPersistence } from '../storage/postgres/postgres-persistence.ts'
import { StaleWrite } from '../storage/persistence.ts'
import type { LoggedCommit } from '../storage/persistence.ts'
import { startPostgres, type PostgresCluster } from '../../test/helpers/postgres.ts'
import { until } from '../../test/helpers/test-backend.ts'
import { Database } from './database.ts'
import { CursorCodec } from './cursors.ts'
import { OccConflictError } from './errors.ts'
import { encodeIndexKey } from '../values/index.ts'
import { restoreAt } from '../snapshot/restore.ts'

// Two databases on one Postgres database stand for two Concave processes sharing it.
const SECRET = '4361726e697461732c206c69746572616c6c79206d65616e696e6720226c6974'
let cluster: PostgresCluster
const open: Database[] = []
beforeAll(async () => {
  cluster = await startPostgres()
})
afterAll(async () => {
  for (const db of open) await db.close()
  await cluster?.stop()
})

async function twoProcesses(): Promise<[Database, Database]> {
  const url = await cluster.newDatabase()
  const one = await Database.open(await PostgresPersistence.open(url), new CursorCodec(SECRET))
  const two = await Database.open(await PostgresPersistence.open(url), new CursorCodec(SECRET))
  open.push(one, two)
  return [one, two]
}

async function sql<R>(url: string, text: string): Promise<R[]> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query(text)).rows as R[]
  } finally {
    await client.end()
  }
}
const waitingForLocks = async (url: string) => Number((await sql<{ n: string }>(url, "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"))[0]!.n)
const leaseAttempts = async (url: string) => Number((await sql<{ n: string }>(url, "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'SELECT pg_try_advisory_lock%'"))[0]!.n)

/** Two stores on a new database (two processes' stores), closed after `fn`. */
async function withTwoStores(fn: (a: PostgresPersistence, b: PostgresPersistence, url: string) => Promise<void>): Promise<void> {
  const url = await cluster.newDatabase()
  const a = await PostgresPersistence.open(url)
  const b = await PostgresPersistence.open(url)
  try {
    await fn(a, b, url)
  } finally {
    await a.close()
    await b.close()
  }
}

const insert = (db: Database, table: string, fields: Record<string, unknown>) => db.mutate((txn) => txn.insert(table, fields as never), { system: false })

test('a guarded write finds what another store committed since, applies nothing, and lands once caught up', () =>
  withTwoStores(async (a, b, url) => {
    const key = encodeIndexKey(['k'])
    await a.write([{ ts: 10n, documents: [], indexes: [], touched: [{ indexId: 7, key }] }], 0n)
    const stale = await b.write([{ ts: 11n, documents: [], indexes: [] }], 0n).catch((e: unknown) => e)
    expect(stale).toBeInstanceOf(StaleWrite)
    expect((stale as StaleWrite).foreign).toEqual([{ ts: 10n, touched: [{ indexId: 7, key }], catalog: false, push: false }] satisfies LoggedCommit[])
    expect(await b.shared!.latestTs()).toBe(10n)
    await b.write([{ ts: 11n, documents: [], indexes: [] }], 10n)
    expect((await a.shared!.commitsAfter(0n, 10)).map((c) => c.ts)).toEqual([10n, 11n])
    expect(await a.shared!.commitsAfter(11n, 10)).toEqual([])
  }))

test('a write hold keeps the other store from committing until released; its marker is logged', () =>
  withTwoStores(async (a, b, url) => {
    const hold = await a.shared!.holdWrites(0n)
    expect(hold.foreign).toEqual([])
    let landed = false
    const write = b.write([{ ts: 30n, documents: [], indexes: [] }], 0n).then(
      () => (landed = true),
      (e: unknown) => e,
    )
    // The write waits for the commit lock (seen from Postgres's side), and lands nothing meanwhile.
    await until(() => waitingForLocks(url), (n) => n === 1)
    expect(landed).toBe(false)
    await hold.release({ ts: 20n, catalog: true, push: true })
    // The held write expected nothing new: the marker landed first, so it is stale.
    expect(await write).toBeInstanceOf(StaleWrite)
    expect(await b.shared!.commitsAfter(0n, 10)).toEqual([{ ts: 20n, touched: [], catalog: true, push: true }])
  }))

test('a lease is held by one store at a time and taken over when its holder goes', () =>
  withTwoStores(async (a, b, url) => {
    const first = a.shared!.lease('background')
    await until(() => first.held, (h) => h)
    const second = b.shared!.lease('background')
    const changes: boolean[] = []
    second.onChange((held) => changes.push(held))
    // The second store has asked for it (and was refused) before the first lets go.
    await until(() => leaseAttempts(url), (n) => n === 2)
    expect(second.held).toBe(false)
    await first.close()
    await until(() => second.held, (h) => h, 10_000)
    expect(changes).toEqual([true])
  }))

test('a read-modify-write conflicts with a commit another process made after its snapshot', async () => {
  const [one, two] = await twoProcesses()
  const id = await insert(one, 'counters', { value: 0 })
  await two.committer.sync()
  const txn = await one.begin(true)
  try {
    expect((await txn.read(id))?.value).toBe(0)
    await two.mutate((t) => t.patchSystem(id, { value: 1 }), { system: false })
    await txn.patch(id, { value: 100 }, 'counters')
    await expect(one.commit(txn)).rejects.toBeInstanceOf(OccConflictError)
  } finally {
    one.end(txn)
  }
  const check = await one.begin(false)
  try {
    expect((await check.read(id))?.value).toBe(1)
  } finally {
    one.end(check)
  }
})

test('a mutation that ends without writing is checked against what other processes committed after its snapshot', async () => {
  const [one, two] = await twoProcesses()
  const id = await insert(one, 'counters', { value: 0 })
  const other = await insert(one, 'counters', { value: 0 })
  await two.committer.sync()
  // Read-only, on a snapshot from before two's write: the read is stale by the end, so it re-runs.
  const stale = await one.begin(true)
  try {
    expect((await stale.read(id))?.value).toBe(0)
    await two.mutate((t) => t.patchSystem(id, { value: 1 }), { system: false })
    await expect(one.commit(stale)).rejects.toBeInstanceOf(OccConflictError)
  } finally {
    one.end(stale)
  }
  // Read-only, and what it read is untouched by two's later write: it stands.
  const fine = await one.begin(true)
  try {
    expect((await fine.read(other))?.value).toBe(0)
    await two.mutate((t) => t.patchSystem(id, { value: 2 }), { system: false })
    expect(await one.commit(fine)).toBe(fine.snapshotTs)
  } finally {
    one.end(fine)
  }
})

test('a system mutation that fails on a stale read is run again, not reported as failed', async () => {
  const [one, two] = await twoProcesses()
  await insert(one, 'items', { n: 0 })
  await two.committer.sync()
  // one's current snapshot, held open, predates two's insert: a mutation beginning now reads it.
  // (one takes no notice of two's commit until that mutation has read: else, on a busy machine,
  // the notice can arrive first and retire the snapshot.)
  const holder = await one.begin(false)
  one.committer.follow = () => Promise.resolve()
  try {
    const id = await insert(two, 'items', { n: 1 })
    const seen: (number | null)[] = []
    const n = await one.mutate(async (txn) => {
      const doc = await txn.read(id)
      seen.push((doc?.n as number | undefined) ?? null)
      delete (one.committer as { follow?: unknown }).follow
      if (doc === null) throw new Error(`${id} not found`)
      return doc.n
    })
    expect([n, seen]).toEqual([1, [null, 1]])
  } finally {
    delete (one.committer as { follow?: unknown }).follow
    one.end(holder)
  }
})

test('a restore through one process takes in every commit the other acknowledged before it (its write-log reads are outside the conflict check)', async () => {
  const [one, two] = await twoProcesses()
  const id = await insert(one, 'items', { n: 0 })
  await two.committer.sync()
  const { ts } = await one.mutateAt((txn) => txn.patchSystem(id, { n: 1 }), { system: false })
  await one.mutate((txn) => txn.patchSystem(id, { n: 2 }), { system: false })
  expect((await restoreAt(two, ts)).documents).toBe(1)
  const txn = await one.begin(false)
  try {
    expect((await txn.read(id))?.n).toBe(1)
  } finally {
    one.end(txn)
  }
})

test('callers of sync that come while a check runs share the next check, which sees what was committed before they called', async () => {
  const [one, two] = await twoProcesses()
  const shared = one.persistence.shared!
  const latestTs = shared.latestTs.bind(shared)
  let checks = 0
  let release!: () => void
  const gate = new Promise<void>((r) => (release = r))
  // The first check's answer is held back (stale) until the gate opens.
  ;(shared as { latestTs: () => Promise<bigint> }).latestTs = async () => {
    const n = ++checks
    const ts = await latestTs()
    if (n === 1) await gate
    return ts
  }
  const first = one.committer.sync()
  await until(() => checks, (n) => n === 1)
  const id = await insert(two, 'counters', { value: 7 })
  const committed = two.committer.publishedTs
  // Callers in different turns, all while the first check is out.
  const later: Promise<void>[] = []
  for (let i = 0; i < 5; i++) {
    later.push(one.committer.sync())
    await new Promise((r) => setImmediate(r))
  }
  expect(checks).toBe(1)
  release()
  await first
  await Promise.all(later)
  expect(checks).toBe(2)
  expect(one.committer.publishedTs).toBe(committed)
  const txn = await one.begin(false)
  try {
    expect((await txn.read(id))?.value).toBe(7)
  } finally {
    one.end(txn)
  }
})

test('on Postgres the current snapshot outlives its reader for a moment: back-to-back reads share it, then it is released', async () => {
  const url = await cluster.newDatabase()
  const db = await Database.open(await PostgresPersistence.open(url), new CursorCodec(SECRET))
  open.push(db)
  const id = await insert(db, 'counters', { value: 3 })
  const persistence = db.persistence as PostgresPersistence
  const opened = persistence.snapshot.bind(persistence)
  let snapshots = 0
  persistence.snapshot = () => (snapshots++, opened())
  const read = async () => {
    const txn = await db.begin(false)
    try {
      return (await txn.read(id))?.value
    } finally {
      db.end(txn)
    }
  }
  expect(await read()).toBe(3)
  expect(await read()).toBe(3)
  expect(await read()).toBe(3)
  expect(snapshots).toBeLessThanOrEqual(1)
  const idleInTransaction = async () => Number((await sql<{ n: string }>(url, "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'"))[0]!.n)
  await until(idleInTransaction, (n) => n === 0)
  // A commit supersedes it at once: the next read sees the write.
  await db.mutate((t) => t.patchSystem(id, { value: 4 }), { system: false })
  expect(await read()).toBe(4)
})

test("each process publishes the other's commits, in order, and knows the tables and indexes it created", async () => {
  const [one, two] = await twoProcesses()
  const seen: bigint[] = []
  two.committer.onCommit((batch) => seen.push(...batch.map((c) => c.ts)))
  const first = await insert(one, 'notes', { text: 'a' })
  const second = await insert(one, 'notes', { text: 'b' })
  // A transaction on `two` reads what `one` committed before it began (the table included).
  const txn = await two.begin(false)
  try {
    expect((await txn.read(first))?.text).toBe('a')
    expect((await txn.read(second))?.text).toBe('b')
  } finally {
    two.end(txn)
  }
  expect(seen.length).toBeGreaterThanOrEqual(2)
  expect([...seen].sort((x, y) => (x < y ? -1 : 1))).toEqual(seen)
  const notes = two.catalog.table('', 'notes')!
  expect(notes.tableNumber).toBe(one.catalog.table('', 'notes')!.tableNumber)
  // An index `one` adds is kept current by `two`'s writes from then on.
  await one.exclusive(async () => void (await one.catalog.addIndex(one.catalog.table('', 'notes')!, 'by_text', ['text'])))
  const third = await insert(two, 'notes', { text: 'c' })
  expect(notes.indexes.has('by_text')).toBe(true)
  const index = one.catalog.table('', 'notes')!.indexes.get('by_text')!
  const read = await one.begin(false)
  try {
    const rows = await read.snapshot.scan(index.indexId, { lo: Buffer.alloc(0), hi: null }, 'asc', 10)
    expect(rows.map((r) => r.doc.id)).toEqual([first, second, third])
  } finally {
    one.end(read)
  }
})

test('a table two processes create at once is created once; the loser re-runs into it', async () => {
  const [one, two] = await twoProcesses()
  const [x, y] = await Promise.all([insert(one, 'shared', { by: 'one' }), insert(two, 'shared', { by: 'two' })])
  await one.committer.sync()
  await two.committer.sync()
  const table = one.catalog.table('', 'shared')!
  expect(two.catalog.table('', 'shared')!.tableNumber).toBe(table.tableNumber)
  const txn = await two.begin(false)
  try {
    expect([(await txn.read(x))?.by, (await txn.read(y))?.by]).toEqual(['one', 'two'])
  } finally {
    two.end(txn)
  }
})

test('a process whose commit log was pruned past it starts over: catalog and push read again, older transactions conflict', async () => {
  const url = await cluster.newDatabase()
  const one = await Database.open(await PostgresPersistence.open(url), new CursorCodec(SECRET))
  // `two` hears no notices: it catches up only when it must (as one cut off for a while would).
  const deaf = await PostgresPersistence.open(url)
  ;(deaf.shared as { onNotice: unknown }).onNotice = () => {}
  const two = await Database.open(deaf, new CursorCodec(SECRET))
  open.push(one, two)
  const pushes: number[] = []
  two.onForeignPush(async () => void pushes.push(1))
  const id = await insert(one, 'kept', { n: 1 })
  const older = await two.begin(true)
  try {
    expect((await older.read(id))?.n).toBe(1)
    // Meanwhile another table is made, and the log is pruned past where `two` is.
    await insert(one, 'later', { n: 2 })
    await sql(url, "DELETE FROM commits; INSERT INTO meta (key, value) SELECT 'commits_horizon', value FROM meta WHERE key = 'max_ts' ON CONFLICT (key) DO UPDATE SET value = excluded.value")
    await older.patch(id, { n: 5 }, 'kept')
    await expect(two.commit(older)).rejects.toBeInstanceOf(OccConflictError)
  } finally {
    two.end(older)
  }
  expect(two.catalog.table('', 'later')).toBeDefined()
  expect(pushes).toEqual([1])
  const txn = await two.begin(false)
  try {
    expect((await txn.read(id))?.n).toBe(1)
  } finally {
    two.end(txn)
  }
})

test("a transaction begun beside an alone section commits after it, checked against its commit (no lost update)", async () => {
  const [one] = await twoProcesses()
  const id = await insert(one, 'counters', { value: 0 })
  let enter!: () => void
  const inside = new Promise<void>((r) => (enter = r))
  // Begun outside the section (its own async context), while the section runs.
  const beside = (async () => {
    await inside
    const txn = await one.begin(true)
    try {
      await txn.patch(id, { value: ((await txn.read(id))!.value as number) + 1 }, 'counters')
      return await one.commit(txn).then(
        () => 'committed',
        (e: unknown) => (e instanceof OccConflictError ? 'conflict' : e),
      )
    } finally {
      one.end(txn)
    }
  })()
  await one.alone(async () => {
    const txn = await one.begin(true)
    try {
      await txn.patch(id, { value: ((await txn.read(id))!.value as number) + 1 }, 'counters')
      enter()
      await new Promise((r) => setImmediate(r))
      await one.commit(txn)
    } finally {
      one.end(txn)
    }
  })
  const outcome = await beside
  const check = await one.begin(false)
  try {
    const value = (await check.read(id))!.value
    // Either it began before the section's commit and conflicted, or after it and added to it.
    expect(outcome === 'conflict' ? value : outcome === 'committed' ? value : outcome).toBe(outcome === 'conflict' ? 1 : 2)
  } finally {
    one.end(check)
  }
})
