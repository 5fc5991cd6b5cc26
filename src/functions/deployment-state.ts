/**
 * @module Whether the deployment is paused, as Convex's `_backend_state` keeps it
 * (`POST /api/v1/pause_deployment` and `/api/v1/unpause_deployment`). While paused, calls of the
 * app's functions (not the system's) fail with Convex's message, scheduled functions wait and run
 * once it is resumed, and crons are skipped (backend.ts). The state is one document of a system
 * table, written through the committer like any other; on a store shared by several processes,
 * each reads it again when another changes it.
 */
import type { Database } from '../database/database.ts'
import type { Transaction } from '../database/transaction.ts'

export const BACKEND_STATE_TABLE = '_backend_state'

/** Convex's PAUSED_ERROR_MESSAGE (crates/udf/src/validation.rs). */
export const PAUSED_ERROR_MESSAGE = 'Cannot run functions while this deployment is paused. Resume the deployment in the dashboard settings to allow functions to run.'

/** Convex's `_backend_state` document: who stopped the deployment, if anyone. */
export interface BackendState {
  system: 'none'
  usage_limit: 'none'
  user: 'none' | 'paused'
}

export class DeploymentState {
  #paused = false
  readonly #listeners: ((paused: boolean) => void)[] = []

  constructor(readonly db: Database) {}

  get paused(): boolean {
    return this.#paused
  }

  /** Convex's `_backend_state` as the dashboard's `backendState` query gives it. */
  get state(): BackendState {
    return { system: 'none', usage_limit: 'none', user: this.#paused ? 'paused' : 'none' }
  }

  /** Called with each change of `paused`. */
  onChange(listener: (paused: boolean) => void): void {
    this.#listeners.push(listener)
  }

  async load(): Promise<void> {
    await this.db.exclusive(async () => void (await this.db.catalog.ensureTable(BACKEND_STATE_TABLE)))
    await this.#read()
    // On a store shared by several processes another one may pause or resume: read it again then.
    if (this.db.persistence.shared !== undefined) {
      const table = this.db.catalog.table('', BACKEND_STATE_TABLE)!
      const ids = new Set([...table.indexes.values()].map((i) => i.indexId))
      this.db.committer.onCommit((batch) => {
        if (batch.some((c) => c.indexes.some((w) => ids.has(w.indexId)))) void this.#read().catch(() => {})
      })
    }
  }

  #reads: Promise<void> = Promise.resolve()

  #read(): Promise<void> {
    const run = this.#reads.then(async () => {
      const txn = await this.db.begin(false)
      txn.system = true
      try {
        this.#set((await this.#doc(txn))?.user === 'paused')
      } finally {
        this.db.end(txn)
      }
    })
    this.#reads = run.catch(() => {})
    return run
  }

  async #doc(txn: Transaction): Promise<Record<string, unknown> | null> {
    const docs = await txn.readTable(BACKEND_STATE_TABLE, '')
    return docs[0] ?? null
  }

  /** Pauses (true) or resumes the deployment; false when it already was in that state. */
  async setPaused(paused: boolean): Promise<boolean> {
    const changed = await this.db.mutate(async (txn) => {
      const doc = await this.#doc(txn)
      if ((doc?.user === 'paused') === paused) return false
      const state: BackendState = { system: 'none', usage_limit: 'none', user: paused ? 'paused' : 'none' }
      if (doc === null) await txn.insertSystem(BACKEND_STATE_TABLE, { ...state })
      else await txn.patchSystem(doc._id as string, { ...state })
      return true
    })
    this.#set(paused)
    return changed
  }

  #set(paused: boolean): void {
    if (paused === this.#paused) return
    this.#paused = paused
    for (const l of this.#listeners) l(paused)
  }
}
