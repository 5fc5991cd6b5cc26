/**
 * @module PostgresPersistence: the store in a Postgres database, through a pool of `pg` connections.
 *
 * The layout is SQLite's (see migrations.ts): documents, index entries (bytea keys, compared as
 * bytes), the write log, the catalog, and search and vector entries in plain tables (no extension
 * needed). `meta.max_ts` is bumped inside every commit's transaction, so a snapshot knows exactly
 * which commit it sees.
 *
 * - A snapshot is a pooled connection holding a REPEATABLE READ READ ONLY transaction, whose view
 *   is taken by a first query before `snapshot()` resolves; it holds that connection (and the
 *   oldest row versions Postgres may not vacuum yet) until released.
 * - `write` runs one transaction for the whole group; it is durable when COMMIT returns (keep
 *   `synchronous_commit` on, its default). A failure before COMMIT was sent, or an error Postgres
 *   returned for the COMMIT itself, leaves nothing applied (`WriteNotApplied`); a connection lost
 *   during COMMIT leaves the outcome unknown, and the error is thrown as it is.
 * - Catalog calls and log reads run on their own pooled connection, on the latest committed state.
 * - No `quiescentMaintenance`: Postgres needs no pause of every reader (VACUUM runs alongside).
 * - int8 columns are read as BigInt (never Number), on this pool's connections only.
 */
import pg from 'pg'
import type { Pool, PoolClient, QueryResultRow } from 'pg'
import { createHash } from 'node:crypto'
import type {
  CommitRecord,
  DocumentWrite,
  HistoryPruning,
  IndexRecord,
  IndexRow,
  IndexWrite,
  KeyInterval,
  Lease,
  LogEntry,
  LoggedCommit,
  ModuleRecord,
  Order,
  Persistence,
  SearchIndexConfig,
  SearchQuery,
  SearchResult,
  SearchWrite,
  SharedStore,
  Snapshot,
  StoredDocument,
  TableRecord,
  TouchedKey,
  VectorHit,
  VectorIndexConfig,
  VectorQuery,
  VectorWrite,
} from '../persistence.ts'
import { StaleWrite, WriteNotApplied } from '../persistence.ts'
import { boolArray, byteaArray, int4Array, int8Array, textArray } from './binary-arrays.ts'
import { migrate } from './migrations.ts'
import { PostgresBlobStore } from './postgres-blob-store.ts'
import { inTransaction, inTransactionOn } from './transaction.ts'

const INT8_OID = 20
/** Type parsers of this store's connections: int8 as BigInt, the rest as `pg` parses them. */
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === INT8_OID && format !== 'binary' ? (v: string) => BigInt(v) : pg.types.getTypeParser(oid, format as 'text'))) as typeof pg.types.getTypeParser,
}

/** Index keys up to this many bytes are stored whole in `key_prefix` (see migrations.ts). */
const KEY_PREFIX_BYTES = 2048
const EMPTY = Buffer.alloc(0)

interface StoredKey {
  readonly prefix: Buffer
  readonly sha256: Buffer
  readonly suffix: Buffer | null
}
function splitKey(key: Buffer): StoredKey {
  if (key.length <= KEY_PREFIX_BYTES) return { prefix: key, sha256: EMPTY, suffix: null }
  return { prefix: key.subarray(0, KEY_PREFIX_BYTES), sha256: createHash('sha256').update(key).digest(), suffix: key.subarray(KEY_PREFIX_BYTES) }
}

/** Above every UTF-8 string that starts with a given prefix, when appended to it. */
const PREFIX_END = '\u{10FFFF}'
/** BM25's parameters, for picking the best `limit` matches (ranking proper is done above the store). */
const K1 = 1.2
const B = 0.75

/** The `meta` keys the store keeps for itself; the rest are the globals (see `globals`). */
const STORE_KEYS = ['format_version', 'max_ts', 'history_horizon', 'history_cursor', 'commits_horizon']

/** The URL with its password hidden, for messages. */
export function redact(url: string): string {
  try {
    const u = new URL(url)
    if (u.password !== '') u.password = '***'
    return u.toString()
  } catch {
    return '(unparseable URL)'
  }
}

type Queryable = Pick<PoolClient, 'query'>

async function rows<R extends QueryResultRow>(db: Queryable, text: string, values: unknown[] = [], name?: string): Promise<R[]> {
  return (await db.query<R>(name === undefined ? { text, values } : { name, text, values })).rows
}

/** The scan statement for an order and whether the interval is bounded above. */
function scanSql(order: Order, closed: boolean): string {
  const hi = closed ? " AND e.key_prefix <= $4 AND (e.key_prefix <> $4 OR coalesce(e.key_suffix, ''::bytea) < $5)" : ''
  const orderBy = order === 'asc' ? 'e.key_prefix ASC, e.key_suffix ASC NULLS FIRST' : 'e.key_prefix DESC, e.key_suffix DESC NULLS LAST'
  return `SELECT e.key_prefix, e.key_suffix, d.id, d.table_number, d.json FROM index_entries e JOIN documents d ON d.id = e.id
    WHERE e.index_id = $1 AND e.key_prefix >= $2 AND (e.key_prefix <> $2 OR coalesce(e.key_suffix, ''::bytea) >= $3)${hi}
    ORDER BY ${orderBy} LIMIT ${closed ? '$6' : '$4'}`
}
const SCANS = {
  'asc:open': scanSql('asc', false),
  'asc:closed': scanSql('asc', true),
  'desc:open': scanSql('desc', false),
  'desc:closed': scanSql('desc', true),
}

class PostgresSnapshot implements Snapshot {
  #released = false
  /** The connection runs one query at a time: calls made together wait their turn here. */
  #queue: Promise<unknown> = Promise.resolve()
  constructor(
    readonly ts: bigint,
    readonly client: PoolClient,
  ) {}

  #turn<R>(body: () => Promise<R>): Promise<R> {
    if (this.#released) return Promise.reject(new Error('The snapshot was released'))
    const result = this.#queue.then(body).catch(async (e: unknown) => {
      // A failed statement aborts the transaction: back to the savepoint taken with the view,
      // which keeps the view (a REPEATABLE READ snapshot lasts the whole transaction).
      if (e instanceof pg.DatabaseError) await this.client.query('ROLLBACK TO SAVEPOINT view').catch(() => {})
      throw e
    })
    this.#queue = result.catch(() => {})
    return result
  }

  getDocument(id: string): Promise<StoredDocument | null> {
    return this.#turn(() => this.#getDocument(id))
  }

  async #getDocument(id: string): Promise<StoredDocument | null> {
    const [row] = await rows<{ table_number: number; json: string }>(this.client, 'SELECT table_number, json FROM documents WHERE id = $1', [id], 'get_document')
    return row === undefined ? null : { id, tableNumber: row.table_number, json: row.json }
  }

  scan(indexId: number, interval: KeyInterval, order: Order, limit: number): Promise<IndexRow[]> {
    return this.#turn(() => this.#scan(indexId, interval, order, limit))
  }

  async #scan(indexId: number, interval: KeyInterval, order: Order, limit: number): Promise<IndexRow[]> {
    const lo = splitKey(interval.lo)
    const values: unknown[] = [indexId, lo.prefix, lo.suffix ?? EMPTY]
    if (interval.hi !== null) {
      const hi = splitKey(interval.hi)
      values.push(hi.prefix, hi.suffix ?? EMPTY)
    }
    values.push(Math.max(0, Math.trunc(limit)))
    const which = `${order}:${interval.hi === null ? 'open' : 'closed'}` as const
    const result = await rows<{ key_prefix: Buffer; key_suffix: Buffer | null; id: string; table_number: number; json: string }>(this.client, SCANS[which], values, `scan_${which}`)
    return result.map((r) => ({ key: r.key_suffix === null ? r.key_prefix : Buffer.concat([r.key_prefix, r.key_suffix]), doc: { id: r.id, tableNumber: r.table_number, json: r.json } }))
  }

  countTable(tableNumber: number): Promise<number> {
    return this.#turn(() => this.#countTable(tableNumber))
  }

  async #countTable(tableNumber: number): Promise<number> {
    const [row] = await rows<{ n: bigint }>(this.client, 'SELECT count(*) AS n FROM documents WHERE table_number = $1', [tableNumber], 'count_table')
    return Number(row!.n)
  }

  search(indexId: number, query: SearchQuery): Promise<SearchResult> {
    return this.#turn(() => this.#search(indexId, query))
  }

  async #search(indexId: number, query: SearchQuery): Promise<SearchResult> {
    const db = this.client
    const [stats] = await rows<{ documents: bigint; terms: bigint }>(db, 'SELECT documents, terms FROM search_stats WHERE index_id = $1', [indexId])
    const documentCount = Number(stats?.documents ?? 0n)
    const termCount = Number(stats?.terms ?? 0n)
    const prefixTerms: string[] = []
    if (query.prefix !== null && query.maxPrefixTerms > 0) {
      const found = await rows<{ term: string }>(db, 'SELECT term FROM search_vocab WHERE index_id = $1 AND term >= $2 AND term < $3 ORDER BY term LIMIT $4', [indexId, query.prefix, query.prefix + PREFIX_END, Math.trunc(query.maxPrefixTerms)])
      for (const { term } of found) if (term.startsWith(query.prefix)) prefixTerms.push(term)
    }
    const documentFrequency = new Map<string, number>()
    for (const term of [...query.terms, ...prefixTerms]) documentFrequency.set(term, 0)
    if (documentFrequency.size > 0) {
      for (const r of await rows<{ term: string; documents: bigint }>(db, 'SELECT term, documents FROM search_vocab WHERE index_id = $1 AND term = ANY($2::text[])', [indexId, [...documentFrequency.keys()]])) {
        documentFrequency.set(r.term, Number(r.documents))
      }
    }
    const matchable = [...documentFrequency].filter(([, n]) => n > 0)
    let documents: StoredDocument[] = []
    if (matchable.length > 0 && query.limit > 0) {
      const idf = matchable.map(([, n]) => Math.log(1 + (documentCount - n + 0.5) / (n + 0.5)))
      const averageLength = Math.max(termCount / Math.max(documentCount, 1), 1e-9)
      const values: unknown[] = [indexId, matchable.map(([t]) => t), idf, averageLength, Math.trunc(query.limit)]
      const filters = query.filters.map((f) => {
        values.push(f.key)
        return ` AND e.filter_keys[${Math.trunc(f.field) + 1}] = $${values.length}`
      })
      const found = await rows<{ id: string; table_number: number; json: string }>(
        db,
        `SELECT d.id, d.table_number, d.json FROM (
           SELECT p.id, sum(q.idf * p.count * ${K1 + 1} / (p.count + ${K1} * (${1 - B} + ${B} * e.length / $4::float8))) AS score, max(e.entry) AS entry
           FROM unnest($2::text[], $3::float8[]) AS q(term, idf)
           JOIN search_postings p ON p.index_id = $1 AND p.term = q.term
           JOIN search_entries e ON e.index_id = $1 AND e.id = p.id
           WHERE true${filters.join('')}
           GROUP BY p.id ORDER BY score DESC, entry DESC LIMIT $5
         ) m JOIN documents d ON d.id = m.id ORDER BY m.score DESC, m.entry DESC`,
        values,
      )
      documents = found.map((r) => ({ id: r.id, tableNumber: r.table_number, json: r.json }))
    }
    return { prefixTerms, documentCount, termCount, documentFrequency, documents }
  }

  vectorSearch(indexId: number, query: VectorQuery): Promise<VectorHit[]> {
    return this.#turn(() => this.#vectorSearch(indexId, query))
  }

  async #vectorSearch(indexId: number, query: VectorQuery): Promise<VectorHit[]> {
    if (query.limit <= 0) return []
    const vector = Array.from(query.vector)
    const values: unknown[] = [indexId, vector, norm(query.vector), Math.trunc(query.limit)]
    const filters = query.filters.map((f) => {
      values.push([...f.keys])
      return `filter_keys[${Math.trunc(f.field) + 1}] = ANY($${values.length}::text[])`
    })
    // A zero vector (stored or queried) scores 0 against everything, as in Convex.
    const hits = await rows<{ id: string; score: number }>(
      this.client,
      `SELECT id, CASE WHEN norm = 0 OR $3::float8 = 0 THEN 0::float8
         ELSE (SELECT sum(a::float8 * b::float8) FROM unnest(vector, $2::float4[]) AS t(a, b)) / (norm * $3::float8) END AS score
       FROM vector_entries WHERE index_id = $1${filters.length === 0 ? '' : ` AND (${filters.join(' OR ')})`}
       ORDER BY score DESC LIMIT $4`,
      values,
    )
    return hits.map((h) => ({ id: h.id, score: Math.fround(h.score) }))
  }

  release(): void {
    if (this.#released) return
    this.#released = true
    const client = this.client
    void this.#queue.then(() => client.query('ROLLBACK')).then(
      () => client.release(),
      (e: Error) => client.release(e),
    )
  }
}

/** A vector's Euclidean norm, over its 32-bit values. */
function norm(vector: Float32Array): number {
  let sum = 0
  for (const x of vector) sum += x * x
  return Math.sqrt(sum)
}

export interface PostgresOptions {
  /** Receives the migration log lines (`Executing migration N/M`, `MigrationComplete(M)`). */
  readonly log?: (message: string) => void
  /** Connections in the pool (each held snapshot holds one): 32 unless given. */
  readonly maxConnections?: number
}

/**
 * Every commit of every process takes this transaction-level advisory lock (a write hold takes it
 * for its session): commits are serialized in the database.
 */
const COMMIT_LOCK = '18930012618022501'
/** The channel new commits are announced on (the payload is the last commit's ts). */
const NOTICE_CHANNEL = 'concave_commits'
/** How long a lost notice or lease connection waits before connecting again, and a free lease is polled. */
const RECONNECT_MS = 1000
/** How often a held lease's connection is checked (it is given up after two periods of silence). */
const HEARTBEAT_MS = 5000

/** A commit's touched keys as one bytea: per key its index id (u32), length (u32) and bytes. */
function encodeTouched(keys: readonly TouchedKey[]): Buffer {
  let size = 0
  for (const k of keys) size += 8 + k.key.length
  const out = Buffer.allocUnsafe(size)
  let at = 0
  for (const k of keys) {
    out.writeUInt32BE(k.indexId, at)
    out.writeUInt32BE(k.key.length, at + 4)
    k.key.copy(out, at + 8)
    at += 8 + k.key.length
  }
  return out
}

function decodeTouched(b: Buffer): TouchedKey[] {
  const out: TouchedKey[] = []
  for (let at = 0; at < b.length; ) {
    const length = b.readUInt32BE(at + 4)
    out.push({ indexId: b.readUInt32BE(at), key: Buffer.from(b.subarray(at + 8, at + 8 + length)) })
    at += 8 + length
  }
  return out
}

/**
 * Logged commits after `afterTs`, oldest first (at most `limit`; all of them without). When the
 * log no longer reaches back to `afterTs` (pruned below `commits_horizon`, which only a process
 * that was cut off for longer than the history retention can meet), the answer is one commit at
 * the latest timestamp that marks everything changed: catalog, push, and a conflict with every
 * older transaction.
 */
async function loadCommits(db: Queryable, afterTs: bigint, limit?: number): Promise<LoggedCommit[]> {
  const meta = new Map((await rows<{ key: string; value: string }>(db, "SELECT key, value FROM meta WHERE key IN ('commits_horizon', 'max_ts')", [], 'commit_meta')).map((r) => [r.key, BigInt(r.value)]))
  if (afterTs < (meta.get('commits_horizon') ?? 0n)) return [{ ts: meta.get('max_ts') ?? 0n, touched: [], catalog: true, push: true }]
  const result = await rows<{ ts: bigint; touched: Buffer; catalog: boolean; push: boolean }>(
    db,
    `SELECT ts, touched, catalog, push FROM commits WHERE ts > $1 ORDER BY ts${limit === undefined ? '' : ' LIMIT $2'}`,
    limit === undefined ? [String(afterTs)] : [String(afterTs), Math.max(0, Math.trunc(limit))],
    limit === undefined ? 'load_all_commits' : 'load_commits',
  )
  return result.map((r) => ({ ts: r.ts, touched: decodeTouched(r.touched), catalog: r.catalog, push: r.push }))
}

/** The lease key of a name: the first 8 bytes of its SHA-256, as a signed int8. */
function leaseKey(name: string): string {
  return createHash('sha256').update(`concave-lease:${name}`).digest().readBigInt64BE(0).toString()
}

/**
 * A connection of its own (not the pool's) that `setup` prepares, made again RECONNECT_MS after
 * it is lost, until closed. `lost` is called when it goes.
 */
class KeptConnection {
  #client: pg.Client | null = null
  #closed = false
  #timer: NodeJS.Timeout | null = null

  constructor(
    readonly url: string,
    readonly setup: (client: pg.Client) => Promise<void>,
    readonly lost: () => void,
  ) {
    void this.#connect()
  }

  get client(): pg.Client | null {
    return this.#client
  }

  async #connect(): Promise<void> {
    if (this.#closed) return
    // A connection whose peer vanished (a host gone, a network cut) is noticed within about
    // 20 s from either side, rather than the operating system's hours: a lease held through it
    // is then given up here and released by the server.
    const client = new pg.Client({ connectionString: this.url, types, keepAlive: true, keepAliveInitialDelayMillis: 5000 })
    let gone = false
    const onGone = () => {
      if (gone) return
      gone = true
      if (this.#client === client) {
        this.#client = null
        this.lost()
      }
      void client.end().catch(() => {})
      this.#retry()
    }
    client.on('error', onGone)
    client.on('end', onGone)
    try {
      await client.connect()
      if (this.#closed) {
        await client.end().catch(() => {})
        return
      }
      this.#client = client
      await client.query('SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3')
      await this.setup(client)
    } catch {
      onGone()
    }
  }

  #retry(): void {
    if (this.#closed || this.#timer !== null) return
    this.#timer = setTimeout(() => {
      this.#timer = null
      void this.#connect()
    }, RECONNECT_MS)
    this.#timer.unref()
  }

  async close(): Promise<void> {
    this.#closed = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    const client = this.#client
    this.#client = null
    await client?.end().catch(() => {})
  }
}

/** A lease held through a session advisory lock on a kept connection (dropped with the connection). */
class PostgresLease implements Lease {
  #held = false
  readonly #listeners: ((held: boolean) => void)[] = []
  readonly #connection: KeptConnection
  #poll: NodeJS.Timeout | null = null
  #closed = false

  constructor(url: string, name: string) {
    const key = leaseKey(name)
    this.#connection = new KeptConnection(
      url,
      async (client) => {
        const attempt = async (): Promise<void> => {
          this.#poll = null
          if (this.#closed || this.#connection.client !== client) return
          try {
            const [row] = await rows<{ held: boolean }>(client, 'SELECT pg_try_advisory_lock($1) AS held', [key])
            if (row?.held === true) {
              this.#set(true)
              this.#poll = setTimeout(() => void heartbeat(), HEARTBEAT_MS)
              this.#poll.unref()
              return
            }
          } catch {
            return // the connection is going: `lost` follows
          }
          this.#poll = setTimeout(() => void attempt(), RECONNECT_MS)
          this.#poll.unref()
        }
        // While held, the connection is checked: one that stops answering (the server may have
        // given the lock to another process by then) is dropped, and the lease with it.
        const heartbeat = async (): Promise<void> => {
          this.#poll = null
          if (this.#closed || this.#connection.client !== client) return
          const silent = setTimeout(() => client.emit('error', new Error('The lease connection stopped answering')), HEARTBEAT_MS * 2)
          try {
            await client.query('SELECT 1')
          } catch {
            return
          } finally {
            clearTimeout(silent)
          }
          this.#poll = setTimeout(() => void heartbeat(), HEARTBEAT_MS)
          this.#poll.unref()
        }
        await attempt()
      },
      () => this.#set(false),
    )
  }

  get held(): boolean {
    return this.#held
  }

  #set(held: boolean): void {
    if (this.#held === held) return
    this.#held = held
    for (const l of this.#listeners) l(held)
  }

  onChange(listener: (held: boolean) => void): void {
    this.#listeners.push(listener)
  }

  async close(): Promise<void> {
    this.#closed = true
    if (this.#poll !== null) clearTimeout(this.#poll)
    this.#set(false)
    await this.#connection.close()
  }
}

/** Each pooled connection's server process id (see `open`), for `#landed`. */
const serverPids = new WeakMap<pg.ClientBase, Promise<number | null>>()

export class PostgresPersistence implements Persistence {
  readonly #pool: Pool
  #maxTs: bigint
  #horizon: bigint
  #pruned: { ts: bigint; id: string }

  readonly #url: string

  private constructor(pool: Pool, url: string, meta: Map<string, string>) {
    this.#pool = pool
    this.#url = url
    this.#maxTs = BigInt(meta.get('max_ts') ?? '0')
    this.#horizon = BigInt(meta.get('history_horizon') ?? '0')
    const cursor = /^(\d+) (.*)$/s.exec(meta.get('history_cursor') ?? '')
    this.#pruned = cursor === null ? { ts: 0n, id: '' } : { ts: BigInt(cursor[1]!), id: cursor[2]! }
  }

  /**
   * Connects to the database at `url` and creates or migrates its tables. Fails with a clear
   * message when the database can't be reached, refuses the credentials, is not UTF-8, or was
   * written by a newer build (left untouched).
   */
  static async open(url: string, options: PostgresOptions = {}): Promise<PostgresPersistence> {
    // The server process behind each new connection, asked of the server (a pooler in session mode,
    // PgBouncer or Supavisor, hands the client its own process key, not the server's pid). The
    // pool hands the connection out once that is answered: a connection runs one query at a time.
    const onConnect = (client: pg.ClientBase): Promise<number | null> => {
      const pid = client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid').then((r) => r.rows[0]!.pid, () => null)
      serverPids.set(client, pid)
      return pid
    }
    const pool = new pg.Pool({ connectionString: url, types, max: options.maxConnections ?? 32, onConnect: onConnect as (client: pg.ClientBase) => void })
    // An idle connection that breaks is dropped by the pool; the next query opens another.
    pool.on('error', () => {})
    // A connection that breaks while in use (server restart, network) fails its query; the error
    // it also emits must not go unhandled and take the process down.
    pool.on('connect', (client) => void client.on('error', () => {}))
    let client: PoolClient
    try {
      client = await pool.connect()
    } catch (e) {
      await pool.end().catch(() => {})
      throw new Error(`Cannot connect to the Postgres database at ${redact(url)}: ${(e as Error).message}`, { cause: e })
    }
    try {
      const [encoding] = await rows<{ server_encoding: string }>(client, 'SHOW server_encoding')
      if (encoding?.server_encoding !== 'UTF8') throw new Error(`The Postgres database at ${redact(url)} has encoding ${encoding?.server_encoding}; Concave needs UTF8 (CREATE DATABASE ... ENCODING 'UTF8').`)
      await migrate(client, options.log ?? (() => {}))
      const meta = new Map((await rows<{ key: string; value: string }>(client, "SELECT key, value FROM meta WHERE key IN ('max_ts', 'history_horizon', 'history_cursor')")).map((r) => [r.key, r.value]))
      client.release()
      return new PostgresPersistence(pool, url, meta)
    } catch (e) {
      client.release()
      await pool.end().catch(() => {})
      throw e
    }
  }

  /**
   * What the database at `url` holds in the schema a store there would use, read without
   * creating or changing anything: how many tables (and views) of any kind, and whether it has a
   * store's `meta` table.
   */
  static async inspect(url: string): Promise<{ tables: number; store: boolean }> {
    const client = new pg.Client({ connectionString: url })
    client.on('error', () => {})
    try {
      await client.connect()
    } catch (e) {
      await client.end().catch(() => {})
      throw new Error(`Cannot connect to the Postgres database at ${redact(url)}: ${(e as Error).message}`, { cause: e })
    }
    try {
      const [row] = await rows<{ tables: number; store: boolean }>(
        client,
        "SELECT (SELECT count(*)::int FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'f')) AS tables, to_regclass('meta') IS NOT NULL AS store",
      )
      return row!
    } finally {
      await client.end().catch(() => {})
    }
  }

  /** A store of file bytes in this database, on this store's pool (see postgres-blob-store.ts). */
  blobStore(): PostgresBlobStore {
    return new PostgresBlobStore(this.#pool)
  }

  maxTs(): bigint {
    return this.#maxTs
  }

  async snapshot(): Promise<Snapshot> {
    const client = await this.#pool.connect()
    try {
      // One round trip: the SELECT takes the transaction's view (the savepoint: see #turn).
      const results = (await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT value FROM meta WHERE key = 'max_ts'; SAVEPOINT view")) as unknown as { rows: { value: string }[] }[]
      const ts = BigInt(results[1]!.rows[0]?.value ?? '0')
      return new PostgresSnapshot(ts, client)
    } catch (e) {
      client.release(e as Error)
      throw e
    }
  }

  /** Runs `body` in one transaction on a pooled connection. */
  #transaction<R>(body: (db: PoolClient) => Promise<R>): Promise<R> {
    return inTransaction(this.#pool, body)
  }

  async write(commits: readonly CommitRecord[], expectedTs?: bigint): Promise<void> {
    if (commits.length === 0) return
    const last = commits[commits.length - 1]!.ts
    let client: PoolClient
    try {
      client = await this.#pool.connect()
    } catch (e) {
      throw new WriteNotApplied(e)
    }
    if (plainGroup(commits)) return this.#writeGroup(client, commits, expectedTs)
    let committing = false
    try {
      // One round trip: the commit lock (every process's commits in turn), then the latest commit.
      const begun = (await client.query(`BEGIN; SELECT pg_advisory_xact_lock(${COMMIT_LOCK}); SELECT value FROM meta WHERE key = 'max_ts'`)) as unknown as { rows: { value: string }[] }[]
      const current = BigInt(begun[2]!.rows[0]?.value ?? '0')
      if (expectedTs !== undefined && current !== expectedTs) {
        // Another process committed since: nothing is written; the caller catches up and decides again.
        const foreign = await loadCommits(client, expectedTs)
        await client.query('ROLLBACK')
        client.release()
        if (foreign.length > 0) this.#advance(foreign[foreign.length - 1]!.ts)
        throw new StaleWrite(foreign)
      }
      await writeCommits(client, commits)
      committing = true
      await client.query('COMMIT')
    } catch (e) {
      if (e instanceof StaleWrite) throw e
      // Lost while COMMIT was under way: whether it was applied is found out (see #writeGroup).
      if (committing && !statementFailed(e)) {
        const pid = serverPids.get(client) ?? null
        client.release(e as Error)
        const landed = await this.#landed(pid, last).catch(() => null)
        if (landed === false) throw new WriteNotApplied(e)
        if (landed !== true) throw e
        this.#advance(last)
        return
      }
      let broken: Error | undefined
      if (!committing) await client.query('ROLLBACK').catch((r: Error) => (broken = r))
      client.release(broken)
      throw new WriteNotApplied(e)
    }
    client.release()
    // Only now durable: `maxTs()` never names a commit a crash could still lose.
    this.#advance(last)
  }

  /**
   * A plain group (documents and index entries) in one round trip: `concave_write_group` is its
   * own transaction. It answers null once applied, or the latest ts when another process
   * committed since `expectedTs` (nothing applied: the commits missed are read for StaleWrite).
   */
  async #writeGroup(client: PoolClient, commits: readonly CommitRecord[], expectedTs: bigint | undefined): Promise<void> {
    let latest: string | null
    try {
      latest = (await client.query<{ latest: string | null }>({ ...WRITE_GROUP, values: groupArguments(commits, expectedTs) })).rows[0]!.latest
    } catch (e) {
      // A statement that failed rolled its transaction back (the connection is not reused: the
      // error may have ended it, as an administrator's termination does).
      if (statementFailed(e)) {
        client.release(e as Error)
        throw new WriteNotApplied(e)
      }
      // A connection lost during the call, or a FATAL error: whether it committed is found out
      // (or, if that can't be, the error stands and the committer stops writing).
      const pid = serverPids.get(client) ?? null
      client.release(e as Error)
      const last = commits[commits.length - 1]!.ts
      const landed = await this.#landed(pid, last).catch(() => null)
      if (landed === false) throw new WriteNotApplied(e)
      if (landed !== true) throw e
      this.#advance(last)
      return
    }
    if (latest !== null) {
      let foreign: LoggedCommit[]
      try {
        foreign = await loadCommits(client, expectedTs!)
      } catch (e) {
        client.release(e as Error)
        throw new WriteNotApplied(e)
      }
      client.release()
      if (foreign.length > 0) this.#advance(foreign[foreign.length - 1]!.ts)
      throw new StaleWrite(foreign)
    }
    client.release()
    // Only now durable: `maxTs()` never names a commit a crash could still lose.
    this.#advance(commits[commits.length - 1]!.ts)
  }

  /**
   * Whether the group whose last commit is `ts`, sent on a lost connection served by server
   * process `serverPid`, committed: that process is ended first (ending it aborts a transaction
   * not yet committed), then the commit log says (a commit at `ts` written by that process:
   * timestamps are clock-based, so another process may have committed one at `ts` too). Null
   * when the connection's server process was never known.
   */
  async #landed(serverPid: Promise<number | null> | null, ts: bigint): Promise<boolean | null> {
    const pid = await serverPid
    if (pid == null) return null
    const client = await this.#pool.connect()
    try {
      await client.query('SELECT pg_terminate_backend($1)', [pid])
      for (const deadline = Date.now() + 10_000; ; ) {
        const { rows: alive } = await client.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])
        if (alive.length === 0) break
        if (Date.now() > deadline) throw new Error(`server process ${pid} did not end`)
        await new Promise((r) => setTimeout(r, 20))
      }
      // Its own commit: another process may have committed at the same timestamp meanwhile.
      return (await client.query('SELECT 1 FROM commits WHERE ts = $1 AND writer = $2', [String(ts), pid])).rows.length > 0
    } finally {
      client.release()
    }
  }

  #advance(ts: bigint): void {
    if (ts > this.#maxTs) this.#maxTs = ts
  }

  readonly keepsIdleSnapshots = true

  readonly shared: SharedStore = {
    latestTs: async () => {
      const [row] = await rows<{ value: string }>(this.#pool, "SELECT value FROM meta WHERE key = 'max_ts'", [], 'latest_ts')
      return BigInt(row?.value ?? '0')
    },
    commitsAfter: async (afterTs, limit) => {
      const found = await loadCommits(this.#pool, afterTs, limit)
      if (found.length > 0) this.#advance(found[found.length - 1]!.ts)
      // The lease holder prunes history: the horizon moves under every process.
      const [horizon] = await rows<{ value: string }>(this.#pool, "SELECT value FROM meta WHERE key = 'history_horizon'", [], 'history_horizon')
      if (horizon !== undefined && BigInt(horizon.value) > this.#horizon) this.#horizon = BigInt(horizon.value)
      return found
    },
    holdWrites: async (knownTs) => {
      const client = await this.#pool.connect()
      try {
        await client.query(`SELECT pg_advisory_lock(${COMMIT_LOCK})`)
        const foreign = await loadCommits(client, knownTs)
        if (foreign.length > 0) this.#advance(foreign[foreign.length - 1]!.ts)
        let released = false
        return {
          foreign,
          write: async (commits) => {
            if (commits.length === 0) return
            // The lock is held by this connection's session: no other process writes meanwhile.
            try {
              await inTransactionOn(client, (db) => writeCommits(db, commits))
            } catch (e) {
              throw new WriteNotApplied(e)
            }
            this.#advance(commits[commits.length - 1]!.ts)
          },
          release: async (marker) => {
            if (released) return
            released = true
            try {
              if (marker !== null) {
                await inTransactionOn(client, (db) => logCommits(db, [{ ts: marker.ts, touched: marker.touched ?? [], catalog: marker.catalog, push: marker.push }]))
                this.#advance(marker.ts)
              }
              await client.query(`SELECT pg_advisory_unlock(${COMMIT_LOCK})`)
              client.release()
            } catch (e) {
              // The lock goes with the connection.
              client.release(e as Error)
              throw e
            }
          },
        }
      } catch (e) {
        client.release(e as Error)
        throw e
      }
    },
    onNotice: (listener) => {
      this.#kept.push(
        new KeptConnection(
          this.#url,
          async (client) => {
            client.on('notification', (n) => listener(/^\d+$/.test(n.payload ?? '') ? BigInt(n.payload!) : null))
            await client.query(`LISTEN ${NOTICE_CHANNEL}`)
            // Commits may have landed while no one was listening.
            listener(null)
          },
          () => {},
        ),
      )
    },
    lease: (name) => {
      const lease = new PostgresLease(this.#url, name)
      this.#leases.push(lease)
      return lease
    },
  }

  readonly #kept: KeptConnection[] = []
  readonly #leases: PostgresLease[] = []

  async loadLog(afterTs: bigint, upToTs: bigint, limit: number): Promise<LogEntry[]> {
    const result = await rows<{ ts: bigint; id: string; table_number: number; json: string | null }>(this.#pool, 'SELECT ts, id, table_number, json FROM write_log WHERE ts > $1 AND ts <= $2 ORDER BY ts, id LIMIT $3', [String(afterTs), String(upToTs), Math.max(0, Math.trunc(limit))])
    return result.map((r) => ({ ts: r.ts, id: r.id, tableNumber: r.table_number, json: r.json }))
  }

  async documentsAt(ids: readonly string[], ts: bigint): Promise<Map<string, LogEntry>> {
    const out = new Map<string, LogEntry>()
    if (ids.length === 0) return out
    const result = await rows<{ ts: bigint; id: string; table_number: number; json: string | null }>(
      this.#pool,
      `SELECT w.ts, w.id, w.table_number, w.json FROM unnest($1::text[]) AS q(id)
       CROSS JOIN LATERAL (SELECT * FROM write_log l WHERE l.id = q.id AND l.ts <= $2 ORDER BY l.ts DESC LIMIT 1) w`,
      [[...ids], String(ts)],
    )
    for (const r of result) out.set(r.id, { ts: r.ts, id: r.id, tableNumber: r.table_number, json: r.json })
    return out
  }

  historyHorizon(): bigint {
    return this.#horizon
  }

  /** As SQLite's (see there): revisions examined in (ts, id) order from `meta.history_cursor`. */
  async pruneHistory(horizon: bigint, limit: number): Promise<HistoryPruning> {
    const target = horizon > this.#maxTs ? this.#maxTs : horizon
    const newHorizon = target > this.#horizon ? target : this.#horizon
    const moved = newHorizon > this.#horizon
    const examined = await rows<{ ts: bigint; id: string; tombstone: boolean }>(
      this.#pool,
      'SELECT ts, id, json IS NULL AS tombstone FROM write_log WHERE (ts, id) > ($1, $2) AND ts <= $3 ORDER BY ts, id LIMIT $4',
      [String(this.#pruned.ts), this.#pruned.id, String(newHorizon), Math.max(0, Math.trunc(limit))],
    )
    let deleted = 0
    let cursor = this.#pruned
    if (examined.length > 0 || moved) {
      await this.#transaction(async (db) => {
        const tombstones = examined.filter((r) => r.tombstone)
        if (tombstones.length > 0) {
          const r = await db.query('DELETE FROM write_log w USING unnest($1::int8[], $2::text[]) AS x(ts, id) WHERE w.ts = x.ts AND w.id = x.id', [tombstones.map((t) => String(t.ts)), tombstones.map((t) => t.id)])
          deleted += r.rowCount ?? 0
        }
        // Each examined revision deletes its document's earlier ones: per document, the last examined.
        const newest = new Map<string, bigint>()
        for (const r of examined) newest.set(r.id, r.ts)
        if (newest.size > 0) {
          const r = await db.query('DELETE FROM write_log w USING unnest($1::text[], $2::int8[]) AS x(id, ts) WHERE w.id = x.id AND w.ts < x.ts', [[...newest.keys()], [...newest.values()].map(String)])
          deleted += r.rowCount ?? 0
        }
        const lastRow = examined[examined.length - 1]
        if (lastRow !== undefined) cursor = { ts: lastRow.ts, id: lastRow.id }
        // The commit log below the horizon: every process has followed it long since.
        if (moved) {
          await db.query('DELETE FROM commits WHERE ts <= $1', [String(newHorizon)])
          await db.query("INSERT INTO meta (key, value) VALUES ('commits_horizon', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [String(newHorizon)])
        }
        await db.query(
          `INSERT INTO meta (key, value) VALUES ('history_horizon', $1), ('history_cursor', $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
          [String(newHorizon), `${cursor.ts} ${cursor.id}`],
        )
      })
      this.#horizon = newHorizon
      this.#pruned = cursor
    }
    const [pending] = await rows<{ ts: bigint }>(this.#pool, 'SELECT ts FROM write_log WHERE (ts, id) > ($1, $2) ORDER BY ts, id LIMIT 1', [String(this.#pruned.ts), this.#pruned.id])
    return { examined: examined.length, deleted, pending: pending?.ts ?? null }
  }

  async tables(): Promise<TableRecord[]> {
    const result = await rows<{ table_number: number; name: string; id_number: number }>(this.#pool, 'SELECT table_number, name, id_number FROM tables ORDER BY table_number')
    return result.map((r) => ({ tableNumber: r.table_number, name: r.name, idNumber: r.id_number }))
  }

  async createTable(name: string, tableNumber: number, idNumber = tableNumber, indexes: readonly IndexRecord[] = []): Promise<void> {
    if (indexes.length === 0) {
      await this.#pool.query('INSERT INTO tables (table_number, name, id_number) VALUES ($1, $2, $3)', [tableNumber, name, idNumber])
      return
    }
    await this.#transaction(async (db) => {
      await db.query('INSERT INTO tables (table_number, name, id_number) VALUES ($1, $2, $3)', [tableNumber, name, idNumber])
      for (const i of indexes) await insertIndex(db, i)
    })
  }

  async indexes(): Promise<IndexRecord[]> {
    const result = await rows<{ index_id: number; table_number: number; name: string; fields: string; search: string | null; vector: string | null; staged: boolean }>(
      this.#pool,
      'SELECT index_id, table_number, name, fields, search, vector, staged FROM indexes ORDER BY index_id',
    )
    return result.map((r) => ({
      indexId: r.index_id,
      tableNumber: r.table_number,
      name: r.name,
      fields: JSON.parse(r.fields) as string[],
      ...(r.search === null ? {} : { search: JSON.parse(r.search) as SearchIndexConfig }),
      ...(r.vector === null ? {} : { vector: JSON.parse(r.vector) as VectorIndexConfig }),
      ...(r.staged ? { staged: true } : {}),
    }))
  }

  async createIndex(index: IndexRecord, backfill: readonly IndexWrite[], searchBackfill: readonly SearchWrite[] = [], vectorBackfill: readonly VectorWrite[] = []): Promise<IndexRecord> {
    return this.#transaction(async (db) => {
      await insertIndex(db, index)
      const indexId = index.indexId
      await writeIndexEntries(db, backfill.map((w) => ({ ...w, indexId })))
      await writeSearch(db, searchBackfill.map((w) => ({ ...w, indexId })))
      await writeVectors(db, vectorBackfill.map((w) => ({ ...w, indexId })))
      return { ...index, indexId }
    })
  }

  async dropIndex(indexId: number): Promise<void> {
    await this.#transaction(async (db) => {
      for (const table of ['index_entries', 'search_entries', 'search_postings', 'search_vocab', 'search_stats', 'vector_entries', 'indexes']) {
        await db.query(`DELETE FROM ${table} WHERE index_id = $1`, [indexId])
      }
    })
  }

  async dropTable(tableNumber: number): Promise<void> {
    await this.#pool.query("UPDATE tables SET name = '~dropped~' || table_number WHERE table_number = $1", [tableNumber])
  }

  async renameIndex(indexId: number, name: string): Promise<void> {
    await this.#pool.query('UPDATE indexes SET name = $1 WHERE index_id = $2', [name, indexId])
  }

  async setIndexStaged(indexId: number, staged: boolean): Promise<void> {
    await this.#pool.query('UPDATE indexes SET staged = $1 WHERE index_id = $2', [staged, indexId])
  }

  async scanTable(tableNumber: number, afterId: string, limit: number): Promise<StoredDocument[]> {
    const result = await rows<{ id: string; json: string }>(this.#pool, 'SELECT id, json FROM documents WHERE table_number = $1 AND id > $2 ORDER BY id LIMIT $3', [tableNumber, afterId, Math.max(0, Math.trunc(limit))])
    return result.map((r) => ({ id: r.id, tableNumber, json: r.json }))
  }

  async writeIndexEntries(entries: readonly IndexWrite[]): Promise<void> {
    await this.#transaction((db) => writeIndexEntries(db, entries))
  }

  async tableDocuments(tableNumber: number): Promise<StoredDocument[]> {
    const result = await rows<{ id: string; json: string }>(this.#pool, 'SELECT id, json FROM documents WHERE table_number = $1', [tableNumber])
    return result.map((r) => ({ id: r.id, tableNumber, json: r.json }))
  }

  async modules(): Promise<ModuleRecord[]> {
    const result = await rows<{ path: string; environment: 'isolate' | 'node'; source: string; source_map: string | null; hash: string }>(this.#pool, 'SELECT path, environment, source, source_map, hash FROM modules ORDER BY path')
    return result.map((r) => ({ path: r.path, environment: r.environment, source: r.source, sourceMap: r.source_map, hash: r.hash }))
  }

  async replaceModules(modules: readonly ModuleRecord[], globals: Record<string, string>): Promise<void> {
    await this.#transaction(async (db) => {
      await db.query('DELETE FROM modules')
      if (modules.length > 0) {
        await db.query('INSERT INTO modules (path, environment, source, source_map, hash) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])', [
          modules.map((m) => m.path),
          modules.map((m) => m.environment),
          modules.map((m) => m.source),
          modules.map((m) => m.sourceMap),
          modules.map((m) => m.hash),
        ])
      }
      const entries = Object.entries(globals)
      if (entries.length > 0) {
        await db.query('INSERT INTO meta (key, value) SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [entries.map(([k]) => k), entries.map(([, v]) => v)])
      }
    })
  }

  async getGlobal(key: string): Promise<string | undefined> {
    const [row] = await rows<{ value: string }>(this.#pool, 'SELECT value FROM meta WHERE key = $1', [key])
    return row?.value
  }

  async sizeBytes(): Promise<number> {
    const [row] = await rows<{ size: bigint }>(this.#pool, 'SELECT pg_database_size(current_database()) AS size')
    return Number(row!.size)
  }

  async setGlobalIfAbsent(key: string, value: string): Promise<string> {
    await this.#pool.query('INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING', [key, value])
    return (await this.getGlobal(key))!
  }

  async globals(): Promise<Map<string, string>> {
    const result = await rows<{ key: string; value: string }>(this.#pool, 'SELECT key, value FROM meta WHERE NOT (key = ANY($1::text[])) ORDER BY key', [STORE_KEYS])
    return new Map(result.map((r) => [r.key, r.value]))
  }

  async setGlobal(key: string, value: string): Promise<void> {
    await this.#pool.query('INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [key, value])
  }

  async close(): Promise<void> {
    await Promise.all([...this.#kept.map((k) => k.close()), ...this.#leases.map((l) => l.close())])
    await this.#pool.end()
  }
}

/** A group of commits, inside a transaction: tables, documents, indexes, search, vectors, the log. */
async function writeCommits(client: Queryable, commits: readonly CommitRecord[]): Promise<void> {
  // Tables the commits create come first, with their indexes (numbered by the catalog).
  for (const c of commits) {
    for (const { table, indexes } of c.tables ?? []) {
      await client.query('INSERT INTO tables (table_number, name, id_number) VALUES ($1, $2, $3)', [table.tableNumber, table.name, table.idNumber])
      for (const i of indexes) await insertIndex(client, i)
    }
  }
  await writeDocuments(client, commits)
  await writeIndexEntries(client, commits.flatMap((c) => c.indexes))
  await writeSearch(client, commits.flatMap((c) => c.search ?? []))
  await writeVectors(client, commits.flatMap((c) => c.vectors ?? []))
  await logCommits(client, commits.map(loggedCommit))
}

/** What the commit log keeps of a commit. */
function loggedCommit(c: CommitRecord): LoggedCommit {
  return { ts: c.ts, touched: c.touched ?? c.indexes, catalog: c.catalog === true || (c.tables?.length ?? 0) > 0, push: c.push === true }
}

/**
 * Appends commits to the commit log, makes the last one the store's latest, and announces it
 * (delivered when the transaction commits).
 */
async function logCommits(db: Queryable, commits: readonly LoggedCommit[]): Promise<void> {
  const last = String(commits[commits.length - 1]!.ts)
  // One round trip: the log rows, the latest ts, the notice.
  await db.query({
    name: 'log_commits',
    text: `WITH logged AS (INSERT INTO commits (ts, touched, catalog, push, writer) SELECT *, pg_backend_pid() FROM unnest($1::int8[], $2::bytea[], $3::bool[], $4::bool[])),
      latest AS (INSERT INTO meta (key, value) VALUES ('max_ts', $5) ON CONFLICT (key) DO UPDATE SET value = excluded.value)
      SELECT pg_notify('${NOTICE_CHANNEL}', $5)`,
    values: [commits.map((c) => String(c.ts)), commits.map((c) => encodeTouched(c.touched)), commits.map((c) => c.catalog), commits.map((c) => c.push), last],
  })
}

/**
 * A group's document revisions as column arrays: every one into the write log (one per document
 * and timestamp: a second one fails the group), the last of each document into `documents`
 * (`put*`), or out of it (`delIds`).
 */
function documentColumns(commits: readonly CommitRecord[]) {
  const logTs: string[] = []
  const logId: string[] = []
  const logTable: number[] = []
  const logJson: (string | null)[] = []
  const latest = new Map<string, { ts: bigint; d: DocumentWrite }>()
  for (const c of commits) {
    for (const d of c.documents) {
      logTs.push(String(c.ts))
      logId.push(d.id)
      logTable.push(d.tableNumber)
      logJson.push(d.json)
      latest.delete(d.id)
      latest.set(d.id, { ts: c.ts, d })
    }
  }
  const puts = [...latest.values()].filter((r) => r.d.json !== null)
  return {
    log: [logTs, logId, logTable, logJson] as const,
    delIds: [...latest.values()].filter((r) => r.d.json === null).map((r) => r.d.id),
    puts: [puts.map((r) => r.d.id), puts.map((r) => r.d.tableNumber), puts.map((r) => String(r.ts)), puts.map((r) => r.d.json)] as const,
  }
}

/** A group's index entry changes as column arrays, in order: the last change of each (index, key) wins. */
function indexColumns(writes: readonly IndexWrite[]) {
  // Keyed by the index and the key's bytes (as latin1: one character per byte).
  const last = new Map<string, IndexWrite>()
  for (const w of writes) last.set(`${w.indexId}:${w.key.toString('latin1')}`, w)
  const deletes = [[] as number[], [] as Buffer[], [] as Buffer[]] as const
  const puts = [[] as number[], [] as Buffer[], [] as Buffer[], [] as (Buffer | null)[], [] as string[]] as const
  for (const w of last.values()) {
    const { prefix, sha256, suffix } = splitKey(w.key)
    if (w.id === null) {
      deletes[0].push(w.indexId)
      deletes[1].push(prefix)
      deletes[2].push(sha256)
    } else {
      puts[0].push(w.indexId)
      puts[1].push(prefix)
      puts[2].push(sha256)
      puts[3].push(suffix)
      puts[4].push(w.id)
    }
  }
  return { deletes, puts }
}

async function writeDocuments(db: Queryable, commits: readonly CommitRecord[]): Promise<void> {
  const { log, delIds, puts } = documentColumns(commits)
  if (log[0].length === 0) return
  await db.query('INSERT INTO write_log (ts, id, table_number, json) SELECT * FROM unnest($1::int8[], $2::text[], $3::int4[], $4::text[])', [...log])
  if (delIds.length > 0) await db.query('DELETE FROM documents WHERE id = ANY($1::text[])', [delIds])
  if (puts[0].length > 0) {
    await db.query('INSERT INTO documents (id, table_number, ts, json) SELECT * FROM unnest($1::text[], $2::int4[], $3::int8[], $4::text[]) ON CONFLICT (id) DO UPDATE SET ts = excluded.ts, json = excluded.json', [...puts])
  }
}

async function writeIndexEntries(db: Queryable, writes: readonly IndexWrite[]): Promise<void> {
  if (writes.length === 0) return
  const { deletes, puts } = indexColumns(writes)
  if (deletes[0].length > 0) {
    await db.query('DELETE FROM index_entries e USING unnest($1::int4[], $2::bytea[], $3::bytea[]) AS x(index_id, key_prefix, key_sha256) WHERE e.index_id = x.index_id AND e.key_prefix = x.key_prefix AND e.key_sha256 = x.key_sha256', [...deletes])
  }
  if (puts[0].length > 0) {
    await db.query(
      `INSERT INTO index_entries (index_id, key_prefix, key_sha256, key_suffix, id) SELECT * FROM unnest($1::int4[], $2::bytea[], $3::bytea[], $4::bytea[], $5::text[])
       ON CONFLICT (index_id, key_prefix, key_sha256) DO UPDATE SET key_suffix = excluded.key_suffix, id = excluded.id`,
      [...puts],
    )
  }
}

/**
 * Whether a write's error means its transaction was rolled back: a statement that failed. Not a
 * lost connection, nor a FATAL error, which can come after the commit (a server process ended
 * while it waited for synchronous replication): those are found out (`#landed`).
 */
function statementFailed(e: unknown): boolean {
  return e instanceof pg.DatabaseError && e.severity !== 'FATAL'
}

/** Whether a group is only documents and index entries: what `concave_write_group` writes in one call. */
function plainGroup(commits: readonly CommitRecord[]): boolean {
  return commits.every((c) => (c.tables?.length ?? 0) === 0 && (c.search?.length ?? 0) === 0 && (c.vectors?.length ?? 0) === 0)
}

/**
 * `concave_write_group`'s arguments (see migration 4) for a plain group: its columns as binary
 * arrays (see binary-arrays.ts), which neither side has to escape or parse.
 */
function groupArguments(commits: readonly CommitRecord[], expectedTs: bigint | undefined): unknown[] {
  // Every revision into the write log; the last of each document into `documents`, or out of it.
  const logTs: bigint[] = []
  const logId: string[] = []
  const logTable: number[] = []
  const logJson: (string | null)[] = []
  const latest = new Map<string, number>()
  let replaced = false
  for (const c of commits) {
    for (const d of c.documents) {
      if (latest.has(d.id)) replaced = true
      latest.set(d.id, logId.length)
      logTs.push(c.ts)
      logId.push(d.id)
      logTable.push(d.tableNumber)
      logJson.push(d.json)
    }
  }
  const delIds: string[] = []
  const putIds: string[] = []
  const putTables: number[] = []
  const putTs: bigint[] = []
  const putJson: string[] = []
  // In the order of each document's last revision (as `documentColumns`).
  const last = replaced ? [...latest.values()].sort((a, b) => a - b) : null
  const n = last === null ? logId.length : last.length
  for (let k = 0; k < n; k++) {
    const i = last === null ? k : last[k]!
    const json = logJson[i]!
    if (json === null) delIds.push(logId[i]!)
    else {
      putIds.push(logId[i]!)
      putTables.push(logTable[i]!)
      putTs.push(logTs[i]!)
      putJson.push(json)
    }
  }
  const index = indexColumns(commits.length === 1 ? commits[0]!.indexes : commits.flatMap((c) => c.indexes))
  const logged = commits.map(loggedCommit)
  return [
    expectedTs === undefined ? null : String(expectedTs),
    String(commits[commits.length - 1]!.ts),
    int8Array(logTs),
    textArray(logId),
    int4Array(logTable),
    textArray(logJson),
    textArray(delIds),
    textArray(putIds),
    int4Array(putTables),
    int8Array(putTs),
    textArray(putJson),
    int4Array(index.deletes[0]),
    byteaArray(index.deletes[1]),
    byteaArray(index.deletes[2]),
    int4Array(index.puts[0]),
    byteaArray(index.puts[1]),
    byteaArray(index.puts[2]),
    byteaArray(index.puts[3]),
    textArray(index.puts[4]),
    int8Array(logged.map((c) => c.ts)),
    byteaArray(logged.map((c) => encodeTouched(c.touched))),
    boolArray(logged.map((c) => c.catalog)),
    boolArray(logged.map((c) => c.push)),
  ]
}
const WRITE_GROUP = {
  name: 'write_group',
  text: `SELECT concave_write_group($1::int8, $2::int8, $3::int8[], $4::text[], $5::int4[], $6::text[], $7::text[], $8::text[], $9::int4[], $10::int8[], $11::text[],
    $12::int4[], $13::bytea[], $14::bytea[], $15::int4[], $16::bytea[], $17::bytea[], $18::bytea[], $19::text[], $20::int8[], $21::bytea[], $22::bool[], $23::bool[]) AS latest`,
}

/**
 * Search entry changes: the last of each (index, document) replaces its entry; postings, the
 * vocabulary's document counts and the index totals move by the difference.
 */
async function writeSearch(db: Queryable, writes: readonly SearchWrite[]): Promise<void> {
  if (writes.length === 0) return
  const last = new Map<string, SearchWrite>()
  for (const w of writes) last.set(`${w.indexId}:${w.id}`, w)
  const changed = [...last.values()]
  const old = await rows<{ index_id: number; id: string; length: number; terms: string[] }>(
    db,
    'SELECT e.index_id, e.id, e.length, e.terms FROM search_entries e JOIN unnest($1::int4[], $2::text[]) AS x(index_id, id) ON e.index_id = x.index_id AND e.id = x.id',
    [changed.map((w) => w.indexId), changed.map((w) => w.id)],
  )
  const vocab = new Map<string, { indexId: number; term: string; delta: number }>()
  const bump = (indexId: number, term: string, delta: number) => {
    const k = `${indexId}:${term}`
    const v = vocab.get(k)
    if (v === undefined) vocab.set(k, { indexId, term, delta })
    else v.delta += delta
  }
  const stats = new Map<number, { documents: number; terms: number }>()
  const stat = (indexId: number) => stats.get(indexId) ?? stats.set(indexId, { documents: 0, terms: 0 }).get(indexId)!
  const removedPostings: { indexId: number; term: string; id: string }[] = []
  for (const o of old) {
    for (const term of o.terms) {
      bump(o.index_id, term, -1)
      removedPostings.push({ indexId: o.index_id, term, id: o.id })
    }
    stat(o.index_id).documents--
    stat(o.index_id).terms -= o.length
  }
  const entries: { indexId: number; id: string; length: number; terms: string[]; filterKeys: readonly string[] }[] = []
  const postings: { indexId: number; term: string; id: string; count: number }[] = []
  for (const w of changed) {
    if (w.entry === null) continue
    const counts = new Map<string, number>()
    for (const t of w.entry.terms) counts.set(t, (counts.get(t) ?? 0) + 1)
    entries.push({ indexId: w.indexId, id: w.id, length: w.entry.terms.length, terms: [...counts.keys()], filterKeys: w.entry.filterKeys })
    for (const [term, count] of counts) {
      postings.push({ indexId: w.indexId, term, id: w.id, count })
      bump(w.indexId, term, 1)
    }
    stat(w.indexId).documents++
    stat(w.indexId).terms += w.entry.terms.length
  }
  if (old.length > 0) {
    await db.query('DELETE FROM search_entries e USING unnest($1::int4[], $2::text[]) AS x(index_id, id) WHERE e.index_id = x.index_id AND e.id = x.id', [old.map((o) => o.index_id), old.map((o) => o.id)])
  }
  if (removedPostings.length > 0) {
    await db.query('DELETE FROM search_postings p USING unnest($1::int4[], $2::text[], $3::text[]) AS x(index_id, term, id) WHERE p.index_id = x.index_id AND p.term = x.term AND p.id = x.id', [
      removedPostings.map((p) => p.indexId),
      removedPostings.map((p) => p.term),
      removedPostings.map((p) => p.id),
    ])
  }
  if (entries.length > 0) {
    // Terms and filter keys have no spaces (see SearchEntry): each row's arrays travel as one string.
    await db.query(
      "INSERT INTO search_entries (index_id, id, length, terms, filter_keys) SELECT index_id, id, length, string_to_array(terms, ' '), string_to_array(filter_keys, ' ') FROM unnest($1::int4[], $2::text[], $3::int4[], $4::text[], $5::text[]) AS x(index_id, id, length, terms, filter_keys)",
      [entries.map((e) => e.indexId), entries.map((e) => e.id), entries.map((e) => e.length), entries.map((e) => e.terms.join(' ')), entries.map((e) => e.filterKeys.join(' '))],
    )
  }
  if (postings.length > 0) {
    await db.query('INSERT INTO search_postings (index_id, term, id, count) SELECT * FROM unnest($1::int4[], $2::text[], $3::text[], $4::int4[])', [
      postings.map((p) => p.indexId),
      postings.map((p) => p.term),
      postings.map((p) => p.id),
      postings.map((p) => p.count),
    ])
  }
  const moved = [...vocab.values()].filter((v) => v.delta !== 0)
  if (moved.length > 0) {
    const args = [moved.map((v) => v.indexId), moved.map((v) => v.term), moved.map((v) => v.delta)]
    await db.query('INSERT INTO search_vocab (index_id, term, documents) SELECT * FROM unnest($1::int4[], $2::text[], $3::int8[]) ON CONFLICT (index_id, term) DO UPDATE SET documents = search_vocab.documents + excluded.documents', args)
    await db.query('DELETE FROM search_vocab v USING unnest($1::int4[], $2::text[]) AS x(index_id, term) WHERE v.index_id = x.index_id AND v.term = x.term AND v.documents <= 0', args.slice(0, 2))
  }
  const totals = [...stats].filter(([, s]) => s.documents !== 0 || s.terms !== 0)
  if (totals.length > 0) {
    await db.query(
      'INSERT INTO search_stats (index_id, documents, terms) SELECT * FROM unnest($1::int4[], $2::int8[], $3::int8[]) ON CONFLICT (index_id) DO UPDATE SET documents = search_stats.documents + excluded.documents, terms = search_stats.terms + excluded.terms',
      [totals.map(([i]) => i), totals.map(([, s]) => s.documents), totals.map(([, s]) => s.terms)],
    )
  }
}

/** Vector entry changes: the last of each (index, document) replaces its entry. */
async function writeVectors(db: Queryable, writes: readonly VectorWrite[]): Promise<void> {
  if (writes.length === 0) return
  const last = new Map<string, VectorWrite>()
  for (const w of writes) last.set(`${w.indexId}:${w.id}`, w)
  const changed = [...last.values()]
  await db.query('DELETE FROM vector_entries e USING unnest($1::int4[], $2::text[]) AS x(index_id, id) WHERE e.index_id = x.index_id AND e.id = x.id', [changed.map((w) => w.indexId), changed.map((w) => w.id)])
  const puts = changed.filter((w) => w.entry !== null)
  // Several rows per statement, each with its own array parameters (5 per row).
  for (let i = 0; i < puts.length; i += 1000) {
    const chunk = puts.slice(i, i + 1000)
    const values: unknown[] = []
    const tuples = chunk.map((w) => {
      values.push(w.indexId, w.id, Array.from(w.entry!.vector), norm(w.entry!.vector), [...w.entry!.filterKeys])
      const n = values.length
      return `($${n - 4}::int4, $${n - 3}::text, $${n - 2}::float4[], $${n - 1}::float8, $${n}::text[])`
    })
    await db.query(`INSERT INTO vector_entries (index_id, id, vector, norm, filter_keys) VALUES ${tuples.join(', ')}`, values)
  }
}

/** Inserts an index's row, with the id the catalog gave it. */
async function insertIndex(db: Pick<PoolClient, 'query'>, index: IndexRecord): Promise<void> {
  const search = index.search === undefined ? null : JSON.stringify({ searchField: index.search.searchField, filterFields: index.search.filterFields })
  const vector = index.vector === undefined ? null : JSON.stringify({ vectorField: index.vector.vectorField, dimensions: index.vector.dimensions, filterFields: index.vector.filterFields })
  await db.query('INSERT INTO indexes (index_id, table_number, name, fields, search, vector, staged) VALUES ($1, $2, $3, $4, $5, $6, $7)', [index.indexId, index.tableNumber, index.name, JSON.stringify(index.fields), search, vector, index.staged === true])
}

