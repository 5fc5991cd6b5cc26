/**
 * @module Committer: the single writer. Validates transactions optimistically and group-commits.
 *
 *   mutation A ──run──▶ commit(A) ─┐
 *   mutation B ──run──▶ commit(B) ─┼─▶ queue ──(next macrotask)──▶ flush:
 *   mutation C ──run──▶ commit(C) ─┘      for each in order: conflict check against every commit
 *                                         after its snapshot (earlier batches and this one);
 *                                         accepted ones get increasing timestamps
 *                                      ──▶ ONE store write (one sync, off the main thread) for the
 *                                          accepted ones; commits arriving meanwhile form the next batch
 *                                      ──▶ resolve each with its commit ts, publish the commit
 *
 * A conflict rejects that transaction with OccConflictError; the function runner re-runs it on a
 * fresh snapshot. Recent commits are kept in memory only as long as some open transaction's
 * snapshot predates them.
 *
 * On a store shared by several processes (`persistence.shared`) each process has a committer;
 * the store serializes them. A batch is written only if the store's latest commit is still the
 * last one this process published; otherwise the store answers with the commits it missed, which
 * are taken in (published to listeners, kept for conflict checks) before the batch is decided
 * again. Between its own writes a process follows the store's commit log (`follow`), woken by the
 * store's notices. Catalog changes hold every process's writes (`exclusive`) and end with a marker
 * commit that tells the others to read the catalog (or the push) again.
 */
import type { CommitRecord, DocumentWrite, IndexWrite, LoggedCommit, Persistence, SearchWrite, SharedStore, TouchedKey, VectorWrite, WriteHold } from '../storage/persistence.ts'
import { StaleWrite, WriteNotApplied } from '../storage/persistence.ts'
import { BY_ID, indexKey, storedTableName, TABLE_NAMES_INDEX, tableNameKey } from './catalog.ts'
import { OccConflictError } from './errors.ts'
import { sameEntry, searchEntry } from './search.ts'
import { sameVectorEntry, vectorEntry } from './vector.ts'
import type { Transaction } from './transaction.ts'
import type { TableInfo } from './catalog.ts'
import { valueToJson } from '../values/index.ts'
import type { JSONValue } from '../values/index.ts'

const COMMIT_TS_JSON = '{"$commitTs":null}'

/** A copy of `v` with every `{"$commitTs": null}` replaced by `ts`. */
function resolveCommitTs(v: JSONValue, ts: JSONValue): JSONValue {
  if (v === null || typeof v !== 'object') return v
  if (Array.isArray(v)) return v.map((x) => resolveCommitTs(x, ts))
  const keys = Object.keys(v)
  if (keys.length === 1 && keys[0] === '$commitTs' && v.$commitTs === null) return ts
  const out: Record<string, JSONValue> = {}
  for (const k of keys) out[k] = resolveCommitTs(v[k]!, ts)
  return out
}

/**
 * `text` (JSON) with every `db.vars.commitTs` placeholder replaced by the commit timestamp `ts`
 * (an int64): what a mutation returns, once its commit has one (as Convex's `resolve_commit_ts`).
 */
export function resolveCommitTsText(text: string, ts: bigint): string {
  return holdsCommitTs(text) ? JSON.stringify(resolveCommitTs(JSON.parse(text) as JSONValue, valueToJson(ts) as JSONValue)) : text
}

/** Whether JSON text holds a `db.vars.commitTs` placeholder. */
export function holdsCommitTs(text: string): boolean {
  return text.includes(COMMIT_TS_JSON)
}

/** A `db.vars.commitTs` placeholder, as a stored field: a system record's commit timestamp once committed. */
export const COMMIT_TS_PLACEHOLDER: JSONValue = { $commitTs: null }

interface Queued {
  readonly txn: Transaction
  readonly resolve: (ts: bigint) => void
  readonly reject: (e: unknown) => void
}

interface RecentCommit {
  readonly ts: bigint
  readonly indexes: readonly TouchedKey[]
  /** Conflicts with every transaction begun before it (a push: the schema may have changed). */
  readonly everything?: boolean
}

/** A commit as published to listeners: its timestamp and the index keys it touched. */
export type PublishedCommit = RecentCommit

/**
 * Called once per durable batch, in commit order, before the next batch is written: when it
 * runs, the store's latest commit is the batch's last one.
 */
export type CommitListener = (batch: readonly PublishedCommit[]) => void

export class Committer {
  #queue: Queued[] = []
  #scheduled = false
  #flushing = false
  #recent: RecentCommit[] = []
  #lastTs: bigint
  #publishedTs: bigint
  #failed: Error | null = null
  /** Why the last write failed without changing the store (null while writes commit). */
  #writeError: Error | null = null
  readonly #healthListeners: ((error: Error | null) => void)[] = []
  readonly #listeners = new Set<CommitListener>()

  constructor(
    readonly persistence: Persistence,
    /** The oldest snapshot ts still in use by an open transaction (undefined: none). */
    readonly oldestActiveTs: () => bigint | undefined,
  ) {
    this.#lastTs = persistence.maxTs()
    this.#publishedTs = this.#lastTs
  }

  /** The last timestamp handed out (possibly not durable yet). */
  get lastTs(): bigint {
    return this.#lastTs
  }

  #writing = false

  /** Publishes the tables committed transactions created (set by the database: the catalog's). */
  publishTables: ((tables: readonly TableInfo[]) => void) | null = null
  /**
   * Whether a table a transaction numbered can no longer be created as numbered: its name, its
   * number or one of its index ids is taken meanwhile (by a push, or another process).
   */
  createdTaken: ((created: Transaction['created'] extends Map<string, infer C> ? C : never) => boolean) | null = null
  /** How many times the catalog changed in the store (see `alone`). */
  catalogVersion: (() => number) | null = null
  /** The table-name keys of tables created or dropped beside the commit path since the last call. */
  catalogTouched: (() => Buffer[]) | null = null
  /** Reads the catalog again (other processes changed it). */
  refreshCatalog: (() => Promise<void>) | null = null
  /** Another process landed a push: read it again (resolves once it is loaded). */
  foreignPush: (() => Promise<void>) | null = null

  /**
   * A transaction that creates a table another one created since (directly, as a push does, in
   * another process, or earlier in this batch) conflicts; it re-runs and finds the table.
   */
  #tableTaken(txn: Transaction, batch: readonly Queued[]): boolean {
    for (const [name, c] of txn.created) {
      if (this.createdTaken?.(c) === true) return true
      for (const other of batch) {
        if (other.txn === txn) break
        if (other.txn.created.has(name)) return true
      }
    }
    return false
  }

  /**
   * A batch is being written: the store may already show it to a new snapshot before it is
   * durable and published, so no snapshot may be opened until it is over.
   */
  get writing(): boolean {
    return this.#writing
  }

  /** The last durable, published commit timestamp. */
  get publishedTs(): bigint {
    return this.#publishedTs
  }

  /** Set once a write failed: no more commits are accepted. */
  get failed(): Error | null {
    return this.#failed
  }

  /**
   * Why commits can't be made now, or null while they can: a storage failure that left the batch's
   * state unknown (for good), or the last write failing without changing the store (until a write
   * succeeds again).
   */
  get unhealthy(): Error | null {
    return this.#failed ?? this.#writeError
  }

  /** Called when `unhealthy` changes: with the cause, or null once writes commit again. */
  onHealthChange(listener: (error: Error | null) => void): void {
    this.#healthListeners.push(listener)
  }

  #setWriteError(error: Error | null): void {
    if ((error === null) === (this.#writeError === null)) {
      this.#writeError = error
      return
    }
    this.#writeError = error
    for (const l of this.#healthListeners) l(this.unhealthy)
  }

  readonly #failureListeners: ((e: Error) => void)[] = []

  onFailure(listener: (e: Error) => void): void {
    this.#failureListeners.push(listener)
  }

  readonly #abandonedListeners: (() => void)[] = []

  /** Called when a write ends without being published (it failed): readers held back for it may go on. */
  onWriteAbandoned(listener: () => void): void {
    this.#abandonedListeners.push(listener)
  }

  #writeAbandoned(): void {
    this.#writing = false
    for (const l of this.#abandonedListeners) l()
  }

  onCommit(listener: CommitListener): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** A new commit timestamp: nanoseconds since the epoch, strictly increasing across restarts. */
  nextTs(): bigint {
    const wall = BigInt(Date.now()) * 1_000_000n
    this.#lastTs = wall > this.#lastTs ? wall : this.#lastTs + 1n
    return this.#lastTs
  }

  /** Queues `txn` for commit; resolves with its commit timestamp once it is durable. */
  commit(txn: Transaction): Promise<bigint> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ txn, resolve, reject })
      if (!this.#scheduled && !this.#flushing) {
        this.#scheduled = true
        setImmediate(() => void this.#flushAll())
      }
    })
  }

  #conflicts(txn: Transaction, commits: readonly RecentCommit[]): boolean {
    for (let i = commits.length - 1; i >= 0; i--) {
      const c = commits[i]!
      if (c.ts <= txn.snapshotTs) break
      if (c.everything === true) return true
      for (const w of c.indexes) if (txn.readSet.contains(w.indexId, w.key)) return true
    }
    return false
  }

  /**
   * Writes batches until the queue is empty. A batch is written only after the previous one is
   * durable, so every commit that arrives during a sync joins the next batch: one SQLite
   * transaction and one sync for all of them.
   */
  async #flushAll(): Promise<void> {
    this.#scheduled = false
    this.#flushing = true
    try {
      await this.#turn(async () => {
        while (this.#queue.length > 0) await this.#flush()
      })
    } finally {
      this.#flushing = false
      if (this.#queue.length > 0 && !this.#scheduled) {
        this.#scheduled = true
        setImmediate(() => void this.#flushAll())
      }
    }
  }

  #lock: Promise<void> = Promise.resolve()

  /** Runs `fn` while this process writes no batch (batches, catch-ups and catalog changes take turns). */
  #turn<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(fn)
    this.#lock = run.then(
      () => undefined,
      () => undefined,
    )
    return run
  }

  /**
   * Runs `fn` (a catalog change that writes beside the commit path: index backfill, table
   * creation, a push) while no batch is being written. On a shared store no process writes
   * meanwhile (see `#held`).
   */
  exclusive<T>(fn: () => Promise<T>, opts: { push?: boolean } = {}): Promise<T> {
    const shared = this.persistence.shared
    if (shared !== undefined) return this.#held(shared, opts.push === true, () => fn())
    return this.#turn(async () => {
      let threw = false
      try {
        return await fn()
      } catch (e) {
        threw = true
        throw e
      } finally {
        // Tables created or dropped: a commit of their names, so live queries listing tables see it.
        const touched = this.#catalogTouched()
        if (touched.length > 0 && this.#failed === null) {
          const ts = this.nextTs()
          // Writing until published, as a batch: no snapshot opens on the durable, unpublished commit.
          this.#writing = true
          let failure: Error | null = null
          try {
            await this.persistence.write([{ ts, documents: [], indexes: [], touched, catalog: true }])
          } catch (e) {
            // Not written (a full disk): as a batch that wasn't; else the names may be in the store
            // without being durable, as after a batch's failed write.
            if (e instanceof WriteNotApplied) this.#setWriteError((failure = new Error(`The database could not write: ${e.message}`)))
            else failure = this.#stopWrites(e)
          }
          if (failure !== null) {
            this.#writeAbandoned()
            // `fn`'s own error, if it threw, is the one its caller hears of.
            if (!threw) throw failure
          } else {
            this.#writing = false
            this.#publish([{ ts, indexes: touched }])
          }
        }
      }
    })
  }

  #catalogTouched(): TouchedKey[] {
    return (this.catalogTouched?.() ?? []).map((key) => ({ indexId: TABLE_NAMES_INDEX, key }))
  }

  /**
   * Runs `fn` with no commit of any process landing meanwhile (a shared store; otherwise only
   * this process's batches wait), after catching up on the others' commits: the transaction `fn`
   * begins and commits through `commit` can't conflict. For retries of mutations that conflicted
   * across processes, which could otherwise keep losing to the other processes' first attempts.
   */
  alone<T>(fn: (commit: (txn: Transaction) => Promise<bigint>) => Promise<T>): Promise<T> {
    const shared = this.persistence.shared
    if (shared === undefined) return fn((txn) => this.commit(txn))
    return this.#held(shared, false, (hold) => {
      // Commits go one at a time on the held connection.
      let last: Promise<unknown> = Promise.resolve()
      return fn((txn) => {
        const run = last.then(() => this.#commitHeld(hold, txn))
        last = run.catch(() => {})
        return run
      })
    })
  }

  async #commitHeld(hold: WriteHold, txn: Transaction): Promise<bigint> {
    if (this.#failed !== null) throw this.#failed
    if (this.#conflicts(txn, this.#recent) || this.#tableTaken(txn, [])) throw new OccConflictError()
    const ts = this.nextTs()
    const record = toCommitRecord(txn, ts)
    this.#writing = true
    try {
      await hold.write([storedRecord(record, ts)])
    } catch (e) {
      const error = new Error(`The database could not write: ${(e as Error)?.message ?? String(e)}`)
      this.#setWriteError(error)
      this.#writeAbandoned()
      throw error
    }
    this.#writing = false
    if (record.created.length > 0) this.publishTables?.(record.created)
    this.#setWriteError(null)
    this.#publish([{ ts, indexes: record.touched }])
    return ts
  }

  /** A marker that couldn't be written when its hold ended: it goes with the next batch. */
  #pendingMarker: { catalog: boolean; push: boolean } | null = null

  /**
   * Runs `fn` holding every process's writes: the commits of others are caught up on first, and
   * if the catalog changed meanwhile (or `push`), a marker commit tells every process to read it
   * (or the push) again before its next write. A push marker conflicts with every transaction
   * begun before it (it may have been checked against the old schema).
   */
  #held<T>(shared: SharedStore, push: boolean, fn: (hold: WriteHold) => Promise<T>): Promise<T> {
    return this.#turn(async () => {
      const hold = await shared.holdWrites(this.#publishedTs)
      let before: number | null = null
      try {
        await this.#ingest(hold.foreign)
        before = this.catalogVersion?.() ?? 0
        return await fn(hold)
      } finally {
        const changed = before !== null && (push || (this.catalogVersion?.() ?? 0) !== before)
        const touched = this.#catalogTouched()
        const marker = changed ? { ts: this.nextTs(), catalog: true, push, touched } : null
        try {
          await hold.release(marker)
          if (marker !== null) this.#publish([{ ts: marker.ts, indexes: touched, everything: push }])
        } catch {
          // The lock goes with the connection; the marker is written with the next batch.
          if (marker !== null) this.#pendingMarker = { catalog: true, push: push || this.#pendingMarker?.push === true }
        }
      }
    })
  }

  #followPending: Promise<void> | null = null

  /**
   * Catches up on the commits other processes made (a shared store): publishes them in order, as
   * if this process had made them. Calls made before a pass starts share it.
   */
  follow(): Promise<void> {
    const shared = this.persistence.shared
    if (shared === undefined) return Promise.resolve()
    if (this.#followPending !== null) return this.#followPending
    const pass = this.#turn(async () => {
      this.#followPending = null
      for (;;) {
        const found = await shared.commitsAfter(this.#publishedTs, 1000)
        await this.#ingest(found)
        if (found.length < 1000) return
      }
    })
    this.#followPending = pass
    return pass
  }

  /** The check asking the store now, and the one that asks next (callers still join it). */
  #syncRunning: Promise<void> | null = null
  #syncQueued: Promise<void> | null = null

  /**
   * Resolves once every commit made anywhere before the call is published here (a shared store;
   * at once otherwise). One check asks the store at a time. A new check asks a microtask after it
   * is made, or when the check asking now ends (which, having asked before, can't vouch for later
   * callers); until it asks, every caller joins it. Under load that is one round trip per check,
   * not one per caller.
   */
  sync(): Promise<void> {
    const shared = this.persistence.shared
    if (shared === undefined) return Promise.resolve()
    if (this.#syncQueued !== null) return this.#syncQueued
    const before = this.#syncRunning
    let check!: Promise<void>
    check = (async () => {
      if (before === null) await Promise.resolve()
      else await before.catch(() => {})
      this.#syncQueued = null
      this.#syncRunning = check
      try {
        if ((await shared.latestTs()) > this.#publishedTs) await this.follow()
      } finally {
        if (this.#syncRunning === check) this.#syncRunning = null
      }
    })()
    this.#syncQueued = check
    return check
  }

  /**
   * Whether a commit published since `txn`'s snapshot wrote what it read: for a transaction
   * that ends without writing (a read-only mutation), checked after `sync`, so its answer is as
   * current as a commit's would be.
   */
  readConflicts(txn: Transaction): boolean {
    return this.#conflicts(txn, this.#recent)
  }

  /** Takes in other processes' commits (those not published here yet), in order. */
  async #ingest(foreign: readonly LoggedCommit[]): Promise<void> {
    const fresh = foreign.filter((c) => c.ts > this.#publishedTs)
    if (fresh.length === 0) return
    // The catalog and the push are read again before the commits are published: whoever reads
    // at them runs the code and schema they were made under.
    if (fresh.some((c) => c.catalog)) await this.refreshCatalog?.()
    if (fresh.some((c) => c.push)) await this.foreignPush?.()
    const last = fresh[fresh.length - 1]!.ts
    if (last > this.#lastTs) this.#lastTs = last
    this.#publish(fresh.map((c) => ({ ts: c.ts, indexes: c.touched, everything: c.push })))
  }

  /** Publishes durable commits (this process's or another's): conflict checks, then listeners. */
  #publish(commits: readonly RecentCommit[]): void {
    if (commits.length === 0) return
    this.#recent.push(...commits)
    this.#trim()
    this.#publishedTs = commits[commits.length - 1]!.ts
    for (const l of this.#listeners) l(commits)
  }

  async #flush(): Promise<void> {
    let batch = this.#queue
    this.#queue = []
    const shared = this.persistence.shared !== undefined
    for (;;) {
      const records: CommitRecord[] = []
      const accepted: { q: Queued; ts: bigint }[] = []
      const created: TableInfo[] = []
      const fresh: RecentCommit[] = []
      // A marker a lost hold couldn't write goes first (before any other write of this process).
      const marker = this.#pendingMarker
      if (marker !== null) {
        const ts = this.nextTs()
        records.push({ ts, documents: [], indexes: [], ...marker })
        fresh.push({ ts, indexes: [], everything: marker.push })
      }
      for (const q of batch) {
        if (this.#conflicts(q.txn, this.#recent) || this.#conflicts(q.txn, fresh) || this.#tableTaken(q.txn, batch)) {
          q.reject(new OccConflictError())
          continue
        }
        let record: ReturnType<typeof toCommitRecord>
        const ts = this.nextTs()
        try {
          record = toCommitRecord(q.txn, ts)
        } catch (e) {
          q.reject(e)
          continue
        }
        records.push(storedRecord(record, ts))
        fresh.push({ ts, indexes: record.touched })
        accepted.push({ q, ts })
        created.push(...record.created)
      }
      try {
        if (this.#failed !== null) throw this.#failed
        this.#writing = true
        await this.persistence.write(records, shared ? this.#publishedTs : undefined)
        if (marker !== null) this.#pendingMarker = null
      } catch (e) {
        this.#writeAbandoned()
        if (e instanceof StaleWrite) {
          // Another process committed first: take its commits in, then decide this batch again.
          try {
            await this.#ingest(e.foreign)
          } catch (caught) {
            for (const { q } of accepted) q.reject(caught)
            return
          }
          batch = accepted.map((a) => a.q)
          continue
        }
        if (e instanceof WriteNotApplied && this.#failed === null) {
          // Nothing landed (a full disk, say): these commits fail, later ones are tried as usual.
          const error = new Error(`The database could not write: ${e.message}`)
          this.#setWriteError(error)
          for (const { q } of accepted) q.reject(error)
          return
        }
        // The batch may be in the store without being durable: accept no more writes.
        const failed = this.#stopWrites(e)
        for (const { q } of accepted) q.reject(failed)
        return
      }
      // Published in the same turn as the write is over: no snapshot opens in between (tables
      // created by these commits join the catalog first).
      this.#writing = false
      if (created.length > 0) this.publishTables?.(created)
      if (records.length > 0) this.#setWriteError(null)
      this.#publish(fresh)
      for (const { q, ts } of accepted) q.resolve(ts)
      return
    }
  }

  /**
   * A write failed and may have left its commits in the store without being durable: no more
   * writes are accepted (waiting readers and the health listeners learn it). Returns the error.
   */
  #stopWrites(cause: unknown): Error {
    if (this.#failed !== null) return this.#failed
    const failed = new Error(`The database stopped accepting writes after a storage failure: ${(cause as Error)?.message ?? String(cause)}`)
    this.#failed = failed
    for (const l of this.#failureListeners) l(failed)
    for (const l of this.#healthListeners) l(failed)
    return failed
  }

  /** Drops recent commits that no open transaction can conflict with any more. */
  #trim(): void {
    const oldest = this.oldestActiveTs()
    if (oldest === undefined) {
      this.#recent = []
      return
    }
    let drop = 0
    while (drop < this.#recent.length && this.#recent[drop]!.ts <= oldest) drop++
    if (drop > 0) this.#recent = this.#recent.slice(drop)
  }
}

/** Table-name keys (see TABLE_NAMES_INDEX) by table, encoded once: every insert touches one. */
const tableNameKeys = new WeakMap<TableInfo, Buffer>()

function tableNameKeyOf(table: TableInfo): Buffer {
  let key = tableNameKeys.get(table)
  if (key === undefined) tableNameKeys.set(table, (key = tableNameKey(table.name, table.component)))
  return key
}

/** What the store keeps of a transaction's changes at `ts` (see `toCommitRecord`). */
function storedRecord(record: ReturnType<typeof toCommitRecord>, ts: bigint): CommitRecord {
  return { ts, documents: record.documents, indexes: record.indexes, search: record.search, vectors: record.vectors, touched: record.touched, ...(record.tables.length === 0 ? {} : { tables: record.tables }) }
}

/**
 * The document and index changes a transaction's writes amount to, under the current catalog
 * (search index entries included, for documents whose entry changed); `touched` adds the
 * table-name keys of inserts, for conflicts and subscriptions only. Search indexes add no keys:
 * a search reads its whole table's `by_creation_time` range, which every document write touches.
 * Vector indexes add none either: vector searches run in actions, outside any transaction.
 */
function toCommitRecord(txn: Transaction, ts: bigint): { documents: DocumentWrite[]; indexes: IndexWrite[]; search: SearchWrite[]; vectors: VectorWrite[]; touched: IndexWrite[]; tables: NonNullable<CommitRecord['tables']>; created: TableInfo[] } {
  const documents: DocumentWrite[] = []
  const indexes: IndexWrite[] = []
  const search: SearchWrite[] = []
  const vectors: VectorWrite[] = []
  const tables = new Map<string, TableInfo>()
  for (const w of txn.writes.values()) {
    if (w.base === null && w.doc === null) continue
    if (w.base !== null && w.doc !== null && w.base === w.doc) continue
    let doc = w.doc
    let json = doc === null ? null : JSON.stringify(doc)
    // `db.vars.commitTs` placeholders become this commit's timestamp (an int64), keys included
    // (the write keeps its placeholder: a commit decided again gets another timestamp).
    if (doc !== null && json!.includes(COMMIT_TS_JSON)) {
      doc = resolveCommitTs(doc, valueToJson(ts) as JSONValue) as typeof doc
      json = JSON.stringify(doc)
    }
    documents.push({ id: w.id, tableNumber: w.table.tableNumber, json })
    if (w.base === null) tables.set(storedTableName(w.table.component, w.table.name), w.table)
    for (const index of w.table.indexes.values()) {
      if (index.search !== undefined) {
        const oldEntry = w.base === null ? null : searchEntry(index.search, w.base)
        const newEntry = doc === null ? null : searchEntry(index.search, doc)
        if (oldEntry === null || newEntry === null || !sameEntry(oldEntry, newEntry)) search.push({ indexId: index.indexId, id: w.id, entry: newEntry })
        continue
      }
      if (index.vector !== undefined) {
        const oldEntry = w.base === null ? null : vectorEntry(index.vector, w.base)
        const newEntry = doc === null ? null : vectorEntry(index.vector, doc)
        if (!sameVectorEntry(oldEntry, newEntry)) vectors.push({ indexId: index.indexId, id: w.id, entry: newEntry })
        continue
      }
      if (w.idKey !== undefined && w.base === null && doc !== null && index.name === BY_ID && doc._id === w.id) {
        // A new document's `by_id` key, as its insert encoded it.
        indexes.push({ indexId: index.indexId, key: w.idKey, id: w.id })
        continue
      }
      const oldKey = w.base === null ? null : indexKey(index, w.base)
      const newKey = doc === null ? null : indexKey(index, doc)
      if (oldKey !== null && (newKey === null || !oldKey.equals(newKey))) indexes.push({ indexId: index.indexId, key: oldKey, id: null })
      if (newKey !== null) indexes.push({ indexId: index.indexId, key: newKey, id: w.id })
    }
  }
  const touched = [...indexes]
  for (const table of tables.values()) touched.push({ indexId: TABLE_NAMES_INDEX, key: tableNameKeyOf(table), id: null })
  // Tables the transaction created that still hold one of its writes are stored with it.
  const created = txn.created.size === 0 ? [] : [...txn.created.values()].filter((c) => documents.some((d) => d.tableNumber === c.info.tableNumber))
  return { documents, indexes, search, vectors, touched, tables: created.map((c) => c.records), created: created.map((c) => c.info) }
}
