/**
 * @module SqlitePersistence: the embedded store, one SQLite file in WAL mode.
 *
 * One writer connection (used only by the committer and for catalog changes) and a small pool of
 * reader connections. A snapshot is a reader connection holding an open read transaction: WAL mode
 * gives it a stable view while the writer keeps committing. Every commit also bumps `meta.max_ts`
 * inside the same transaction, so the snapshot knows exactly which commit timestamp it sees.
 *
 * Durability: the writer runs with `synchronous=NORMAL`, so a commit is in the OS page cache (safe
 * from kill -9) when the SQLite transaction ends, and `write` then fdatasyncs the WAL file on the
 * thread pool before resolving (safe from power loss). The main thread never blocks on the disk:
 * commits written while a sync is in flight share the next one (group commit), and a commit is
 * only acknowledged by a sync that started after it was written.
 */
import Database from 'better-sqlite3'
import { getLoadablePath } from 'sqlite-vec'
import { open as openFile } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { existsSync, fstatSync, statSync } from 'node:fs'
import { Worker } from 'node:worker_threads'
import type {
  CommitRecord,
  HistoryPruning,
  IndexRecord,
  IndexRow,
  IndexWrite,
  KeyInterval,
  LogEntry,
  ModuleRecord,
  Order,
  Persistence,
  SearchIndexConfig,
  SearchQuery,
  SearchResult,
  SearchWrite,
  Snapshot,
  StoredDocument,
  TableRecord,
  VectorHit,
  VectorIndexConfig,
  VectorQuery,
  VectorWrite,
} from '../persistence.ts'
import { WriteNotApplied } from '../persistence.ts'
import { MIGRATIONS, FORMAT_VERSION } from './migrations.ts'

/** WAL size (pages, 4 KiB each) past which a checkpoint with no reader open is asked for: 64 MiB. */
const WAL_BARRIER_PAGES = 16_384

/**
 * WAL file size past which the checkpointer worker is started: SQLite's own default
 * auto-checkpoint point (1,000 pages). A worker thread costs ~20 MB of RSS, which a small or idle
 * deployment whose WAL never grows this far does without (its WAL is checkpointed at shutdown).
 */
const CHECKPOINTER_WAL_BYTES = 4 * 1024 * 1024

/** Idle reader connections kept open for reuse; more are opened on demand and closed when released. */
const MAX_IDLE_READERS = 8

type Db = Database.Database

/** The `meta` keys the store keeps for itself; the rest are the globals (see `globals`). */
const STORE_KEYS = ['format_version', 'max_ts', 'history_horizon', 'history_cursor']

/** Where the sqlite-vec extension (vector indexes) is, resolved once. */
let vectorExtension: string | null = null

function open(path: string, readonly: boolean): Db {
  const db = new Database(path, { readonly, fileMustExist: readonly })
  db.loadExtension((vectorExtension ??= getLoadablePath()))
  db.pragma('busy_timeout = 10000')
  if (!readonly) {
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = NORMAL')
  }
  db.defaultSafeIntegers(true)
  return db
}

/**
 * Search terms as stored in the shared FTS5 table: namespaced by index id, so that every search
 * index has its own vocabulary (see migration 2). FTS5's `ascii` tokenizer splits only at ASCII
 * non-alphanumerics, so a term (letters, marks and digits) and its namespace stay one token.
 */
function bodyToken(indexId: number, term: string): string {
  return `${indexId}x${term}`
}
function filterToken(indexId: number, field: number, key: string): string {
  return `${indexId}f${field}h${key}`
}
/** An FTS5 query string for one token. */
function quoted(token: string): string {
  return `"${token.replaceAll('"', '""')}"`
}
/** Above every UTF-8 string that starts with a given prefix, when appended to it. */
const PREFIX_END = '\u{10FFFF}'

/**
 * A vector index's entries: a sqlite-vec `vec0` table of its own, keyed by document id, with the
 * vector (cosine distance) and one integer metadata column per filter field. sqlite-vec compares
 * every vector that passes the metadata filter (exact KNN).
 *
 * Vectors get one extra dimension, 0, except that a zero vector is stored as (0, …, 0, 1): its
 * cosine similarity to any query is then 0 (as in Convex, whose engine normalizes a zero vector
 * to itself) instead of sqlite-vec's NaN, which would sort before every real match.
 */
function vectorTable(indexId: number): string {
  return `vectors_${indexId}`
}
function createVectorTable(db: Db, indexId: number, config: VectorIndexConfig): void {
  const filters = config.filterFields.map((_, i) => `, f${i} integer`).join('')
  db.exec(`CREATE VIRTUAL TABLE ${vectorTable(indexId)} USING vec0(id text primary key, vector float[${Math.trunc(config.dimensions) + 1}] distance_metric=cosine${filters})`)
}
/**
 * A filter key (32 hex digits: a 128-bit digest of the value) as a 64-bit metadata value, its two
 * halves XORed: two values collide with probability 2^-64.
 */
function filterInteger(key: string): bigint {
  return BigInt.asIntN(64, BigInt(`0x${key.slice(0, 16)}`) ^ BigInt(`0x${key.slice(16, 32) || '0'}`))
}
/** A vector as stored (and queried): its extra dimension is 1 for a zero vector, else 0. */
function vectorBlob(vector: Float32Array): { blob: Buffer; zero: boolean } {
  const out = new Float32Array(vector.length + 1)
  out.set(vector)
  const zero = vector.every((x) => x === 0)
  if (zero) out[vector.length] = 1
  return { blob: Buffer.from(out.buffer), zero }
}

/** Prepared statements of a reader connection. */
class Reader {
  readonly begin
  readonly commit
  readonly maxTs
  readonly getDoc
  readonly count
  readonly searchStats
  readonly vocabRange
  readonly vocabTerm
  readonly searchMatch
  readonly scans: Record<string, Database.Statement>
  constructor(readonly db: Db) {
    this.begin = db.prepare('BEGIN')
    this.commit = db.prepare('COMMIT')
    this.maxTs = db.prepare("SELECT value FROM meta WHERE key = 'max_ts'").pluck()
    this.getDoc = db.prepare('SELECT table_number, json FROM documents WHERE id = ?').raw()
    this.count = db.prepare('SELECT count(*) FROM documents WHERE table_number = ?').pluck()
    this.searchStats = db.prepare('SELECT documents, terms FROM search_stats WHERE index_id = ?').raw()
    this.vocabRange = db.prepare('SELECT term FROM search_vocab WHERE term >= ? AND term < ? ORDER BY term LIMIT ?').pluck()
    this.vocabTerm = db.prepare('SELECT doc FROM search_vocab WHERE term = ?').pluck()
    // FTS5 ranks the matches (bm25, ignoring the filters column) only to pick the best `limit`;
    // among equals, the latest entries (usually the newest documents, which rank first above).
    this.searchMatch = db
      .prepare(
        `SELECT d.id, d.table_number, d.json FROM (SELECT rowid AS entry FROM search_terms WHERE search_terms MATCH ? ORDER BY bm25(search_terms, 1.0, 0.0), rowid DESC LIMIT ?) m
         JOIN search_documents s ON s.entry = m.entry JOIN documents d ON d.id = s.id`,
      )
      .raw()
    const base = 'SELECT e.key, d.id, d.table_number, d.json FROM index_entries e JOIN documents d ON d.id = e.id WHERE e.index_id = ? AND e.key >= ?'
    this.scans = {
      'asc:open': db.prepare(`${base} ORDER BY e.key ASC LIMIT ?`).raw(),
      'asc:closed': db.prepare(`${base} AND e.key < ? ORDER BY e.key ASC LIMIT ?`).raw(),
      'desc:open': db.prepare(`${base} ORDER BY e.key DESC LIMIT ?`).raw(),
      'desc:closed': db.prepare(`${base} AND e.key < ? ORDER BY e.key DESC LIMIT ?`).raw(),
    }
  }
}

class SqliteSnapshot implements Snapshot {
  #released = false
  constructor(
    readonly ts: bigint,
    readonly reader: Reader,
    readonly onRelease: (reader: Reader) => void,
  ) {}

  async getDocument(id: string): Promise<StoredDocument | null> {
    const row = this.reader.getDoc.get(id) as [bigint, string] | undefined
    return row === undefined ? null : { id, tableNumber: Number(row[0]), json: row[1] }
  }

  async scan(indexId: number, interval: KeyInterval, order: Order, limit: number): Promise<IndexRow[]> {
    const rows = (
      interval.hi === null
        ? this.reader.scans[`${order}:open`]!.all(indexId, interval.lo, limit)
        : this.reader.scans[`${order}:closed`]!.all(indexId, interval.lo, interval.hi, limit)
    ) as [Buffer, string, bigint, string][]
    return rows.map(([key, id, tableNumber, json]) => ({ key, doc: { id, tableNumber: Number(tableNumber), json } }))
  }

  async countTable(tableNumber: number): Promise<number> {
    return Number(this.reader.count.get(tableNumber))
  }

  async search(indexId: number, query: SearchQuery): Promise<SearchResult> {
    const r = this.reader
    const stats = r.searchStats.get(indexId) as [bigint, bigint] | undefined
    const namespace = bodyToken(indexId, '')
    const prefixTerms: string[] = []
    if (query.prefix !== null && query.maxPrefixTerms > 0) {
      const lo = bodyToken(indexId, query.prefix)
      for (const token of r.vocabRange.all(lo, lo + PREFIX_END, query.maxPrefixTerms) as string[]) {
        if (token.startsWith(lo)) prefixTerms.push(token.slice(namespace.length))
      }
    }
    const documentFrequency = new Map<string, number>()
    for (const term of [...query.terms, ...prefixTerms]) {
      if (!documentFrequency.has(term)) documentFrequency.set(term, Number((r.vocabTerm.get(bodyToken(indexId, term)) as bigint | undefined) ?? 0))
    }
    const matchable = [...documentFrequency].filter(([, n]) => n > 0).map(([term]) => quoted(bodyToken(indexId, term)))
    let documents: StoredDocument[] = []
    if (matchable.length > 0 && query.limit > 0) {
      let match = `body : (${matchable.join(' OR ')})`
      if (query.filters.length > 0) match += ` AND filters : (${query.filters.map((f) => quoted(filterToken(indexId, f.field, f.key))).join(' AND ')})`
      const rows = r.searchMatch.all(match, query.limit) as [string, bigint, string][]
      documents = rows.map(([id, tableNumber, json]) => ({ id, tableNumber: Number(tableNumber), json }))
    }
    return { prefixTerms, documentCount: Number(stats?.[0] ?? 0), termCount: Number(stats?.[1] ?? 0), documentFrequency, documents }
  }

  async vectorSearch(indexId: number, query: VectorQuery): Promise<VectorHit[]> {
    if (query.limit <= 0) return []
    const knn = `SELECT id, distance FROM ${vectorTable(indexId)} WHERE vector MATCH ? AND k = ${Math.trunc(query.limit)}`
    // A zero query is as far from every vector as can be: every score is 0 (the search then
    // finds zero vectors first, which is as good an order as any).
    const { blob, zero } = vectorBlob(query.vector)
    // vec0 takes only ANDed constraints: an OR of filters runs one search per filter field (an
    // IN over its keys), and the best of their results are the best of the OR.
    const runs = query.filters.length === 0 ? [knn] : query.filters.map((f) => `${knn} AND f${f.field} IN (${f.keys.map((k) => String(filterInteger(k))).join(', ')})`)
    const best = new Map<string, number>()
    for (const sql of runs) {
      for (const [id, distance] of this.reader.db.prepare(sql).raw().all(blob) as [string, number | null][]) best.set(id, zero ? 0 : Math.fround(1 - (distance ?? NaN)))
    }
    const hits = [...best].map(([id, score]) => ({ id, score }))
    hits.sort((a, b) => b.score - a.score)
    return hits.slice(0, query.limit)
  }

  release(): void {
    if (this.#released) return
    this.#released = true
    this.reader.commit.run()
    this.onRelease(this.reader)
  }
}

export class SqlitePersistence implements Persistence {
  readonly #writer: Db
  readonly #idle: Reader[] = []
  #maxTs: bigint
  readonly #stmts
  #wal: FileHandle | null = null
  #checkpointer: Worker | null = null
  /** The checkpointer script, where there is one (not when running from source). */
  #checkpointerScript: URL | null = null
  /** WAL pages the checkpointer last saw. */
  #walPages = 0
  /** The history horizon, and the last write-log row `pruneHistory` examined (see there). */
  #horizon: bigint
  #pruned: { ts: bigint; id: string }
  /** The sync in flight, and the one queued behind it (shared by every write made meanwhile). */
  #syncing: Promise<void> | null = null
  #nextSync: Promise<void> | null = null

  private constructor(
    readonly path: string,
    writer: Db,
  ) {
    this.#writer = writer
    const meta = (key: string) => writer.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(key) as string | undefined
    this.#maxTs = BigInt(meta('max_ts') ?? '0')
    this.#horizon = BigInt(meta('history_horizon') ?? '0')
    const cursor = /^(\d+) (.*)$/s.exec(meta('history_cursor') ?? '')
    this.#pruned = cursor === null ? { ts: 0n, id: '' } : { ts: BigInt(cursor[1]!), id: cursor[2]! }
    this.#stmts = {
      upsertDoc: writer.prepare('INSERT INTO documents (id, table_number, ts, json) VALUES (?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET ts = excluded.ts, json = excluded.json'),
      deleteDoc: writer.prepare('DELETE FROM documents WHERE id = ?'),
      putIndex: writer.prepare('INSERT OR REPLACE INTO index_entries (index_id, key, id) VALUES (?, ?, ?)'),
      deleteIndex: writer.prepare('DELETE FROM index_entries WHERE index_id = ? AND key = ?'),
      log: writer.prepare('INSERT INTO write_log (ts, id, table_number, json) VALUES (?, ?, ?, ?)'),
      searchEntry: writer.prepare('SELECT entry, length FROM search_documents WHERE index_id = ? AND id = ?').raw(),
      searchDeleteTerms: writer.prepare('DELETE FROM search_terms WHERE rowid = ?'),
      searchDeleteEntry: writer.prepare('DELETE FROM search_documents WHERE index_id = ? AND id = ?'),
      searchInsertTerms: writer.prepare('INSERT INTO search_terms (body, filters) VALUES (?, ?)'),
      searchInsertEntry: writer.prepare('INSERT INTO search_documents (index_id, id, entry, length) VALUES (?, ?, ?, ?)'),
      searchStats: writer.prepare('INSERT INTO search_stats (index_id, documents, terms) VALUES (?, ?, ?) ON CONFLICT(index_id) DO UPDATE SET documents = documents + excluded.documents, terms = terms + excluded.terms'),
      setMaxTs: writer.prepare("INSERT INTO meta (key, value) VALUES ('max_ts', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value"),
      setGlobal: writer.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
      getGlobal: writer.prepare('SELECT value FROM meta WHERE key = ?').pluck(),
      // History pruning: the next revisions to examine in (ts, id) order, up to the horizon...
      pruneNext: writer.prepare('SELECT ts, id, json IS NULL FROM write_log WHERE (ts, id) > (?, ?) AND ts <= ? ORDER BY ts, id LIMIT ?').raw(),
      // ...each deleting its document's earlier revisions (through write_log_by_id)...
      pruneEarlier: writer.prepare('DELETE FROM write_log WHERE id = ? AND ts < ?'),
      // ...and a deletion itself.
      pruneOne: writer.prepare('DELETE FROM write_log WHERE ts = ? AND id = ?'),
      prunePending: writer.prepare('SELECT ts FROM write_log WHERE (ts, id) > (?, ?) ORDER BY ts, id LIMIT 1').pluck(),
    }
  }

  /** Opens (creating or migrating as needed) the store at `path`. */
  static open(path: string, log: (message: string) => void = () => {}): SqlitePersistence {
    checkBeforeWriting(path)
    const writer = open(path, false)
    migrate(writer, log)
    const persistence = new SqlitePersistence(path, writer)
    const script = new URL('./checkpointer.js', import.meta.url)
    if (script.protocol === 'file:' && existsSync(script)) {
      writer.pragma('wal_autocheckpoint = 0')
      persistence.#checkpointerScript = script
      persistence.#startCheckpointerIfWalIsLarge(fileSize(`${path}-wal`))
    }
    return persistence
  }

  /**
   * Checkpoints run in a worker (dist/checkpointer.js) so the main thread never stalls on them,
   * started once the WAL first grows past CHECKPOINTER_WAL_BYTES; where that script is absent
   * (running from source), SQLite's own auto-checkpoint is used.
   */
  #startCheckpointerIfWalIsLarge(walBytes: number): void {
    const script = this.#checkpointerScript
    if (script !== null && this.#checkpointer === null && walBytes >= CHECKPOINTER_WAL_BYTES) {
      // The worker only ever runs one pragma: a small heap keeps it from costing ~10 MB idle.
      this.#checkpointer = new Worker(script, { workerData: { path: this.path }, resourceLimits: { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 1, codeRangeSizeMb: 4 } })
      this.#checkpointer.on('message', (m: unknown) => {
        if (typeof m === 'object' && m !== null && 'walPages' in m) this.#walPages = Number((m as { walPages: number }).walPages)
      })
      // A worker that fails to start or dies must not take the process with it, nor leave the WAL
      // to grow unchecked: SQLite's own auto-checkpoint takes over.
      const fallBack = () => {
        if (this.#checkpointer === null) return
        this.#checkpointer = null
        this.#checkpointerScript = null
        this.#writer.pragma('wal_autocheckpoint = 1000')
      }
      this.#checkpointer.on('error', fallBack)
      this.#checkpointer.on('exit', fallBack)
      this.#checkpointer.unref()
    }
  }

  maxTs(): bigint {
    return this.#maxTs
  }

  /** Opens the snapshot synchronously (before the returned promise settles): it sees the latest commit. */
  async snapshot(): Promise<Snapshot> {
    const reader = this.#idle.pop() ?? new Reader(open(this.path, true))
    reader.begin.run()
    const ts = BigInt((reader.maxTs.get() as string | undefined) ?? '0')
    return new SqliteSnapshot(ts, reader, (r) => this.#releaseReader(r))
  }

  #releaseReader(reader: Reader): void {
    if (this.#idle.length < MAX_IDLE_READERS) this.#idle.push(reader)
    else reader.db.close()
  }

  async write(commits: readonly CommitRecord[]): Promise<void> {
    if (commits.length === 0) return
    const s = this.#stmts
    // A failing statement or COMMIT rolls the SQLite transaction back: the file is as before.
    const write = this.#writer.transaction(() => {
      for (const commit of commits) {
        for (const { table, indexes } of commit.tables ?? []) {
          this.#writer.prepare('INSERT INTO tables (table_number, name, id_number) VALUES (?, ?, ?)').run(table.tableNumber, table.name, table.idNumber)
          for (const i of indexes) this.#insertIndex(i)
        }
        for (const d of commit.documents) {
          if (d.json === null) s.deleteDoc.run(d.id)
          else s.upsertDoc.run(d.id, d.tableNumber, commit.ts, d.json)
          s.log.run(commit.ts, d.id, d.tableNumber, d.json)
        }
        for (const w of commit.indexes) {
          if (w.id === null) s.deleteIndex.run(w.indexId, w.key)
          else s.putIndex.run(w.indexId, w.key, w.id)
        }
        for (const w of commit.search ?? []) this.#writeSearch(w.indexId, w)
        for (const w of commit.vectors ?? []) this.#writeVector(w.indexId, w)
      }
      s.setMaxTs.run(String(commits[commits.length - 1]!.ts))
    })
    try {
      write()
    } catch (e) {
      throw new WriteNotApplied(e)
    }
    await this.#sync()
    // Only now durable: `maxTs()` never names a commit a crash could still lose.
    this.#maxTs = commits[commits.length - 1]!.ts
  }

  /** Replaces a document's entry in a search index (inside the caller's transaction). */
  #writeSearch(indexId: number, w: SearchWrite): void {
    const s = this.#stmts
    const old = s.searchEntry.get(indexId, w.id) as [bigint, bigint] | undefined
    let documents = 0
    let terms = 0
    if (old !== undefined) {
      s.searchDeleteTerms.run(old[0])
      s.searchDeleteEntry.run(indexId, w.id)
      documents--
      terms -= Number(old[1])
    }
    if (w.entry !== null) {
      const body = w.entry.terms.map((t) => bodyToken(indexId, t)).join(' ')
      const filters = w.entry.filterKeys.map((k, i) => filterToken(indexId, i, k)).join(' ')
      const info = s.searchInsertTerms.run(body, filters)
      s.searchInsertEntry.run(indexId, w.id, info.lastInsertRowid, w.entry.terms.length)
      documents++
      terms += w.entry.terms.length
    }
    if (documents !== 0 || terms !== 0) s.searchStats.run(indexId, documents, terms)
  }

  /** Statements writing a vector index's entries, prepared once per index. */
  readonly #vectorStatements = new Map<number, { remove: Database.Statement; insert: Database.Statement }>()

  /** Replaces a document's entry in a vector index (inside the caller's transaction). */
  #writeVector(indexId: number, w: VectorWrite): void {
    let st = this.#vectorStatements.get(indexId)
    if (st === undefined) {
      const table = vectorTable(indexId)
      const config = JSON.parse(this.#writer.prepare('SELECT vector FROM indexes WHERE index_id = ?').pluck().get(indexId) as string) as VectorIndexConfig
      const filters = config.filterFields.map((_, i) => `f${i}`)
      st = {
        remove: this.#writer.prepare(`DELETE FROM ${table} WHERE id = ?`),
        insert: this.#writer.prepare(`INSERT INTO ${table} (id, vector${filters.map((f) => `, ${f}`).join('')}) VALUES (?, ?${filters.map(() => ', ?').join('')})`),
      }
      this.#vectorStatements.set(indexId, st)
    }
    st.remove.run(w.id)
    if (w.entry !== null) st.insert.run(w.id, vectorBlob(w.entry.vector).blob, ...w.entry.filterKeys.map(filterInteger))
  }

  /** Resolves once everything written so far is on disk. */
  #sync(): Promise<void> {
    if (this.#syncing === null) {
      this.#syncing = this.#fdatasync().finally(() => {
        this.#syncing = null
      })
      return this.#syncing
    }
    // The sync in flight may have started before our write: ride on the next one.
    this.#nextSync ??= this.#syncing.then(() => {
      this.#nextSync = null
      return this.#sync()
    })
    return this.#nextSync
  }

  async #fdatasync(): Promise<void> {
    this.#wal ??= await openFile(`${this.path}-wal`, 'r')
    await this.#wal.datasync()
    // The WAL file never shrinks (SQLite reuses it from the start), so its size is a high-water mark.
    if (this.#checkpointer === null && this.#checkpointerScript !== null) this.#startCheckpointerIfWalIsLarge(fstatSync(this.#wal.fd).size)
  }

  async loadLog(afterTs: bigint, upToTs: bigint, limit: number): Promise<LogEntry[]> {
    const rows = this.#writer.prepare('SELECT ts, id, table_number, json FROM write_log WHERE ts > ? AND ts <= ? ORDER BY ts, id LIMIT ?').raw().all(afterTs, upToTs, limit) as [bigint, string, bigint, string | null][]
    return rows.map(([ts, id, tableNumber, json]) => ({ ts, id, tableNumber: Number(tableNumber), json }))
  }

  async documentsAt(ids: readonly string[], ts: bigint): Promise<Map<string, LogEntry>> {
    const out = new Map<string, LogEntry>()
    const statement = this.#writer.prepare('SELECT ts, table_number, json FROM write_log WHERE id = ? AND ts <= ? ORDER BY ts DESC LIMIT 1').raw()
    for (const id of ids) {
      const row = statement.get(id, ts) as [bigint, bigint, string | null] | undefined
      if (row !== undefined) out.set(id, { ts: row[0], id, tableNumber: Number(row[1]), json: row[2] })
    }
    return out
  }

  historyHorizon(): bigint {
    return this.#horizon
  }

  /**
   * Revisions are examined in (ts, id) order, each once, from where the last call stopped
   * (`meta.history_cursor`); commits always land after the horizon, so nothing is ever added
   * behind the cursor. An examined revision deletes its document's earlier revisions: with
   * every revision examined in order, that is at most the one before it. So the write log holds
   * about one revision per live document below the horizon, and every revision after it.
   */
  async pruneHistory(horizon: bigint, limit: number): Promise<HistoryPruning> {
    const s = this.#stmts
    const target = horizon > this.#maxTs ? this.#maxTs : horizon
    const moved = target > this.#horizon
    if (moved) this.#horizon = target
    const rows = s.pruneNext.all(this.#pruned.ts, this.#pruned.id, this.#horizon, Math.max(0, Math.trunc(limit))) as [bigint, string, bigint][]
    let deleted = 0
    if (rows.length > 0 || moved) {
      this.#writer.transaction(() => {
        for (const [ts, id, tombstone] of rows) {
          deleted += s.pruneEarlier.run(id, ts).changes
          if (tombstone === 1n) deleted += s.pruneOne.run(ts, id).changes
        }
        const last = rows[rows.length - 1]
        if (last !== undefined) {
          this.#pruned = { ts: last[0], id: last[1] }
          s.setGlobal.run('history_cursor', `${last[0]} ${last[1]}`)
        }
        s.setGlobal.run('history_horizon', String(this.#horizon))
      })()
    }
    const pending = s.prunePending.get(this.#pruned.ts, this.#pruned.id) as bigint | undefined
    return { examined: rows.length, deleted, pending: pending ?? null }
  }

  async tables(): Promise<TableRecord[]> {
    const rows = this.#writer.prepare('SELECT table_number, name, id_number FROM tables ORDER BY table_number').raw().all() as [bigint, string, bigint][]
    return rows.map(([n, name, id]) => ({ tableNumber: Number(n), name, idNumber: Number(id) }))
  }

  async createTable(name: string, tableNumber: number, idNumber = tableNumber, indexes: readonly IndexRecord[] = []): Promise<void> {
    this.#writer.transaction(() => {
      this.#writer.prepare('INSERT INTO tables (table_number, name, id_number) VALUES (?, ?, ?)').run(tableNumber, name, idNumber)
      for (const i of indexes) this.#insertIndex(i)
    })()
    await this.#sync()
  }

  async indexes(): Promise<IndexRecord[]> {
    const rows = this.#writer.prepare('SELECT index_id, table_number, name, fields, search, vector, staged FROM indexes ORDER BY index_id').raw().all() as [bigint, bigint, string, string, string | null, string | null, bigint][]
    return rows.map(([indexId, tableNumber, name, fields, search, vector, staged]) => {
      const record: IndexRecord = { indexId: Number(indexId), tableNumber: Number(tableNumber), name, fields: JSON.parse(fields) as string[] }
      return {
        ...record,
        ...(search === null ? {} : { search: JSON.parse(search) as SearchIndexConfig }),
        ...(vector === null ? {} : { vector: JSON.parse(vector) as VectorIndexConfig }),
        ...(staged === 0n ? {} : { staged: true }),
      }
    })
  }

  /** Inserts an index's row (inside the caller's transaction). */
  #insertIndex(index: IndexRecord): void {
    const search = index.search === undefined ? null : JSON.stringify({ searchField: index.search.searchField, filterFields: index.search.filterFields })
    const vector = index.vector === undefined ? null : JSON.stringify({ vectorField: index.vector.vectorField, dimensions: index.vector.dimensions, filterFields: index.vector.filterFields })
    this.#writer
      .prepare('INSERT INTO indexes (index_id, table_number, name, fields, search, vector, staged) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(index.indexId, index.tableNumber, index.name, JSON.stringify(index.fields), search, vector, index.staged === true ? 1 : 0)
  }

  async createIndex(index: IndexRecord, backfill: readonly IndexWrite[], searchBackfill: readonly SearchWrite[] = [], vectorBackfill: readonly VectorWrite[] = []): Promise<IndexRecord> {
    const s = this.#stmts
    const record = this.#writer.transaction(() => {
      this.#insertIndex(index)
      const indexId = index.indexId
      for (const w of backfill) s.putIndex.run(indexId, w.key, w.id)
      for (const w of searchBackfill) this.#writeSearch(indexId, w)
      if (index.vector !== undefined) {
        createVectorTable(this.#writer, indexId, index.vector)
        for (const w of vectorBackfill) this.#writeVector(indexId, w)
      }
      return { ...index, indexId }
    })()
    await this.#sync()
    return record
  }

  async dropIndex(indexId: number): Promise<void> {
    this.#writer.transaction(() => {
      this.#writer.prepare('DELETE FROM index_entries WHERE index_id = ?').run(indexId)
      this.#writer.prepare('DELETE FROM search_terms WHERE rowid IN (SELECT entry FROM search_documents WHERE index_id = ?)').run(indexId)
      this.#writer.prepare('DELETE FROM search_documents WHERE index_id = ?').run(indexId)
      this.#writer.prepare('DELETE FROM search_stats WHERE index_id = ?').run(indexId)
      this.#writer.exec(`DROP TABLE IF EXISTS ${vectorTable(indexId)}`)
      this.#writer.prepare('DELETE FROM indexes WHERE index_id = ?').run(indexId)
    })()
    this.#vectorStatements.delete(indexId)
    await this.#sync()
  }

  async dropTable(tableNumber: number): Promise<void> {
    this.#writer.prepare("UPDATE tables SET name = '~dropped~' || table_number WHERE table_number = ?").run(tableNumber)
    await this.#sync()
  }

  async setIndexStaged(indexId: number, staged: boolean): Promise<void> {
    this.#writer.prepare('UPDATE indexes SET staged = ? WHERE index_id = ?').run(staged ? 1 : 0, indexId)
    await this.#sync()
  }

  async renameIndex(indexId: number, name: string): Promise<void> {
    this.#writer.prepare('UPDATE indexes SET name = ? WHERE index_id = ?').run(name, indexId)
    await this.#sync()
  }

  async scanTable(tableNumber: number, afterId: string, limit: number): Promise<StoredDocument[]> {
    const rows = this.#writer.prepare('SELECT id, json FROM documents WHERE table_number = ? AND id > ? ORDER BY id LIMIT ?').raw().all(tableNumber, afterId, limit) as [string, string][]
    return rows.map(([id, json]) => ({ id, tableNumber, json }))
  }

  async writeIndexEntries(entries: readonly IndexWrite[]): Promise<void> {
    const s = this.#stmts
    this.#writer.transaction(() => {
      for (const w of entries) {
        if (w.id === null) s.deleteIndex.run(w.indexId, w.key)
        else s.putIndex.run(w.indexId, w.key, w.id)
      }
    })()
    await this.#sync()
  }

  async tableDocuments(tableNumber: number): Promise<StoredDocument[]> {
    const rows = this.#writer.prepare('SELECT id, json FROM documents WHERE table_number = ?').raw().all(tableNumber) as [string, string][]
    return rows.map(([id, json]) => ({ id, tableNumber, json }))
  }

  async modules(): Promise<ModuleRecord[]> {
    const rows = this.#writer.prepare('SELECT path, environment, source, source_map, hash FROM modules ORDER BY path').raw().all() as [string, 'isolate' | 'node', string, string | null, string][]
    return rows.map(([path, environment, source, sourceMap, hash]) => ({ path, environment, source, sourceMap, hash }))
  }

  async replaceModules(modules: readonly ModuleRecord[], globals: Record<string, string>): Promise<void> {
    this.#writer.transaction(() => {
      this.#writer.prepare('DELETE FROM modules').run()
      const insert = this.#writer.prepare('INSERT INTO modules (path, environment, source, source_map, hash) VALUES (?, ?, ?, ?, ?)')
      for (const m of modules) insert.run(m.path, m.environment, m.source, m.sourceMap, m.hash)
      for (const [k, v] of Object.entries(globals)) this.#stmts.setGlobal.run(k, v)
    })()
    await this.#sync()
  }

  /**
   * SQLite's upkeep: when the WAL has grown past WAL_BARRIER_PAGES (readers never all let go at
   * once), copy it into the database and truncate it, with no reader open.
   */
  readonly quiescentMaintenance = {
    wanted: (): boolean => this.#walPages > WAL_BARRIER_PAGES,
    run: async (): Promise<void> => {
      this.#writer.pragma('wal_checkpoint(TRUNCATE)')
      this.#walPages = 0
    },
  }

  async getGlobal(key: string): Promise<string | undefined> {
    return this.#stmts.getGlobal.get(key) as string | undefined
  }

  async setGlobal(key: string, value: string): Promise<void> {
    this.#stmts.setGlobal.run(key, value)
  }

  async globals(): Promise<Map<string, string>> {
    const rows = this.#writer.prepare(`SELECT key, value FROM meta WHERE key NOT IN (${STORE_KEYS.map(() => '?').join(', ')}) ORDER BY key`).raw().all(...STORE_KEYS) as [string, string][]
    return new Map(rows)
  }

  async sizeBytes(): Promise<number> {
    // The database file and its write-ahead log.
    let total = 0
    for (const f of [this.path, `${this.path}-wal`]) {
      try {
        total += statSync(f).size
      } catch {
        // no WAL right now
      }
    }
    return total
  }

  async setGlobalIfAbsent(key: string, value: string): Promise<string> {
    const stored = this.#stmts.getGlobal.get(key) as string | undefined
    if (stored !== undefined) return stored
    this.#stmts.setGlobal.run(key, value)
    return value
  }

  async close(): Promise<void> {
    await this.#syncing
    await this.#nextSync
    await this.#wal?.close()
    this.#wal = null
    const checkpointer = this.#checkpointer
    if (checkpointer !== null) {
      // The worker is unref'd; while we wait for it, it must keep the process alive.
      checkpointer.ref()
      await new Promise<void>((resolve) => {
        checkpointer.on('message', (m: unknown) => m === 'stopped' && resolve())
        checkpointer.once('exit', () => resolve())
        checkpointer.postMessage('stop')
      })
      await checkpointer.terminate()
      this.#checkpointer = null
    }
    for (const r of this.#idle) r.db.close()
    this.#idle.length = 0
    this.#writer.pragma('wal_checkpoint(TRUNCATE)')
    this.#writer.close()
  }
}

function fileSize(path: string): number {
  return existsSync(path) ? statSync(path).size : 0
}

/**
 * Refuses an existing file that is not a SQLite database, or that a newer version wrote, before
 * anything writes to it (switching to WAL alone would rewrite its header): it is left as it was.
 */
function checkBeforeWriting(path: string): void {
  if (!existsSync(path) || statSync(path).size === 0) return
  let version: number
  try {
    const db = new Database(path, { readonly: true, fileMustExist: true })
    try {
      const hasMeta = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get() !== undefined
      version = hasMeta ? Number((db.prepare("SELECT value FROM meta WHERE key = 'format_version'").pluck().get() as string | undefined) ?? '0') : 0
    } finally {
      db.close()
    }
  } catch (e) {
    throw new Error(`${path} is not a Concave data file (SQLite database): ${(e as Error).message}`)
  }
  if (version > FORMAT_VERSION) throw newerVersion(version)
}

function newerVersion(version: number): Error {
  return new Error(`The data file has format version ${version}, newer than this build supports (${FORMAT_VERSION}). Upgrade Concave to open it.`)
}

/** Brings the file to FORMAT_VERSION; refuses a file written by a newer version. */
function migrate(db: Db, log: (message: string) => void): void {
  db.exec('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)')
  const current = Number((db.prepare("SELECT value FROM meta WHERE key = 'format_version'").pluck().get() as string | undefined) ?? '0')
  if (current > FORMAT_VERSION) {
    throw newerVersion(current)
  }
  for (let v = current + 1; v <= FORMAT_VERSION; v++) {
    if (current > 0) log(`Executing migration ${v}/${FORMAT_VERSION}`)
    db.transaction(() => {
      db.exec(MIGRATIONS[v - 1]!)
      db.prepare("INSERT INTO meta (key, value) VALUES ('format_version', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(String(v))
    })()
  }
  if (current > 0 && current < FORMAT_VERSION) log(`MigrationComplete(${FORMAT_VERSION})`)
}
