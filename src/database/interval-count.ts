/**
 * @module IntervalCount: how many "database queries" a transaction made, as Convex counts them
 * for its per-transaction limit (`TRANSACTION_MAX_READ_SET_INTERVALS`, reported by
 * `ctx.meta.getTransactionMetrics()` as `databaseQueries`).
 *
 * Convex keeps the index intervals a transaction read as one merged interval set per index
 * (overlapping and adjacent intervals coalesce), and counts a read the user made by how much it
 * changed its index's set; reads the system takes on the user's behalf (e.g. on a new document's
 * id) join the sets without being counted themselves.
 */
import type { KeyInterval } from '../storage/persistence.ts'

/** Whether `a` ends before `b` (null: unbounded). */
function endsBefore(hi: Buffer | null, lo: Buffer): boolean {
  return hi !== null && Buffer.compare(hi, lo) < 0
}

export class IntervalCount {
  /** Per index: disjoint, non-adjacent intervals in key order. */
  readonly #sets = new Map<number, KeyInterval[]>()
  /** The count Convex limits (`num_intervals`). */
  count = 0

  /** Records a read the user made. */
  direct(indexId: number, interval: KeyInterval): void {
    const [before, after] = this.#add(indexId, interval)
    this.count = Math.max(0, this.count - before) + after
  }

  /** Records a read taken on the user's behalf (not counted, but it merges with later reads). */
  derived(indexId: number, interval: KeyInterval): void {
    this.#add(indexId, interval)
  }

  /** Adds `interval` to its index's set: the set's sizes before and after. */
  #add(indexId: number, { lo, hi }: KeyInterval): [number, number] {
    let set = this.#sets.get(indexId)
    if (set === undefined) this.#sets.set(indexId, (set = []))
    const before = set.length
    if (hi !== null && Buffer.compare(lo, hi) >= 0) return [before, before]
    // The first interval that doesn't end before `lo` (adjacent intervals merge).
    let a = 0
    let b = set.length
    while (a < b) {
      const m = (a + b) >>> 1
      if (endsBefore(set[m]!.hi, lo)) a = m + 1
      else b = m
    }
    const first = a
    // Past the last interval that starts at or before `hi`.
    let end = first
    while (end < set.length && (hi === null || Buffer.compare(set[end]!.lo, hi) <= 0)) end++
    if (first === end) set.splice(first, 0, { lo, hi })
    else {
      const mergedLo = Buffer.compare(set[first]!.lo, lo) < 0 ? set[first]!.lo : lo
      const lastHi = set[end - 1]!.hi
      const mergedHi = hi === null || lastHi === null ? null : Buffer.compare(lastHi, hi) > 0 ? lastHi : hi
      set.splice(first, end - first, { lo: mergedLo, hi: mergedHi })
    }
    return [before, set.length]
  }
}
