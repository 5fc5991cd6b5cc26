/**
 * @module Catalog: tables and their indexes, kept in memory and persisted through the store.
 *
 * Every table has `by_id` (`_id`) and `by_creation_time` (`_creationTime`, `_id`); a schema index
 * on fields F is stored under the key F ‖ `_creationTime` ‖ `_id`, so every key is unique.
 * A search index (`search` set) has no keys: its entries are kept by the store's search index;
 * likewise a vector index (`vector` set), whose entries are kept by the store's vector index.
 *
 * Two different things keep an index from queries: `building` (an index a push is still
 * backfilling before it lands; internal, under BUILDING_PREFIX) and `staged` (declared
 * `staged: true` in the schema by the user: complete and kept current, refused by queries with
 * Convex's "currently staged" error until a push enables it).
 */
import type { IndexRecord, Persistence, SearchIndexConfig, TableRecord, VectorIndexConfig } from '../storage/persistence.ts'
import { encodeIndexKey, jsonToDocumentValue } from '../values/index.ts'
import type { JSONValue, Value } from '../values/index.ts'
import { searchEntry } from './search.ts'
import { vectorEntry } from './vector.ts'

/** The name a dropped table's record keeps (`~dropped~<number>`): no table can be named so. */
export const DROPPED_TABLE = '~dropped~'

/**
 * User tables are numbered from here in each component, like Convex's (ids of small tables stay
 * 32 characters); below are system tables' numbers.
 */
const FIRST_USER_TABLE_NUMBER = 10001

/** The largest table number the stores keep (a signed 32-bit integer in Postgres). */
const MAX_STORED_TABLE_NUMBER = 0x7fffffff

/**
 * The numbers system tables get in every component when free (best effort, as in Convex: a
 * table created before keeps its number). Convex's are `512 + DefaultTableNumber`
 * (crates/model/src/lib.rs), its virtual tables sharing their table's number: `_storage` is
 * `_file_storage`'s, `_scheduled_functions` `_scheduled_jobs`'s. Concave's own system tables take
 * numbers from 9901 up, above every Convex one and below user tables (ids of the components and
 * function handles, which are no documents, use 9001 and 9002).
 */
export const SYSTEM_TABLE_NUMBERS: ReadonlyMap<string, number> = new Map([
  ['_environment_variables', 512 + 13],
  ['_session_requests', 512 + 17],
  ['_cron_jobs', 512 + 19],
  ['_scheduled_functions', 512 + 27],
  ['_storage', 512 + 28],
  ['_snapshot_imports', 512 + 29],
  ['_upload_tokens', 9901],
  ['_cron_runs', 9902],
  ['_replication', 9990],
])

/** Where a system table without a number of its own is numbered from (first free). */
const FIRST_OTHER_SYSTEM_TABLE_NUMBER = 9903
const TAKEN_SYSTEM_NUMBERS = new Set(SYSTEM_TABLE_NUMBERS.values())

export interface IndexInfo {
  readonly indexId: number
  readonly tableNumber: number
  readonly tableName: string
  /** The component the index's table belongs to ('' for the app). */
  readonly component: string
  readonly name: string
  /** The index's declared fields (what `withIndex` ranges name). */
  readonly fields: readonly string[]
  /** The fields its keys are made of, including the implicit suffix (none for a search index). */
  readonly keyFields: readonly string[]
  /** Present for a full-text search index. */
  readonly search?: SearchIndexConfig
  /** Present for a vector index. */
  readonly vector?: VectorIndexConfig
  /** Being built for a push that hasn't finished: kept up to date by commits, invisible to queries. */
  readonly building?: boolean
  /** Declared `staged: true`: complete and kept up to date, but queries may not use it. */
  readonly staged?: boolean
}

/** Indexes a push is building are stored under this prefix until the push finishes. */
export const BUILDING_PREFIX = '__staged__:'

export interface TableInfo {
  /** The table's key in the store (unique among every component's tables; see TableRecord). */
  readonly tableNumber: number
  /** The number its ids carry: unique within its component only (Convex's TableNumber). */
  readonly idNumber: number
  /** The table's name as its functions see it (the same in every component). */
  readonly name: string
  /** The component instance the table belongs to: its path, '' for the app itself. */
  readonly component: string
  readonly indexes: Map<string, IndexInfo>
}

/**
 * Each component instance has its own tables: the same name in two components names two tables.
 * The store keeps one flat list, under this name (the app's tables under their own names; a
 * component's as `<component path>:<table>`, which no table name can be, `:` not being allowed).
 */
export function storedTableName(component: string, name: string): string {
  return component === '' ? name : `${component}:${name}`
}

/** The component path and table name of a stored table name. */
export function splitStoredTableName(stored: string): { component: string; name: string } {
  const colon = stored.lastIndexOf(':')
  return colon === -1 ? { component: '', name: stored } : { component: stored.slice(0, colon), name: stored.slice(colon + 1) }
}

/**
 * A pseudo-index (never stored) on table names: reading a table that doesn't exist yet records
 * its name here, and every insert touches it, so creating the table conflicts with (and
 * re-runs) whoever saw it missing. Real index ids start at 1.
 */
export const TABLE_NAMES_INDEX = 0

export function tableNameKey(name: string, component = ''): Buffer {
  return encodeIndexKey([storedTableName(component, name)])
}

export const BY_ID = 'by_id'
export const BY_CREATION_TIME = 'by_creation_time'

/** The fields a system index is declared with (its key adds `_id`, see keyFieldsFor). */
const systemIndexFields = (name: string): string[] => (name === BY_ID ? ['_id'] : ['_creationTime'])

export function keyFieldsFor(name: string, fields: readonly string[]): string[] {
  if (name === BY_ID) return ['_id']
  if (name === BY_CREATION_TIME) return ['_creationTime', '_id']
  return [...fields, '_creationTime', '_id']
}

/** Reads a (dotted) field of a document in Convex-encoded JSON; missing fields are undefined. */
export function fieldValue(doc: Record<string, JSONValue>, path: string): Value | undefined {
  let cur: JSONValue | undefined = doc
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return undefined
    cur = (cur as Record<string, JSONValue>)[part]
    if (cur === undefined) return undefined
  }
  return jsonToDocumentValue(cur as JSONValue)
}

/** The key of `doc` in `index`. */
export function indexKey(index: IndexInfo, doc: Record<string, JSONValue>): Buffer {
  return encodeIndexKey(index.keyFields.map((f) => fieldValue(doc, f)))
}

function stagedFlag(staged: boolean): { staged?: true } {
  return staged ? { staged: true } : {}
}

export class Catalog {
  /** Tables by stored name (see storedTableName): the app's by their own names. */
  readonly byName = new Map<string, TableInfo>()
  /** Tables by their key in the store (`tableNumber`). */
  readonly byNumber = new Map<number, TableInfo>()
  /** Tables by component ('' the app), then by the number their ids carry. */
  readonly #byIdNumber = new Map<string, Map<number, TableInfo>>()
  readonly #creating = new Map<string, Promise<TableInfo>>()
  /**
   * Store keys handed out but not stored yet (a table being created, or created by a transaction
   * not yet committed), and those of dropped tables (never handed out again).
   */
  readonly #reserved = new Set<number>()
  /** Id numbers handed out but not stored yet, by component. */
  readonly #reservedIds = new Map<string, Set<number>>()
  /** The next index id to hand out: the catalog numbers every index (the store keeps the number given). */
  #nextIndexId = 1

  /** Counts the catalog's own writes to the store (tables and indexes created, changed, dropped). */
  version = 0
  /** Stored names of tables created or dropped since `takeTouched` was last called. */
  #touched: string[] = []

  /**
   * The table-name keys of tables created or dropped beside the commit path since the last call
   * (a catalog change publishes them, so live queries listing tables run again).
   */
  takeTouched(): Buffer[] {
    const names = this.#touched
    this.#touched = []
    return names.map((n) => encodeIndexKey([n]))
  }

  constructor(readonly persistence: Persistence) {}

  async load(): Promise<void> {
    // The two reads are not one view: on a shared store another process may make or drop a table
    // between them. Indexes are read first, so a table dropped meanwhile is a tombstone whose
    // indexes are passed over, and one made meanwhile is listed without its indexes: its system
    // ones are found at the repair below (the store refuses a second one, and the repair takes
    // the one there), the rest come with its commit, which the committer follows from the
    // store's latest commit when it opened (before these reads).
    const indexes = await this.persistence.indexes()
    const tables = await this.persistence.tables()
    for (const t of tables) {
      // A dropped table's tombstone keeps its number from being handed out again.
      if (t.name.startsWith(DROPPED_TABLE)) this.#reserved.add(t.tableNumber)
      else this.#addTable(t)
    }
    for (const i of indexes) {
      if (i.indexId >= this.#nextIndexId) this.#nextIndexId = i.indexId + 1
      if (this.byNumber.has(i.tableNumber)) this.#addIndex(i)
    }
    await this.#repairSystemIndexes()
  }

  /**
   * Gives a table that lacks a system index (a crash between storing a table and its indexes,
   * which earlier versions wrote one by one) that index, backfilled from its documents.
   */
  async #repairSystemIndexes(): Promise<void> {
    for (const table of this.byNumber.values()) {
      for (const name of [BY_ID, BY_CREATION_TIME]) {
        if (table.indexes.has(name)) continue
        const probe: IndexInfo = { indexId: -1, tableNumber: table.tableNumber, tableName: table.name, component: table.component, name, fields: systemIndexFields(name), keyFields: keyFieldsFor(name, systemIndexFields(name)) }
        const docs = await this.persistence.tableDocuments(table.tableNumber)
        const backfill = docs.map((d) => ({ indexId: -1, key: indexKey(probe, JSON.parse(d.json) as Record<string, JSONValue>), id: d.id }))
        try {
          this.#addIndex(await this.persistence.createIndex({ indexId: this.#indexId(), tableNumber: table.tableNumber, name, fields: probe.fields }, backfill))
        } catch (e) {
          // Another process starting on the same store may have repaired it first: its index stands.
          const stored = await this.persistence.indexes()
          const theirs = stored.find((i) => i.tableNumber === table.tableNumber && i.name === name)
          if (theirs === undefined) throw e
          for (const i of stored) if (i.indexId >= this.#nextIndexId) this.#nextIndexId = i.indexId + 1
          this.#addIndex(theirs)
        }
      }
    }
  }

  /**
   * Whether a provisional table's records collide with the catalog: its name, its number, or one
   * of its index ids taken since it was numbered (another process created tables or indexes).
   */
  taken(records: { table: TableRecord; indexes: readonly IndexRecord[] }): boolean {
    if (this.byName.has(records.table.name) || this.byNumber.has(records.table.tableNumber)) return true
    if (this.#byIdNumber.get(splitStoredTableName(records.table.name).component)?.has(records.table.idNumber) === true) return true
    const ids = new Set(records.indexes.map((i) => i.indexId))
    for (const t of this.byNumber.values()) for (const i of t.indexes.values()) if (ids.has(i.indexId)) return true
    return false
  }

  /**
   * Reads the tables and indexes again (another process of a shared store changed them). Known
   * tables keep their objects, so transactions under way see new indexes and keep them current.
   */
  async refresh(): Promise<void> {
    const tables = await this.persistence.tables()
    const indexes = await this.persistence.indexes()
    // The two reads are not one view: a table another process dropped between them may be listed
    // without its indexes. A table is taken in only with its `by_id` index, and keeps its system
    // indexes until it is no longer listed (the next refresh).
    const withById = new Set(indexes.filter((i) => i.name === BY_ID).map((i) => i.tableNumber))
    const live = new Set<number>()
    for (const t of tables) {
      if (t.name.startsWith(DROPPED_TABLE)) {
        this.#reserved.add(t.tableNumber)
        continue
      }
      live.add(t.tableNumber)
      if (!this.byNumber.has(t.tableNumber) && withById.has(t.tableNumber)) this.#addTable(t)
    }
    for (const [n, t] of this.byNumber) {
      if (live.has(n)) continue
      this.byNumber.delete(n)
      this.byName.delete(storedTableName(t.component, t.name))
      this.#byIdNumber.get(t.component)?.delete(t.idNumber)
    }
    const byTable = new Map<number, IndexRecord[]>()
    for (const i of indexes) {
      if (i.indexId >= this.#nextIndexId) this.#nextIndexId = i.indexId + 1
      byTable.set(i.tableNumber, [...(byTable.get(i.tableNumber) ?? []), i])
    }
    for (const table of this.byNumber.values()) {
      const wanted = byTable.get(table.tableNumber) ?? []
      const names = new Set(wanted.map((i) => i.name))
      for (const name of [...table.indexes.keys()]) if (!names.has(name) && name !== BY_ID && name !== BY_CREATION_TIME) table.indexes.delete(name)
      for (const i of wanted) {
        const known = table.indexes.get(i.name)
        if (known === undefined || known.indexId !== i.indexId || (known.staged === true) !== (i.staged === true)) this.#addIndex(i)
      }
    }
  }

  #indexId(): number {
    return this.#nextIndexId++
  }

  /** The table of `component` ('' the app) whose ids carry `idNumber`. */
  tableForId(component: string, idNumber: number): TableInfo | undefined {
    return this.#byIdNumber.get(component)?.get(idNumber)
  }

  /** Every table whose ids carry `idNumber`, whichever its component. */
  tablesForId(idNumber: number): TableInfo[] {
    const out: TableInfo[] = []
    for (const tables of this.#byIdNumber.values()) {
      const t = tables.get(idNumber)
      if (t !== undefined) out.push(t)
    }
    return out
  }

  #idNumberFree(component: string, n: number): boolean {
    return Number.isInteger(n) && n >= 1 && n <= MAX_STORED_TABLE_NUMBER && this.#byIdNumber.get(component)?.has(n) !== true && this.#reservedIds.get(component)?.has(n) !== true
  }

  /**
   * The number a new table's ids carry in its component (reserved until `#unreserve`): `wanted`
   * if free; else a system table's own number if free (SYSTEM_TABLE_NUMBERS); else the first
   * free one from 9903 for another system table; else, for a user table, one past the
   * component's highest.
   */
  #idNumber(component: string, name: string, wanted?: number): number {
    let n: number | undefined
    if (wanted !== undefined && this.#idNumberFree(component, wanted)) n = wanted
    else if (name.startsWith('_')) {
      const own = SYSTEM_TABLE_NUMBERS.get(name)
      if (own !== undefined && this.#idNumberFree(component, own)) n = own
      else {
        n = FIRST_OTHER_SYSTEM_TABLE_NUMBER
        while (TAKEN_SYSTEM_NUMBERS.has(n) || !this.#idNumberFree(component, n)) n++
      }
    } else {
      n = FIRST_USER_TABLE_NUMBER
      for (const m of [...(this.#byIdNumber.get(component)?.keys() ?? []), ...(this.#reservedIds.get(component) ?? [])]) if (m >= n) n = m + 1
    }
    let reserved = this.#reservedIds.get(component)
    if (reserved === undefined) this.#reservedIds.set(component, (reserved = new Set()))
    reserved.add(n)
    return n
  }

  /**
   * A new table's key in the store (reserved until `#unreserve`): its id number when no table
   * has that key (so an app's tables keep one number for both), else one past the highest key.
   */
  #tableNumber(idNumber: number): number {
    let next = idNumber
    if (this.byNumber.has(next) || this.#reserved.has(next)) {
      next = FIRST_USER_TABLE_NUMBER
      for (const n of [...this.byNumber.keys(), ...this.#reserved]) if (n >= next) next = n + 1
    }
    this.#reserved.add(next)
    return next
  }

  /** Gives back the numbers reserved for a table that is now stored (or never will be). */
  #unreserve(table: TableRecord): void {
    this.#reserved.delete(table.tableNumber)
    this.#reservedIds.get(splitStoredTableName(table.name).component)?.delete(table.idNumber)
  }

  /** The stored records of a new table: the table and its `by_id` and `by_creation_time` indexes. */
  #newTableRecords(name: string, wantedNumber?: number): { table: TableRecord; indexes: IndexRecord[] } {
    const split = splitStoredTableName(name)
    const idNumber = this.#idNumber(split.component, split.name, wantedNumber)
    const tableNumber = this.#tableNumber(idNumber)
    const indexes = [BY_ID, BY_CREATION_TIME].map((indexName) => ({ indexId: this.#indexId(), tableNumber, name: indexName, fields: systemIndexFields(indexName) }))
    return { table: { tableNumber, name, idNumber }, indexes }
  }

  /**
   * A table that a transaction's first write creates: numbered now, but stored only with that
   * transaction's commit (`CommitRecord.tables`), and published then (`publish`). Until then only
   * the transaction sees it; if it doesn't commit, `release` gives its number back.
   */
  provisionalTable(tableName: string, component = ''): { info: TableInfo; records: { table: TableRecord; indexes: IndexRecord[] } } {
    const records = this.#newTableRecords(storedTableName(component, tableName))
    const { component: c, name } = splitStoredTableName(records.table.name)
    const info: TableInfo = { tableNumber: records.table.tableNumber, idNumber: records.table.idNumber, name, component: c, indexes: new Map() }
    for (const i of records.indexes) info.indexes.set(i.name, { indexId: i.indexId, tableNumber: i.tableNumber, tableName: name, component: c, name: i.name, fields: i.fields, keyFields: keyFieldsFor(i.name, i.fields) })
    return { info, records }
  }

  /** Makes a committed provisional table everyone's. */
  publish(info: TableInfo): void {
    this.#unreserve({ tableNumber: info.tableNumber, name: storedTableName(info.component, info.name), idNumber: info.idNumber })
    this.#index(info)
  }

  /** Gives back the numbers of a provisional table whose transaction didn't commit. */
  release(info: TableInfo): void {
    if (!this.byNumber.has(info.tableNumber)) this.#reserved.delete(info.tableNumber)
    if (this.tableForId(info.component, info.idNumber) === undefined) this.#reservedIds.get(info.component)?.delete(info.idNumber)
  }

  #index(info: TableInfo): void {
    this.byName.set(storedTableName(info.component, info.name), info)
    this.byNumber.set(info.tableNumber, info)
    let ids = this.#byIdNumber.get(info.component)
    if (ids === undefined) this.#byIdNumber.set(info.component, (ids = new Map()))
    ids.set(info.idNumber, info)
  }

  /** The table `name` of a component ('' for the app). */
  table(component: string, name: string): TableInfo | undefined {
    return this.byName.get(storedTableName(component, name))
  }

  /** The tables of one component ('' for the app). */
  tablesOf(component: string): TableInfo[] {
    return [...this.byName.values()].filter((t) => t.component === component)
  }

  #addTable(t: TableRecord): TableInfo {
    const { component, name } = splitStoredTableName(t.name)
    const info: TableInfo = { tableNumber: t.tableNumber, idNumber: t.idNumber, name, component, indexes: new Map() }
    this.#index(info)
    return info
  }

  #addIndex(i: IndexRecord): IndexInfo {
    if (i.indexId >= this.#nextIndexId) this.#nextIndexId = i.indexId + 1
    const table = this.byNumber.get(i.tableNumber)!
    const base = { indexId: i.indexId, tableNumber: i.tableNumber, tableName: table.name, component: table.component, name: i.name }
    let info: IndexInfo
    if (i.search !== undefined) info = { ...base, fields: [], keyFields: [], search: i.search }
    else if (i.vector !== undefined) info = { ...base, fields: [], keyFields: [], vector: i.vector }
    else info = { ...base, fields: i.fields, keyFields: keyFieldsFor(i.name, i.fields) }
    if (i.name.startsWith(BUILDING_PREFIX)) info = { ...info, building: true }
    if (i.staged === true) info = { ...info, staged: true }
    table.indexes.set(i.name, info)
    return info
  }

  /** Creates an empty index for a push to build; `backfillBuilding` fills it while commits keep it current. */
  async buildIndex(table: TableInfo, name: string, fields: readonly string[]): Promise<IndexInfo> {
    this.version++
    return this.#addIndex(await this.persistence.createIndex({ indexId: this.#indexId(), tableNumber: table.tableNumber, name: `${BUILDING_PREFIX}${name}`, fields }, []))
  }

  /**
   * Writes entries for the next `limit` documents after `afterId` (call between commit batches:
   * it reads the documents as they are now, so it agrees with what commits wrote). Returns the
   * last id done, or null when the table is exhausted.
   */
  async backfillBuilding(index: IndexInfo, afterId: string, limit: number): Promise<string | null> {
    const docs = await this.persistence.scanTable(index.tableNumber, afterId, limit)
    await this.persistence.writeIndexEntries(docs.map((d) => ({ indexId: index.indexId, key: indexKey(index, JSON.parse(d.json) as Record<string, JSONValue>), id: d.id })))
    return docs.length < limit ? null : docs[docs.length - 1]!.id
  }

  /** Makes a fully built index live under its real name. */
  async publishBuilt(index: IndexInfo): Promise<IndexInfo> {
    this.version++
    const name = index.name.slice(BUILDING_PREFIX.length)
    await this.persistence.renameIndex(index.indexId, name)
    const table = this.byNumber.get(index.tableNumber)!
    table.indexes.delete(index.name)
    const info: IndexInfo = { ...index, name, keyFields: keyFieldsFor(name, index.fields), building: false }
    table.indexes.set(name, info)
    return info
  }

  /** Stages (declared `staged: true`) or enables an index; its entries stay as they are. */
  async setStaged(index: IndexInfo, staged: boolean): Promise<IndexInfo> {
    this.version++
    await this.persistence.setIndexStaged(index.indexId, staged)
    const table = this.byNumber.get(index.tableNumber)!
    const info: IndexInfo = { ...index, staged }
    table.indexes.set(index.name, info)
    return info
  }

  /**
   * The table named `name` (of `component`), created (with its system indexes) if it does not
   * exist yet; its ids carrying `idNumber` if that number is free in the component (an import
   * keeping its source's ids).
   */
  ensureTable(tableName: string, component = '', idNumber?: number): Promise<TableInfo> {
    const name = storedTableName(component, tableName)
    const existing = this.byName.get(name)
    if (existing !== undefined) return Promise.resolve(existing)
    let creating = this.#creating.get(name)
    if (creating === undefined) {
      // Reserve the numbers now: two tables created at once must not pick the same ones.
      const records = this.#newTableRecords(name, idNumber)
      creating = (async () => {
        this.version++
        await this.persistence.createTable(name, records.table.tableNumber, records.table.idNumber, records.indexes)
        // Publish the table only with its indexes in place.
        const table = this.#addTable(records.table)
        this.#touched.push(name)
        for (const i of records.indexes) this.#addIndex(i)
        return table
      })().finally(() => {
        this.#creating.delete(name)
        this.#unreserve(records.table)
      })
      this.#creating.set(name, creating)
    }
    return creating
  }

  /** Adds a schema index to a table, backfilling it from the table's current documents. */
  async addIndex(table: TableInfo, name: string, fields: readonly string[], staged = false): Promise<IndexInfo> {
    this.version++
    const docs = await this.persistence.tableDocuments(table.tableNumber)
    const probe: IndexInfo = { indexId: -1, tableNumber: table.tableNumber, tableName: table.name, component: table.component, name, fields, keyFields: keyFieldsFor(name, fields) }
    const backfill = docs.map((d) => ({ indexId: -1, key: indexKey(probe, JSON.parse(d.json) as Record<string, JSONValue>), id: d.id }))
    return this.#addIndex(await this.persistence.createIndex({ indexId: this.#indexId(), tableNumber: table.tableNumber, name, fields, ...stagedFlag(staged) }, backfill))
  }

  /** Adds a full-text search index to a table, with an entry for each of its current documents. */
  async addSearchIndex(table: TableInfo, name: string, config: SearchIndexConfig, staged = false): Promise<IndexInfo> {
    this.version++
    const docs = await this.persistence.tableDocuments(table.tableNumber)
    const search = { searchField: config.searchField, filterFields: [...config.filterFields] }
    const backfill = docs.map((d) => ({ indexId: -1, id: d.id, entry: searchEntry(search, JSON.parse(d.json) as Record<string, JSONValue>) }))
    return this.#addIndex(await this.persistence.createIndex({ indexId: this.#indexId(), tableNumber: table.tableNumber, name, fields: [], search, ...stagedFlag(staged) }, [], backfill))
  }

  /** Adds a vector index to a table, with an entry for each of its current documents that has a vector. */
  async addVectorIndex(table: TableInfo, name: string, config: VectorIndexConfig, staged = false): Promise<IndexInfo> {
    this.version++
    const docs = await this.persistence.tableDocuments(table.tableNumber)
    const vector = { vectorField: config.vectorField, dimensions: config.dimensions, filterFields: [...config.filterFields] }
    const backfill = []
    for (const d of docs) {
      const entry = vectorEntry(vector, JSON.parse(d.json) as Record<string, JSONValue>)
      if (entry !== null) backfill.push({ indexId: -1, id: d.id, entry })
    }
    return this.#addIndex(await this.persistence.createIndex({ indexId: this.#indexId(), tableNumber: table.tableNumber, name, fields: [], vector, ...stagedFlag(staged) }, [], [], backfill))
  }

  /** Drops an empty table: its indexes, then its record (the number is not handed out again this run). */
  async dropTable(table: TableInfo): Promise<void> {
    this.version++
    for (const index of [...table.indexes.values()]) await this.dropIndex(index)
    await this.persistence.dropTable(table.tableNumber)
    this.#touched.push(storedTableName(table.component, table.name))
    this.byName.delete(storedTableName(table.component, table.name))
    this.byNumber.delete(table.tableNumber)
    this.#byIdNumber.get(table.component)?.delete(table.idNumber)
    this.#reserved.add(table.tableNumber)
  }

  async dropIndex(index: IndexInfo): Promise<void> {
    this.version++
    await this.persistence.dropIndex(index.indexId)
    this.byNumber.get(index.tableNumber)?.indexes.delete(index.name)
  }
}
