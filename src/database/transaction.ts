/**
 * @module Transaction: one query's or mutation's view of the database.
 *
 * Reads come from a snapshot at `snapshotTs` and are recorded in the read set; a mutation's writes
 * stay in memory (`writes`, keyed by document id) and are overlaid on its own reads. At commit the
 * committer checks the read set against everything committed after `snapshotTs` (optimistic
 * concurrency) and turns `writes` into document and index changes.
 */
import type { KeyInterval, Snapshot } from '../storage/persistence.ts'
import { IntervalCount } from './interval-count.ts'
import { ReadSet } from './read-set.ts'
import { checkDocumentLimits, decodeId, displayValue, MAX_DOCUMENT_NESTING, MAX_DOCUMENT_SIZE, identifierError, jsonToValue, rustDisplayF64, encodeIndexKey, formatBytes, jsonTextSize, jsonToDocumentValue, jsonToValueAllowUndefined, jsonValueSize, inFieldOrder, timeOrderedId, UNDEFINED, validateDocument } from '../values/index.ts'
import type { JSONValue, Value } from '../values/index.ts'
import { BY_ID, storedTableName, TABLE_NAMES_INDEX, tableNameKey } from './catalog.ts'
import type { TableInfo } from './catalog.ts'
import type { IndexRecord, TableRecord } from '../storage/persistence.ts'
import type { Database } from './database.ts'
import { DatabaseError } from './errors.ts'
import { keySuccessor, planQuery, QueryStream, ScanLimitReached, USER_VISIBLE_SYSTEM_TABLES } from './query.ts'
import { SearchPlan } from './search.ts'
import { InvalidCursorError, queryFingerprint } from './cursors.ts'
import type { CursorPosition } from './cursors.ts'
import type { SerializedQuery } from './query.ts'

type Doc = Record<string, JSONValue>

/** A document this transaction changed: `base` as of the snapshot, `doc` as it is now (null: deleted). */
export interface Write {
  readonly table: TableInfo
  readonly id: string
  readonly base: Doc | null
  doc: Doc | null
  /** The id's `by_id` key, when the insert that made the write encoded it already. */
  idKey?: Buffer
  /** A user write's size and nesting of `doc` (0 for a delete), for Convex's warnings. */
  size?: number
  nesting?: number
}

/** Convex's DocumentValidationError::SystemField: a field of the user's named like the system's. */
function systemField(k: string): DatabaseError {
  return new DatabaseError(`Field '${k}' starts with an underscore, which is only allowed for system fields like '_id'`)
}

/**
 * What one transaction may read, write and schedule (Convex's `TransactionLimits`); also what
 * `ctx.meta.getTransactionMetrics()` reports and `runQuery`/`runMutation`'s `transactionLimits`
 * option lowers for a nested call.
 */
export interface TransactionLimits {
  bytesRead: number
  bytesWritten: number
  databaseQueries: number
  documentsRead: number
  documentsWritten: number
  functionsScheduled: number
  scheduledFunctionArgsBytes: number
}

/** Convex's default limits (crates/common/src/knobs.rs: TRANSACTION_MAX_*). */
export const LIMITS: Readonly<TransactionLimits> = Object.freeze({
  bytesRead: 16 * 1024 * 1024,
  bytesWritten: 16 * 1024 * 1024,
  databaseQueries: 4096,
  documentsRead: 32_000,
  documentsWritten: 16_000,
  functionsScheduled: 1000,
  scheduledFunctionArgsBytes: 16 * 1024 * 1024,
})
export const LIMIT_NAMES = Object.keys(LIMITS) as (keyof TransactionLimits)[]
/** Past this share of a limit, a function's log says so (Convex's FUNCTION_LIMIT_WARNING_RATIO). */
export const LIMIT_WARNING_RATIO = 0.8

/** What a function may use of `limit` before its log warns. */
export function warningThreshold(limit: number): number {
  return Math.floor(LIMIT_WARNING_RATIO * limit)
}

/**
 * Convex's log line for `actual` past 80% of `limit` without passing it (`approaching_limit_warning`),
 * or null.
 */
export function limitWarning(message: string, actual: number, limit: number, unit = ''): string | null {
  if (!(actual > warningThreshold(limit) && actual <= limit)) return null
  return `[WARN] ${message} (actual: ${actual}${unit}, limit: ${limit}${unit}).`
}
/** Convex's warnings, in its order: the limit, the message, the unit, whether the help follows. */
const LIMIT_WARNINGS: readonly [keyof TransactionLimits, string, string, boolean][] = [
  ['documentsRead', 'Many documents read in a single function execution', '', true],
  ['databaseQueries', 'Many reads in a single function execution', '', true],
  ['bytesRead', 'Many bytes read in a single function execution', ' bytes', true],
  ['documentsWritten', 'Many writes in a single function execution', '', false],
  ['bytesWritten', 'Many bytes written in a single function execution', ' bytes', false],
  ['functionsScheduled', 'Many functions scheduled by this mutation', '', false],
  ['scheduledFunctionArgsBytes', 'Large total size of the arguments of scheduled functions from this mutation', ' bytes', false],
]
const OVER_LIMIT_HELP = 'Consider using smaller limits in your queries, paginating your queries, or using indexed queries with a selective index range expressions.'

/** A new document id for `table` (time-ordered: see `timeOrderedId`). */
export function newDocumentId(table: TableInfo): string {
  return timeOrderedId(table.idNumber)
}

export class Transaction {
  readonly readSet
  readonly writes = new Map<string, Write>()
  /** Open streams by `${call}:${queryId}`: nested calls share the transaction, not stream ids. */
  #streams: Map<string, QueryStream> | null = null
  /**
   * A subscription's journal: the end cursor its page had when first run. Re-runs read up to it
   * so that page boundaries stay put while rows are inserted and deleted ("gapless" pages).
   */
  journal: { endCursor: string | null } | null = null
  /** The end cursor of the page this run returned (becomes the subscription's journal). */
  pageEnd: string | null = null
  /** System work (scheduler, crons, imports) is not held to user limits. */
  system = false
  /** The limits in force (lowered for the length of a nested call with `transactionLimits`). */
  limits: Readonly<TransactionLimits> = LIMITS
  /** What the user's code used so far, as Convex counts it (system tables aren't charged). */
  readonly usage = { bytesRead: 0, documentsRead: 0, bytesWritten: 0, documentsWritten: 0, functionsScheduled: 0, scheduledFunctionArgsBytes: 0 }
  /** Index intervals read, for the `databaseQueries` count. */
  readonly #intervals = new IntervalCount()

  /** Records an index interval the user's code read (a `db.get`, a query's range). */
  recordIndexRead(indexId: number, interval: KeyInterval): void {
    this.readSet.add(indexId, interval)
    this.#intervals.direct(indexId, interval)
    if (this.system) return
    const max = this.limits.databaseQueries
    if (this.#intervals.count > max) throw new DatabaseError(`Too many reads in a single function execution (limit: ${max}). ${OVER_LIMIT_HELP}`)
  }

  /** Counts a document read (as JSON text), failing the function past the limits. System documents are free. */
  recordRead(json: string, tableName: string, size = jsonTextSize(json)): void {
    if (tableName.charCodeAt(0) === 95) return // '_'
    const u = this.usage
    u.documentsRead++
    u.bytesRead += size
    if (this.system) return
    const { documentsRead, bytesRead } = this.limits
    if (u.documentsRead > documentsRead) throw new DatabaseError(`Too many documents read in a single function execution (limit: ${documentsRead}). ${OVER_LIMIT_HELP}`)
    if (u.bytesRead > bytesRead) throw new DatabaseError(`Too many bytes read in a single function execution (limit: ${bytesRead} bytes). ${OVER_LIMIT_HELP}`)
  }

  /**
   * Takes back documents counted as read that the function never took: what a query stream read
   * ahead of a function that stopped early (`first()`, a `break`). Convex counts what a query yields.
   */
  giveBackReads(documents: number, bytes: number): void {
    this.usage.documentsRead -= documents
    this.usage.bytesRead -= bytes
  }

  /** Counts a write of a user document (`size`: the new version's, 0 for a delete). */
  #recordWrite(size: number): void {
    const u = this.usage
    u.documentsWritten++
    u.bytesWritten += size
    if (this.system) return
    const { documentsWritten, bytesWritten } = this.limits
    if (u.documentsWritten > documentsWritten) throw new DatabaseError(`Too many writes in a single function execution (limit: ${documentsWritten})`)
    if (u.bytesWritten > bytesWritten) throw new DatabaseError(`Too many bytes written in a single function execution (limit: ${formatBytes(bytesWritten)})`)
  }

  /**
   * Counts a file a mutation stores (`write`) or reads (`read`) with `ctx.storage.store/get`
   * (convex ≥ 1.48): its bytes count against the transaction's byte limits.
   */
  recordFileBytes(kind: 'read' | 'write', size: number): void {
    const u = this.usage
    if (kind === 'read') {
      u.bytesRead += size
      if (!this.system && u.bytesRead > this.limits.bytesRead) throw new DatabaseError(`Too many bytes read in a single function execution (limit: ${this.limits.bytesRead} bytes). ${OVER_LIMIT_HELP}`)
    } else {
      u.bytesWritten += size
      if (!this.system && u.bytesWritten > this.limits.bytesWritten) throw new DatabaseError(`Too many bytes written in a single function execution (limit: ${formatBytes(this.limits.bytesWritten)})`)
    }
  }

  /** Counts a scheduled function (`1.0/schedule`) against the limits; `argsSize`: its arguments array's size. */
  recordScheduled(argsSize: number): void {
    const u = this.usage
    const { functionsScheduled, scheduledFunctionArgsBytes } = this.limits
    if (!this.system && u.functionsScheduled >= functionsScheduled) throw new DatabaseError(`Too many functions scheduled by this mutation (limit: ${functionsScheduled})`)
    if (!this.system && u.scheduledFunctionArgsBytes + argsSize > scheduledFunctionArgsBytes) {
      throw new DatabaseError(`Too large total size of the arguments of scheduled functions from this mutation (limit: ${scheduledFunctionArgsBytes} bytes)`)
    }
    u.functionsScheduled++
    u.scheduledFunctionArgsBytes += argsSize
  }

  /** `ctx.meta.getTransactionMetrics()`: used and remaining per limit (remaining may be negative). */
  metrics(): Record<keyof TransactionLimits, { used: number; remaining: number }> {
    const used: TransactionLimits = { ...this.usage, databaseQueries: this.#intervals.count }
    const out = {} as Record<keyof TransactionLimits, { used: number; remaining: number }>
    for (const name of LIMIT_NAMES) out[name] = { used: used[name], remaining: this.limits[name] - used[name] }
    return out
  }

  /**
   * Convex's warnings for a function that used more than 80% of a limit without passing it
   * (`add_warnings_to_log_lines`), as log lines, in its order.
   */
  limitWarnings(): string[] {
    const used: TransactionLimits = { ...this.usage, databaseQueries: this.#intervals.count }
    const out: string[] = []
    for (const [name, message, unit, help] of LIMIT_WARNINGS) {
      const actual = used[name]
      const limit = this.limits[name]
      const warning = limitWarning(message, actual, limit, unit)
      if (warning !== null) out.push(help ? `${warning} ${OVER_LIMIT_HELP}` : warning)
    }
    // The largest and the most nested of the documents as the transaction leaves them
    // (`biggest_document_writes`: each document's last version, a deleted one 0).
    let largest: Write | null = null
    let deepest: Write | null = null
    for (const w of this.writes.values()) {
      if ((w.size ?? 0) > (largest?.size ?? 0)) largest = w
      if ((w.nesting ?? 0) > (deepest?.nesting ?? 0)) deepest = w
    }
    if (largest !== null && deepest !== null) {
      const document = limitWarning(`Large document written with ID "${largest.id}"`, largest.size!, MAX_DOCUMENT_SIZE, ' bytes')
      if (document !== null) out.push(document)
      const nested = limitWarning(`Deeply nested document written with ID "${deepest.id}"`, deepest.nesting!, MAX_DOCUMENT_NESTING, ' levels')
      if (nested !== null) out.push(nested)
    }
    return out
  }

  /**
   * Lowers the limits for a nested call given `transactionLimits`: each is what the call may use
   * on top of what the transaction has used so far, capped by the limits already in force (Convex's
   * `TransactionLimits::from_budget`). Returns the limits to restore when the call ends.
   */
  applyBudget(budget: TransactionLimits): Readonly<TransactionLimits> {
    const previous = this.limits
    const used: TransactionLimits = { ...this.usage, databaseQueries: this.#intervals.count }
    const next = {} as TransactionLimits
    for (const name of LIMIT_NAMES) next[name] = Math.min(used[name] + budget[name], previous[name])
    this.limits = next
    return previous
  }

  constructor(
    readonly db: Database,
    readonly snapshot: Snapshot,
    readonly mutable: boolean,
    readSet: ReadSet,
  ) {
    this.readSet = readSet
  }

  get snapshotTs(): bigint {
    return this.snapshot.ts
  }

  /**
   * Tables this transaction's writes create, by stored name: numbered now, stored with its commit
   * (so a mutation that fails or conflicts leaves no table behind), seen by no one else until then.
   */
  readonly created = new Map<string, { info: TableInfo; records: { table: TableRecord; indexes: IndexRecord[] } }>()

  /** A table by name as this transaction sees it: the catalog's, or one it is creating. */
  table(name: string, component = ''): TableInfo | undefined {
    return this.db.catalog.table(component, name) ?? this.created.get(storedTableName(component, name))?.info
  }

  /** The table of `component` whose ids carry `idNumber` (each component numbers its own tables). */
  #tableById(component: string, idNumber: number): TableInfo | null {
    const published = this.db.catalog.tableForId(component, idNumber)
    if (published !== undefined) return published
    for (const c of this.created.values()) if (c.info.component === component && c.info.idNumber === idNumber) return c.info
    return null
  }

  /**
   * The table an insert goes to, created with this transaction if it doesn't exist. Creating it
   * reads its name's absence, so two transactions that create one table conflict (the second
   * re-runs and finds it).
   */
  #tableForInsert(tableName: string, component: string): TableInfo {
    const existing = this.table(tableName, component)
    if (existing !== undefined) return existing
    const provisional = this.db.catalog.provisionalTable(tableName, component)
    this.created.set(storedTableName(component, tableName), provisional)
    const key = tableNameKey(tableName, component)
    this.readSet.add(TABLE_NAMES_INDEX, { lo: key, hi: keySuccessor(key) })
    return provisional.info
  }

  /**
   * The table an id names in `component` ('' the app), or null if it names none: as in Convex, an
   * id's table number is looked up among the component's own tables, so an id of another
   * component's table names no table, or (same number) a table whose documents it isn't one of.
   */
  #tableOf(id: string, component: string): TableInfo | null {
    const decoded = decodeId(id)
    return decoded === null ? null : this.#tableById(component, decoded.tableNumber)
  }

  /**
   * The table of a document that system code names by id alone (`component` undefined): ids
   * being unique across the store, the one table, of those whose ids carry its number, that
   * holds it (or this transaction's write of it). When none does, the id's `by_id` reads are
   * recorded in each of them (a commit creating it conflicts) and the result is null.
   */
  async #systemTableOf(id: string, component?: string): Promise<TableInfo | null> {
    if (component !== undefined) return this.#tableOf(id, component)
    const decoded = decodeId(id)
    if (decoded === null) return null
    const candidates = [...this.db.catalog.tablesForId(decoded.tableNumber)]
    for (const c of this.created.values()) if (c.info.idNumber === decoded.tableNumber) candidates.push(c.info)
    if (candidates.length <= 1) return candidates[0] ?? null
    const own = this.writes.get(id)
    if (own !== undefined) return own.table
    const stored = await this.snapshot.getDocument(id)
    const holder = stored === null ? undefined : candidates.find((t) => t.tableNumber === stored.tableNumber)
    if (holder !== undefined) return holder
    const key = encodeIndexKey([id])
    for (const t of candidates) this.recordIndexRead(t.indexes.get(BY_ID)!.indexId, { lo: key, hi: keySuccessor(key) })
    return null
  }

  #checkTableArg(id: string, tableName: string | undefined, op: string, component: string): TableInfo | null {
    const table = this.#tableOf(id, component)
    if (tableName !== undefined) {
      if (decodeId(id) === null) throw new DatabaseError(`Invalid argument \`id\` for \`db.${op}\`: Unable to decode ID: Invalid ID ${JSON.stringify(id)}`)
      if (table === null) throw new DatabaseError(`Invalid argument \`id\` for \`db.${op}\`: ID "${id}" is not an ID of table "${tableName}"`)
      if (table.name !== tableName) throw new DatabaseError(wrongTableMessage(`db.${op}`, tableName, table.name))
    }
    return table
  }

  /** Records a point read of `id` and returns its current version: own write, else stored JSON text. */
  async #readRaw(table: TableInfo, id: string): Promise<Write | string | null> {
    const key = encodeIndexKey([id])
    this.recordIndexRead(table.indexes.get(BY_ID)!.indexId, { lo: key, hi: keySuccessor(key) })
    const w = this.writes.get(id)
    if (w !== undefined) {
      if (w.table !== table) return null
      // Reading its own write is charged like any read (as in Convex).
      if (w.doc !== null) this.recordRead(JSON.stringify(w.doc), table.name)
      return w
    }
    const stored = await this.snapshot.getDocument(id)
    // The same id text in another table (another component's table of the same number): not this one's.
    const json = stored !== null && stored.tableNumber === table.tableNumber ? stored.json : null
    if (json !== null) this.recordRead(json, table.name)
    return json
  }

  /**
   * Reads a document (recording the read), seeing this transaction's own writes: in `component`'s
   * tables, or (system code naming no component) wherever the id is.
   */
  async read(id: string, component?: string): Promise<Doc | null> {
    const table = await this.#systemTableOf(id, component)
    if (table === null) return null
    const raw = await this.#readRaw(table, id)
    return raw === null ? null : typeof raw === 'string' ? (JSON.parse(raw) as Doc) : raw.doc
  }

  /**
   * `db.get` / `db.system.get`: the document's JSON text, or `null`. As in Convex, an id of a
   * system table through `db` (or of a user table through `db.system`) throws, an id of another
   * table than the one named throws, and an id of no table (or of a system table users can't
   * see) is simply not found.
   */
  async get(id: string, tableName: string | undefined, isSystem: boolean, component = ''): Promise<string> {
    const method = isSystem ? 'db.system.get' : 'db.get'
    if (typeof id !== 'string') throw new DatabaseError(`Invalid argument \`id\` for \`${method}\`: expected a string`)
    if (decodeId(id) === null) throw new DatabaseError(`Invalid argument \`id\` for \`${method}\`: Unable to decode ID: Invalid ID ${JSON.stringify(id)}`)
    const table = this.#tableOf(id, component)
    if (table === null) return 'null'
    const systemTable = table.name.startsWith('_')
    if (systemTable && !this.system && !USER_VISIBLE_SYSTEM_TABLES.has(table.name)) return 'null'
    if (isSystem && !systemTable) throw new DatabaseError('User tables cannot be accessed with db.system.')
    if (!isSystem && systemTable) throw new DatabaseError('System tables can only be accessed with db.system.')
    if (tableName !== undefined && tableName !== table.name) throw new DatabaseError(wrongTableMessage(method, tableName, table.name))
    const raw = await this.#readRaw(table, id)
    if (raw === null || typeof raw === 'string') return raw ?? 'null'
    return raw.doc === null ? 'null' : JSON.stringify(raw.doc)
  }

  #assertMutable(op: string): void {
    if (!this.mutable) throw new DatabaseError(`Cannot call db.${op} in a query: queries are read-only`)
  }

  /**
   * Checks a user-supplied document body and the full document against limits and the schema;
   * returns its size and nesting.
   */
  #checkDocument(table: TableInfo, doc: Doc): { size: number; nesting: number } {
    const tableName = table.name
    let value: Value
    try {
      value = jsonToDocumentValue(doc)
    } catch (e) {
      throw new DatabaseError((e as Error).message)
    }
    const measured = { nesting: 0 }
    const limitError = checkDocumentLimits(value as Record<string, Value>, measured)
    if (limitError !== null) throw new DatabaseError(limitError)
    const error = validateDocument(tableName, this.db.schemaValidator(tableName, table.component), value as Record<string, Value>, this.db.validatorContextFor(table.component))
    if (error !== null) throw new DatabaseError(error)
    return { size: jsonValueSize(doc), nesting: measured.nesting }
  }

  #userFields(value: JSONValue, op: string): Doc {
    // (An int64, a float that JSON can't carry, or bytes come encoded as a one-field object.)
    if (value === null || typeof value !== 'object' || Array.isArray(value) || isEncodedScalar(value)) throw new DatabaseError(`Invalid argument \`value\` for \`db.${op}\`: Value must be an Object`)
    return value as Doc
  }

  async insert(tableName: string, value: JSONValue, component = ''): Promise<string> {
    this.#assertMutable('insert')
    // Convex's order (async_syscall.rs `insert`): the value, then the table's name, then whether
    // it names a system table.
    const fields = this.#userFields(value, 'insert')
    if (typeof tableName !== 'string') throw new DatabaseError('Invalid argument `table` for `db.insert`: expected a string')
    const invalid = identifierError(tableName)
    if (invalid !== null) throw new DatabaseError(`Invalid argument \`table\` for \`db.insert\`: ${invalid}`)
    if (tableName.startsWith('_')) throw new DatabaseError('System tables can only be accessed with db.system.')
    const table = this.#tableForInsert(tableName, component)
    const id = timeOrderedId(table.idNumber)
    const creationTime = this.db.nextCreationTime()
    // Convex's checks of a new document (ResolvedDocument::new): its `_id`, its `_creationTime`,
    // then no other field of the system's.
    if ('_id' in fields) throw new DatabaseError(`Provided document ID ${displayValue(id)} doesn't match '_id' field ${displayValue(jsonToValue(fields._id!))}`)
    if ('_creationTime' in fields) {
      throw new DatabaseError(`Provided creation time ${rustDisplayF64(creationTime)} doesn't match '_creationTime' field in ${displayValue(jsonToValue(inFieldOrder({ _id: id, ...fields })))}`)
    }
    for (const k of Object.keys(fields)) if (k.startsWith('_')) throw systemField(k)
    // Fields in Convex's order (sorted), as every stored document has them.
    const doc: Doc = inFieldOrder({ _creationTime: creationTime, _id: id, ...fields })
    const { size, nesting } = this.#checkDocument(table, doc)
    const idKey = this.#newId(table, id)
    // Counted first: a write past the limits fails without being made.
    this.#recordWrite(size)
    this.writes.set(id, { table, id, base: null, doc, idKey, size, nesting })
    return id
  }

  async #existing(id: string, tableName: string | undefined, op: string, verb: string, component: string): Promise<{ table: TableInfo; doc: Doc }> {
    this.#assertMutable(op === 'shallowMerge' ? 'patch' : op)
    if (typeof id !== 'string') throw new DatabaseError(`Invalid argument \`id\` for \`db.${op}\`: expected a string`)
    const table = this.#checkTableArg(id, tableName, op, component)
    if (decodeId(id) === null) throw new DatabaseError(`Invalid argument \`id\` for \`db.${op}\`: Unable to decode ID: Invalid ID ${JSON.stringify(id)}`)
    const doc = table === null ? null : await this.read(id, component)
    // An id of no table of this component's: Convex's `resolve_idv6`.
    if (table === null) throw new DatabaseError(`Table for ID "${id}" not found`)
    if (doc === null) throw new DatabaseError(`${verb} on nonexistent document ID ${id}`)
    if (table.name.startsWith('_')) throw new DatabaseError(`System tables can't be modified by user functions (${verb.toLowerCase()} on ${table.name})`)
    return { table, doc }
  }

  #put(table: TableInfo, id: string, doc: Doc | null, size?: number, nesting?: number): void {
    const w = this.writes.get(id)
    if (w !== undefined) {
      w.doc = doc
      w.size = size
      w.nesting = nesting
    } else this.writes.set(id, { table, id, base: null, doc, size, nesting })
  }

  /**
   * A new id depends on no other transaction creating it: a read Convex takes but doesn't count.
   * Returns the id's `by_id` key.
   */
  #newId(table: TableInfo, id: string): Buffer {
    const key = encodeIndexKey([id])
    this.#intervals.derived(table.indexes.get(BY_ID)!.indexId, { lo: key, hi: keySuccessor(key) })
    return key
  }

  async #remember(table: TableInfo, id: string, current: Doc): Promise<void> {
    if (!this.writes.has(id)) this.writes.set(id, { table, id, base: current, doc: current })
  }

  async patch(id: string, value: JSONValue, tableName: string | undefined, component = ''): Promise<string> {
    const { table, doc } = await this.#existing(id, tableName, 'patch', 'Update', component)
    const fields = this.#userFields(value, 'patch')
    let next: Doc = { ...doc }
    for (const [k, raw] of Object.entries(fields)) {
      if (k === '_id' || k === '_creationTime') continue
      if (k.startsWith('_')) throw systemField(k)
      if (jsonToValueAllowUndefined(raw) === UNDEFINED) delete next[k]
      else next[k] = raw
    }
    systemFieldsMismatch(doc, next, fields)
    next = inFieldOrder(next)
    const { size, nesting } = this.#checkDocument(table, next)
    this.#recordWrite(size)
    await this.#remember(table, id, doc)
    this.#put(table, id, next, size, nesting)
    return JSON.stringify(next)
  }

  async replace(id: string, value: JSONValue, tableName: string | undefined, component = ''): Promise<string> {
    const { table, doc } = await this.#existing(id, tableName, 'replace', 'Replace', component)
    const fields = this.#userFields(value, 'replace')
    let next: Doc = { _creationTime: doc._creationTime!, _id: doc._id! }
    for (const [k, raw] of Object.entries(fields)) {
      if (k === '_id' || k === '_creationTime') continue
      if (k.startsWith('_')) throw systemField(k)
      if (jsonToValueAllowUndefined(raw) !== UNDEFINED) next[k] = raw
    }
    systemFieldsMismatch(doc, next, fields)
    next = inFieldOrder(next)
    const { size, nesting } = this.#checkDocument(table, next)
    this.#recordWrite(size)
    await this.#remember(table, id, doc)
    this.#put(table, id, next, size, nesting)
    return JSON.stringify(next)
  }

  async remove(id: string, tableName: string | undefined, component = ''): Promise<string> {
    const { table, doc } = await this.#existing(id, tableName, 'delete', 'Delete', component)
    this.#recordWrite(0)
    await this.#remember(table, id, doc)
    this.#put(table, id, null, 0, 0)
    return JSON.stringify(doc)
  }

  /** Actions to run once this transaction has committed (e.g. deleting a stored file). */
  readonly afterCommitActions: (() => Promise<unknown>)[] = []

  afterCommit(action: () => Promise<unknown>): void {
    this.afterCommitActions.push(action)
  }

  /**
   * Work to undo outside the database if this transaction's writes never land: run when it ends
   * without committing (it failed, or conflicted and is run again), and when the nested mutation
   * that asked for it is rolled back. A file a mutation stored is removed so.
   */
  readonly afterAbortActions: (() => Promise<unknown>)[] = []

  afterAbort(action: () => Promise<unknown>): void {
    this.afterAbortActions.push(action)
  }

  /** Committed; or its commit failed with an outcome not known for sure (nothing is undone then). */
  settled = false

  /** Runs the `afterAbort` actions registered since the `from`-th (all by default), and forgets them. */
  undo(from = 0): void {
    for (const action of this.afterAbortActions.splice(from)) {
      void action().catch((e: unknown) => this.db.log('Undoing the work of a transaction that did not commit failed', { error: (e as Error)?.message ?? String(e) }))
    }
  }

  /** Inserts into a system table (`_scheduled_functions`, …) on the system's behalf. */
  async insertSystem(tableName: string, fields: Doc, givenId?: string, component = ''): Promise<string> {
    // A missing system table is created with this transaction's commit, as a user table is.
    const table = this.#tableForInsert(tableName, component)
    const id = givenId ?? timeOrderedId(table.idNumber)
    if (givenId !== undefined) await this.#checkIdFree(table, id)
    const doc: Doc = inFieldOrder({ _creationTime: this.db.nextCreationTime(), _id: id, ...fields })
    const idKey = this.#newId(table, id)
    this.writes.set(id, { table, id, base: null, doc, idKey })
    return id
  }

  /**
   * A document created with a given id (an import, a replica, a restore) must not take the id of
   * a document of another table: ids are unique across the store.
   */
  async #checkIdFree(table: TableInfo, id: string): Promise<void> {
    const w = this.writes.get(id)
    const stored = w !== undefined ? (w.doc === null ? null : w.table) : await this.snapshot.getDocument(id)
    if (stored !== null && stored.tableNumber !== table.tableNumber) {
      const other = this.db.catalog.byNumber.get(stored.tableNumber)
      throw new DatabaseError(`Document id ${id} of table "${table.name}" is already the id of a document of ${other === undefined ? 'another table' : `table "${other.name}"${other.component === '' ? '' : ` of component ${other.component}`}`}`)
    }
  }

  /**
   * Replaces fields of a system document on the system's behalf; null if it doesn't exist (see
   * `read` for `component`).
   */
  async patchSystem(id: string, fields: Doc, component?: string): Promise<Doc | null> {
    const table = await this.#systemTableOf(id, component)
    const doc = table === null ? null : await this.read(id, table.component)
    if (table === null || doc === null) return null
    const next = inFieldOrder({ ...doc, ...fields })
    await this.#remember(table, id, doc)
    this.#put(table, id, next)
    return next
  }

  /**
   * Sets a document to exactly `doc` (system fields included), or deletes it (`null`), on the
   * system's behalf: a point-in-time restore puts back what a document was. Whether it changed
   * anything (false also when its table is gone). `component`: as for `read`.
   */
  async restoreSystem(id: string, given: Doc | null, component?: string): Promise<boolean> {
    const doc = given === null ? null : inFieldOrder(given)
    const table = await this.#systemTableOf(id, component)
    if (table === null) return false
    const current = await this.read(id, table.component)
    // (A document stored before fields were kept in order compares by its content.)
    if (current === null ? doc === null : doc !== null && JSON.stringify(inFieldOrder(current)) === JSON.stringify(doc)) return false
    if (current !== null) await this.#remember(table, id, current)
    else {
      await this.#checkIdFree(table, id)
      this.#newId(table, id)
    }
    this.#recordWrite(doc === null ? 0 : JSON.stringify(doc).length)
    this.#put(table, id, doc)
    return true
  }

  /** Deletes a system document on the system's behalf (see `read` for `component`). */
  async removeSystem(id: string, component?: string): Promise<void> {
    const table = await this.#systemTableOf(id, component)
    const doc = table === null ? null : await this.read(id, table.component)
    if (table === null || doc === null) return
    await this.#remember(table, id, doc)
    this.#put(table, id, null)
  }

  normalizeId(tableName: string, idString: string, component = ''): string | null {
    const decoded = decodeId(idString)
    if (decoded === null) return null
    const table = this.#tableById(component, decoded.tableNumber)
    return table !== null && table.name === tableName ? idString : null
  }

  openStream(key: string, query: SerializedQuery, component = ''): QueryStream {
    const { index, interval, order } = planQuery(this, query, component)
    const stream = new QueryStream(this, index, interval, order, query.operators)
    this.#streams ??= new Map()
    this.#streams.set(key, stream)
    return stream
  }

  stream(key: string): QueryStream | undefined {
    return this.#streams?.get(key)
  }

  closeStream(key: string): void {
    this.#streams?.delete(key)
  }

  /**
   * The documents of a table (of a component, '' the app) as this transaction sees them, by
   * creation time, at most `limit`: a full table scan, its range recorded as read.
   */
  async readTable(tableName: string, component = '', order: 'asc' | 'desc' = 'asc', limit = Infinity): Promise<Doc[]> {
    const key = `readTable:${++this.#tableReads}`
    const stream = this.openStream(key, { source: { type: 'FullTableScan', tableName, order }, operators: [] }, component)
    const out: Doc[] = []
    try {
      while (out.length < limit) {
        const row = await stream.nextRow()
        if (row === null) break
        out.push(JSON.parse(row.json) as Doc)
      }
    } finally {
      this.closeStream(key)
    }
    return out
  }

  #tableReads = 0

  /**
   * `db.query(table).count()` (Convex's `1.0/count`), and the dashboard's table sizes: the table's
   * documents as this transaction sees them, its own inserts and deletes included, counted by the
   * store (not read one by one). It depends on the whole table, as a full scan would (or on its
   * name while it doesn't exist): any write to it re-runs a subscription, or conflicts a mutation.
   */
  async count(tableName: string, component = ''): Promise<number> {
    const invalid = identifierError(tableName)
    if (invalid !== null) throw new DatabaseError(`Invalid argument \`table\` for \`db.count\`: ${invalid}`)
    const info = this.table(tableName, component)
    if (info === undefined) {
      const key = tableNameKey(tableName, component)
      this.readSet.add(TABLE_NAMES_INDEX, { lo: key, hi: keySuccessor(key) })
      return 0
    }
    this.readSet.add(info.indexes.get(BY_ID)!.indexId, { lo: Buffer.alloc(0), hi: null })
    let n = this.created.has(storedTableName(component, tableName)) ? 0 : await this.snapshot.countTable(info.tableNumber)
    for (const w of this.writes.values()) {
      if (w.table !== info) continue
      if (w.base === null && w.doc !== null) n++
      else if (w.base !== null && w.doc === null) n--
    }
    return n
  }

  /**
   * `ctx.runQuery(ref, args, { useStaleSnapshot: true })` from a mutation, as Convex's
   * `clone_for_snapshot_query`: a read-only view of the snapshot this transaction began on. It
   * sees none of this transaction's writes, and what it reads is not recorded, so it can't make
   * the mutation conflict. It starts from the usage so far and the same limits; what it uses is
   * not added back (Convex clones the transaction's stats for it).
   */
  snapshotView(): Transaction {
    const view = new Transaction(this.db, this.snapshot, false, new ReadSet())
    view.system = this.system
    view.limits = this.limits
    Object.assign(view.usage, this.usage)
    return view
  }

  /** A restore point for a nested mutation: its writes are undone if it fails. */
  savepoint(): () => void {
    const saved = new Map([...this.writes].map(([id, w]) => [id, { doc: w.doc, size: w.size, nesting: w.nesting }]))
    const actions = this.afterCommitActions.length
    const undo = this.afterAbortActions.length
    // Writes rolled back stop counting against the limits; reads and scheduling still count (as in Convex).
    const { documentsWritten, bytesWritten } = this.usage
    return () => {
      this.usage.documentsWritten = documentsWritten
      this.usage.bytesWritten = bytesWritten
      this.afterCommitActions.length = actions
      this.undo(undo)
      for (const id of [...this.writes.keys()]) if (!saved.has(id)) this.writes.delete(id)
      for (const [id, was] of saved) Object.assign(this.writes.get(id)!, was)
    }
  }

  /**
   * `.paginate()`: one page, as Convex reads it. Cursors are sealed positions in the query's index
   * (cursors.ts). Without an end cursor the page holds up to `pageSize` documents and ends done
   * only when the query ran out while filling it (a page holding exactly the last documents is
   * followed by an empty, done one); `maximumRowsRead`/`maximumBytesRead` bound the rows scanned,
   * filtered out or not, and a page that reaches them ends `SplitRequired`. With an end cursor (a
   * reactive re-run) it holds everything up to it.
   */
  async page(args: { query: SerializedQuery; cursor: string | null; endCursor: string | null; pageSize: number; maximumRowsRead?: number | null; maximumBytesRead?: number | null }, component = '', call: { paginated: boolean; nested: boolean } = { paginated: false, nested: false }): Promise<string> {
    // One paginated query per function (a nested call is a function of its own, as in Convex);
    // only the outermost function's page follows the subscription's journal.
    if (call.paginated) throw new DatabaseError('This query or mutation function ran multiple paginated queries. Convex only supports a single paginated query in each function.')
    call.paginated = true
    const journal = call.nested ? null : this.journal
    const setPageEnd = (cursor: string) => {
      if (!call.nested) this.pageEnd = cursor
      return cursor
    }
    const pageSize = args.pageSize
    if (typeof pageSize !== 'number' || !Number.isInteger(pageSize) || pageSize < 0) throw new DatabaseError(`Invalid argument \`pageSize\` for \`queryPage\`: expected a non-negative integer, got ${JSON.stringify(pageSize)}`)
    if (pageSize === 0) throw new DatabaseError('Must request at least 1 document while paginating')
    if (pageSize > LIMITS.documentsRead) throw new DatabaseError(`Requested too many items: ${pageSize}`)
    if (args.maximumRowsRead === 0 || args.maximumBytesRead === 0) throw new DatabaseError('maximumRowsRead and maximumBytesRead must be greater than 0')
    const plan = planQuery(this, args.query, component)
    const fingerprint = queryFingerprint(args.query, plan.index instanceof SearchPlan ? ['search', plan.index.index?.name ?? ''] : (plan.index?.keyFields ?? []))
    const codec = this.db.cursors
    const open = (cursor: string | null): CursorPosition | null => {
      if (cursor === null) return null
      const decoded = codec.decode(cursor)
      if (!decoded.fingerprint.equals(fingerprint)) throw new InvalidCursorError()
      return decoded.position
    }
    let { lo, hi } = plan.interval
    const endCursor = args.endCursor ?? journal?.endCursor ?? null
    const start = open(args.cursor ?? null)
    const end = open(endCursor)
    const seal = (position: CursorPosition) => codec.encode(fingerprint, position)
    if (start === 'end') {
      return JSON.stringify({ page: [], isDone: true, continueCursor: setPageEnd(seal('end')), splitCursor: null, pageStatus: null })
    }
    if (plan.order === 'asc') {
      if (start !== null) lo = maxKey(lo, keySuccessor(start))
      if (end !== null && end !== 'end') hi = hi === null ? keySuccessor(end) : minKey(hi, keySuccessor(end))
    } else {
      if (start !== null) hi = hi === null ? start : minKey(hi, start)
      if (end !== null && end !== 'end') lo = maxKey(lo, end)
    }
    const stream = new QueryStream(this, plan.index, { lo, hi }, plan.order, args.query.operators)
    // An end cursor means the whole interval up to it, whatever the budget (as Convex).
    if (end === null && (args.maximumRowsRead != null || args.maximumBytesRead != null)) {
      stream.scanLimit = { rows: args.maximumRowsRead ?? Infinity, bytes: args.maximumBytesRead ?? Infinity }
    }
    const rows: string[] = []
    const keys: Buffer[] = []
    const limit = end !== null ? Infinity : pageSize
    let exhausted = false
    let splitRequired = false
    while (rows.length < limit) {
      let row: { key: Buffer; json: string } | null
      try {
        row = await stream.nextRow()
      } catch (e) {
        if (!(e instanceof ScanLimitReached)) throw e
        splitRequired = true
        break
      }
      if (row === null) {
        exhausted = true
        break
      }
      rows.push(row.json)
      keys.push(row.key)
    }
    const isDone = end !== null ? end === 'end' : exhausted
    const continueCursor = end !== null ? endCursor! : isDone ? seal('end') : seal(stream.lastKey!)
    setPageEnd(continueCursor)
    let splitCursor: string | null = null
    let pageStatus: string | null = null
    if (splitRequired) {
      pageStatus = 'SplitRequired'
      if (keys.length > 0) splitCursor = seal(keys[Math.floor((keys.length - 1) / 2)]!)
    } else if (rows.length >= 2 * pageSize) {
      // A reactive page that grew past twice its size can be split by the client at its middle row.
      pageStatus = 'SplitRecommended'
      splitCursor = seal(keys[Math.floor(keys.length / 2) - 1]!)
    }
    return `{"page":[${rows.join(',')}],"isDone":${isDone},"continueCursor":${JSON.stringify(continueCursor)},"splitCursor":${JSON.stringify(splitCursor)},"pageStatus":${JSON.stringify(pageStatus)}}`
  }
}

function maxKey(a: Buffer, b: Buffer): Buffer {
  return Buffer.compare(a, b) >= 0 ? a : b
}
function minKey(a: Buffer, b: Buffer): Buffer {
  return Buffer.compare(a, b) <= 0 ? a : b
}

/**
 * Convex's errors (ResolvedDocument::new) for a patch or replacement whose `_id` or
 * `_creationTime` isn't the document's: the new value shown with the system fields it gave.
 */
function systemFieldsMismatch(doc: Doc, next: Doc, fields: Record<string, JSONValue>): void {
  if ('_id' in fields && JSON.stringify(fields._id) !== JSON.stringify(doc._id)) {
    throw new DatabaseError(`Provided document ID ${displayValue(doc._id as string)} doesn't match '_id' field ${displayValue(jsonToValue(fields._id!))}`)
  }
  if ('_creationTime' in fields && JSON.stringify(fields._creationTime) !== JSON.stringify(doc._creationTime)) {
    const shown = jsonToValue({ ...next, _creationTime: fields._creationTime! } as JSONValue)
    throw new DatabaseError(`Provided creation time ${rustDisplayF64(doc._creationTime as number)} doesn't match '_creationTime' field in ${displayValue(shown)}`)
  }
}

/** Convex's error for an id of another table than the one a call names. */
function wrongTableMessage(method: string, expected: string, actual: string): string {
  return `Invalid argument \`id\` for \`${method}\`: expected to be an Id<"${expected}">, got Id<"${actual}"> instead.`
}

/** Whether `o` is the JSON form of an int64, a special float or bytes (`{"$integer": …}`, …). */
function isEncodedScalar(o: Record<string, JSONValue>): boolean {
  let n = 0
  for (const k in o) {
    if (++n > 1 || (k !== '$integer' && k !== '$float' && k !== '$bytes')) return false
  }
  return n === 1
}
