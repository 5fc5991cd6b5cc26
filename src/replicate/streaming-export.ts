/**
 * @module Convex's streaming export API (what the Fivetran and Airbyte connectors, and
 * `concave replicate`, read): `list_snapshot` pages through every selected document at one
 * commit timestamp, then `document_deltas` gives the write log after it, page by page.
 *
 * As Convex: user tables of every component (system tables such as `_storage` and
 * `_scheduled_functions` are left out), values in `json` (clean JSON, the default),
 * `convex_encoded_json` or `export_json` format, each with `_component`, `_table` and `_ts` (the
 * revision's commit timestamp) and, in deltas, `_deleted` (a deleted document is just its `_id`).
 * Pages: 1024 documents for a snapshot, 128 revisions for deltas, never splitting a commit.
 * Timestamps are nanoseconds, written as JSON integers (beyond 2^53: read them as big integers).
 *
 * Stored files are not listed here (as in Convex): `concave replicate` copies them through the
 * file listing Convex's dashboard uses (src/replicate/source-files.ts).
 *
 * A snapshot is read at its timestamp from the latest documents and the write log after it (the
 * revision of each document at that timestamp), so the write log is kept back to it (a "pin")
 * while its pages are read, and for CONCAVE_HISTORY_RETENTION_MS plus a minute of idleness after.
 * Deltas read the write log, so a cursor before the history horizon is out of retention.
 */
import type { Database } from '../database/database.ts'
import type { TableInfo } from '../database/catalog.ts'
import { BY_ID } from '../database/catalog.ts'
import { OutOfRetentionError } from '../database/errors.ts'
import type { LogEntry, Snapshot } from '../storage/persistence.ts'
import { encodeIndexKey } from '../values/index.ts'
import type { JSONValue } from '../values/index.ts'
import { encodedToExportJson } from '../snapshot/export-json.ts'
import { Selection } from './selection.ts'

/** Convex's SNAPSHOT_LIST_LIMIT and DOCUMENT_DELTAS_LIMIT. */
export const SNAPSHOT_PAGE = 1024
export const DELTAS_PAGE = 128

export type ValueFormat = 'json' | 'convex_encoded_json' | 'export_json'

/** A request Convex answers with 400 and this code. */
export class StreamingExportError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

export function valueFormat(raw: unknown): ValueFormat {
  if (raw === undefined || raw === null || raw === 'json' || raw === 'convex_clean_json') return 'json'
  if (raw === 'convex_encoded_json' || raw === 'convex_json') return 'convex_encoded_json'
  if (raw === 'export_json') return 'export_json'
  throw new StreamingExportError('BadFormat', `format param must be one of [\`json\`]. Got ${String(raw)}`)
}

export interface StreamingArgs {
  readonly selection: Selection
  readonly format: ValueFormat
}

/** The tables a request reads, by table number. */
function selectedTables(db: Database, args: StreamingArgs): TableInfo[] {
  return [...db.catalog.byNumber.values()]
    .filter((t) => !t.name.startsWith('_') && args.selection.includesTable(t.component, t.name))
    .sort((a, b) => a.tableNumber - b.tableNumber)
}

/** One value as JSON text: `_component`, `_table`, `_ts`, [`_deleted`,] then the fields by name. */
function valueText(table: TableInfo, ts: bigint, deleted: boolean | null, fields: Record<string, JSONValue>, args: StreamingArgs): string {
  const selected = args.selection.filterFields(table.component, table.name, fields) as Record<string, JSONValue>
  const head = `"_component":${JSON.stringify(table.component)},"_table":${JSON.stringify(table.name)},"_ts":${ts}${deleted === null ? '' : `,"_deleted":${deleted}`}`
  const body = Object.keys(selected)
    .sort()
    .map((k) => `,${JSON.stringify(k)}:${formatValue(selected[k]!, args.format)}`)
    .join('')
  return `{${head}${body}}`
}

/** A stored (Convex-encoded) value in the requested format, as JSON text. */
function formatValue(v: JSONValue, format: ValueFormat): string {
  if (format === 'convex_encoded_json') return JSON.stringify(v)
  if (format === 'export_json') return encodedToExportJson(v)
  return JSON.stringify(cleanJson(v))
}

/** Convex's "clean" export: int64 as a decimal string, bytes as base64, NaN/±Infinity as strings. */
function cleanJson(v: JSONValue): JSONValue {
  if (Array.isArray(v)) return v.map(cleanJson)
  if (v === null || typeof v !== 'object') return v
  const keys = Object.keys(v)
  if (keys.length === 1 && typeof v[keys[0]!] === 'string') {
    const inner = v[keys[0]!] as string
    if (keys[0] === '$integer') return Buffer.from(inner, 'base64').readBigInt64LE(0).toString()
    if (keys[0] === '$bytes') return inner
    if (keys[0] === '$float') {
      const f = Buffer.from(inner, 'base64').readDoubleLE(0)
      return Number.isNaN(f) ? 'NaN' : f === Infinity ? 'Infinity' : f === -Infinity ? '-Infinity' : f
    }
  }
  return Object.fromEntries(keys.map((k) => [k, cleanJson(v[k]!)]))
}

// ---------------------------------------------------------------------------------------------
// list_snapshot

/** How long a streaming export cursor keeps the write log back after it was last used (see #asked). */
const CURSOR_HOLD_MS = 24 * 60 * 60 * 1000

/** The write log after a pinned snapshot: which documents changed since, by table. */
interface Pin {
  readonly ts: bigint
  /** The write log has been read up to here. */
  readTo: bigint
  readonly changed: Map<number, Set<string>>
  release: () => void
  timer: NodeJS.Timeout | null
}

export interface SnapshotPage {
  /** The response body (timestamps as JSON integers). */
  readonly body: string
  readonly documents: number
  readonly hasMore: boolean
}

/** Serves `list_snapshot` and `document_deltas` for one database. */
export class StreamingExport {
  readonly #pins = new Map<bigint, Pin>()

  constructor(
    readonly db: Database,
    /** How long a snapshot stays readable after its last page was read (ms). */
    readonly idlePinMs: number,
  ) {}

  /** Keeps the write log back to `ts` (OutOfRetentionError if it is gone already). */
  async #pin(ts: bigint): Promise<Pin> {
    let pin = this.#pins.get(ts)
    if (pin === undefined) {
      let release!: () => void
      const held = new Promise<void>((r) => (release = r))
      let checked!: (e: unknown) => void
      const ok = new Promise<unknown>((r) => (checked = r))
      // readingHistoryAt checks the horizon at once and holds the log until `held` resolves.
      void this.db
        .readingHistoryAt(ts, () => {
          checked(null)
          return held
        })
        .catch((e: unknown) => checked(e))
      const error = await ok
      if (error !== null) throw error
      pin = { ts, readTo: ts, changed: new Map(), release, timer: null }
      this.#pins.set(ts, pin)
    }
    if (pin.timer !== null) clearTimeout(pin.timer)
    const p = pin
    p.timer = setTimeout(() => this.#unpin(p), this.idlePinMs)
    p.timer.unref()
    return pin
  }

  #unpin(pin: Pin): void {
    if (pin.timer !== null) clearTimeout(pin.timer)
    this.#pins.delete(pin.ts)
    pin.release()
  }

  /**
   * When cursors were last asked from (or handed out), by the minute they fall in: the write log
   * is kept back to the oldest asked within CURSOR_HOLD_MS, so a client that comes back within
   * that time (a replica restarted, a connector's next sync) finds its changes still there, even
   * past the history retention. At most one entry a minute.
   */
  readonly #asked = new Map<bigint, number>()

  #cursorUsed(ts: bigint): void {
    const minute = (ts / 60_000_000_000n) * 60_000_000_000n
    const now = Date.now()
    this.#asked.set(minute, now)
    let oldest: bigint | null = null
    for (const [m, at] of this.#asked) {
      if (now - at > CURSOR_HOLD_MS) this.#asked.delete(m)
      else if (oldest === null || m < oldest) oldest = m
    }
    this.db.holdHistory('streaming-export', oldest)
  }

  /** Releases every pin (the backend is stopping). */
  close(): void {
    this.db.holdHistory('streaming-export', null)
    for (const pin of [...this.#pins.values()]) this.#unpin(pin)
  }

  async listSnapshot(args: StreamingArgs, snapshot: bigint | null, cursor: string | null): Promise<SnapshotPage> {
    const from = cursor === null ? null : parseSnapshotCursor(cursor)
    const txn = await this.db.begin(false)
    try {
      const latest = txn.snapshotTs
      const ts = snapshot ?? latest
      if (ts > latest) throw new StreamingExportError('SnapshotTooNew', `Snapshot value ${ts} is in the future.`)
      let pin: Pin
      try {
        pin = await this.#pin(ts)
      } catch {
        throw new StreamingExportError('SnapshotTooOld', `Snapshot value ${ts} is too far in the past.`)
      }
      await this.#readChanges(pin, latest)
      const values: string[] = []
      let next: { table: number; id: string } | null = null
      for (const table of selectedTables(this.db, args)) {
        if (from !== null && table.tableNumber < from.table) continue
        const after = from !== null && table.tableNumber === from.table ? from.id : null
        const page = await this.#tablePage(txn.snapshot, pin, table, after, SNAPSHOT_PAGE - values.length)
        for (const d of page.docs) values.push(valueText(table, d.ts, null, JSON.parse(d.json) as Record<string, JSONValue>, args))
        if (page.last !== null) {
          next = { table: table.tableNumber, id: page.last }
          break
        }
      }
      if (next === null) {
        // The changes after the snapshot are read next, from its timestamp.
        this.#cursorUsed(ts)
        this.#unpin(pin)
      }
      const cursorText = next === null ? 'null' : JSON.stringify(JSON.stringify({ tablet: String(next.table), id: next.id }))
      return { body: `{"values":[${values.join(',')}],"snapshot":${ts},"cursor":${cursorText},"hasMore":${next !== null}}`, documents: values.length, hasMore: next !== null }
    } finally {
      this.db.end(txn)
    }
  }

  /** Extends the pin's record of changed documents up to `upTo`. */
  async #readChanges(pin: Pin, upTo: bigint): Promise<void> {
    const BATCH = 50_000
    while (pin.readTo < upTo) {
      const log = await this.db.persistence.loadLog(pin.readTo, upTo, BATCH)
      for (const e of log) {
        let ids = pin.changed.get(e.tableNumber)
        if (ids === undefined) pin.changed.set(e.tableNumber, (ids = new Set()))
        ids.add(e.id)
      }
      if (log.length < BATCH) {
        pin.readTo = upTo
        break
      }
      const last = log[log.length - 1]!.ts
      if (log[0]!.ts === last) {
        // One commit larger than the batch: read it whole.
        for (const e of await this.db.persistence.loadLog(last - 1n, last, Number.MAX_SAFE_INTEGER)) {
          let ids = pin.changed.get(e.tableNumber)
          if (ids === undefined) pin.changed.set(e.tableNumber, (ids = new Set()))
          ids.add(e.id)
        }
        pin.readTo = last
      } else {
        // The page may end inside a commit: that commit is read again, whole, with the next batch.
        pin.readTo = last - 1n
      }
    }
  }

  /**
   * Up to `limit` documents of `table` after id `after`, as they were at the pin's timestamp, in
   * id order; `last` is the id to continue after (null: the table is done).
   */
  async #tablePage(snapshot: Snapshot, pin: Pin, table: TableInfo, after: string | null, limit: number): Promise<{ docs: { ts: bigint; json: string }[]; last: string | null }> {
    const byId = table.indexes.get(BY_ID)
    if (byId === undefined || limit <= 0) return { docs: [], last: after ?? '' }
    const lo = after === null ? Buffer.alloc(0) : encodeIndexKey([after])
    const rows = (await snapshot.scan(byId.indexId, { lo, hi: null }, 'asc', limit + 1)).filter((r) => !r.key.equals(lo))
    const full = rows.length >= limit
    const current = full ? rows.slice(0, limit) : rows
    const hi = full ? current[current.length - 1]!.key : null
    // Documents changed since the snapshot in the same id range: as they were then.
    const candidates = new Map<string, Buffer>(current.map((r) => [r.doc.id, r.key]))
    for (const id of pin.changed.get(table.tableNumber) ?? []) {
      const key = encodeIndexKey([id])
      if (key.compare(lo) > 0 && (hi === null || key.compare(hi) <= 0)) candidates.set(id, key)
    }
    const then = await this.db.persistence.documentsAt([...candidates.keys()], pin.ts)
    const currentById = new Map(current.map((r) => [r.doc.id, r.doc.json]))
    const docs: { key: Buffer; ts: bigint; json: string }[] = []
    for (const [id, key] of candidates) {
      const rev = then.get(id)
      if (rev !== undefined) {
        if (rev.json !== null) docs.push({ key, ts: rev.ts, json: rev.json })
      } else {
        // No revision at or before the snapshot: created after it, unless it never changed
        // since and the log holds nothing older (then it is as it is now).
        const json = currentById.get(id)
        if (json !== undefined && !(pin.changed.get(table.tableNumber)?.has(id) ?? false)) docs.push({ key, ts: pin.ts, json })
      }
    }
    docs.sort((a, b) => a.key.compare(b.key))
    return { docs, last: full ? current[current.length - 1]!.doc.id : null }
  }

  // -------------------------------------------------------------------------------------------
  // document_deltas

  async documentDeltas(args: StreamingArgs, cursor: bigint): Promise<{ body: string; documents: number; hasMore: boolean; cursor: bigint }> {
    const upper = this.db.committer.publishedTs
    // A cursor ahead of this process (another process of a shared store answered it) is answered
    // as it is, never moved back.
    if (cursor >= upper) {
      this.#cursorUsed(cursor)
      return { body: `{"values":[],"cursor":${cursor},"hasMore":false}`, documents: 0, hasMore: false, cursor }
    }
    return this.db
      .readingHistoryAt(cursor < upper ? cursor : upper, async () => {
        let log = await this.db.persistence.loadLog(cursor, upper, DELTAS_PAGE)
        let next = upper
        let hasMore = false
        if (log.length >= DELTAS_PAGE) {
          // Finish the commit the page ended in; more comes after it.
          const last = log[log.length - 1]!.ts
          log = [...log.filter((e) => e.ts < last), ...(await this.db.persistence.loadLog(last - 1n, last, Number.MAX_SAFE_INTEGER))]
          next = last
          hasMore = (await this.db.persistence.loadLog(last, upper, 1)).length > 0
        }
        const tables = new Map(selectedTables(this.db, args).map((t) => [t.tableNumber, t]))
        const values: string[] = []
        for (const e of log) {
          const table = tables.get(e.tableNumber)
          if (table === undefined) continue
          values.push(deltaText(table, e, args))
        }
        this.#cursorUsed(cursor < upper ? cursor : upper)
        this.#cursorUsed(next)
        return { body: `{"values":[${values.join(',')}],"cursor":${next},"hasMore":${hasMore}}`, documents: values.length, hasMore, cursor: next }
      })
      .catch((e: unknown) => {
        if (e instanceof OutOfRetentionError) {
          throw new StreamingExportError(
            'InvalidWindowToReadDocuments',
            `Trying to synchronize from timestamp ${cursor}, which is older than the database’s retention window. This may happen if you paused your Fivetran or Airbyte connector for a long period of time. Please perform a full sync of the connector. See https://fivetran.com/docs/connectors/troubleshooting/trigger-historical-re-syncs or https://docs.airbyte.com/platform/operator-guides/refreshes`,
          )
        }
        throw e
      })
  }

  /** `get_table_column_names`: each component's user tables and their top-level fields. */
  async tableColumnNames(): Promise<string> {
    const byComponent = new Map<string, { name: string; columns: string[] }[]>()
    const txn = await this.db.begin(false)
    try {
      for (const table of selectedTables(this.db, { selection: Selection.everything(), format: 'json' })) {
        const columns = new Set<string>(['_creationTime', '_id'])
        const byId = table.indexes.get(BY_ID)
        if (byId !== undefined) for (const row of await txn.snapshot.scan(byId.indexId, { lo: Buffer.alloc(0), hi: null }, 'asc', 1000)) for (const k of Object.keys(JSON.parse(row.doc.json) as object)) columns.add(k)
        const list = byComponent.get(table.component) ?? []
        list.push({ name: table.name, columns: [...columns].sort() })
        byComponent.set(table.component, list)
      }
    } finally {
      this.db.end(txn)
    }
    return JSON.stringify({ byComponent: Object.fromEntries(byComponent) })
  }
}

function deltaText(table: TableInfo, e: LogEntry, args: StreamingArgs): string {
  if (e.json === null) return valueText(table, e.ts, true, { _id: e.id }, args)
  return valueText(table, e.ts, false, JSON.parse(e.json) as Record<string, JSONValue>, args)
}

function parseSnapshotCursor(cursor: string): { table: number; id: string } {
  try {
    const c = JSON.parse(cursor) as { tablet?: unknown; id?: unknown }
    if (typeof c.tablet === 'string' && /^\d+$/.test(c.tablet) && typeof c.id === 'string') return { table: Number(c.tablet), id: c.id }
  } catch {
    // answered below
  }
  throw new StreamingExportError(
    'InvalidListSnapshotCursor',
    'Invalid value for the `cursor` argument of list_snapshot. Use a `cursor` returned by a previous list_snapshot call, and treat it as an opaque value.',
  )
}

/**
 * Parses a streaming export response, reading the timestamps (`snapshot`, `cursor`, `_ts`) as
 * bigints: they pass 2^53.
 */
export function parseStreamingResponse<T>(text: string): T {
  return JSON.parse(text, function (this: Record<string, unknown>, key, value: unknown, context?: { source?: string }) {
    if (typeof value !== 'number' || context?.source === undefined || !/^-?\d+$/.test(context.source)) return value
    if ((key === '_ts' && '_table' in this) || ((key === 'snapshot' || key === 'cursor') && 'hasMore' in this)) return BigInt(context.source)
    return value
  }) as T
}
