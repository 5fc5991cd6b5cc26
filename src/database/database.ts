/**
 * @module Database: the catalog, the schema, snapshots and the committer behind one object.
 *
 * Snapshots are shared and always at a published commit: one "current" snapshot is opened when a
 * durable batch is published (before the next batch is written), and every transaction that
 * begins until the next publication reads from it. So no reader ever sees a commit that is not
 * durable yet or that commit listeners (subscriptions) have not been told about.
 */
import type { Persistence, Snapshot } from '../storage/persistence.ts'
import type { ValidatorContext, ValidatorJSON } from '../values/index.ts'
import { Catalog } from './catalog.ts'
import type { TableInfo } from './catalog.ts'
import { Committer } from './committer.ts'
import { HistoricalSnapshot } from './historical-snapshot.ts'
import { ReadSet } from './read-set.ts'
import { Transaction } from './transaction.ts'

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

interface SharedSnapshot {
  readonly snapshot: Snapshot
  refs: number
  /** Still the snapshot new transactions get; released once superseded and unused. */
  current: boolean
}

export class Database {
  readonly catalog: Catalog
  readonly committer: Committer
  #schema: Schema | null = null
  #validators = new Map<string, ValidatorJSON>()
  #current: Promise<SharedSnapshot> | null = null
  readonly #active = new Map<bigint, number>()
  #lastCreationTime = 0

  private constructor(readonly persistence: Persistence) {
    this.catalog = new Catalog(persistence)
    this.committer = new Committer(persistence, () => this.#oldestActive())
    this.committer.onCommit(() => {
      this.#current = this.#openCurrent()
    })
  }

  static async open(persistence: Persistence): Promise<Database> {
    const db = new Database(persistence)
    db.#current = db.#openCurrent()
    await db.#current
    await db.catalog.load()
    const schema = await persistence.getGlobal('schema')
    if (schema !== undefined) db.setSchema(JSON.parse(schema) as Schema | null)
    return db
  }

  get schema(): Schema | null {
    return this.#schema
  }

  setSchema(schema: Schema | null): void {
    this.#schema = schema
    this.#validators = new Map()
    if (schema?.schemaValidation === true) {
      for (const t of schema.tables) if (t.documentType !== null) this.#validators.set(t.tableName, t.documentType)
    }
  }

  schemaValidator(tableName: string): ValidatorJSON | undefined {
    return this.#validators.get(tableName)
  }

  schemaHasIndex(tableName: string, indexName: string): boolean {
    if (indexName === 'by_id' || indexName === 'by_creation_time') return true
    return this.#schema?.tables.some((t) => t.tableName === tableName && t.indexes.some((i) => i.indexDescriptor === indexName)) ?? false
  }

  /** Resolves `v.id("table")` checks against the catalog. */
  readonly validatorContext: ValidatorContext = {
    tableNumberForName: (name) => this.catalog.byName.get(name)?.tableNumber,
    tableNameForNumber: (n) => this.catalog.byNumber.get(n)?.name,
  }

  tableForRead(name: string): TableInfo | undefined {
    return this.catalog.byName.get(name)
  }

  /** A unique, increasing `_creationTime` (ms since the epoch, fractional when needed). */
  nextCreationTime(): number {
    const now = Date.now()
    this.#lastCreationTime = now > this.#lastCreationTime ? now : this.#lastCreationTime + 2 ** -10
    return this.#lastCreationTime
  }

  #oldestActive(): bigint | undefined {
    let oldest: bigint | undefined
    for (const ts of this.#active.keys()) if (oldest === undefined || ts < oldest) oldest = ts
    return oldest
  }

  /** Opens the snapshot at the latest (just published) commit and retires the previous one. */
  async #openCurrent(): Promise<SharedSnapshot> {
    const previous = this.#current
    const shared: SharedSnapshot = { snapshot: await this.persistence.snapshot(), refs: 0, current: true }
    if (previous !== null) {
      const old = await previous
      old.current = false
      if (old.refs === 0) old.snapshot.release()
    }
    return shared
  }

  async #acquire(): Promise<SharedSnapshot> {
    const shared = await this.#current!
    shared.refs++
    return shared
  }

  /**
   * Runs a catalog change that writes data (index backfill, index removal) between commit
   * batches, then publishes a snapshot that includes it.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.committer.exclusive(async () => {
      const result = await fn()
      this.#current = this.#openCurrent()
      await this.#current
      return result
    })
  }

  /** The commit timestamp new transactions read at. */
  async currentTs(): Promise<bigint> {
    return (await this.#current!).snapshot.ts
  }

  /**
   * Begins a transaction on the latest snapshot, or (read-only) at an earlier commit timestamp.
   * Call `end` when done with it.
   */
  async begin(mutable: boolean, atTs?: bigint): Promise<Transaction> {
    const shared = await this.#acquire()
    let snapshot: Snapshot = shared.snapshot
    if (atTs !== undefined && atTs < shared.snapshot.ts && !mutable) {
      try {
        snapshot = await HistoricalSnapshot.open(this.persistence, shared.snapshot, this.catalog, atTs)
      } catch (e) {
        this.#releaseShared(shared)
        throw e
      }
    }
    const ts = snapshot.ts
    this.#active.set(ts, (this.#active.get(ts) ?? 0) + 1)
    const txn = new Transaction(this, snapshot, mutable, new ReadSet())
    this.#owners.set(txn, shared)
    return txn
  }

  #releaseShared(shared: SharedSnapshot): void {
    shared.refs--
    if (shared.refs === 0 && !shared.current) shared.snapshot.release()
  }

  readonly #owners = new WeakMap<Transaction, SharedSnapshot>()

  /** Releases the transaction's snapshot. */
  end(txn: Transaction): void {
    const shared = this.#owners.get(txn)
    if (shared === undefined) return
    this.#owners.delete(txn)
    const ts = txn.snapshotTs
    const n = (this.#active.get(ts) ?? 1) - 1
    if (n === 0) this.#active.delete(ts)
    else this.#active.set(ts, n)
    this.#releaseShared(shared)
  }

  /** Commits a mutation's writes; resolves with the commit timestamp (the snapshot's if it wrote nothing). */
  async commit(txn: Transaction): Promise<bigint> {
    if (txn.writes.size === 0) return txn.snapshotTs
    return this.committer.commit(txn)
  }

  async close(): Promise<void> {
    const current = this.#current
    this.#current = null
    if (current !== null) {
      const shared = await current
      shared.current = false
      if (shared.refs === 0) shared.snapshot.release()
    }
    await this.persistence.close()
  }
}
