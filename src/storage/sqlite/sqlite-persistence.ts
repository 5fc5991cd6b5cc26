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
import { open as openFile } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { Worker } from 'node:worker_threads'
import type {
  CommitRecord,
  IndexRecord,
  IndexRow,
  IndexWrite,
  KeyInterval,
  LogEntry,
  ModuleRecord,
  Order,
  Persistence,
  Snapshot,
  StoredDocument,
  TableRecord,
} from '../persistence.ts'
import { MIGRATIONS, FORMAT_VERSION } from './migrations.ts'

/** WAL size (pages, 4 KiB each) past which a checkpoint with no reader open is asked for: 64 MiB. */
const WAL_BARRIER_PAGES = 16_384

/** Idle reader connections kept open for reuse; more are opened on demand and closed when released. */
const MAX_IDLE_READERS = 8

type Db = Database.Database

function open(path: string, readonly: boolean): Db {
  const db = new Database(path, { readonly, fileMustExist: readonly })
  db.pragma('busy_timeout = 10000')
  if (!readonly) {
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = NORMAL')
  }
  db.defaultSafeIntegers(true)
  return db
}

/** Prepared statements of a reader connection. */
class Reader {
  readonly begin
  readonly commit
  readonly maxTs
  readonly getDoc
  readonly count
  readonly scans: Record<string, Database.Statement>
  constructor(readonly db: Db) {
    this.begin = db.prepare('BEGIN')
    this.commit = db.prepare('COMMIT')
    this.maxTs = db.prepare("SELECT value FROM meta WHERE key = 'max_ts'").pluck()
    this.getDoc = db.prepare('SELECT table_number, json FROM documents WHERE id = ?').raw()
    this.count = db.prepare('SELECT count(*) FROM documents WHERE table_number = ?').pluck()
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
  /** WAL pages the checkpointer last saw. */
  #walPages = 0
  /** The sync in flight, and the one queued behind it (shared by every write made meanwhile). */
  #syncing: Promise<void> | null = null
  #nextSync: Promise<void> | null = null

  private constructor(
    readonly path: string,
    writer: Db,
  ) {
    this.#writer = writer
    this.#maxTs = BigInt((writer.prepare("SELECT value FROM meta WHERE key = 'max_ts'").pluck().get() as string | undefined) ?? '0')
    this.#stmts = {
      upsertDoc: writer.prepare('INSERT INTO documents (id, table_number, ts, json) VALUES (?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET ts = excluded.ts, json = excluded.json'),
      deleteDoc: writer.prepare('DELETE FROM documents WHERE id = ?'),
      putIndex: writer.prepare('INSERT OR REPLACE INTO index_entries (index_id, key, id) VALUES (?, ?, ?)'),
      deleteIndex: writer.prepare('DELETE FROM index_entries WHERE index_id = ? AND key = ?'),
      log: writer.prepare('INSERT INTO write_log (ts, id, table_number, json) VALUES (?, ?, ?, ?)'),
      setMaxTs: writer.prepare("INSERT INTO meta (key, value) VALUES ('max_ts', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value"),
      setGlobal: writer.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
      getGlobal: writer.prepare('SELECT value FROM meta WHERE key = ?').pluck(),
    }
  }

  /** Opens (creating or migrating as needed) the store at `path`. */
  static open(path: string, log: (message: string) => void = () => {}): SqlitePersistence {
    const writer = open(path, false)
    migrate(writer, log)
    const persistence = new SqlitePersistence(path, writer)
    persistence.#startCheckpointer()
    return persistence
  }

  /**
   * Checkpoints run in a worker (dist/checkpointer.js) so the main thread never stalls on them;
   * where that script is absent (running from source), SQLite's own auto-checkpoint is used.
   */
  #startCheckpointer(): void {
    const script = new URL('./checkpointer.js', import.meta.url)
    if (script.protocol === 'file:' && existsSync(script)) {
      this.#writer.pragma('wal_autocheckpoint = 0')
      this.#checkpointer = new Worker(script, { workerData: { path: this.path } })
      this.#checkpointer.on('message', (m: unknown) => {
        if (typeof m === 'object' && m !== null && 'walPages' in m) this.#walPages = Number((m as { walPages: number }).walPages)
      })
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
    this.#writer.transaction(() => {
      for (const commit of commits) {
        for (const d of commit.documents) {
          if (d.json === null) s.deleteDoc.run(d.id)
          else s.upsertDoc.run(d.id, d.tableNumber, commit.ts, d.json)
          s.log.run(commit.ts, d.id, d.tableNumber, d.json)
        }
        for (const w of commit.indexes) {
          if (w.id === null) s.deleteIndex.run(w.indexId, w.key)
          else s.putIndex.run(w.indexId, w.key, w.id)
        }
      }
      s.setMaxTs.run(String(commits[commits.length - 1]!.ts))
    })()
    this.#maxTs = commits[commits.length - 1]!.ts
    await this.#sync()
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

  async tables(): Promise<TableRecord[]> {
    const rows = this.#writer.prepare('SELECT table_number, name FROM tables ORDER BY table_number').raw().all() as [bigint, string][]
    return rows.map(([n, name]) => ({ tableNumber: Number(n), name }))
  }

  async createTable(name: string, tableNumber: number): Promise<void> {
    this.#writer.prepare('INSERT INTO tables (table_number, name) VALUES (?, ?)').run(tableNumber, name)
    await this.#sync()
  }

  async indexes(): Promise<IndexRecord[]> {
    const rows = this.#writer.prepare('SELECT index_id, table_number, name, fields FROM indexes ORDER BY index_id').raw().all() as [bigint, bigint, string, string][]
    return rows.map(([indexId, tableNumber, name, fields]) => ({ indexId: Number(indexId), tableNumber: Number(tableNumber), name, fields: JSON.parse(fields) as string[] }))
  }

  async createIndex(index: Omit<IndexRecord, 'indexId'>, backfill: readonly IndexWrite[]): Promise<IndexRecord> {
    const s = this.#stmts
    const record = this.#writer.transaction(() => {
      const info = this.#writer.prepare('INSERT INTO indexes (table_number, name, fields) VALUES (?, ?, ?)').run(index.tableNumber, index.name, JSON.stringify(index.fields))
      const indexId = Number(info.lastInsertRowid)
      for (const w of backfill) s.putIndex.run(indexId, w.key, w.id)
      return { ...index, indexId }
    })()
    await this.#sync()
    return record
  }

  async dropIndex(indexId: number): Promise<void> {
    this.#writer.transaction(() => {
      this.#writer.prepare('DELETE FROM index_entries WHERE index_id = ?').run(indexId)
      this.#writer.prepare('DELETE FROM indexes WHERE index_id = ?').run(indexId)
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

  wantsQuiescentCheckpoint(): boolean {
    return this.#walPages > WAL_BARRIER_PAGES
  }

  /** Copies the whole WAL into the database and truncates it (no reader may be open). */
  async checkpoint(): Promise<void> {
    this.#writer.pragma('wal_checkpoint(TRUNCATE)')
    this.#walPages = 0
  }

  async getGlobal(key: string): Promise<string | undefined> {
    return this.#stmts.getGlobal.get(key) as string | undefined
  }

  async setGlobal(key: string, value: string): Promise<void> {
    this.#stmts.setGlobal.run(key, value)
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

/** Brings the file to FORMAT_VERSION; refuses a file written by a newer version. */
function migrate(db: Db, log: (message: string) => void): void {
  db.exec('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)')
  const current = Number((db.prepare("SELECT value FROM meta WHERE key = 'format_version'").pluck().get() as string | undefined) ?? '0')
  if (current > FORMAT_VERSION) {
    throw new Error(`The data file has format version ${current}, newer than this build supports (${FORMAT_VERSION}). Upgrade Concave to open it.`)
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
