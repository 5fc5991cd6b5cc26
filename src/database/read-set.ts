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
