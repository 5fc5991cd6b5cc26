/**
 * @module Database: the catalog, the schema, snapshots and the committer behind one object.
 *
 * Snapshots are shared and always at a published commit: a "current" snapshot is opened only
 * while the store holds nothing unpublished (no batch written but not yet durable and announced),
 * and every transaction that begins until the next publication shares it; one that begins while
 * a batch is in flight without a current snapshot waits for the publication. So no reader ever
 * sees a commit that is not durable or that commit listeners (subscriptions) don't know of yet.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { OccConflictError, OutOfRetentionError } from './errors.ts'
import type { CursorCodec } from './cursors.ts'
import type { Persistence, Snapshot } from '../storage/persistence.ts'
import { WriteNotApplied } from '../storage/persistence.ts'
import type { ValidatorContext, ValidatorJSON } from '../values/index.ts'
import { Catalog, storedTableName } from './catalog.ts'
import type { TableInfo } from './catalog.ts'
import { Committer } from './committer.ts'
import { HistoricalSnapshot } from './historical-snapshot.ts'
import { DEFAULT_HISTORY_RETENTION_MS, HistoryRetention } from './history-retention.ts'
import { ReadSet } from './read-set.ts'
import { newDocumentId, Transaction } from './transaction.ts'

/** The parts of a pushed schema the database enforces. */
export interface SchemaTable {
  readonly tableName: string
  readonly indexes: readonly { indexDescriptor: string; fields: string[] }[]
  readonly documentType: ValidatorJSON | null
}
export interface Schema {
  readonly tables: readonly SchemaTable[]
  readonly schemaValidation: boolean
}

/** How long a checkpoint barrier waits for open transactions before giving up until next time. */
const BARRIER_WAIT_MS = 2000

/** How long an unused current snapshot stays open after a publication. */
const IDLE_SNAPSHOT_MS = 100

interface SharedSnapshot {
  readonly snapshot: Snapshot
  refs: number
  /** Still the snapshot new transactions get; released once superseded and unused. */
  current: boolean
}

/** Attempts a system mutation gets when commits keep conflicting (as user mutations: 5). */
export const MAX_SYSTEM_MUTATION_ATTEMPTS = 5

export interface DatabaseOptions {
  /** How long superseded revisions stay readable by `/api/query_at_ts` (ms). */
  readonly historyRetentionMs?: number
  /** Called when a history pruning pass fails. */
  readonly onError?: (message: string, e: unknown) => void
}

export class Database {
  readonly catalog: Catalog
  readonly committer: Committer
  /** Deletes the write log's revisions that nothing can read any more. */
  readonly history: HistoryRetention
  /** Historical views being opened, by timestamp: they read the write log, so it is kept for them. */
  readonly #historyReaders = new Map<bigint, number>()
  #schemas = new Map<string, Schema | null>()
  #validators = new Map<string, ValidatorJSON>()
  /** The snapshot new transactions share (at the latest published commit), if one is open. */
  #current: SharedSnapshot | null = null
  #opening: Promise<SharedSnapshot> | null = null
  /** Transactions waiting for a batch in flight (or a catalog change) to be published. */
  #waiting: (() => void)[] = []
  #exclusive = false
  /** References held on snapshots by open transactions, and who waits for them all to end. */
  #refs = 0
  #drained: (() => void)[] = []
  #barrier = false
  /** A checkpoint barrier is holding new transactions back. */
  #holding = false
  readonly #active = new Map<bigint, number>()
  #lastCreationTime = 0

  /** Where the database reports failures nobody waits on (work after a commit). */
  log: (message: string, fields?: Record<string, unknown>) => void = () => {}

  private constructor(
    readonly persistence: Persistence,
    /** Seals and opens pagination cursors (keyed by the instance secret). */
    readonly cursors: CursorCodec,
    opts: DatabaseOptions,
  ) {
    this.catalog = new Catalog(persistence)
    this.committer = new Committer(persistence, () => this.#oldestActive())
    this.history = new HistoryRetention(persistence, () => this.#oldestHistoryReader(), () => this.committer.publishedTs, {
      windowMs: opts.historyRetentionMs ?? DEFAULT_HISTORY_RETENTION_MS,
      onError: (e) => opts.onError?.('Pruning the write log failed', e),
    })
    // Tables a transaction created are stored with its commit and published with it.
    this.committer.createdTaken = (c) => this.catalog.taken(c.records)
    // Other processes of a shared store: their catalog changes and pushes.
    this.committer.refreshCatalog = () => this.catalog.refresh()
    this.committer.catalogVersion = () => this.catalog.version
    this.committer.catalogTouched = () => this.catalog.takeTouched()
    this.committer.foreignPush = async () => {
      for (const l of this.#pushListeners) await l()
    }
    this.committer.publishTables = (tables) => {
      for (const info of tables) this.catalog.publish(info)
    }
    this.committer.onCommit(() => {
      this.#published()
      this.history.committed()
    })
    // After a storage failure nothing more gets published: waiting transactions fail instead. A
    // write that failed publishes nothing either: transactions held back for it open a snapshot.
    this.committer.onFailure(() => this.#wakeWaiting())
    this.committer.onWriteAbandoned(() => this.#wakeWaiting())
  }

  static async open(persistence: Persistence, cursors: CursorCodec, opts: DatabaseOptions = {}): Promise<Database> {
    const db = new Database(persistence, cursors, opts)
    await db.catalog.load()
    const schema = await persistence.getGlobal('schema')
    if (schema !== undefined) db.setSchema(JSON.parse(schema) as Schema | null)
    // History written before a restart is pruned as if just committed.
    db.history.committed()
    // Other processes' commits are followed as the store announces them.
    persistence.shared?.onNotice((ts) => {
      // Its own commits are announced to the process too: published already.
      if (ts === null || ts > db.committer.publishedTs) void db.committer.follow().catch(() => {})
    })
    return db
  }

  /** The app's schema. */
  get schema(): Schema | null {
    return this.schemaOf('')
  }

  /** The schema of a component instance ('' for the app); null when it has none. */
  schemaOf(component: string): Schema | null {
    return this.#schemas.get(component) ?? null
  }

  /** Sets the app's schema. */
  setSchema(schema: Schema | null): void {
    this.setSchemas(new Map([...this.#schemas].filter(([c]) => c !== '')).set('', schema))
  }

  /** Sets every component instance's schema at once (a push): '' is the app's. */
  setSchemas(schemas: ReadonlyMap<string, Schema | null>): void {
    this.#schemas = new Map(schemas)
    this.#validators = new Map()
    for (const [component, schema] of schemas) {
      if (schema?.schemaValidation !== true) continue
      for (const t of schema.tables) if (t.documentType !== null) this.#validators.set(storedTableName(component, t.tableName), t.documentType)
    }
  }

  schemaValidator(tableName: string, component = ''): ValidatorJSON | undefined {
    return this.#validators.get(storedTableName(component, tableName))
  }

  schemaHasIndex(tableName: string, indexName: string, component = ''): boolean {
    if (indexName === 'by_id' || indexName === 'by_creation_time') return true
    return this.schemaOf(component)?.tables.some((t) => t.tableName === tableName && t.indexes.some((i) => i.indexDescriptor === indexName)) ?? false
  }

  /** Resolves the app's `v.id("table")` checks against the catalog. */
  readonly validatorContext: ValidatorContext = this.#validatorContext('')

  /** Resolves a component's `v.id("table")` checks against its own tables ('' the app's). */
  validatorContextFor(component: string): ValidatorContext {
    return component === '' ? this.validatorContext : this.#validatorContext(component)
  }

  #validatorContext(component: string): ValidatorContext {
    return {
      tableNumberForName: (name) => this.catalog.table(component, name)?.idNumber,
      tableNameForNumber: (n) => this.catalog.tableForId(component, n)?.name,
    }
  }

  tableForRead(name: string, component = ''): TableInfo | undefined {
    return this.catalog.table(component, name)
  }

  /** A fresh document id in `table`. */
  newId(table: TableInfo): string {
    return newDocumentId(table)
  }

  /** A unique, increasing `_creationTime` (ms since the epoch, fractional when needed). */
  nextCreationTime(): number {
    const now = Date.now()
    this.#lastCreationTime = now > this.#lastCreationTime ? now : this.#lastCreationTime + 2 ** -10
    return this.#lastCreationTime
  }

  #oldestActive(): bigint | undefined {
    return oldest(this.#active)
  }

  /**
   * A batch was published: the current snapshot is superseded. The next one opens right away,
   * while the store holds exactly what was published (the next batch is written in this same
   * turn); it is retired again once idle, so that it doesn't pin the WAL.
   */
  #published(): void {
    this.#retireCurrent()
    if (!this.#barrier && this.persistence.quiescentMaintenance?.wanted() === true) {
      this.#barrier = true
      void this.#checkpointBarrier()
      return
    }
    if (this.#holding) return
    this.#open()
    this.#wakeWaiting()
    setTimeout(() => {
      if (this.#current !== null && this.#current.refs === 0 && this.#settled()) this.#retireCurrent()
    }, IDLE_SNAPSHOT_MS).unref()
  }

  readonly #pushListeners: (() => Promise<void>)[] = []

  /**
   * Called when another process of a shared store landed a push: read it again. Its commit is
   * published (and readers see it) once the returned promise resolves.
   */
  onForeignPush(listener: () => Promise<void>): void {
    this.#pushListeners.push(listener)
  }

  /**
   * A snapshot of the store at a published commit. A shared store's snapshot may already see
   * commits of other processes not published here yet: those are caught up on first, so that
   * every reader's catalog and listeners know what it sees.
   */
  async #publishedSnapshot(): Promise<Snapshot> {
    for (;;) {
      const snapshot = await this.persistence.snapshot()
      const published = this.committer.publishedTs
      if (snapshot.ts <= published) return snapshot
      snapshot.release()
      await this.committer.follow()
      if (this.committer.publishedTs === published) throw new Error(`The store is at commit ${snapshot.ts} but its commit log ends at ${published}`)
    }
  }

  /** Opens the current snapshot (the store's snapshot() takes its view before it returns). */
  #open(): Promise<SharedSnapshot> {
    const opening = this.#publishedSnapshot().then(
      (snapshot) => {
        this.#setReadError(null)
        const shared: SharedSnapshot = { snapshot, refs: 0, current: true }
        if (this.#opening === opening) {
          this.#current = shared
          this.#opening = null
        } else shared.snapshot.release()
        return shared
      },
      (e: unknown) => {
        // A failed open (out of file descriptors, the database server gone) must not wedge every
        // later transaction: each tries again, and the failure shows in `unhealthy` meanwhile.
        if (this.#opening === opening) this.#opening = null
        this.#setReadError(new Error(`The database can't be read: ${(e as Error)?.message ?? String(e)}`))
        throw e
      },
    )
    opening.catch(() => {})
    this.#opening = opening
    return opening
  }

  /** Why snapshots can't be opened now (null while they can). */
  #readError: Error | null = null
  readonly #healthListeners: ((error: Error | null) => void)[] = []

  #setReadError(error: Error | null): void {
    const was = this.#readError
    this.#readError = error
    if ((was === null) !== (error === null)) for (const l of this.#healthListeners) l(error)
  }

  /**
   * Why the database can't serve now, or null while it can: commits that can't be made (see
   * `Committer.unhealthy`), or a store that can't be read (its server unreachable, say). Clears
   * by itself once a write commits and a snapshot opens again.
   */
  get unhealthy(): Error | null {
    return this.committer.unhealthy ?? this.#readError
  }

  /** Called when reading starts failing (with the cause) and when it works again (null). */
  onReadHealthChange(listener: (error: Error | null) => void): void {
    this.#healthListeners.push(listener)
  }

  /** Lets the transactions waiting for a snapshot try again. */
  #wakeWaiting(): void {
    for (const wake of this.#waiting.splice(0)) wake()
  }

  #retireCurrent(): void {
    const old = this.#current
    this.#current = null
    this.#opening = null
    if (old === null) return
    old.current = false
    if (old.refs === 0) old.snapshot.release()
  }

  /** Whether the store holds nothing unpublished: a snapshot opened now is at a published commit. */
  #settled(): boolean {
    return !this.#exclusive && !this.#holding && !this.committer.writing
  }

  async #acquire(): Promise<SharedSnapshot> {
    for (;;) {
      if (this.#current !== null) {
        this.#current.refs++
        this.#refs++
        return this.#current
      }
      if (this.#opening !== null) {
        await this.#opening
        continue
      }
      if (this.committer.failed !== null) throw this.committer.failed
      if (!this.#settled()) {
        await new Promise<void>((resolve) => this.#waiting.push(resolve))
        continue
      }
      await this.#open()
    }
  }

  /**
   * Holds new transactions back, waits up to BARRIER_WAIT_MS for open ones to end (commits keep
   * flowing meanwhile), then lets the store checkpoint with no reader open. Under constant load
   * SQLite would otherwise never find a moment to start its WAL over.
   */
  async #checkpointBarrier(): Promise<void> {
    this.#holding = true
    this.#retireCurrent()
    try {
      if (this.#refs > 0) {
        let timer: NodeJS.Timeout | undefined
        await Promise.race([
          new Promise<void>((resolve) => this.#drained.push(resolve)),
          new Promise<void>((resolve) => (timer = setTimeout(resolve, BARRIER_WAIT_MS))),
        ])
        clearTimeout(timer)
      }
      if (this.#refs === 0 && this.#current === null && this.#opening === null) await this.persistence.quiescentMaintenance?.run()
    } finally {
      this.#holding = false
      this.#barrier = false
      if (this.#settled()) void this.#open()
      this.#wakeWaiting()
    }
  }

  /** The commit timestamp new transactions read at. */
  async currentTs(): Promise<bigint> {
    return this.committer.publishedTs
  }

  /**
   * The table `name` of a component ('' the app), created if missing: created as a catalog change
   * (see `exclusive`) unless the caller is in one already. `idNumber`: the number its ids carry,
   * wanted if free in the component.
   */
  async ensureTable(name: string, component = '', idNumber?: number): Promise<TableInfo> {
    const existing = this.catalog.table(component, name)
    if (existing !== undefined) return existing
    if (this.#sections.getStore() !== undefined) return this.catalog.ensureTable(name, component, idNumber)
    return this.exclusive(() => this.catalog.ensureTable(name, component, idNumber))
  }

  /**
   * The section the caller is in (its async context), if any: a catalog change (`exclusive`), or
   * `alone`, with the commit its transaction goes through.
   */
  readonly #sections = new AsyncLocalStorage<{ readonly kind: 'exclusive' } | { readonly kind: 'alone'; readonly commit: (txn: Transaction) => Promise<bigint> }>()

  /**
   * Runs a catalog change that writes data (index backfill, index removal) between commit
   * batches (of every process, on a shared store), then publishes a snapshot that includes it.
   * `push`: the change lands a push, which other processes then read again.
   */
  exclusive<T>(fn: () => Promise<T>, opts: { push?: boolean } = {}): Promise<T> {
    return this.committer.exclusive(async () => {
      this.#exclusive = true
      try {
        return await this.#sections.run({ kind: 'exclusive' }, fn)
      } finally {
        this.#exclusive = false
        this.#published()
      }
    }, opts)
  }

  /**
   * Begins a transaction on the latest snapshot, or (read-only) at an earlier commit timestamp.
   * Call `end` when done with it.
   */
  async begin(mutable: boolean, atTs?: bigint, opts: { latest?: boolean } = {}): Promise<Transaction> {
    // A shared store: what any process committed before now is read (inside a catalog change
    // no process commits, and the change has caught up already). `latest: false` (a live
    // query, which is run again on every later commit anyway) reads at the last commit followed.
    // A mutation needs no catching up first: its commit is checked against every commit made
    // since its snapshot, whichever process made it (and a read-only one, at its end, see
    // `commit`), so a stale snapshot costs at most a re-run, never a wrong answer.
    const section = this.#sections.getStore()
    if (section === undefined && opts.latest !== false && !mutable) {
      await this.committer.sync().catch((e: unknown) => {
        this.#setReadError(new Error(`The database can't be read: ${(e as Error)?.message ?? String(e)}`))
        throw e
      })
    }
    // The current snapshot is taken at once (no await: one promise less per transaction).
    const current = this.#current
    let shared: SharedSnapshot
    if (current !== null) {
      current.refs++
      this.#refs++
      shared = current
    } else shared = await this.#acquire()
    let snapshot: Snapshot = shared.snapshot
    if (atTs !== undefined && atTs < shared.snapshot.ts && !mutable) {
      // Held from before the horizon check until the view has read the log: pruning can't pass it.
      try {
        snapshot = await this.readingHistoryAt(atTs, () => HistoricalSnapshot.open(this.persistence, shared.snapshot, this.catalog, atTs))
      } catch (e) {
        this.#releaseShared(shared)
        throw e
      }
    }
    count(this.#active, snapshot.ts, 1)
    const txn = new Transaction(this, snapshot, mutable, new ReadSet())
    this.#owners.set(txn, shared)
    return txn
  }

  /**
   * Drops a reference. An unused snapshot is released unless it is current and a batch is in
   * flight (transactions beginning meanwhile still need it); an open reader pins the WAL, so
   * releasing idle ones lets SQLite start the WAL over. A store that `keepsIdleSnapshots` keeps
   * the current one for IDLE_SNAPSHOT_MS after its last use instead.
   */
  #releaseShared(shared: SharedSnapshot): void {
    shared.refs--
    if (--this.#refs === 0) for (const wake of this.#drained.splice(0)) wake()
    if (shared.refs > 0) return
    if (!shared.current) shared.snapshot.release()
    else if (this.persistence.keepsIdleSnapshots === true) this.#retireWhenIdle()
    else if (this.#settled()) this.#retireCurrent()
  }

  #idleTimer: NodeJS.Timeout | null = null
  #lastRelease = 0

  /** Retires the current snapshot once it has gone IDLE_SNAPSHOT_MS unused (whichever it is then). */
  #retireWhenIdle(): void {
    this.#lastRelease = performance.now()
    if (this.#idleTimer !== null) return
    const check = (): void => {
      this.#idleTimer = null
      const current = this.#current
      if (current === null || current.refs > 0) return
      const idle = performance.now() - this.#lastRelease
      if (idle < IDLE_SNAPSHOT_MS) this.#idleTimer = setTimeout(check, IDLE_SNAPSHOT_MS - idle).unref()
      else if (this.#settled()) this.#retireCurrent()
    }
    this.#idleTimer = setTimeout(check, IDLE_SNAPSHOT_MS).unref()
  }

  readonly #owners = new WeakMap<Transaction, SharedSnapshot>()

  /** Named holds on the write log (see `holdHistory`). */
  readonly #historyHolds = new Map<string, bigint>()

  /** The oldest timestamp the write log must still serve: views being opened, and holds. */
  #oldestHistoryReader(): bigint | undefined {
    let min = oldest(this.#historyReaders)
    for (const ts of this.#historyHolds.values()) if (min === undefined || ts < min) min = ts
    return min
  }

  /**
   * Keeps the write log back to `ts` under `name` until called again for that name (`null`
   * lets go): for readers that come back later, as streaming export clients do with a cursor.
   */
  holdHistory(name: string, ts: bigint | null): void {
    if (ts === null) this.#historyHolds.delete(name)
    else this.#historyHolds.set(name, ts)
  }

  /**
   * Runs `fn` while the write log is kept back to `ts` (history pruning can't pass it), after
   * checking that `ts` is within the history retention (OutOfRetentionError otherwise).
   */
  async readingHistoryAt<T>(ts: bigint, fn: () => Promise<T>): Promise<T> {
    count(this.#historyReaders, ts, 1)
    try {
      if (ts < this.persistence.historyHorizon()) throw new OutOfRetentionError(ts)
      return await fn()
    } finally {
      count(this.#historyReaders, ts, -1)
    }
  }

  /** Releases the transaction's snapshot. */
  end(txn: Transaction): void {
    // A table it numbered but didn't commit gives its number back.
    if (txn.created.size > 0) for (const c of txn.created.values()) this.catalog.release(c.info)
    if (!txn.settled) txn.undo()
    const shared = this.#owners.get(txn)
    if (shared === undefined) return
    this.#owners.delete(txn)
    count(this.#active, txn.snapshotTs, -1)
    this.#releaseShared(shared)
  }

  /**
   * Runs `fn` while no process commits (see `Committer.alone`): a transaction it begins sees the
   * latest commit of every process and commits without conflicting. Transactions begun in `fn`
   * must be committed through `commit` (other work waits for `fn`, so keep it short).
   */
  alone<T>(fn: () => Promise<T>): Promise<T> {
    return this.committer.alone((commit) => this.#sections.run({ kind: 'alone', commit }, fn))
  }

  /**
   * For a mutation that ends without its writes being checked by a commit (it wrote nothing, or
   * it failed): on a shared store its snapshot may predate commits another process acknowledged
   * (mutations don't catch up before they begin, see `begin`), so what it read is checked against
   * every commit made until now; OccConflictError if any of them wrote it (run it again).
   */
  async confirmReads(txn: Transaction): Promise<void> {
    if (this.#sections.getStore() !== undefined || this.persistence.shared === undefined) return
    await this.committer.sync()
    if (this.committer.readConflicts(txn)) throw new OccConflictError()
  }

  /** Commits a mutation's writes; resolves with the commit timestamp (the snapshot's if it wrote nothing). */
  async commit(txn: Transaction): Promise<bigint> {
    // Inside an `alone` section its transaction commits there; others queue as usual.
    const section = this.#sections.getStore()
    // Nothing to commit, but what it read must still be current as of now (see `begin`).
    if (txn.writes.size === 0) await this.confirmReads(txn)
    let ts: bigint
    try {
      ts = txn.writes.size === 0 ? txn.snapshotTs : section?.kind === 'alone' ? await section.commit(txn) : await this.committer.commit(txn)
    } catch (e) {
      // A conflict, or a write refused before it was made, leaves nothing behind; another failure
      // may have landed the commit after all, so its work is kept.
      if (!(e instanceof OccConflictError) && !(e instanceof WriteNotApplied)) txn.settled = true
      throw e
    }
    txn.settled = true
    for (const action of txn.afterCommitActions) {
      void action().catch((e: unknown) => this.log('Work after a commit failed', { error: (e as Error)?.message ?? String(e) }))
    }
    return ts
  }

  /**
   * The one way the system runs a mutation of its own (scheduler, crons, file, import and session
   * records): `body` in a fresh transaction, then the commit; a conflict re-runs it, up to
   * MAX_SYSTEM_MUTATION_ATTEMPTS times in all, after which the conflict is thrown for the caller to
   * report. `system` lets it write system tables.
   */
  async mutate<T>(body: (txn: Transaction) => Promise<T>, opts: { system?: boolean; attempts?: number } = {}): Promise<T> {
    return (await this.mutateAt(body, opts)).value
  }

  /** `mutate`, also giving the commit timestamp (the snapshot's if nothing was written). */
  async mutateAt<T>(body: (txn: Transaction) => Promise<T>, opts: { system?: boolean; attempts?: number } = {}): Promise<{ value: T; ts: bigint }> {
    const attempts = opts.attempts ?? MAX_SYSTEM_MUTATION_ATTEMPTS
    for (let attempt = 1; ; attempt++) {
      const txn = await this.begin(true)
      txn.system = opts.system ?? true
      try {
        let value: T
        try {
          value = await body(txn)
        } catch (e) {
          // A failure decided on a stale snapshot is no answer: run it again (see `confirmReads`).
          if (!(e instanceof OccConflictError)) await this.confirmReads(txn)
          throw e
        }
        return { value, ts: await this.commit(txn) }
      } catch (e) {
        if (!(e instanceof OccConflictError) || attempt >= attempts) throw e
      } finally {
        this.end(txn)
      }
    }
  }

  /**
   * Deletes user tables of a component ('' the app), as Convex's dashboard does
   * (`/api/delete_tables`): refused for system tables and for tables the schema names or
   * references with `v.id`; otherwise their documents are deleted in one commit (readers and
   * subscriptions see them go) and the tables dropped. Returns how many documents went.
   */
  async deleteTables(component: string, names: readonly string[]): Promise<number> {
    const schema = this.schemaOf(component)
    for (const name of names) {
      if (name.startsWith('_')) throw new TableDeletionRefused('InvalidTableName', `cannot delete system table ${name}`)
      if (schema?.tables.some((t) => t.tableName === name) === true) throw new TableDeletionRefused('SchemaEnforcementError', `Failed to delete table "${name}" because it appears in the schema`)
      const referrer = schema?.tables.find((t) => t.documentType !== null && referencesTable(t.documentType, name))
      if (referrer !== undefined) throw new TableDeletionRefused('SchemaEnforcementError', `Failed to delete table "${name}" because \`v.id("${name}")\` appears in the schema of table "${referrer.tableName}"`)
    }
    const tables = names.map((n) => this.catalog.table(component, n)).filter((t): t is TableInfo => t !== undefined)
    // Read through the transaction: a document inserted meanwhile conflicts, and the delete re-runs.
    const count = await this.mutate(async (txn) => {
      let n = 0
      for (const t of tables) {
        const key = `delete:${t.tableNumber}`
        const stream = txn.openStream(key, { source: { type: 'FullTableScan', tableName: t.name, order: null }, operators: [] }, component)
        for (let row = await stream.nextRow(); row !== null; row = await stream.nextRow()) {
          await txn.removeSystem((JSON.parse(row.json) as { _id: string })._id, component)
          n++
        }
        txn.closeStream(key)
      }
      return n
    })
    // Dropped only if still empty (a write committed after the delete keeps its table).
    await this.exclusive(async () => {
      for (const t of tables) {
        if (this.catalog.byNumber.get(t.tableNumber) === t && (await this.persistence.scanTable(t.tableNumber, '', 1)).length === 0) await this.catalog.dropTable(t)
      }
    })
    return count
  }

  async close(): Promise<void> {
    await this.history.close()
    this.#retireCurrent()
    await this.persistence.close()
  }
}

/** Adds `delta` to the count of `ts` (removed at 0). */
function count(counts: Map<bigint, number>, ts: bigint, delta: number): void {
  const n = (counts.get(ts) ?? 0) + delta
  if (n <= 0) counts.delete(ts)
  else counts.set(ts, n)
}

/** The smallest timestamp counted (undefined: none). */
function oldest(counts: ReadonlyMap<bigint, number>): bigint | undefined {
  let min: bigint | undefined
  for (const ts of counts.keys()) if (min === undefined || ts < min) min = ts
  return min
}

/** Refused by `deleteTables` (answered as HTTP 400 with `code`). */
export class TableDeletionRefused extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

/** Whether a validator (JSON) holds `v.id(table)` anywhere. */
function referencesTable(validator: unknown, table: string): boolean {
  if (validator === null || typeof validator !== 'object') return false
  if (Array.isArray(validator)) return validator.some((v) => referencesTable(v, table))
  const v = validator as Record<string, unknown>
  if (v.type === 'id' && v.tableName === table) return true
  return Object.values(v).some((x) => referencesTable(x, table))
}
