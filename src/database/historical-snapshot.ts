/**
 * @module HistoricalSnapshot: a read view at an earlier commit timestamp, for `/api/query_at_ts`.
 *
 * It wraps a snapshot at the latest commit and undoes, from the write log, every revision committed
 * after the requested timestamp: documents changed since then are read as they were (or hidden if
 * they did not exist yet), and index scans drop their current entries and add their old ones.
 * The log is read once, when the view opens; the database refuses timestamps before the store's
 * history horizon and keeps the horizon from passing a view being opened (see `Database.begin`).
 */
import type { IndexRow, KeyInterval, Order, Persistence, Snapshot, StoredDocument } from '../storage/persistence.ts'
import type { JSONValue } from '../values/index.ts'
import { indexKey } from './catalog.ts'
import type { Catalog } from './catalog.ts'
import { OutOfRetentionError } from './errors.ts'
import { intervalContains } from './read-set.ts'

/** Reading further back than this many revisions is refused (Convex keeps a short window too). */
const MAX_UNDO_REVISIONS = 10_000

export class HistoricalSnapshot implements Snapshot {
  private constructor(
    readonly ts: bigint,
    readonly latest: Snapshot,
    readonly catalog: Catalog,
    /** Every document changed after `ts`: its version at `ts` (null: it did not exist). */
    readonly undone: ReadonlyMap<string, StoredDocument | null>,
  ) {}

  static async open(persistence: Persistence, latest: Snapshot, catalog: Catalog, ts: bigint): Promise<HistoricalSnapshot> {
    const log = await persistence.loadLog(ts, latest.ts, MAX_UNDO_REVISIONS + 1)
    if (log.length > MAX_UNDO_REVISIONS) throw new OutOfRetentionError(ts)
    const ids = [...new Set(log.map((e) => e.id))]
    const before = await persistence.documentsAt(ids, ts)
    const undone = new Map<string, StoredDocument | null>()
    for (const id of ids) {
      const b = before.get(id)
      undone.set(id, b === undefined || b.json === null ? null : { id, tableNumber: b.tableNumber, json: b.json })
    }
    return new HistoricalSnapshot(ts, latest, catalog, undone)
  }

  async getDocument(id: string): Promise<StoredDocument | null> {
    return this.undone.has(id) ? this.undone.get(id)! : this.latest.getDocument(id)
  }

  async scan(indexId: number, interval: KeyInterval, order: Order, limit: number): Promise<IndexRow[]> {
    const index = [...this.catalog.byNumber.values()].flatMap((t) => [...t.indexes.values()]).find((i) => i.indexId === indexId)
    // Old versions in range, then current rows of unchanged documents; merge and cut at `limit`.
    const rows: IndexRow[] = []
    if (index !== undefined) {
      for (const doc of this.undone.values()) {
        if (doc === null || doc.tableNumber !== index.tableNumber) continue
        const key = indexKey(index, JSON.parse(doc.json) as Record<string, JSONValue>)
        if (intervalContains(interval, key)) rows.push({ key, doc })
      }
    }
    let remaining = interval
    for (;;) {
      const batch = await this.latest.scan(indexId, remaining, order, limit)
      for (const row of batch) if (!this.undone.has(row.doc.id)) rows.push(row)
      const last = batch[batch.length - 1]
      if (batch.length < limit || last === undefined) break
      const kept = rows.filter((r) => !this.undone.has(r.doc.id)).length
      if (kept >= limit) break
      remaining = order === 'asc' ? { lo: Buffer.concat([last.key, Buffer.from([0])]), hi: remaining.hi } : { lo: remaining.lo, hi: last.key }
    }
    const sign = order === 'asc' ? 1 : -1
    rows.sort((a, b) => sign * Buffer.compare(a.key, b.key))
    // Everything up to the last row fetched from the latest snapshot is complete; beyond it, old
    // versions may interleave with rows not fetched yet, so only `limit` rows are returned.
    return rows.slice(0, limit)
  }

  async countTable(tableNumber: number): Promise<number> {
    let count = await this.latest.countTable(tableNumber)
    for (const [id, before] of this.undone) {
      const now = await this.latest.getDocument(id)
      if (now !== null && now.tableNumber === tableNumber) count--
      if (before !== null && before.tableNumber === tableNumber) count++
    }
    return count
  }

  /** The wrapped snapshot is shared and released by the Database. */
  release(): void {}
}
