/**
 * @module System functions: the `_system/...` queries the Convex CLI runs over the sync socket
 * (`npx convex env list/get`, `npx convex data`, …), answered by the host. Admin only.
 */
import type { Transaction } from '../database/transaction.ts'
import type { JSONValue } from '../values/index.ts'
import type { EnvironmentVariables } from './environment.ts'
import { parseFunctionPath } from './registry.ts'
import type { Components } from './components.ts'
import type { FileStorage } from '../files/file-storage.ts'
import type { Scheduler } from './scheduler.ts'

/**
 * What a system function may use: read-only transactions of its own (what they read is what a
 * subscription to the function follows), mutations through the committer, and where it runs.
 */
export interface SystemContext {
  query<T>(body: (txn: Transaction) => Promise<T>): Promise<T>
  /**
   * `body` in a mutation of its own, committed (`Database.mutate`: schema validation applies, a
   * conflict re-runs it). `system`: it may write system tables, unbounded by user limits.
   */
  mutate<T>(body: (txn: Transaction) => Promise<T>, system?: boolean): Promise<T>
  /** The component the caller named (`componentPath` of the request; '' for the app). */
  componentPath: string
  /** The deployment's component tree. */
  components: Components
  /** File storage (null until the backend has started it). */
  files: FileStorage | null
  /** A component instance's scheduler ('' the app's). */
  scheduler(component: string): Scheduler | undefined
}

/** A system function's failure as its caller sees it: the message and a ConvexError's data (JSON). */
export class SystemFunctionError extends Error {
  constructor(
    message: string,
    readonly data?: string,
  ) {
    super(message)
  }
}

/** As Convex's system functions rethrow a write's error: `new ConvexError(e.message)`. */
export function convexError(message: string): SystemFunctionError {
  return new SystemFunctionError(`Uncaught ConvexError: ${message}`, JSON.stringify(message))
}

export interface SystemFunction {
  readonly udfType: 'Query' | 'Mutation'
  run(args: Record<string, JSONValue>, ctx: SystemContext): JSONValue | Promise<JSONValue>
}

/** Largest page a system query returns, whatever the client asks for. */
const MAX_PAGE = 10_000

function paginationOpts(args: Record<string, JSONValue>): { cursor: string | null; numItems: number } {
  const opts = (args.paginationOpts ?? {}) as { cursor?: unknown; numItems?: unknown }
  const cursor = typeof opts.cursor === 'string' ? opts.cursor : null
  const numItems = typeof opts.numItems === 'number' && opts.numItems > 0 ? Math.min(Math.floor(opts.numItems), MAX_PAGE) : MAX_PAGE
  return { cursor, numItems }
}

/**
 * `_system/cli/tables`: the user tables (not `_`-prefixed) of the component the call runs in, by
 * name; the cursor is the last name.
 */
async function tables(args: Record<string, JSONValue>, ctx: SystemContext): Promise<JSONValue> {
  const { cursor, numItems } = paginationOpts(args)
  const names = await ctx.query(async (txn) =>
    txn.db.catalog
      .tablesOf(ctx.componentPath)
      .map((t) => t.name)
      .filter((n) => !n.startsWith('_'))
      .sort(),
  )
  const rest = cursor === null ? names : names.filter((n) => n > cursor)
  const page = rest.slice(0, numItems)
  const isDone = page.length === rest.length
  return { page: page.map((name) => ({ name })), isDone, continueCursor: page.length > 0 ? page[page.length - 1]! : (cursor ?? '') }
}

/** `_system/cli/tableData`: a table's documents (of the component the call runs in) by creation time, one page at a time. */
async function tableData(args: Record<string, JSONValue>, ctx: SystemContext): Promise<JSONValue> {
  const table = args.table
  if (typeof table !== 'string' || table === '') throw new Error('ArgumentValidationError: `table` must be a table name')
  const order = args.order === 'asc' ? 'asc' : 'desc'
  const { cursor, numItems } = paginationOpts(args)
  const json = await ctx.query((txn) =>
    txn.page({ query: { source: { type: 'FullTableScan', tableName: table, order }, operators: [] }, cursor, endCursor: null, pageSize: numItems }, ctx.componentPath),
  )
  const result = JSON.parse(json) as { page: JSONValue[]; isDone: boolean; continueCursor: string }
  return { page: result.page, isDone: result.isDone, continueCursor: result.continueCursor }
}

/**
 * `_system/frontend/components:list`: every component, as Convex's `_components` documents read
 * (the CLI's `run --inline-query --component` finds a component's id here).
 */
function listComponents(_args: Record<string, JSONValue>, ctx: SystemContext): JSONValue {
  const all = [...ctx.components.instances().map((i) => ({ i, state: 'active' })), ...ctx.components.unmounted().map((i) => ({ i, state: 'unmounted' }))]
  return all.map(({ i, state }) => ({ id: i.id, name: i.parent === null ? null : i.name, path: i.path, args: {}, state, httpPrefix: ctx.components.httpPrefix(i.path) }))
}

export function systemFunctions(env: EnvironmentVariables): Map<string, SystemFunction> {
  const list = (): JSONValue =>
    Object.entries(env.all)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, value]) => ({ name, value }))
  return new Map<string, SystemFunction>([
    ['_system/cli/queryEnvironmentVariables.js:default', { udfType: 'Query', run: list }],
    [
      '_system/cli/queryEnvironmentVariables.js:get',
      {
        udfType: 'Query',
        // As Convex: what `process.env` holds, so the built-in CONVEX_CLOUD_URL/CONVEX_SITE_URL too.
        run: ({ name }) => (typeof name === 'string' && Object.hasOwn(env.forFunctions, name) ? { name, value: env.forFunctions[name]! } : null),
      },
    ],
    ['_system/cli/tables.js:default', { udfType: 'Query', run: tables }],
    ['_system/cli/tableData.js:default', { udfType: 'Query', run: tableData }],
    ['_system/frontend/components.js:list', { udfType: 'Query', run: listComponents }],
  ])
}

/** The canonical key of a `_system/...` path, or null if the path is not a system path. */
export function systemKey(path: string): string | null {
  if (!path.startsWith('_system/')) return null
  const { modulePath, exportName } = parseFunctionPath(path)
  return `${modulePath}:${exportName}`
}
