/**
 * @module The storage interface. Everything above `storage/` talks to the store only through these
 * types, so that a Postgres implementation can replace SQLite without touching callers.
 *
 * The model: documents keyed by id, ordered index entries (index id + order-preserving key → document
 * id), and an append-only write log of every revision with its commit timestamp. A `Snapshot` is a
 * consistent read view at one commit timestamp; `write` appends a group of commits atomically and
 * durably. Methods are async so that a networked store fits behind the same interface (it resolves only once the data would survive a crash).
 */

/** A stored document: its id, table and the Convex-encoded JSON text (system fields included). */
export interface StoredDocument {
  readonly id: string
  readonly tableNumber: number
  readonly json: string
}

/** One row of an index scan. */
export interface IndexRow {
  readonly key: Buffer
  readonly doc: StoredDocument
}

/** A half-open key interval `[lo, hi)`; `hi === null` means unbounded above. */
export interface KeyInterval {
  readonly lo: Buffer
  readonly hi: Buffer | null
}

export type Order = 'asc' | 'desc'

/** A consistent read view at commit timestamp `ts`. Release it when done. */
export interface Snapshot {
  readonly ts: bigint
  getDocument(id: string): Promise<StoredDocument | null>
  /** Up to `limit` rows of `index` within `interval`, in key order (or reverse for 'desc'). */
  scan(indexId: number, interval: KeyInterval, order: Order, limit: number): Promise<IndexRow[]>
  countTable(tableNumber: number): Promise<number>
  release(): void
}

/** A document revision to write: `json === null` deletes the document. */
export interface DocumentWrite {
  readonly id: string
  readonly tableNumber: number
  readonly json: string | null
}

/** An index entry change: `id === null` removes the entry at `key`. */
export interface IndexWrite {
  readonly indexId: number
  readonly key: Buffer
  readonly id: string | null
}

/** One revision in the write log (`json === null`: deleted at `ts`). */
export interface LogEntry {
  readonly ts: bigint
  readonly id: string
  readonly tableNumber: number
  readonly json: string | null
}

/** One transaction's writes at its commit timestamp. */
export interface CommitRecord {
  readonly ts: bigint
  readonly documents: readonly DocumentWrite[]
  readonly indexes: readonly IndexWrite[]
}

export interface TableRecord {
  readonly tableNumber: number
  readonly name: string
}

export interface IndexRecord {
  readonly indexId: number
  readonly tableNumber: number
  /** `by_id`, `by_creation_time`, or the schema's index descriptor. */
  readonly name: string
  /** Indexed field paths, not counting the implicit `_creationTime` and `_id` suffix. */
  readonly fields: readonly string[]
}

export interface ModuleRecord {
  readonly path: string
  readonly environment: 'isolate' | 'node'
  readonly source: string
  readonly sourceMap: string | null
  readonly hash: string
}

/**
 * The store. Reads go through snapshots; `write` is called only by the committer, which is the
 * single writer. Catalog changes (tables, indexes, modules, globals) are small and rare and are
 * written immediately.
 */
export interface Persistence {
  /** The highest commit timestamp ever written (0n for a new store). */
  maxTs(): bigint
  /** A snapshot at the latest commit. */
  snapshot(): Promise<Snapshot>
  /** Atomically and durably append `commits` (in increasing ts order). */
  write(commits: readonly CommitRecord[]): Promise<void>
  /** Revisions written after `afterTs` up to and including `upToTs`, oldest first (at most `limit`). */
  loadLog(afterTs: bigint, upToTs: bigint, limit: number): Promise<LogEntry[]>
  /** For each id changed after `ts`: its newest revision at or before `ts` (absent if none). */
  documentsAt(ids: readonly string[], ts: bigint): Promise<Map<string, LogEntry>>

  tables(): Promise<TableRecord[]>
  createTable(name: string, tableNumber: number): Promise<void>
  indexes(): Promise<IndexRecord[]>
  createIndex(index: Omit<IndexRecord, 'indexId'>, backfill: readonly IndexWrite[]): Promise<IndexRecord>
  dropIndex(indexId: number): Promise<void>
  /** All documents of a table at the latest commit (for index backfill and schema checks). */
  tableDocuments(tableNumber: number): Promise<StoredDocument[]>

  modules(): Promise<ModuleRecord[]>
  /** Replace the whole module set and the globals given, in one transaction. */
  replaceModules(modules: readonly ModuleRecord[], globals: Record<string, string>): Promise<void>

  /**
   * Whether the store wants a checkpoint with no reader open (SQLite: the WAL has grown large
   * because readers never all let go at once). The database then briefly holds new transactions
   * back, waits for open ones, and calls `checkpoint`.
   */
  wantsQuiescentCheckpoint(): boolean
  checkpoint(): Promise<void>

  getGlobal(key: string): Promise<string | undefined>
  setGlobal(key: string, value: string): Promise<void>

  close(): Promise<void>
}
