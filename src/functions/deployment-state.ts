/**
 * @module Whether the deployment is paused, as Convex's `_backend_state` keeps it
 * (`POST /api/v1/pause_deployment` and `/api/v1/unpause_deployment`). While paused, calls of the
 * app's functions (not the system's) fail with Convex's message, scheduled functions wait and run
 * once it is resumed, and crons are skipped (backend.ts). The state is one document of a system
 * table, written through the committer like any other, followed by every process (followed-table.ts).
 */
import type { Database } from '../database/database.ts'
import type { Transaction } from '../database/transaction.ts'
import { FollowedTable } from '../database/followed-table.ts'

export const BACKEND_STATE_TABLE = '_backend_state'

/** Convex's PAUSED_ERROR_MESSAGE (crates/udf/src/validation.rs). */
export const PAUSED_ERROR_MESSAGE = 'Cannot run functions while this deployment is paused. Resume the deployment in the dashboard settings to allow functions to run.'

/** Convex's `_backend_state` document: who stopped the deployment, if anyone. */
export interface BackendState {
  system: 'none'
  usage_limit: 'none'
  user: 'none' | 'paused'
}

/** Convex's `_backend_state` from its document (none yet: running), as the dashboard reads it. */
export function backendStateOf(doc: Record<string, unknown> | undefined): BackendState {
  return { system: 'none', usage_limit: 'none', user: doc?.user === 'paused' ? 'paused' : 'none' }
}

export class DeploymentState {
  #paused = false
  readonly #listeners: ((paused: boolean) => void)[] = []

  constructor(readonly db: Database) {
    this.#table = new FollowedTable(db, BACKEND_STATE_TABLE, async (txn) => this.#set((await this.#doc(txn))?.user === 'paused'))
  }

  get paused(): boolean {
    return this.#paused
  }


  /** Called with each change of `paused`. */
  onChange(listener: (paused: boolean) => void): void {
    this.#listeners.push(listener)
  }

  readonly #table: FollowedTable

  /** Reads the state (and, on a shared store, follows other processes' changes of it). */
  load(): Promise<void> {
    return this.#table.load()
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
