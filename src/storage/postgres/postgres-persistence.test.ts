import { afterAll, beforeAll, expect, test } from 'vitest'
import { createServer, connect, type Socket } from 'node:net'
import { Transform } from 'node:stream'
import pg from 'pg'
import { PostgresPersistence } from './postgres-persistence.ts'
import { WriteNotApplied } from '../persistence.ts'
import { FORMAT_VERSION, MIGRATIONS, migrate } from './migrations.ts'
import { startPostgres, type PostgresCluster } from '../../../test/helpers/postgres.ts'

let cluster: PostgresCluster
beforeAll(async () => {
  cluster = await startPostgres()
})
afterAll(async () => {
  await cluster?.stop()
})

async function sql<R extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query<R>(text, values)).rows
  } finally {
    await client.end()
  }
}
const tablesOf = async (url: string) => (await sql<{ tablename: string }>(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")).map((r) => r.tablename)

test('a new database gets every table at the current format, without migration lines', async () => {
  const url = await cluster.newDatabase()
  const logs: string[] = []
  const p = await PostgresPersistence.open(url, { log: (m) => logs.push(m) })
  await p.close()
  expect(logs).toEqual([])
  expect(await sql(url, "SELECT value FROM meta WHERE key = 'format_version'")).toEqual([{ value: String(FORMAT_VERSION) }])
  expect(await tablesOf(url)).toEqual(['commits', 'documents', 'file_blobs', 'file_chunks', 'index_entries', 'indexes', 'meta', 'modules', 'search_entries', 'search_postings', 'search_stats', 'search_vocab', 'tables', 'vector_entries', 'write_log'])
  // Opening it again changes nothing and logs nothing.
  const again = await PostgresPersistence.open(url, { log: (m) => logs.push(m) })
  await again.close()
  expect(logs).toEqual([])
})

test('a database of format 1 gets the stored-file tables and the commit log at start, with the migration lines', async () => {
  const url = await cluster.newDatabase()
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    await migrate(client as unknown as pg.PoolClient, () => {}, MIGRATIONS.slice(0, 1))
  } finally {
    await client.end()
  }
  expect(FORMAT_VERSION).toBe(5)
  const logs: string[] = []
  const p = await PostgresPersistence.open(url, { log: (m) => logs.push(m) })
  try {
    expect(logs).toEqual(['Executing migration 2/5', 'Executing migration 3/5', 'Executing migration 4/5', 'Executing migration 5/5', 'MigrationComplete(5)'])
    expect(await sql(url, "SELECT value FROM meta WHERE key = 'format_version'")).toEqual([{ value: '5' }])
    expect((await tablesOf(url)).filter((t) => t.startsWith('file_') || t === 'commits')).toEqual(['commits', 'file_blobs', 'file_chunks'])
    // The migrated database takes writes through the group function, each commit logged with its writer.
    await p.write([{ ts: 5n, documents: [{ id: 'a', tableNumber: 10001, json: '{"_id":"a"}' }], indexes: [] }], 0n)
    expect(await sql(url, 'SELECT ts, id FROM write_log')).toEqual([{ ts: '5', id: 'a' }])
    expect(await sql(url, 'SELECT ts, writer IS NOT NULL AS writer FROM commits')).toEqual([{ ts: '5', writer: true }])
  } finally {
    await p.close()
  }
})

test('a database of format 3 keeps its tables\' numbers as the numbers their ids carry', async () => {
  const url = await cluster.newDatabase()
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    await migrate(client as unknown as pg.PoolClient, () => {}, MIGRATIONS.slice(0, 3))
    await client.query("INSERT INTO tables (table_number, name) VALUES (10001, 'messages'), (10002, 'comp:notes'), (10003, '~dropped~10003')")
  } finally {
    await client.end()
  }
  const logs: string[] = []
  const p = await PostgresPersistence.open(url, { log: (m) => logs.push(m) })
  try {
    expect(logs).toEqual(['Executing migration 4/5', 'Executing migration 5/5', 'MigrationComplete(5)'])
    expect(await p.tables()).toEqual([
      { tableNumber: 10001, name: 'messages', idNumber: 10001 },
      { tableNumber: 10002, name: 'comp:notes', idNumber: 10002 },
      { tableNumber: 10003, name: '~dropped~10003', idNumber: 10003 },
    ])
  } finally {
    await p.close()
  }
})

test('an older database is migrated step by step with the same log lines as SQLite', async () => {
  const url = await cluster.newDatabase()
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const steps = ['CREATE TABLE one (x int4)', 'CREATE TABLE two (y int4)', 'ALTER TABLE one ADD COLUMN z text']
    await migrate(client as unknown as pg.PoolClient, () => {}, steps.slice(0, 1))
    const logs: string[] = []
    await migrate(client as unknown as pg.PoolClient, (m) => logs.push(m), steps)
    expect(logs).toEqual(['Executing migration 2/3', 'Executing migration 3/3', 'MigrationComplete(3)'])
    expect((await client.query("SELECT value FROM meta WHERE key = 'format_version'")).rows).toEqual([{ value: '3' }])
    expect((await client.query("SELECT column_name FROM information_schema.columns WHERE table_name = 'one' ORDER BY column_name")).rows.map((r) => r.column_name)).toEqual(['x', 'z'])
    // A failing step leaves the database at the version it had.
    await expect(migrate(client as unknown as pg.PoolClient, () => {}, [...steps, 'CREATE TABLE two (y int4)'])).rejects.toThrow('relation "two" already exists')
    expect((await client.query("SELECT value FROM meta WHERE key = 'format_version'")).rows).toEqual([{ value: '3' }])
  } finally {
    await client.end()
  }
})

test('a database of a newer format is refused untouched, with a clear message', async () => {
  const url = await cluster.newDatabase()
  await sql(url, 'CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL)')
  await sql(url, "INSERT INTO meta VALUES ('format_version', $1), ('max_ts', '77')", [String(FORMAT_VERSION + 1)])
  await expect(PostgresPersistence.open(url)).rejects.toThrow(`The Postgres database has format version ${FORMAT_VERSION + 1}, newer than this build supports (${FORMAT_VERSION}). Upgrade Concave to open it.`)
  expect(await tablesOf(url)).toEqual(['meta'])
  expect(await sql(url, 'SELECT key, value FROM meta ORDER BY key')).toEqual([
    { key: 'format_version', value: String(FORMAT_VERSION + 1) },
    { key: 'max_ts', value: '77' },
  ])
})

test('an unreachable server, a missing database or refused credentials fail with the URL (password hidden)', async () => {
  const port = new URL(cluster.url).port
  await expect(PostgresPersistence.open('postgresql://postgres:secret@127.0.0.1:1/db')).rejects.toThrow(/^Cannot connect to the Postgres database at postgresql:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/db: .*ECONNREFUSED/)
  await expect(PostgresPersistence.open(`postgresql://postgres@127.0.0.1:${port}/nope`)).rejects.toThrow(`Cannot connect to the Postgres database at postgresql://postgres@127.0.0.1:${port}/nope: database "nope" does not exist`)
  await expect(PostgresPersistence.open(`postgresql://nobody@127.0.0.1:${port}/postgres`)).rejects.toThrow(`Cannot connect to the Postgres database at postgresql://nobody@127.0.0.1:${port}/postgres: role "nobody" does not exist`)
})

test('a database that is not UTF-8 is refused', async () => {
  const name = 'latin1_db'
  await sql(cluster.url, `CREATE DATABASE ${name} TEMPLATE template0 ENCODING 'LATIN1'`)
  const url = cluster.url.replace(/\/postgres$/, `/${name}`)
  await expect(PostgresPersistence.open(url)).rejects.toThrow(`has encoding LATIN1; Concave needs UTF8`)
  expect(await tablesOf(url)).toEqual([])
})

test('int8 is read as BigInt on the store’s connections only; a failed read leaves the snapshot usable', async () => {
  const url = await cluster.newDatabase()
  const p = await PostgresPersistence.open(url)
  try {
    await p.write([{ ts: 2n ** 60n, documents: [{ id: 'a', tableNumber: 10001, json: '{"_id":"a"}' }], indexes: [] }])
    expect((await p.loadLog(0n, 2n ** 61n, 10))[0]!.ts).toBe(2n ** 60n)
    // Other pg users in the process keep pg's defaults (int8 as a string).
    expect(await sql(url, 'SELECT 5::int8 AS n')).toEqual([{ n: '5' }])
    const s = await p.snapshot()
    try {
      // A statement that fails in Postgres (a table number beyond int4) aborts its transaction...
      await expect(s.countTable(2 ** 40)).rejects.toThrow('out of range for type integer')
      // ...and the snapshot goes on reading its view.
      expect(await s.getDocument('a')).toEqual({ id: 'a', tableNumber: 10001, json: '{"_id":"a"}' })
      expect(s.ts).toBe(2n ** 60n)
    } finally {
      s.release()
    }
  } finally {
    await p.close()
  }
})

test('a write whose connection dies before it commits is WriteNotApplied; the next write goes through', async () => {
  const url = await cluster.newDatabase()
  const p = await PostgresPersistence.open(url)
  const blocker = new pg.Client({ connectionString: url })
  await blocker.connect()
  try {
    const doc = (id: string) => ({ id, tableNumber: 10001, json: `{"_id":"${id}"}` })
    await p.write([{ ts: 1n, documents: [doc('a')], indexes: [] }])
    // Hold meta's max_ts row: the write blocks on it, inside its transaction, before COMMIT.
    await blocker.query("BEGIN; SELECT * FROM meta WHERE key = 'max_ts' FOR UPDATE")
    const write = p.write([{ ts: 2n, documents: [doc('b')], indexes: [] }])
    write.catch(() => {})
    let pid: number | undefined
    for (const deadline = Date.now() + 10_000; pid === undefined && Date.now() < deadline; ) {
      // (From another connection: activity statistics are fixed for the length of a transaction.)
      const [row] = await sql<{ pid: number }>(url, "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%concave_write_group%'")
      pid = row?.pid
    }
    expect(pid).toBeTypeOf('number')
    await blocker.query('SELECT pg_terminate_backend($1)', [pid])
    await expect(write).rejects.toBeInstanceOf(WriteNotApplied)
    await blocker.query('ROLLBACK')
    expect(p.maxTs()).toBe(1n)
    await p.write([{ ts: 2n, documents: [doc('c')], indexes: [] }])
    const s = await p.snapshot()
    expect([s.ts, await s.getDocument('b'), await s.getDocument('c')]).toEqual([2n, null, doc('c')])
    s.release()
  } finally {
    await blocker.end()
    await p.close()
  }
})

/**
 * A TCP proxy to the cluster whose open connections can be cut (the client sees its connection
 * lost, not a Postgres error, and the server process goes on with its statement), and which can
 * hold new connections back until opened again.
 */
async function proxy(target: string, { ownKeys = false } = {}): Promise<{ url: string; cut: () => void; hold: (held: boolean) => void; close: () => Promise<void> }> {
  const port = Number(new URL(target).port)
  const sockets = new Set<Socket>()
  let held = false
  const waiting: (() => void)[] = []
  const server = createServer((client) => {
    const start = () => {
      const upstream = connect(port, '127.0.0.1')
      for (const s of [client, upstream]) {
        sockets.add(s)
        s.on('close', () => sockets.delete(s))
        s.on('error', () => {})
      }
      client.pipe(upstream)
      // As a pooler does, hand the client a process key of our own (BackendKeyData, 'K').
      ;(ownKeys ? upstream.pipe(ownProcessKeys()) : upstream).pipe(client)
      client.on('close', () => upstream.destroy())
      upstream.on('close', () => client.destroy())
    }
    // Paused until piped: what the client sends meanwhile waits in its buffer.
    client.pause()
    if (held) waiting.push(start)
    else start()
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const url = new URL(target)
  url.port = String((server.address() as { port: number }).port)
  return {
    url: url.toString(),
    cut: () => {
      for (const s of sockets) s.destroy()
    },
    hold: (h) => {
      held = h
      if (!h) for (const start of waiting.splice(0)) start()
    },
    close: () => new Promise((r) => server.close(() => r())),
  }
}

/** The server's messages, with the pid in BackendKeyData replaced by one no server process has. */
function ownProcessKeys(): Transform {
  let pending = Buffer.alloc(0)
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      pending = Buffer.concat([pending, chunk])
      let at = 0
      while (pending.length - at >= 5) {
        const length = pending.readUInt32BE(at + 1)
        if (pending.length - at < 1 + length) break
        if (pending[at] === 0x4b) pending.writeInt32BE(0x7fff0000 + (pending.readInt32BE(at + 5) & 0xffff), at + 5)
        at += 1 + length
      }
      this.push(pending.subarray(0, at))
      pending = pending.subarray(at)
      done()
    },
  })
}

test.each([
  ['straight to the server', false],
  ['through a pooler that hands out its own process keys', true],
])('a write whose connection is lost mid-call is found out (%s): applied if it committed, WriteNotApplied if not', async (_how, ownKeys) => {
  const url = await cluster.newDatabase()
  const through = await proxy(url, { ownKeys })
  const p = await PostgresPersistence.open(through.url)
  const blocker = new pg.Client({ connectionString: url })
  await blocker.connect()
  const doc = (id: string) => ({ id, tableNumber: 10001, json: `{"_id":"${id}"}` })
  const blockedWrite = async (ts: bigint, id: string) => {
    await blocker.query("BEGIN; SELECT * FROM meta WHERE key = 'max_ts' FOR UPDATE")
    const write = p.write([{ ts, documents: [doc(id)], indexes: [] }], ts - 1n)
    write.catch(() => {})
    for (const deadline = Date.now() + 10_000; ; ) {
      const [row] = await sql<{ pid: number }>(url, "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%concave_write_group%'")
      if (row !== undefined) return { write, pid: row.pid }
      if (Date.now() > deadline) throw new Error('the write never waited on the lock')
    }
  }
  try {
    await p.write([{ ts: 1n, documents: [doc('a')], indexes: [] }], 0n)
    // Lost, and the server process still waiting: it is ended, nothing lands.
    const lost = await blockedWrite(2n, 'b')
    through.cut()
    await expect(lost.write).rejects.toBeInstanceOf(WriteNotApplied)
    expect(await sql(url, 'SELECT 1 FROM pg_stat_activity WHERE pid = $1', [lost.pid])).toEqual([])
    await blocker.query('ROLLBACK')
    expect(p.maxTs()).toBe(1n)
    // Lost, but the server process goes on and commits before the check can connect: applied.
    const landed = await blockedWrite(2n, 'c')
    through.hold(true)
    through.cut()
    await blocker.query('ROLLBACK')
    for (const deadline = Date.now() + 10_000; (await sql(url, 'SELECT 1 FROM commits WHERE ts = 2')).length === 0; ) {
      if (Date.now() > deadline) throw new Error('the lost write never committed')
    }
    through.hold(false)
    await landed.write
    expect(p.maxTs()).toBe(2n)
    await p.write([{ ts: 3n, documents: [doc('d')], indexes: [] }], 2n)
    expect(await sql(url, 'SELECT id FROM documents ORDER BY id')).toEqual([{ id: 'a' }, { id: 'c' }, { id: 'd' }])
  } finally {
    await blocker.end()
    await p.close()
    await through.close()
  }
})

test('a lost write is not taken for applied when another process committed at the same ts meanwhile', async () => {
  const url = await cluster.newDatabase()
  const through = await proxy(url)
  const p = await PostgresPersistence.open(through.url)
  const other = await PostgresPersistence.open(url)
  const blocker = new pg.Client({ connectionString: url })
  await blocker.connect()
  const doc = (id: string) => ({ id, tableNumber: 10001, json: `{"_id":"${id}"}` })
  try {
    await p.write([{ ts: 1n, documents: [doc('a')], indexes: [] }], 0n)
    await blocker.query("BEGIN; SELECT * FROM meta WHERE key = 'max_ts' FOR UPDATE")
    const lost = p.write([{ ts: 2n, documents: [doc('b')], indexes: [] }], 1n)
    lost.catch(() => {})
    let pid: number | undefined
    for (const deadline = Date.now() + 10_000; pid === undefined; ) {
      const [row] = await sql<{ pid: number }>(url, "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%concave_write_group%'")
      pid = row?.pid
      if (pid === undefined && Date.now() > deadline) throw new Error('the write never waited on the lock')
    }
    // Its connection is lost (and the check held back); its server process ends without
    // committing, and another process commits its own group at the same timestamp (timestamps
    // are clock-based: two processes can pick the same one).
    through.hold(true)
    through.cut()
    await blocker.query('SELECT pg_terminate_backend($1)', [pid])
    for (const deadline = Date.now() + 10_000; (await sql(url, 'SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).length > 0; ) {
      if (Date.now() > deadline) throw new Error('the server process never ended')
    }
    await blocker.query('ROLLBACK')
    await other.write([{ ts: 2n, documents: [doc('x')], indexes: [] }], 1n)
    through.hold(false)
    await expect(lost).rejects.toBeInstanceOf(WriteNotApplied)
    expect(p.maxTs()).toBe(1n)
    expect(await sql(url, 'SELECT id FROM documents ORDER BY id')).toEqual([{ id: 'a' }, { id: 'x' }])
  } finally {
    await blocker.end()
    await p.close()
    await other.close()
    await through.close()
  }
})
