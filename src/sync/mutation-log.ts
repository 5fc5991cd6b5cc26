/**
 * @module MutationLog: remembers mutation outcomes by (session id, request id), so a mutation the
 * client re-sends after a reconnect is answered from the log instead of running twice.
 */
import type { UdfResult } from '../functions/function-runner.ts'

/** Outcomes remembered at most (oldest forgotten first). */
const CAPACITY = 100_000

export class MutationLog {
  readonly #entries = new Map<string, Promise<UdfResult>>()

  /** Runs the mutation once per key; a repeat gets the first run's outcome (even while it runs). */
  run(key: string, execute: () => Promise<UdfResult>): Promise<UdfResult> {
    const existing = this.#entries.get(key)
    if (existing !== undefined) return existing
    const outcome = execute()
    this.#entries.set(key, outcome)
    if (this.#entries.size > CAPACITY) this.#entries.delete(this.#entries.keys().next().value!)
    return outcome
  }
}
