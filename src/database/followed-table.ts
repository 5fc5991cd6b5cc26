/**
 * @module A system table whose contents a process keeps in memory (environment variables, the
 * deployment's paused state, canonical URLs): read at start, and on a store shared by several
 * processes read again whenever another process commits to it. Reads run one at a time, so the
 * last one read wins.
 */
import type { Database } from './database.ts'
import type { Transaction } from './transaction.ts'

export class FollowedTable {
  #reads: Promise<void> = Promise.resolve()

  constructor(
    readonly db: Database,
    readonly table: string,
    /** Takes the table's contents in: called with a read transaction of the system. */
    readonly take: (txn: Transaction) => Promise<void>,
  ) {}

  /** Creates the table if needed, reads it, and (shared store) follows other processes' commits to it. */
  async load(): Promise<void> {
    await this.db.exclusive(async () => void (await this.db.catalog.ensureTable(this.table)))
    await this.read()
    if (this.db.persistence.shared === undefined) return
    const info = this.db.catalog.table('', this.table)!
    const ids = new Set([...info.indexes.values()].map((i) => i.indexId))
    this.db.committer.onCommit((batch) => {
      if (batch.some((c) => c.indexes.some((w) => ids.has(w.indexId)))) void this.read().catch(() => {})
    })
  }

  /** Reads the table again (after the reads asked for before). */
  read(): Promise<void> {
    const run = this.#reads.then(async () => {
      const txn = await this.db.begin(false)
      txn.system = true
      try {
        await this.take(txn)
      } finally {
        this.db.end(txn)
      }
    })
    this.#reads = run.catch(() => {})
    return run
  }
}
