/**
 * @module The storage interface. Everything above `storage/` talks to the store only through these
 * types, so that a Postgres implementation can replace SQLite without touching callers.
 *
 * The model: documents keyed by id, ordered index entries (index id + order-preserving key → document
 * id), and a write log of revisions with their commit timestamps (appended by every commit, pruned
 * below the history horizon: see `pruneHistory`). A `Snapshot` is a
 * consistent read view at one commit timestamp; `write` appends a group of commits atomically and
 * durably. Methods are async so that a networked store fits behind the same interface (it resolves only once the data would survive a crash).
 *
 * Search indexes are the same idea for full-text search: per (search index, document) an entry
 * of the document's search terms and filter keys, written with the commit that changed the
 * document. The store matches entries and reports term statistics; ranking is done above it.
 *
 * Vector indexes likewise: per (vector index, document) an entry of the document's vector and
 * filter keys, written with the commit that changed the document; the store finds the nearest
 * entries by cosine similarity (exactly: every entry that passes the filter is compared).
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

/** A search index's entry for one document: what the store indexes (computed above the store). */
export interface SearchEntry {
  /**
   * The search field's terms in order (tokenized and lowercased; empty if it isn't a string).
   * Each term is a run of Unicode letters, marks and digits: no whitespace, no ASCII punctuation.
   */
  readonly terms: readonly string[]
  /** One opaque key per filter field, in the index's `filterFields` order (ASCII letters and digits). */
  readonly filterKeys: readonly string[]
}

/** A full-text query against one search index, already tokenized. */
export interface SearchQuery {
  /** Terms matched exactly. */
  readonly terms: readonly string[]
  /**
   * Terms starting with `prefix` match too: the `maxPrefixTerms` smallest such terms of the
   * index (in UTF-8 byte order), which the result reports as `prefixTerms`.
   */
  readonly prefix: string | null
  readonly maxPrefixTerms: number
  /** Equality filters, all of which must hold: filter field position → key. */
  readonly filters: readonly { readonly field: number; readonly key: string }[]
  /** At most this many documents: the best ones by the store's own relevance ranking (e.g. BM25). */
  readonly limit: number
}

/** What a search matched, with the statistics needed to rank it (BM25). */
export interface SearchResult {
  /** The terms `prefix` expanded to. */
  readonly prefixTerms: readonly string[]
  /** Documents in the index, and the sum of their term counts. */
  readonly documentCount: number
  readonly termCount: number
  /** For each query term and prefix term: how many documents of the index contain it. */
  readonly documentFrequency: ReadonlyMap<string, number>
  /** Documents containing at least one query or prefix term and passing every filter. */
  readonly documents: readonly StoredDocument[]
}

/** A vector index's entry for one document (computed above the store). */
export interface VectorEntry {
  /** Exactly the index's `dimensions` numbers, as 32-bit floats. */
  readonly vector: Float32Array
  /** One opaque key per filter field, in the index's `filterFields` order (32 lowercase hex digits). */
  readonly filterKeys: readonly string[]
}

/** A nearest-neighbour query against one vector index. */
export interface VectorQuery {
  /** Exactly the index's `dimensions` numbers. */
  readonly vector: Float32Array
  /** At most this many results (0 gives none). */
  readonly limit: number
  /**
   * Filters: an entry passes if any of them holds (Convex's `q.or`); every filter is a filter
   * field position and the keys it may equal. Empty: every entry passes.
   */
  readonly filters: readonly { readonly field: number; readonly keys: readonly string[] }[]
}

/** One vector search result: a document and its cosine similarity to the query, in [-1, 1]. */
export interface VectorHit {
  readonly id: string
  readonly score: number
}

/** A consistent read view at commit timestamp `ts`. Release it when done. */
export interface Snapshot {
  readonly ts: bigint
  getDocument(id: string): Promise<StoredDocument | null>
  /** Up to `limit` rows of `index` within `interval`, in key order (or reverse for 'desc'). */
  scan(indexId: number, interval: KeyInterval, order: Order, limit: number): Promise<IndexRow[]>
  countTable(tableNumber: number): Promise<number>
  /**
   * Runs a full-text query against a search index. Optional: where a snapshot lacks it (the
   * historical view of `/api/query_at_ts`), the database evaluates the query over a scan of the
   * table instead, which gives the same results more slowly.
   */
  search?(indexId: number, query: SearchQuery): Promise<SearchResult>
  /**
   * The entries of a vector index nearest to the query vector, best first (cosine similarity,
   * highest first; equal scores in any order). Optional: vector searches (actions only, as in
   * Convex) always read the latest snapshot, never a historical view.
   */
  vectorSearch?(indexId: number, query: VectorQuery): Promise<VectorHit[]>
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

/** A search index entry change: `entry === null` removes the document from the index. */
export interface SearchWrite {
  readonly indexId: number
  readonly id: string
  readonly entry: SearchEntry | null
}

/** A vector index entry change: `entry === null` removes the document from the index. */
export interface VectorWrite {
  readonly indexId: number
  readonly id: string
  readonly entry: VectorEntry | null
}

/** One revision in the write log (`json === null`: deleted at `ts`). */
export interface LogEntry {
  readonly ts: bigint
  readonly id: string
  readonly tableNumber: number
  readonly json: string | null
}

/** What one `pruneHistory` call did. */
export interface HistoryPruning {
  /** Revisions examined (at most the call's `limit`). */
  readonly examined: number
  /** Revisions deleted. */
  readonly deleted: number
  /** The commit timestamp of the next revision still to examine (null: every revision has been). */
  readonly pending: bigint | null
}

/** One transaction's writes at its commit timestamp. */
export interface CommitRecord {
  readonly ts: bigint
  /**
   * Tables the transaction created, with their indexes (numbered by the caller), stored before
   * its writes and atomically with them: a commit that fails leaves no table behind.
   */
  readonly tables?: readonly { readonly table: TableRecord; readonly indexes: readonly IndexRecord[] }[]
  readonly documents: readonly DocumentWrite[]
  readonly indexes: readonly IndexWrite[]
  /** Search index entries to (re)write, for documents whose entry changed. */
  readonly search?: readonly SearchWrite[]
  /** Vector index entries to (re)write, for documents whose entry changed. */
  readonly vectors?: readonly VectorWrite[]
  /**
   * Every key the commit touched (its index writes and the table-name keys of its inserts), kept
   * in a shared store's commit log for the other processes' conflict checks and subscriptions.
   * A store serving one process may ignore it.
   */
  readonly touched?: readonly TouchedKey[]
  /** The commit marks a change of the catalog (tables, indexes) beside the documents. */
  readonly catalog?: boolean
  /** The commit marks a push (modules, schema, components and the app's settings changed). */
  readonly push?: boolean
}

/** An index key a commit touched (`TABLE_NAMES_INDEX` 0: a table name). */
export interface TouchedKey {
  readonly indexId: number
  readonly key: Buffer
}

/** A commit as a shared store's commit log keeps it, for every process to follow. */
export interface LoggedCommit {
  readonly ts: bigint
  readonly touched: readonly TouchedKey[]
  /** Tables or indexes changed: the catalog must be read again. */
  readonly catalog: boolean
  /** A push landed: modules, schema, components and settings must be read again. */
  readonly push: boolean
}

/**
 * A table of any component. `tableNumber` is its key in the store (what documents, index records
 * and the write log name it by): unique among all tables of the deployment, every component's
 * included, dropped ones too. `idNumber` is the number its documents' ids carry (Convex's
 * TableNumber): unique only within its component (the app and each component instance number
 * their tables on their own, as in Convex). Tables stored before per-component numbering have
 * both equal.
 */
export interface TableRecord {
  readonly tableNumber: number
  readonly name: string
  readonly idNumber: number
}

export interface IndexRecord {
  readonly indexId: number
  readonly tableNumber: number
  /** `by_id`, `by_creation_time`, or the schema's index descriptor. */
  readonly name: string
  /** Indexed field paths, not counting the implicit `_creationTime` and `_id` suffix (none for a search index). */
  readonly fields: readonly string[]
  /** Present for a full-text search index. */
  readonly search?: SearchIndexConfig
  /** Present for a vector index. */
  readonly vector?: VectorIndexConfig
  /**
   * Declared `staged: true` in the schema: built and kept current like any index, but queries
   * may not use it until a push enables it.
   */
  readonly staged?: boolean
}

export interface SearchIndexConfig {
  readonly searchField: string
  readonly filterFields: readonly string[]
}

export interface VectorIndexConfig {
  readonly vectorField: string
  /** 2 to 4096. */
  readonly dimensions: number
  readonly filterFields: readonly string[]
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
/** A write that failed and left the store exactly as it was (e.g. the disk was full). */
export class WriteNotApplied extends Error {
  constructor(cause: unknown) {
    super((cause as Error)?.message ?? String(cause), { cause })
  }
}

/**
 * A guarded write found the store past the timestamp it expected: another process committed
 * meanwhile. Nothing was applied; `foreign` are the commits the caller hadn't seen, oldest first.
 */
export class StaleWrite extends Error {
  constructor(readonly foreign: readonly LoggedCommit[]) {
    super(`The store has ${foreign.length} commit(s) this process hasn't seen`)
  }
}

/** A store-wide hold on writes (see `SharedStore.holdWrites`). */
export interface WriteHold {
  /** Commits made since the holder's known timestamp, oldest first (to catch up on before acting). */
  readonly foreign: readonly LoggedCommit[]
  /**
   * Ends the hold; with `marker`, first logs it as a commit (no documents) so that every process
   * sees what changed (its `ts` above every commit so far) before its next write.
   */
  release(marker: { ts: bigint; catalog: boolean; push: boolean; touched?: readonly TouchedKey[] } | null): Promise<void>
  /** Writes commits during the hold (as `write`, no other process writing meanwhile). */
  write(commits: readonly CommitRecord[]): Promise<void>
}

/** Held by at most one process of a shared store at a time (see `SharedStore.lease`). */
export interface Lease {
  readonly held: boolean
  /** Called whenever `held` changes. */
  onChange(listener: (held: boolean) => void): void
  close(): Promise<void>
}

/**
 * What a store adds when several processes may serve one database (Postgres): a commit log every
 * process follows, guarded writes, a store-wide write hold for catalog changes, notices of new
 * commits, and leases for work that one process does at a time.
 */
export interface SharedStore {
  /** The latest commit timestamp in the store now, whoever made it. */
  latestTs(): Promise<bigint>
  /** Logged commits after `afterTs`, oldest first, at most `limit`. */
  commitsAfter(afterTs: bigint, limit: number): Promise<LoggedCommit[]>
  /**
   * Holds every process's writes (guarded or not) until released: for catalog changes, which
   * are written beside the commit path. `knownTs`: the holder's latest known commit.
   */
  holdWrites(knownTs: bigint): Promise<WriteHold>
  /**
   * Calls `listener` when a commit landed, with its timestamp (the last of a group), or with
   * null when commits may have landed unannounced (a lost notice channel came back).
   */
  onNotice(listener: (ts: bigint | null) => void): void
  /** The lease `name`: taken when free, kept while this process's connection lives. */
  lease(name: string): Lease

}

/**
 * The contract every store keeps (checked for each store by the conformance suite,
 * `src/storage/persistence.case.ts`):
 *
 * - **Timestamps.** Commit timestamps only grow. `maxTs()` is the highest timestamp whose commit
 *   is durable: it moves only once `write` has made the commit survive a crash (never before),
 *   and a new store starts at 0n.
 * - **Snapshots.** `snapshot()` resolves with a view that already exists when it resolves (later
 *   writes are invisible to it): every read through it sees exactly the commits with
 *   `ts <= snapshot.ts`, all of each or none, however long it is held and whatever is written
 *   meanwhile. `snapshot.ts` is the highest such commit. A snapshot taken while a `write` is in
 *   flight may already see that write (the database opens snapshots only between writes, so no
 *   reader sees a commit before it is durable). A shared store's snapshot also sees every
 *   other process's commit up to its ts (the database catches up on those before using it). A
 *   snapshot holds resources until released.
 * - **Write groups.** `write(commits)` applies the whole group or none of it; once it resolves
 *   every commit of it is durable and visible to new snapshots, in timestamp order. When it throws
 *   `WriteNotApplied`, nothing of the group was applied and the store can be written again.
 * - **One writer per process.** Only the committer calls `write` (the store need not guard against
 *   two concurrent `write` calls of one process). A shared store (`shared`) serves several
 *   processes: there the committer passes `expectedTs`, its latest known commit, and the write
 *   applies only if it is still the store's latest (`StaleWrite` otherwise, with what it missed),
 *   so commits of all processes are serialized and each is checked against all earlier ones.
 * - **Catalog calls** (tables, indexes, modules, globals) are durable when they resolve.
 */
export interface Persistence {
  /** The highest durable commit timestamp (0n for a new store). */
  maxTs(): bigint
  /** A snapshot at the latest durable commit (see the contract above). */
  snapshot(): Promise<Snapshot>
  /**
   * Atomically and durably append `commits` (in increasing ts order). Throws `WriteNotApplied`
   * when the store is known to be as it was before (the write can be tried again later); any
   * other failure leaves the batch in an unknown state.
   */
  write(commits: readonly CommitRecord[], expectedTs?: bigint): Promise<void>
  /** Present when several processes may share the store (see SharedStore). */
  readonly shared?: SharedStore
  /** Revisions written after `afterTs` up to and including `upToTs`, oldest first (at most `limit`). */
  loadLog(afterTs: bigint, upToTs: bigint, limit: number): Promise<LogEntry[]>
  /**
   * For each id changed after `ts`: its newest revision at or before `ts` (absent if none, or if
   * it was a deletion that `pruneHistory` removed). Exact only for `ts >= historyHorizon()`.
   */
  documentsAt(ids: readonly string[], ts: bigint): Promise<Map<string, LogEntry>>
  /**
   * The history horizon: reads of the write log (`loadLog`, `documentsAt`) at a timestamp at or
   * after it are exact; earlier ones may have lost revisions. 0n until something is pruned.
   */
  historyHorizon(): bigint
  /**
   * Moves the history horizon up to `horizon` (never back, never past `maxTs()`; durable with
   * the first deletion) and deletes, in one short transaction, revisions that no read at or
   * after the horizon needs, examining at most `limit` revisions in commit order: each examined
   * revision at or before the horizon deletes its document's earlier revisions, and a deletion
   * at or before the horizon is itself deleted. So the latest revision of every live document
   * at the horizon stays. Call it repeatedly while `pending` is at or before the horizon.
   */
  pruneHistory(horizon: bigint, limit: number): Promise<HistoryPruning>

  tables(): Promise<TableRecord[]>
  /**
   * Stores a table (see TableRecord; `idNumber` defaults to `tableNumber`) with `indexes` (its
   * system indexes, empty) in one atomic write: a crash or a failure leaves the table whole or
   * absent, never a table without its `by_id` index.
   */
  createTable(name: string, tableNumber: number, idNumber?: number, indexes?: readonly IndexRecord[]): Promise<void>
  indexes(): Promise<IndexRecord[]>
  /**
   * Creates an index, numbered by the caller (`index.indexId`, never used before), with its
   * initial contents: `backfill` entries for a database index, `searchBackfill` entries (one per
   * document) for a search index (`index.search` set), or `vectorBackfill` entries for a vector
   * index (`index.vector` set). The `indexId` of the given writes is ignored.
   */
  createIndex(index: IndexRecord, backfill: readonly IndexWrite[], searchBackfill?: readonly SearchWrite[], vectorBackfill?: readonly VectorWrite[]): Promise<IndexRecord>
  /** Drops an index (database, search or vector) and all of its entries. */
  dropIndex(indexId: number): Promise<void>
  /**
   * Drops a table whose documents and indexes are gone already. Its record stays as a tombstone
   * named `~dropped~<number>` (a name no table can have), so its `tableNumber` is never handed out again.
   */
  dropTable(tableNumber: number): Promise<void>
  renameIndex(indexId: number, name: string): Promise<void>
  /** Marks an index staged (declared `staged: true`) or enabled. */
  setIndexStaged(indexId: number, staged: boolean): Promise<void>
  /** Up to `limit` documents of a table with ids after `afterId`, in id order (index backfill). */
  scanTable(tableNumber: number, afterId: string, limit: number): Promise<StoredDocument[]>
  /** Writes index entries outside a commit (index backfill between commit batches). */
  writeIndexEntries(entries: readonly IndexWrite[]): Promise<void>
  /** All documents of a table at the latest commit (for index backfill and schema checks). */
  tableDocuments(tableNumber: number): Promise<StoredDocument[]>

  modules(): Promise<ModuleRecord[]>
  /** Replace the whole module set and the globals given, in one transaction. */
  replaceModules(modules: readonly ModuleRecord[], globals: Record<string, string>): Promise<void>

  /**
   * Store-specific upkeep that needs every reader to let go at once (SQLite: the WAL has grown
   * large because readers never all released it together). Optional: when present and `wanted()`
   * after a publication, the database briefly holds new transactions back, waits for open ones,
   * and calls `run()`.
   */
  readonly quiescentMaintenance?: { wanted(): boolean; run(): Promise<void> }

  /**
   * Whether an idle snapshot may stay open a moment (Postgres: an open read transaction on a
   * pooled connection). Then the database keeps its current snapshot for a short while after its
   * last reader, for the next one to share, instead of releasing it at once (SQLite: an open
   * reader pins the WAL, and opening one is nearly free).
   */
  readonly keepsIdleSnapshots?: boolean

  /** The bytes the store takes up (its files, or its database), for operators' charts. */
  sizeBytes(): Promise<number>

  getGlobal(key: string): Promise<string | undefined>
  setGlobal(key: string, value: string): Promise<void>
  /**
   * Every global set through `setGlobal`, `setGlobalIfAbsent` or `replaceModules`, by key (not the
   * store's own bookkeeping, such as its latest timestamp or history horizon): what a copy of the
   * deployment carries over.
   */
  globals(): Promise<Map<string, string>>
  /** Sets `key` unless it is set already (by anyone, at once included); resolves with the value stored. */
  setGlobalIfAbsent(key: string, value: string): Promise<string>

  close(): Promise<void>
}
