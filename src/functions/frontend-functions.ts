/**
 * @module The `_system/frontend/*` functions Convex's dashboard calls (Data, Functions, Settings,
 * Schedules and Files pages), answered by the host under Convex's names, arguments and result
 * shapes. Admin only (like every system function). Queries read through their own transactions,
 * so a subscription to one is live; edits are mutations through the committer, so schema
 * validation and conflicts apply as to any mutation. Where Convex's function takes a
 * `componentId` (a `_system/frontend/components:list` id), it runs in that component.
 */
import { createHash } from 'node:crypto'
import type { Transaction } from '../database/transaction.ts'
import { TABLE_NAMES_INDEX, BUILDING_PREFIX, BY_ID, BY_CREATION_TIME } from '../database/catalog.ts'
import type { SerializedQuery } from '../database/query.ts'
import type { Schema, SchemaTable } from '../database/database.ts'
import { decodeId, inFieldOrder, valueToJson } from '../values/index.ts'
import type { JSONValue } from '../values/index.ts'
import type { AuthProvider } from '../auth/auth.ts'
import { CRON_JOBS, CRON_RUNS } from './crons.ts'
import type { CronSchedule } from './cron-schedule.ts'
import { SCHEDULED_FUNCTIONS } from './scheduler.ts'
import { STORAGE_TABLE } from '../files/file-storage.ts'
import { ENVIRONMENT_VARIABLES_TABLE } from './environment.ts'
import { componentId } from './components.ts'
import { convexError, SystemFunctionError } from './system-functions.ts'
import type { SystemContext, SystemFunction } from './system-functions.ts'
import { BACKEND_STATE_TABLE, backendStateOf } from './deployment-state.ts'

type Args = Record<string, JSONValue>
type Doc = Record<string, JSONValue>

export interface FrontendDeps {
  /** The server's version (`getVersion`). */
  readonly version: string
  readonly cloudUrl: () => string
  readonly siteUrl: () => string
  /** The providers of the pushed auth.config.ts. */
  readonly authProviders: () => readonly AuthProvider[]
}

/** Convex's caps (addDocument's MAX_IMPORT_COUNT, deleteDocuments' MAX_DOCUMENT_DELETIONS, clearTablePage's MAX_CLEAR_ROWS). */
const MAX_IMPORT_COUNT = 4096
const MAX_DOCUMENT_DELETIONS = 4096
const MAX_CLEAR_ROWS = 4000
/** Convex's pagination bounds for the dashboard's paginated system queries (paginationLimits.ts). */
const MAXIMUM_ROWS_READ = 10000
const MAXIMUM_BYTES_READ = 5000000
/** What the dashboard sends for `undefined` (it can't send undefined itself): lib/values.ts's placeholder. */
const UNDEFINED_PLACEHOLDER =
  '__CONVEX_PLACEHOLDER_undefined_I23atX0jcndVbFgXoQZffsih7eAqktCyFjgUuAeNBtfr3ySOljPSPSEOPFgprkdBO3zXNiGEJxmJ5ZFPc5C5qKesG80QRPvlJe8vgSxAt9feLTwxTg4PHfVwUaTEJU67FDwldWmTxp1guMPwxQ2jOuhEryTBf3mQ'
const UNDEFINED_JSON: JSONValue = { $undefined: null }

function argError(message: string): SystemFunctionError {
  return new SystemFunctionError(`ArgumentValidationError: ${message}`)
}

function str(args: Args, name: string): string {
  const v = args[name]
  if (typeof v !== 'string') throw argError(`Object is missing the required field \`${name}\` of type string, or it isn't a string.`)
  return v
}

/** The component a call runs in: its `componentId` argument if given, else the caller's component path. */
function componentOf(args: Args, ctx: SystemContext, name = 'componentId'): string {
  const id = args[name]
  if (id === undefined || id === null) return ctx.componentPath
  if (typeof id !== 'string') throw argError(`\`${name}\` must be a string or null`)
  const instance = ctx.components.byId(id)
  if (instance === undefined) throw new SystemFunctionError(`Component ${id} not found`)
  return instance.path
}

function paginationOpts(args: Args): { cursor: string | null; numItems: number; endCursor: string | null } {
  const opts = args.paginationOpts as { cursor?: unknown; numItems?: unknown; endCursor?: unknown } | undefined
  if (opts === undefined || opts === null || typeof opts !== 'object' || typeof opts.numItems !== 'number' || !(typeof opts.cursor === 'string' || opts.cursor === null)) {
    throw argError('`paginationOpts` must be {numItems: number, cursor: string | null}')
  }
  return { cursor: opts.cursor, numItems: opts.numItems, endCursor: typeof opts.endCursor === 'string' ? opts.endCursor : null }
}

/** Follows the set of tables: a table created or deleted re-runs a subscription that lists them. */
function readTableNames(txn: Transaction): void {
  txn.readSet.add(TABLE_NAMES_INDEX, { lo: Buffer.alloc(0), hi: null })
}

/** The user tables (not `_`-prefixed) of a component, by name. */
function userTables(txn: Transaction, component: string): string[] {
  readTableNames(txn)
  return txn.db.catalog
    .tablesOf(component)
    .map((t) => t.name)
    .filter((n) => !n.startsWith('_'))
    .sort()
}

/** A write's error as Convex's dashboard functions rethrow it (a ConvexError with its message). */
async function rewrapped<T>(body: () => Promise<T>): Promise<T> {
  try {
    return await body()
  } catch (e) {
    throw convexError((e as Error)?.message ?? String(e))
  }
}

function decodeFilters(filters: JSONValue | undefined): { clauses?: Array<Record<string, JSONValue>>; order?: string; index?: Record<string, JSONValue> } | null {
  if (filters === undefined || filters === null || filters === '') return null
  if (typeof filters !== 'string') throw argError('`filters` must be a string or null')
  try {
    return JSON.parse(Buffer.from(filters, 'base64').toString('utf8')) as never
  } catch {
    throw new SystemFunctionError('Invalid filters: expected base64-encoded JSON')
  }
}

const COMPARISONS: Record<string, string> = { eq: '$eq', neq: '$neq', gt: '$gt', gte: '$gte', lt: '$lt', lte: '$lte' }

function literal(v: JSONValue | undefined): JSONValue {
  return { $literal: v === UNDEFINED_PLACEHOLDER ? UNDEFINED_JSON : (v ?? null) }
}

/** The dashboard's field filters (`op` eq/neq/gt/gte/lt/lte/anyOf/noneOf on a field) as one filter expression. */
function builtinFilter(clauses: Array<Record<string, JSONValue>>): JSONValue | null {
  const parts: JSONValue[] = []
  for (const c of clauses) {
    if (c.enabled === false || typeof c.field !== 'string' || typeof c.op !== 'string') continue
    const field = { $field: c.field }
    const op = COMPARISONS[c.op]
    if (op !== undefined) {
      if (!('value' in c)) continue
      parts.push({ [op]: [field, literal(c.value)] })
    } else if ((c.op === 'anyOf' || c.op === 'noneOf') && Array.isArray(c.value)) {
      if (c.value.length === 0) continue
      const each = c.value.map((v) => ({ [c.op === 'anyOf' ? '$eq' : '$neq']: [field, literal(v)] }))
      parts.push(c.op === 'anyOf' ? { $or: each } : { $and: each })
    }
  }
  return parts.length === 0 ? null : { $and: parts }
}

/** A clause of the Data page's index selection (Convex's FilterByIndex / FilterByIndexRange). */
interface IndexClause {
  type?: 'indexEq' | 'indexRange'
  enabled?: boolean
  value?: JSONValue
  lowerOp?: 'gte' | 'gt'
  lowerValue?: JSONValue
  upperOp?: 'lte' | 'lt'
  upperValue?: JSONValue
}

interface AvailableIndex {
  indexDescriptor: string
  fields?: string[]
  searchField?: string
}

/** The indexes the Data page may use, as Convex's: the schema's database and search indexes, then by_creation_time and by_id. */
function availableIndexes(schema: Schema | null, table: string): AvailableIndex[] {
  const t = schema?.tables.find((x) => x.tableName === table) as (SchemaTable & { searchIndexes?: AvailableIndex[] }) | undefined
  return [...(t?.indexes ?? []), ...(t?.searchIndexes ?? []), { indexDescriptor: 'by_creation_time', fields: ['_creationTime'] }, { indexDescriptor: 'by_id', fields: ['_id'] }]
}

/** Convex's checks of an index selection (validateIndexFilter), with its messages; null if it can be used. */
function indexFilterError(name: string, clauses: IndexClause[], index: AvailableIndex | undefined): { filter: number; error: string } | null {
  if (index === undefined) return { filter: -1, error: `Index ${name} does not exist.` }
  if (index.searchField !== undefined || index.fields === undefined) return { filter: -1, error: `Index ${name} is a search index, but the query is trying to use it as a database index.` }
  if (clauses.length > index.fields.length) return { filter: -1, error: `Index ${name} has ${index.fields.length} fields, but the query has ${clauses.length} clauses.` }
  const enabled = clauses.findIndex((c) => !c.enabled)
  const used = enabled === -1 ? clauses.length : enabled
  if (clauses.slice(used).some((c) => c.enabled)) return { filter: -1, error: 'Invalid index filter selection: found an enabled clause after an disabled clause.' }
  // (Convex checks this only when some clause is disabled; with all enabled, its query fails.)
  if (clauses.slice(0, used - 1).some((c) => c.type === 'indexRange')) {
    if (enabled === -1) throw new SystemFunctionError('Index range not supported')
    return { filter: -1, error: 'Invalid index filter selection: found a range filter after a non-range filter.' }
  }
  return null
}

/** The enabled leading clauses as `withIndex` range expressions on the index's fields in order. */
function indexRange(clauses: IndexClause[], fields: string[]): Array<{ type: 'Eq' | 'Gt' | 'Gte' | 'Lt' | 'Lte'; fieldPath: string; value: JSONValue }> {
  const value = (v: JSONValue | undefined): JSONValue => (v === UNDEFINED_PLACEHOLDER || v === undefined ? UNDEFINED_JSON : v)
  const out: Array<{ type: 'Eq' | 'Gt' | 'Gte' | 'Lt' | 'Lte'; fieldPath: string; value: JSONValue }> = []
  for (let i = 0; i < clauses.length && clauses[i]!.enabled; i++) {
    const c = clauses[i]!
    const fieldPath = fields[i]!
    if (c.type !== 'indexRange') out.push({ type: 'Eq', fieldPath, value: value(c.value) })
    else {
      if (c.lowerOp === 'gt' || c.lowerOp === 'gte') out.push({ type: c.lowerOp === 'gt' ? 'Gt' : 'Gte', fieldPath, value: value(c.lowerValue) })
      if (c.upperOp === 'lt' || c.upperOp === 'lte') out.push({ type: c.upperOp === 'lt' ? 'Lt' : 'Lte', fieldPath, value: value(c.upperValue) })
    }
  }
  return out
}

/** `_system/frontend/paginatedTableDocuments`: the Data page's table view, newest first unless told. */
async function paginatedTableDocuments(args: Args, ctx: SystemContext): Promise<JSONValue> {
  const table = str(args, 'table')
  const component = componentOf(args, ctx)
  const { cursor, numItems, endCursor } = paginationOpts(args)
  const filters = decodeFilters(args.filters)
  const order = filters?.order === 'asc' ? 'asc' : 'desc'
  const index = filters?.index as { name?: unknown; clauses?: IndexClause[]; search?: unknown } | undefined
  if (index !== undefined && index !== null && index.search !== undefined) {
    throw new SystemFunctionError('Filtering by a search index is not supported by this backend yet')
  }
  const clauses = (filters?.clauses ?? []).filter((c) => c.enabled !== false)
  const builtins = clauses.filter((c) => c.op !== 'type' && c.op !== 'notype')
  const hasIndexFilter = index !== undefined && index !== null && (index.clauses ?? []).some((c) => c.enabled)
  return ctx.query(async (txn) => {
    // As Convex: through an index of the schema (or by_creation_time, by_id), in its order, its
    // enabled clauses an equality on each leading field and at most one range last; a selection
    // that can't be used answers one error object as the page.
    let source: SerializedQuery['source'] = { type: 'FullTableScan', tableName: table, order }
    if (index !== undefined && index !== null) {
      const name = typeof index.name === 'string' ? index.name : ''
      const indexClauses = Array.isArray(index.clauses) ? index.clauses : []
      const available = availableIndexes(txn.db.schemaOf(component), table)
      const error = indexFilterError(name, indexClauses, available.find((i) => i.indexDescriptor === name))
      if (error !== null) return { page: [error], isDone: true, continueCursor: '' }
      const fields = available.find((i) => i.indexDescriptor === name)!.fields!
      source = { type: 'IndexRange', indexName: `${table}.${name}`, range: indexRange(indexClauses, fields), order }
    }
    // As Convex: a filter for one `_id` is a point read.
    if (!hasIndexFilter && builtins.length === 1 && clauses.length === 1 && builtins[0]!.field === '_id' && builtins[0]!.op === 'eq') {
      const empty = { page: [], isDone: true, continueCursor: '' }
      const id = builtins[0]!.value
      if (typeof id !== 'string') return empty
      const normalized = txn.normalizeId(table, id, component)
      if (normalized === null) return empty
      const doc = await txn.read(normalized, component)
      return doc === null ? empty : { page: [doc], isDone: true, continueCursor: '' }
    }
    const filter = builtinFilter(builtins)
    const query: SerializedQuery = { source, operators: filter === null ? [] : [{ filter }] }
    const json = await txn.page({ query, cursor, endCursor, pageSize: numItems, maximumRowsRead: MAXIMUM_ROWS_READ, maximumBytesRead: MAXIMUM_BYTES_READ }, component)
    return JSON.parse(json) as JSONValue
  })
}

function udfPathOf(name: string): string {
  // Convex's udfPath: `mod.js:fn` (the default export named `default`).
  const [mod, fn] = name.includes(':') ? [name.slice(0, name.lastIndexOf(':')), name.slice(name.lastIndexOf(':') + 1)] : [name, 'default']
  return `${mod.endsWith('.js') ? mod : `${mod}.js`}:${fn}`
}

function nanos(ms: number): JSONValue {
  return valueToJson(BigInt(Math.round(ms)) * 1_000_000n)
}

/** A job's arguments as Convex stores them: the JSON text of the arguments array, as bytes. */
function argsBytes(args: JSONValue): JSONValue {
  return { $bytes: Buffer.from(JSON.stringify(args ?? [])).toString('base64') }
}

/** The modules of a component as `_system/frontend/modules:list` gives them. */
function modulesOf(ctx: SystemContext, component: string): JSONValue {
  const registry = ctx.components.registry(component)
  if (registry === undefined) return []
  const byModule = new Map<string, JSONValue[]>()
  for (const fn of registry.all()) {
    const list = byModule.get(fn.modulePath) ?? []
    list.push({ name: fn.exportName, udfType: fn.udfType, visibility: { kind: fn.visibility ?? 'public' } })
    byModule.set(fn.modulePath, list)
  }
  const routes = component === '' ? [] : ctx.components.httpRoutes(component)
  if (routes.length > 0) {
    const list = byModule.get('http.js') ?? []
    for (const r of routes) list.push({ name: `${r.method} ${r.path}`, udfType: 'HttpAction', visibility: { kind: 'public' } })
    byModule.set('http.js', list)
  }
  // sourcePackageId changes whenever the module's functions do (the dashboard refetches then).
  return [...byModule.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([path, functions]) => [path, { functions, sourcePackageId: sourcePackageId(functions) }])
}

function apiSpec(ctx: SystemContext, component: string): JSONValue {
  const any: JSONValue = { type: 'any' }
  const functions: JSONValue[] = (ctx.components.registry(component)?.all() ?? []).map((fn) => ({
    identifier: `${fn.modulePath}:${fn.exportName}`,
    functionType: fn.udfType,
    visibility: { kind: fn.visibility ?? 'public' },
    args: (fn.args as JSONValue | null) ?? any,
    returns: (fn.returns as JSONValue | null) ?? any,
  }))
  const routes: JSONValue[] = ctx.components.httpRoutes(component).map((r) => ({ functionType: 'HttpAction', method: r.method, path: r.path }))
  return [...functions, ...routes]
}

function sourcePackageId(functions: JSONValue): string {
  return createHash('sha256').update(JSON.stringify(functions)).digest('hex').slice(0, 16)
}

/** A `_storage` document as the Files page lists it: with its URL and Convex's `sha256` (base64). */
function fileEntry(ctx: SystemContext, doc: Doc, component: string): JSONValue {
  const url = ctx.files === null ? null : ctx.files.fileUrl(doc._id as string, component === '' ? null : componentId(component))
  return { url, ...doc }
}

const DAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday']

/** A schedule as Convex's analyzed cron spec holds it (int64 numbers, an interval in seconds). */
function cronSchedule(s: CronSchedule): JSONValue {
  const int = (n: number) => valueToJson(BigInt(n))
  // A schedule without its minute (the backend picks it, see cron-schedule.ts): null, as Convex's.
  const minute = (n: number | undefined) => (n === undefined ? null : int(n))
  switch (s.type) {
    case 'interval':
      return { type: 'interval', seconds: int((s.seconds ?? 0) + (s.minutes ?? 0) * 60 + (s.hours ?? 0) * 3600) }
    case 'hourly':
      return { type: 'hourly', minuteUTC: minute(s.minuteUTC) }
    case 'daily':
      return { type: 'daily', hourUTC: int(s.hourUTC), minuteUTC: minute(s.minuteUTC) }
    case 'weekly':
      return { type: 'weekly', dayOfWeek: int(Math.max(0, DAYS.indexOf(s.dayOfWeek))), hourUTC: int(s.hourUTC), minuteUTC: minute(s.minuteUTC) }
    case 'monthly':
      return { type: 'monthly', day: int(s.day), hourUTC: int(s.hourUTC), minuteUTC: minute(s.minuteUTC) }
    case 'cron':
      return { type: 'cron', cronExpr: s.cron }
  }
}

/** A cron's state document in Convex's `_cron_jobs` + `_cron_next_run` shape. */
function cronJob(doc: Doc, lastRun: JSONValue): JSONValue {
  const spec = JSON.parse(String(doc.spec)) as { name: string; args: JSONValue[]; schedule: CronSchedule }
  return {
    _id: doc._id!,
    _creationTime: doc._creationTime!,
    name: doc.name!,
    cronSpec: { udfPath: udfPathOf(spec.name), udfArgs: argsBytes(spec.args), cronSchedule: cronSchedule(spec.schedule) },
    lastRun,
    nextRun: {
      _id: doc._id!,
      _creationTime: doc._creationTime!,
      cronJobId: doc._id!,
      state: { type: 'pending' },
      prevTs: typeof doc.lastRun === 'number' ? nanos(doc.lastRun) : null,
      nextTs: nanos(doc.nextRun as number),
    },
  }
}

/** A finished cron run in Convex's `_cron_job_logs` shape (null while it hasn't finished). */
function cronLog(cronName: string, run: Doc): JSONValue | null {
  const state = run.state as { kind: string; error?: string }
  if (state.kind === 'pending' || state.kind === 'inProgress') return null
  const status: JSONValue = state.kind === 'success' ? { type: 'success', result: null } : state.kind === 'failed' ? { type: 'err', error: state.error ?? '' } : { type: 'canceled', numCanceled: valueToJson(1n) }
  const completed = typeof run.completedTime === 'number' ? run.completedTime : (run.scheduledTime as number)
  return {
    _id: run._id!,
    _creationTime: run._creationTime!,
    name: cronName,
    ts: nanos(completed),
    udfPath: udfPathOf(String(run.name)),
    udfArgs: argsBytes(run.args ?? []),
    status,
    logLines: { logLines: [], isTruncated: false },
    executionTime: Math.max(0, (completed - (run.scheduledTime as number)) / 1000),
  }
}

/** A pending or running scheduled function in Convex's `_scheduled_jobs` shape. */
function scheduledJob(doc: Doc): JSONValue {
  const state = doc.state as { kind: string }
  return {
    _id: doc._id!,
    _creationTime: doc._creationTime!,
    udfPath: udfPathOf(String(doc.name)),
    udfArgs: argsBytes(doc.args ?? []),
    argsId: null,
    nextTs: nanos(doc.scheduledTime as number),
    state: { type: state.kind },
    ...(typeof doc.component === 'string' ? { component: doc.component } : {}),
  }
}

export function frontendSystemFunctions(deps: FrontendDeps): Map<string, SystemFunction> {
  type Run = (args: Args, ctx: SystemContext) => unknown
  const q = (run: Run): SystemFunction => ({ udfType: 'Query', run: run as SystemFunction['run'] })
  const m = (run: Run): SystemFunction => ({ udfType: 'Mutation', run: run as SystemFunction['run'] })
  const fns: Record<string, SystemFunction> = {
    // ---- Data ----
    'addDocument:default': m(async (args, ctx) => {
      const table = str(args, 'table')
      const component = componentOf(args, ctx)
      const documents = args.documents
      if (!Array.isArray(documents)) throw argError('`documents` must be an array')
      if (documents.length > MAX_IMPORT_COUNT) return { success: false, error: `Can’t import more than ${MAX_IMPORT_COUNT} documents at once.` }
      // One transaction: a document that fails (e.g. the schema) leaves none of them written.
      await ctx.mutate((txn) => rewrapped(async () => {
        for (const doc of documents) await txn.insert(table, doc, component)
      }))
      return { success: true }
    }),
    'listTableScan:default': q(async (args, ctx) => {
      const table = str(args, 'table')
      const component = componentOf(args, ctx)
      const limit = args.limit
      if (typeof limit !== 'number') throw argError('`limit` must be a number')
      if (table === '') return []
      return ctx.query((txn) => txn.readTable(table, component, 'desc', Math.max(0, limit)))
    }),
    'paginatedTableDocuments:default': q(paginatedTableDocuments),
    'clearTablePage:default': m(async (args, ctx) => {
      const tableName = str(args, 'tableName')
      const component = componentOf(args, ctx)
      const cursor = args.cursor
      if (cursor !== null && typeof cursor !== 'string') throw argError('`cursor` must be a string or null')
      return ctx.mutate(async (txn) => {
        // Oldest first, as Convex (the Data page's newest-first view isn't re-run for each page).
        const json = await txn.page({ query: { source: { type: 'FullTableScan', tableName, order: 'asc' }, operators: [] }, cursor, endCursor: null, pageSize: MAX_CLEAR_ROWS, maximumBytesRead: 3000000 }, component)
        const { page, continueCursor, isDone } = JSON.parse(json) as { page: Doc[]; continueCursor: string; isDone: boolean }
        for (const doc of page) await txn.remove(doc._id as string, undefined, component)
        return { deleted: page.length, continueCursor, hasMore: !isDone }
      })
    }),
    'deleteDocuments:default': m(async (args, ctx) => {
      const component = componentOf(args, ctx)
      const toDelete = args.toDelete
      if (!Array.isArray(toDelete)) throw argError('`toDelete` must be an array of {id, tableName}')
      if (toDelete.length > MAX_DOCUMENT_DELETIONS) return { success: false, error: `You can't delete more than ${MAX_DOCUMENT_DELETIONS}. Try selecting fewer documents instead..` }
      await ctx.mutate(async (txn) => {
        for (const d of toDelete as { id: string }[]) await txn.remove(d.id, undefined, component)
      })
      return { success: true }
    }),
    'patchDocumentsFields:default': m(async (args, ctx) => {
      const table = str(args, 'table')
      const component = componentOf(args, ctx)
      const fields = args.fields
      if (fields === null || typeof fields !== 'object' || Array.isArray(fields)) throw argError('`fields` must be an object')
      const patch: Doc = {}
      for (const [k, v] of Object.entries(fields)) patch[k] = v === UNDEFINED_PLACEHOLDER ? UNDEFINED_JSON : v
      const ids = args.ids
      await ctx.mutate(async (txn) => {
        const docs = Array.isArray(ids) ? ids.filter((id): id is string => typeof id === 'string') : (await txn.readTable(table, component)).map((d) => d._id as string)
        await rewrapped(async () => {
          for (const id of docs) await txn.patch(id, patch, undefined, component)
        })
      })
      return { success: true }
    }),
    'replaceDocument:default': m(async (args, ctx) => {
      const id = str(args, 'id')
      const component = componentOf(args, ctx)
      return ctx.mutate(async (txn) => {
        const existing = decodeId(id) === null ? null : JSON.parse(await txn.get(id, undefined, false, component).catch(() => 'null')) as Doc | null
        if (existing === null) return { success: false, error: 'Document does not exist.' }
        await rewrapped(() => txn.replace(id, args.document ?? null, undefined, component))
        return { success: true }
      })
    }),
    'createTable:default': m(async (args, ctx) => {
      const table = str(args, 'table')
      const component = componentOf(args, ctx)
      // As Convex: inserting a document and deleting it in one transaction (so the name and the
      // schema are checked as for any insert)...
      const db = await ctx.mutate(async (txn) => {
        const id = await txn.insert(table, {}, component)
        await txn.remove(id, table, component)
        return txn.db
      })
      // ...but a commit that leaves no document stores no table here: the catalog makes it.
      if (db.catalog.table(component, table) === undefined) await db.exclusive(async () => void (await db.catalog.ensureTable(table, component)))
      return null
    }),
    'getSchemas:default': q(async (args, ctx) => {
      const component = componentOf(args, ctx)
      // As Convex's `_schemas.schema`: the pushed schema's JSON text (none: no schema.ts).
      const schema = await ctx.query(async (txn) => txn.db.schemaOf(component))
      return schema === null ? {} : { active: JSON.stringify(schema) }
    }),
    // Schemas are validated during the push: there is never one in progress to report.
    'getSchemas:schemaValidationProgress': q(() => null),
    'getTableMapping:default': q(async (args, ctx) => {
      const component = componentOf(args, ctx)
      return ctx.query(async (txn) => {
        readTableNames(txn)
        const out: Record<string, string> = {}
        for (const t of txn.db.catalog.tablesOf(component)) {
          const name = t.name === STORAGE_TABLE ? '_file_storage' : t.name === SCHEDULED_FUNCTIONS ? '_scheduled_jobs' : t.name
          if (!name.startsWith('_') || name === '_file_storage' || name === '_scheduled_jobs') out[String(t.idNumber)] = name
        }
        return out
      })
    }),
    'tableSize:default': q(async (args, ctx) => {
      const tableName = str(args, 'tableName')
      const component = componentOf(args, ctx)
      if (tableName === '') return 0
      return ctx.query((txn) => txn.count(tableName, component))
    }),
    'tableSize:sizeOfAllTables': q(async (args, ctx) => {
      const component = componentOf(args, ctx)
      return ctx.query(async (txn) => {
        let total = 0
        for (const name of userTables(txn, component)) total += await txn.count(name, component)
        return total
      })
    }),
    'indexes:default': q(async (args, ctx) => {
      const tableName = args.tableName
      if (typeof tableName !== 'string' || tableName === '') return null
      const component = componentOf(args, ctx, 'tableNamespace')
      return ctx.query(async (txn) => {
        readTableNames(txn)
        const table = txn.db.catalog.table(component, tableName)
        if (table === undefined) return null
        const out: JSONValue[] = []
        for (const index of table.indexes.values()) {
          if (index.name === BY_ID || index.name === BY_CREATION_TIME) continue
          const name = index.name.startsWith(BUILDING_PREFIX) ? index.name.slice(BUILDING_PREFIX.length) : index.name
          const fields: JSONValue = index.search !== undefined ? { searchField: index.search.searchField, filterFields: [...index.search.filterFields] } : index.vector !== undefined ? { vectorField: index.vector.vectorField, filterFields: [...index.vector.filterFields], dimensions: index.vector.dimensions } : [...index.fields]
          out.push({ name, staged: index.staged === true, fields, backfill: { state: index.building === true ? 'backfilling' : 'done' } })
        }
        return out.sort((a, b) => ((a as { name: string }).name < (b as { name: string }).name ? -1 : 1))
      })
    }),
    'getById:default': q(async (args, ctx) => {
      const id = str(args, 'id')
      const component = componentOf(args, ctx)
      return ctx.query(async (txn) => {
        if (decodeId(id) === null) return null
        for (const system of [false, true]) {
          try {
            return JSON.parse(await txn.get(id, undefined, system, component)) as JSONValue
          } catch {
            // Not this kind of table: try the other.
          }
        }
        return null
      })
    }),
    'listById:default': q(async (args, ctx) => {
      const component = componentOf(args, ctx)
      const ids = args.ids
      if (!Array.isArray(ids)) throw argError('`ids` must be an array of {id, tableName}')
      return ctx.query(async (txn) => {
        const out: JSONValue[] = []
        for (const entry of ids as { id: string; tableName: string }[]) {
          const tableName = entry.tableName === '_file_storage' ? STORAGE_TABLE : entry.tableName === '_scheduled_jobs' ? SCHEDULED_FUNCTIONS : entry.tableName
          const id = txn.normalizeId(tableName, entry.id, component)
          out.push(id === null ? null : (JSON.parse(await txn.get(id, undefined, tableName.startsWith('_'), component)) as JSONValue))
        }
        return out
      })
    }),
    // ---- Functions and settings ----
    'modules:list': q((args, ctx) => modulesOf(ctx, componentOf(args, ctx))),
    // `npx convex function-spec`: each function with its validators (`{ type: 'any' }` when it has
    // none), then each HTTP route, as Convex's `_system/cli/modules:apiSpec` lists them.
    'cli/modules:apiSpec': q((args, ctx) => apiSpec(ctx, componentOf(args, ctx))),
    'cli/convexUrl:cloudUrl': q(() => deps.cloudUrl()),
    'modules:listForAllComponents': q((_args, ctx) => [
      [null, modulesOf(ctx, '')],
      ...ctx.components
        .instances()
        .filter((i) => i.path !== '')
        .map((i) => [i.id, modulesOf(ctx, i.path)] as JSONValue),
    ]),
    'modules:argsValidator': q((args, ctx) => {
      const name = str(args, 'function')
      const fn = ctx.components.lookup(componentOf(args, ctx), name)
      if (fn === undefined) return null
      return JSON.stringify(fn.args ?? { type: 'any' })
    }),
    'listEnvironmentVariables:default': q((_args, ctx) =>
      ctx.query(async (txn) => (await txn.readTable(ENVIRONMENT_VARIABLES_TABLE, '')).sort((a, b) => (String(a.name) < String(b.name) ? -1 : String(a.name) > String(b.name) ? 1 : 0))),
    ),
    // Paused with `POST /api/v1/pause_deployment` (Convex's old single state, and its `_backend_state`),
    // read from the table, so that a subscriber sees it change.
    'deploymentState:deploymentState': q((_args, ctx) => ctx.query(async (txn) => ({ state: backendStateOf((await txn.readTable(BACKEND_STATE_TABLE, ''))[0]).user === 'paused' ? 'paused' : 'running' }))),
    'backendState:backendState': q((_args, ctx) => ctx.query(async (txn) => ({ ...backendStateOf((await txn.readTable(BACKEND_STATE_TABLE, ''))[0]) }))),
    'getVersion:default': q(() => deps.version),
    'convexCloudUrl:default': q(() => deps.cloudUrl()),
    'convexSiteUrl:default': q(() => deps.siteUrl()),
    'listAuthProviders:default': q(() => deps.authProviders().map((p) => ({ ...p }) as JSONValue)),
    // ---- Schedules ----
    'listCronJobs:default': q(async (args, ctx) => {
      const component = componentOf(args, ctx)
      return ctx.query(async (txn) => {
        const out: JSONValue[] = []
        for (const doc of await txn.readTable(CRON_JOBS, component)) {
          const last = typeof doc.lastJob === 'string' ? await txn.read(doc.lastJob) : null
          out.push(cronJob(doc, last === null ? null : cronLog(String(doc.name), last)))
        }
        return out
      })
    }),
    'listCronJobRuns:default': q(async (args, ctx) => {
      const component = componentOf(args, ctx)
      return ctx.query(async (txn) => {
        const crons = await txn.readTable(CRON_JOBS, component)
        // A run names its function; the cron whose function (and arguments) it ran names it.
        const cronFor = (run: Doc) =>
          crons.find((c) => {
            const spec = JSON.parse(String(c.spec)) as { name: string; args: JSONValue[] }
            return udfPathOf(spec.name) === udfPathOf(String(run.name)) && JSON.stringify(inFieldOrder(spec.args)) === JSON.stringify(inFieldOrder(run.args as JSONValue))
          })?.name
        const out: JSONValue[] = []
        for (const run of await txn.readTable(CRON_RUNS, component)) {
          const name = cronFor(run)
          const log = name === undefined ? null : cronLog(String(name), run)
          if (log !== null) out.push(log)
        }
        return out
      })
    }),
    'paginatedScheduledJobs:default': q(async (args, ctx) => {
      const component = componentOf(args, ctx)
      const { cursor, numItems } = paginationOpts(args)
      const udfPath = args.udfPath
      return ctx.query(async (txn) => {
        // Pending and running jobs by when they run (Convex's `_scheduled_jobs` holds only those).
        const live = (await txn.readTable(SCHEDULED_FUNCTIONS, component)).filter((d) => {
          const kind = (d.state as { kind: string }).kind
          return (kind === 'pending' || kind === 'inProgress') && (typeof udfPath !== 'string' || udfPathOf(String(d.name)) === udfPathOf(udfPath))
        })
        live.sort((a, b) => (a.scheduledTime as number) - (b.scheduledTime as number) || (String(a._id) < String(b._id) ? -1 : 1))
        const start = cursor === null || cursor === '' ? 0 : live.findIndex((d) => d._id === cursor) + 1
        const page = live.slice(start, start + numItems)
        const isDone = start + page.length >= live.length
        return { page: page.map(scheduledJob), isDone, continueCursor: page.length > 0 ? (page[page.length - 1]!._id as string) : (cursor ?? '') }
      })
    }),
    // ---- Files ----
    'fileStorageV2:numFiles': q(async (args, ctx) => {
      const component = componentOf(args, ctx)
      return ctx.query((txn) => txn.count(STORAGE_TABLE, component))
    }),
    'fileStorageV2:fileMetadata': q(async (args, ctx) => {
      const component = componentOf(args, ctx)
      const { cursor, numItems, endCursor } = paginationOpts(args)
      const filters = (args.filters ?? {}) as { minCreationTime?: number; maxCreationTime?: number; order?: string }
      const order = filters.order === 'asc' ? 'asc' : 'desc'
      // As Convex: the creation-time bounds are a range of `by_creation_time` (not a filter), so a
      // page of the newest files reads only those.
      const range: { type: 'Gte' | 'Lte'; fieldPath: string; value: JSONValue }[] = []
      if (typeof filters.minCreationTime === 'number') range.push({ type: 'Gte', fieldPath: '_creationTime', value: filters.minCreationTime })
      if (typeof filters.maxCreationTime === 'number') range.push({ type: 'Lte', fieldPath: '_creationTime', value: filters.maxCreationTime })
      return ctx.query(async (txn) => {
        // No `_storage` table yet (no file ever stored here): no index to range over, and no files.
        const source: SerializedQuery['source'] =
          range.length === 0 || txn.table(STORAGE_TABLE, component) === undefined ? { type: 'FullTableScan', tableName: STORAGE_TABLE, order } : { type: 'IndexRange', indexName: `${STORAGE_TABLE}.${BY_CREATION_TIME}`, range, order }
        const json = await txn.page({ query: { source, operators: [] }, cursor, endCursor, pageSize: numItems }, component)
        const result = JSON.parse(json) as { page: Doc[] } & Record<string, JSONValue>
        return { ...result, page: result.page.map((d) => fileEntry(ctx, d, component)) }
      })
    }),
    'fileStorageV2:getFile': q(async (args, ctx) => {
      const storageId = str(args, 'storageId')
      const component = componentOf(args, ctx)
      return ctx.query(async (txn) => {
        if (txn.normalizeId(STORAGE_TABLE, storageId, component) === null) return null
        const doc = await txn.read(storageId, component)
        return doc === null ? null : fileEntry(ctx, doc, component)
      })
    }),
    'fileStorageV2:deleteFile': m(async (args, ctx) => {
      const component = componentOf(args, ctx)
      await deleteFiles(ctx, [str(args, 'storageId')], component)
      return null
    }),
    'fileStorageV2:deleteFiles': m(async (args, ctx) => {
      const component = componentOf(args, ctx)
      const ids = args.storageIds
      if (!Array.isArray(ids) || ids.some((id) => typeof id !== 'string')) throw argError('`storageIds` must be an array of ids')
      await deleteFiles(ctx, ids as string[], component)
      return null
    }),
    'fileStorageV2:generateUploadUrl': m((args, ctx) => {
      const component = componentOf(args, ctx)
      if (ctx.files === null) throw new SystemFunctionError('File storage is not available')
      return ctx.files.uploadUrl(component)
    }),
  }
  return new Map(Object.entries(fns).map(([name, fn]) => [name.startsWith('cli/') ? `_system/${name.replace(':', '.js:')}` : `_system/frontend/${name.replace(':', '.js:')}`, fn]))
}

async function deleteFiles(ctx: SystemContext, ids: string[], component: string): Promise<void> {
  const files = ctx.files
  if (files === null) throw new SystemFunctionError('File storage is not available')
  for (const id of ids) {
    if (files.storageIdKind(id) !== 'storage') throw argError(`Value does not match validator. Path: .storageIds. Value: "${id}". Validator: v.id("_storage")`)
  }
  await ctx.mutate(async (txn) => {
    for (const id of ids) await files.delete(txn, id, component)
  }, true)
}
