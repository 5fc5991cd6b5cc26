/** @module ReadSet: the index key intervals a transaction has read, for conflict checks. */
import type { KeyInterval } from '../storage/persistence.ts'

/** Whether `key` lies in the half-open interval. */
export function intervalContains(interval: KeyInterval, key: Buffer): boolean {
  return Buffer.compare(interval.lo, key) <= 0 && (interval.hi === null || Buffer.compare(key, interval.hi) < 0)
}

export class ReadSet {
  readonly intervals = new Map<number, KeyInterval[]>()

  add(indexId: number, interval: KeyInterval): void {
    if (interval.hi !== null && Buffer.compare(interval.lo, interval.hi) >= 0) return
    const list = this.intervals.get(indexId)
    if (list === undefined) this.intervals.set(indexId, [interval])
    else list.push(interval)
  }

  /** Whether a write of `key` in `indexId` would change what this transaction read. */
  contains(indexId: number, key: Buffer): boolean {
    const list = this.intervals.get(indexId)
    if (list === undefined) return false
    for (const interval of list) if (intervalContains(interval, key)) return true
    return false
  }
}

/** An index key as a latin1 string: one character per byte, so string order is byte order. */
export function keyString(key: Buffer): string {
  return key.toString('latin1')
}

/**
 * A read set kept after its transaction ended (a live query's, until its next run): the same
 * intervals in one flat array of (index id, lo, hi) with keys as latin1 strings. A query's read
 * set in this form takes about a third of the memory of the Map of interval objects and Buffers
 * it is built from, which matters with tens of thousands of live queries.
 */
export class FrozenReadSet {
  /** Every index the set has intervals in, once each. */
  readonly indexIds: readonly number[]
  readonly #flat: (number | string | null)[]

  constructor(readSet: ReadSet) {
    this.indexIds = [...readSet.intervals.keys()]
    let n = 0
    for (const list of readSet.intervals.values()) n += list.length
    // Exactly sized: `push` would leave the array's store up to half empty.
    const flat = (this.#flat = new Array<number | string | null>(n * 3))
    let i = 0
    for (const [indexId, list] of readSet.intervals) {
      for (const { lo, hi } of list) {
        flat[i++] = indexId
        flat[i++] = keyString(lo)
        flat[i++] = hi === null ? null : keyString(hi)
      }
    }
  }

  /** Whether a write of `key` (as `keyString` gives it) in `indexId` would change what was read. */
  contains(indexId: number, key: string): boolean {
    const flat = this.#flat
    for (let i = 0; i < flat.length; i += 3) {
      if (flat[i] !== indexId) continue
      const hi = flat[i + 2] as string | null
      if ((flat[i + 1] as string) <= key && (hi === null || key < hi)) return true
    }
    return false
  }
}
