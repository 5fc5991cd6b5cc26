/**
 * @module Query streams: a serialized `ctx.db.query(...)` turned into an index interval, scanned in
 * batches from the snapshot and merged with the transaction's own uncommitted writes. A search
 * query (`withSearchIndex`) is planned as a `SearchPlan` and streams its ranked results
 * (search.ts); its positions are keys in relevance order, so cursors work the same way.
 */
import type { IndexRow, KeyInterval, Order } from '../storage/persistence.ts'
import { displayValue, encodeIndexKey, jsonTextSize, jsonToValueAllowUndefined, prefixSuccessor, UNDEFINED } from '../values/index.ts'
import type { JSONValue, Value } from '../values/index.ts'
import { BY_CREATION_TIME, indexKey, TABLE_NAMES_INDEX, tableNameKey } from './catalog.ts'
import type { IndexInfo, TableInfo } from './catalog.ts'
import { DatabaseError, stagedIndex } from './errors.ts'
import { evaluate } from './filter.ts'
import { intervalContains } from './read-set.ts'
import { compileSearch, MAX_CANDIDATES, SearchPlan } from './search.ts'
import type { SearchHit } from './search.ts'
import type { Transaction } from './transaction.ts'

type Doc = Record<string, JSONValue>

interface RangeExpr {
  type: 'Eq' | 'Gt' | 'Gte' | 'Lt' | 'Lte'
  fieldPath: string
  value: JSONValue
}

export interface SerializedQuery {
  source:
    | { type: 'FullTableScan'; tableName: string; order: Order | null }
    | { type: 'IndexRange'; indexName: string; range: RangeExpr[]; order: Order | null }
    | { type: 'Search'; indexName: string; filters: unknown[] }
  operators: ({ filter: JSONValue } | { limit: number })[]
}

/** The smallest key strictly greater than `key` (keys are unique, so this is "just after it"). */
export function keySuccessor(key: Buffer): Buffer {
  const out = Buffer.allocUnsafe(key.length + 1)
  key.copy(out)
  out[key.length] = 0
  return out
}

function rangeValue(json: JSONValue): Value | undefined {
  const v = jsonToValueAllowUndefined(json)
  return v === UNDEFINED ? undefined : (v as Value)
}

const COMPARATOR: Record<Exclude<RangeExpr['type'], 'Eq'>, string> = { Gt: '>', Gte: '>=', Lt: '<', Lte: '<=' }

/**
 * Turns `withIndex` range expressions into a key interval, as Convex does: equalities on a prefix
 * of the index's fields (including the implicit `_creationTime` and `_id`, in any order in the
 * expression) and at most one field with bounds after them; anything else is refused with
 * Convex's codes and messages.
 */
export function rangeInterval(index: IndexInfo, range: readonly RangeExpr[]): KeyInterval {
  const indexName = `${index.tableName}.${index.name}`
  const equalities = new Map<string, RangeExpr>()
  let inequalityField: string | undefined
  let lower: RangeExpr | undefined
  let upper: RangeExpr | undefined
  for (const r of range) {
    if (r.type === 'Eq') {
      const old = equalities.get(r.fieldPath)
      if (old !== undefined) throw alreadyDefined('equality', r.fieldPath, '==', old.value)
      equalities.set(r.fieldPath, r)
      continue
    }
    const isUpper = r.type === 'Lt' || r.type === 'Lte'
    if ((isUpper ? upper : lower) !== undefined) throw alreadyDefined(isUpper ? 'upper' : 'lower', r.fieldPath, COMPARATOR[r.type], r.value)
    if (inequalityField !== undefined && inequalityField !== r.fieldPath) {
      throw new DatabaseError(
        `Upper and lower bounds in \`range\` can only be applied to a single index field. This query against index ${indexName} attempted to set a range bound on both "${inequalityField}" and "${r.fieldPath}". Consider using \`filter\` instead. See https://docs.convex.dev/using/indexes for more info.`,
      )
    }
    inequalityField = r.fieldPath
    if (isUpper) upper = r
    else lower = r
  }
  if (inequalityField !== undefined) {
    const eq = equalities.get(inequalityField)
    if (eq !== undefined) throw alreadyDefined('inequality', inequalityField, '==', eq.value)
  }
  // The index's fields as Convex lists them (its own, then `_creationTime`), and `_id` after them.
  const withId = index.keyFields
  const indexed = withId.slice(0, -1)
  const shownFields = `[${indexed.map((f) => `"${f}"`).join(', ')}]`
  const rank = new Map(withId.map((f, i) => [f, i]))
  for (const field of [...equalities.keys(), ...(inequalityField === undefined ? [] : [inequalityField])]) {
    if (!rank.has(field)) {
      throw new DatabaseError(
        `The index range included a comparison with "${field}", but ${indexName} with fields ${shownFields} doesn't index this field. For more information see https://docs.convex.dev/using/indexes.`,
      )
    }
  }
  const eqs = [...equalities.values()].sort((a, b) => rank.get(a.fieldPath)! - rank.get(b.fieldPath)!)
  const used = [...eqs.map((e) => e.fieldPath), ...(inequalityField === undefined ? [] : [inequalityField])]
  used.forEach((field, i) => {
    if (withId[i] !== field) {
      throw new DatabaseError(
        `Tried to query index ${indexName} but the query didn't use the index fields in order.\nIndex fields: ${shownFields}\nQuery fields: [${used.map((f) => `"${f}"`).join(', ')}]\nFirst incorrect field: "${field}"\nFor more information see https://docs.convex.dev/using/indexes.`,
      )
    }
  })
  const prefixValues = eqs.map((e) => rangeValue(e.value))
  const prefix = encodeIndexKey(prefixValues)
  // Keys are unique, so a bound that names every field (through `_id`) is one key.
  const whole = (n: number) => n === withId.length
  let lo: Buffer = prefix
  let hi: Buffer | null = prefixValues.length === 0 ? null : whole(prefixValues.length) ? keySuccessor(prefix) : prefixSuccessor(prefix)
  if (lower !== undefined) {
    const k = encodeIndexKey([...prefixValues, rangeValue(lower.value)])
    lo = lower.type === 'Gte' ? k : whole(prefixValues.length + 1) ? keySuccessor(k) : prefixSuccessor(k)
  }
  if (upper !== undefined) {
    const k = encodeIndexKey([...prefixValues, rangeValue(upper.value)])
    hi = upper.type === 'Lt' ? k : whole(prefixValues.length + 1) ? keySuccessor(k) : prefixSuccessor(k)
  }
  return { lo, hi }
}

function alreadyDefined(boundType: string, field: string, comparator: string, value: JSONValue): DatabaseError {
  return new DatabaseError(`Already defined ${boundType} bound in index range. Can't add "${field}" ${comparator} ${displayValue(rangeValue(value))}.`)
}

/** The system tables user code may read (`ctx.db.system`), as in Convex; the rest are internal. */
export const USER_VISIBLE_SYSTEM_TABLES: ReadonlySet<string> = new Set(['_storage', '_scheduled_functions'])

/** A table as user code sees it: internal system tables don't exist for it (the system sees all). */
function readableTable(txn: Transaction, name: string, component: string): TableInfo | undefined {
  if (name.startsWith('_') && !txn.system && !USER_VISIBLE_SYSTEM_TABLES.has(name)) return undefined
  return txn.table(name, component)
}

/** Resolves the query's source to an index (or a search) and interval. */
export function planQuery(txn: Transaction, query: SerializedQuery, component = ''): { index: IndexInfo | SearchPlan | null; interval: KeyInterval; order: Order } {
  const source = query.source
  if (source.type === 'Search') return { index: planSearch(txn, source, component), interval: { lo: Buffer.alloc(0), hi: null }, order: 'asc' }
  if (source.type === 'FullTableScan') {
    const table = readableTable(txn, source.tableName, component)
    if (table === undefined) readMissingTable(txn, source.tableName, component)
    return { index: table?.indexes.get(BY_CREATION_TIME) ?? null, interval: { lo: Buffer.alloc(0), hi: null }, order: source.order ?? 'asc' }
  }
  const dot = source.indexName.indexOf('.')
  const tableName = source.indexName.slice(0, dot)
  const indexName = source.indexName.slice(dot + 1)
  const table = readableTable(txn, tableName, component)
  const found = table?.indexes.get(indexName)
  const index = found?.building === true ? undefined : found
  if (index === undefined) {
    if (table === undefined && txn.db.schemaHasIndex(tableName, indexName, component)) {
      readMissingTable(txn, tableName, component)
      return { index: null, interval: { lo: Buffer.alloc(0), hi: null }, order: source.order ?? 'asc' }
    }
    throw new DatabaseError(`Index ${source.indexName} not found.`)
  }
  if (index.staged === true) throw stagedIndex(source.indexName)
  if (index.search !== undefined || index.vector !== undefined) throw new DatabaseError(`Index ${source.indexName} is not a database index`)
  return { index, interval: rangeInterval(index, source.range), order: source.order ?? 'asc' }
}

function planSearch(txn: Transaction, source: { indexName: string; filters: unknown[] }, component: string): SearchPlan {
  const name = typeof source.indexName === 'string' ? source.indexName : ''
  const dot = name.indexOf('.')
  const tableName = name.slice(0, dot)
  const indexName = name.slice(dot + 1)
  const table = txn.table(tableName, component)
  const found = table?.indexes.get(indexName)
  const index = found?.building === true ? undefined : found
  if (index === undefined) {
    if (table === undefined && schemaHasSearchIndex(txn, tableName, indexName, component)) {
      readMissingTable(txn, tableName, component)
      return new SearchPlan(null, null, null)
    }
    throw new DatabaseError(`Index ${name} not found.`)
  }
  if (index.staged === true) throw stagedIndex(name)
  if (index.search === undefined) throw new DatabaseError(`Index ${name} is not a search index`)
  return new SearchPlan(index, table!, compileSearch(index, source.filters))
}

function schemaHasSearchIndex(txn: Transaction, tableName: string, indexName: string, component: string): boolean {
  const tables = (txn.db.schemaOf(component)?.tables ?? []) as readonly { tableName: string; searchIndexes?: { indexDescriptor: string }[] }[]
  return tables.some((t) => t.tableName === tableName && (t.searchIndexes ?? []).some((i) => i.indexDescriptor === indexName))
}

function readMissingTable(txn: Transaction, name: string, component: string): void {
  const key = tableNameKey(name, component)
  txn.readSet.add(TABLE_NAMES_INDEX, { lo: key, hi: keySuccessor(key) })
}

/** How many rows a stream reads from the store at a time. */
const BATCH = 128

/** A paginated read reached its `maximumRowsRead`/`maximumBytesRead` with rows left: the page ends there. */
export class ScanLimitReached extends Error {}

export class QueryStream {
  readonly index: IndexInfo | null
  /** For a search: its plan, and its ranked results within the interval once run. */
  readonly #search: SearchPlan | null
  #hits: SearchHit[] | null = null
  #consumed = 0
  #remaining: KeyInterval
  #storeDone: boolean
  #buffer: IndexRow[] = []
  readonly #overlay: { key: Buffer; json: string; doc: Doc }[]
  /** Documents this transaction had written when the stream opened: their stored rows are stale. */
  readonly #written: ReadonlySet<string>
  readonly #filters: JSONValue[] = []
  #limit = Infinity
  #emitted = 0
  lastKey: Buffer | null = null
  /** Rows read from the index so far and their size, filtered out or not: what `maximumRowsRead` counts. */
  scannedRows = 0
  scannedBytes = 0
  /** What this stream counted as read (documents of user tables, their sizes), and after each row of the last batch. */
  #counted = { documents: 0, bytes: 0 }
  #marks: { documents: number; bytes: number }[] = []
  /** A failure met reading ahead, for the next batch. */
  #failed: Error | null = null
  /** Set for a page with `maximumRowsRead`/`maximumBytesRead`: reading past it throws `ScanLimitReached`. */
  scanLimit: { rows: number; bytes: number } | null = null

  constructor(
    readonly txn: Transaction,
    source: IndexInfo | SearchPlan | null,
    readonly interval: KeyInterval,
    readonly order: Order,
    operators: SerializedQuery['operators'],
  ) {
    this.#search = source instanceof SearchPlan ? source : null
    const index = source instanceof SearchPlan ? null : source
    this.index = index
    this.#remaining = interval
    this.#storeDone = index === null
    for (const op of operators) {
      if ('filter' in op) this.#filters.push(op.filter)
      else if ('limit' in op) this.#limit = Math.min(this.#limit, op.limit)
    }
    this.#overlay = []
    this.#written = new Set(txn.writes.keys())
    if (index !== null) {
      for (const w of txn.writes.values()) {
        if (w.table.tableNumber !== index.tableNumber || w.doc === null) continue
        const key = indexKey(index, w.doc)
        if (intervalContains(interval, key)) this.#overlay.push({ key, json: JSON.stringify(w.doc), doc: w.doc })
      }
      const sign = order === 'asc' ? 1 : -1
      this.#overlay.sort((a, b) => sign * Buffer.compare(a.key, b.key))
    }
  }

  async #fill(): Promise<void> {
    const index = this.index!
    // Without filters, read no further than the limit, or the batch being taken, needs: the read
    // set stays tight, and a loop that stops at its first row doesn't read a page for nothing.
    const want = this.#filters.length === 0 ? Math.max(1, Math.min(BATCH, Math.max(Math.min(this.#limit - this.#emitted, this.#wanted), this.#past))) : BATCH
    const rows = await this.txn.snapshot.scan(index.indexId, this.#remaining, this.order, want)
    const last = rows[rows.length - 1]
    if (rows.length < want || last === undefined) {
      this.txn.recordIndexRead(index.indexId, this.#remaining)
      this.#storeDone = true
    } else if (this.order === 'asc') {
      const next = keySuccessor(last.key)
      this.txn.recordIndexRead(index.indexId, { lo: this.#remaining.lo, hi: next })
      this.#remaining = { lo: next, hi: this.#remaining.hi }
    } else {
      this.txn.recordIndexRead(index.indexId, { lo: last.key, hi: this.#remaining.hi })
      this.#remaining = { lo: this.#remaining.lo, hi: last.key }
    }
    // Documents are charged as the query takes them (below), not as they are fetched ahead.
    const buffered = this.#buffer.length
    for (const row of rows) if (!this.#written.has(row.doc.id)) this.#buffer.push(row)
    // A read that found only rows this transaction wrote (a loop that deletes the first row until
    // none is left) reads further the next time, not a row at a time: its read set passes only
    // rows of its own.
    if (this.#buffer.length === buffered && rows.length > 0) this.#past = Math.min(BATCH, want * 2)
  }

  /** How far the next store read goes at least, grown past rows the transaction wrote itself. */
  #past = 1

  /** The next search result, or null after the last (reading past MAX_CANDIDATES fails, as in Convex). */
  async #nextHit(): Promise<SearchHit | null> {
    if (this.#hits === null) this.#hits = (await this.#search!.hits(this.txn)).filter((h) => intervalContains(this.interval, h.key))
    if (this.#consumed === MAX_CANDIDATES) {
      throw new DatabaseError(`Search query scanned too many documents (fetched ${MAX_CANDIDATES}). Consider using a smaller limit, paginating the query, or using a filter field to limit the number of documents pulled from the search index.`)
    }
    const hit = this.#hits[this.#consumed]
    if (hit === undefined) return null
    this.#consumed++
    return hit
  }

  /** Rows the caller means to take now (nextBatch's remainder): the most a store read fetches. */
  #wanted = BATCH

  /** The next matching document as `[key, json]`, or null at the end. */
  async nextRow(): Promise<{ key: Buffer; json: string } | null> {
    if (this.#search !== null) {
      while (this.#emitted < this.#limit) {
        const hit = await this.#nextHit()
        if (hit === null) return null
        this.lastKey = hit.key
        if (this.#filters.length > 0 && !this.#filters.every((f) => evaluate(f, JSON.parse(hit.json) as Doc) === true)) continue
        this.#emitted++
        return hit
      }
      return null
    }
    while (this.#emitted < this.#limit) {
      // Past the page's byte budget the page ends, whether or not another row follows, as in
      // Convex (a page read to its last row on its budget is followed by an empty, done one).
      if (this.scanLimit !== null && this.scannedBytes >= this.scanLimit.bytes) throw new ScanLimitReached()
      while (this.#buffer.length === 0 && !this.#storeDone) await this.#fill()
      const fromStore = this.#buffer[0]
      const fromOverlay = this.#overlay[0]
      let row: { key: Buffer; json: string; doc?: Doc }
      if (fromStore === undefined && fromOverlay === undefined) {
        return null
      }
      // There is another row: reading it may be past the page's row budget (Convex checks it
      // only when it must read on).
      if (this.scanLimit !== null && this.scannedRows >= this.scanLimit.rows) throw new ScanLimitReached()
      const cmp = fromStore === undefined ? 1 : fromOverlay === undefined ? -1 : Buffer.compare(fromStore.key, fromOverlay.key) * (this.order === 'asc' ? 1 : -1)
      if (cmp < 0) row = { key: fromStore!.key, json: this.#buffer.shift()!.doc.json }
      else row = this.#overlay.shift()!
      // Charged whether or not a filter keeps it (as Convex does; system tables are free). This
      // stream's share is kept too, counted first as the transaction counts it even when it
      // throws at a limit, to give back what it read ahead of a function that stops (giveBack).
      const tableName = this.index!.tableName
      if (tableName.charCodeAt(0) !== 95) {
        const size = jsonTextSize(row.json)
        this.#counted.documents++
        this.#counted.bytes += size
        this.txn.recordRead(row.json, tableName, size)
      }
      this.lastKey = row.key
      this.scannedRows++
      this.scannedBytes += row.json.length
      if (this.#filters.length > 0) {
        const doc = row.doc ?? (JSON.parse(row.json) as Doc)
        if (!this.#filters.every((f) => evaluate(f, doc) === true)) continue
      }
      this.#emitted++
      return row
    }
    return null
  }

  /**
   * Up to `max` documents (JSON texts) and whether the stream is exhausted. A failure met while
   * reading ahead (a limit) is the function's only if it asks for more: the rows before it come
   * first, the failure with the next batch.
   */
  async nextBatch(max: number): Promise<{ rows: string[]; done: boolean }> {
    if (this.#failed !== null) throw this.#failed
    const rows: string[] = []
    const marks = [{ ...this.#counted }]
    let done = false
    while (rows.length < max) {
      let row: { json: string } | null
      try {
        this.#wanted = max - rows.length
        row = await this.nextRow()
      } catch (e) {
        if (rows.length === 0 || !(e instanceof DatabaseError)) throw e
        this.#failed = e
        break
      }
      if (row === null) {
        done = true
        break
      }
      rows.push(row.json)
      marks.push({ ...this.#counted })
    }
    this.#marks = marks
    return { rows, done }
  }

  /**
   * Gives back to the transaction what the last batch read past its first `taken` rows (rows read
   * ahead and never taken, and what a filter left out after the last one taken). Called before the
   * stream reads on, so what it has counted is still where that batch ended.
   */
  giveBack(taken: number): void {
    const mark = this.#marks[Math.max(0, Math.min(taken, this.#marks.length - 1))]
    if (mark === undefined) return
    this.txn.giveBackReads(this.#counted.documents - mark.documents, this.#counted.bytes - mark.bytes)
    this.#counted = { ...mark }
    this.#marks = []
  }
}
