/**
 * @module MutationLog: joins a re-sent socket mutation to the run of it still in flight, keyed by
 * (session id, request id), so a client that reconnects mid-mutation gets that run's outcome. Once
 * a run settles its entry goes: a committed mutation's result is then in `_session_requests`
 * (session-requests.ts), durably and in the same commit as its writes, and a failed one wrote
 * nothing, so running it again is harmless.
 */
import type { UdfResult } from '../functions/function-runner.ts'

export class MutationLog {
  readonly #running = new Map<string, Promise<UdfResult>>()

  /** Runs the mutation unless a run of the same key is in flight, whose outcome it then shares. */
  run(key: string, execute: () => Promise<UdfResult>): Promise<UdfResult> {
    const existing = this.#running.get(key)
    if (existing !== undefined) return existing
    const outcome = execute()
    this.#running.set(key, outcome)
    const forget = () => {
      if (this.#running.get(key) === outcome) this.#running.delete(key)
    }
    outcome.then(forget, forget)
    return outcome
  }
}
