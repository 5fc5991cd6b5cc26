/**
 * @module Exponential backoff with full jitter, as Convex's `Backoff` (sync_types/src/backoff.rs):
 * the n-th failure in a row waits a random fraction of min(initial × 2^n, max).
 */
export class Backoff {
  #failures = 0

  constructor(
    readonly initialMs: number,
    readonly maxMs: number,
    /** A number in [0, 1); injectable so tests can pin the jitter. */
    readonly random: () => number = Math.random,
  ) {}

  /** Records a failure; returns how long to wait before the next attempt. */
  fail(): number {
    const ceiling = Math.min(this.initialMs * 2 ** this.#failures, this.maxMs)
    this.#failures++
    return ceiling * this.random()
  }

  reset(): void {
    this.#failures = 0
  }

  get failures(): number {
    return this.#failures
  }
}
