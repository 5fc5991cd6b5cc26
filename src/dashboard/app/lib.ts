/**
 * What every page shares: the deployment's system functions (under Convex's names, called through
 * the real `convex` client with the admin key), its admin routes (fetch), and value formatting
 * (Convex's JSON encoding, so int64, bytes and ids are edited as Convex's dashboard shows them).
 */
import { createContext, useContext } from 'react'
import { makeFunctionReference } from 'convex/server'
import type { FunctionReference } from 'convex/server'
import { convexToJson, jsonToConvex, ConvexError } from 'convex/values'
import type { Value, JSONValue } from 'convex/values'

export interface Deployment {
  /** The deployment URL (the API and sync socket). */
  url: string
  adminKey: string
  version: string
}

export const DeploymentContext = createContext<Deployment | null>(null)

export function useDeployment(): Deployment {
  const d = useContext(DeploymentContext)
  if (d === null) throw new Error('no deployment')
  return d
}

/** The component the Data and Functions pages show: the app (id null, path '') or a mounted component. */
export interface ComponentChoice {
  /** Its `_system/frontend/components:list` id (the `componentId` of the system functions), null for the app. */
  id: string | null
  /** Its path (`counter`, `counter/audit`; '' for the app): the `componentPath` of a function call. */
  path: string
}

export const APP_COMPONENT: ComponentChoice = { id: null, path: '' }

export const ComponentContext = createContext<{ component: ComponentChoice; setComponent: (c: ComponentChoice) => void }>({ component: APP_COMPONENT, setComponent: () => {} })

export function useComponent(): { component: ComponentChoice; setComponent: (c: ComponentChoice) => void } {
  return useContext(ComponentContext)
}

type AnyQuery = FunctionReference<'query', 'public', any, any>
type AnyMutation = FunctionReference<'mutation', 'public', any, any>
const query = (name: string): AnyQuery => makeFunctionReference<'query'>(`_system/frontend/${name}`) as AnyQuery
const mutation = (name: string): AnyMutation => makeFunctionReference<'mutation'>(`_system/frontend/${name}`) as AnyMutation

const cliQuery = (name: string): AnyQuery => makeFunctionReference<'query'>(`_system/cli/${name}`) as AnyQuery

/** The `_system/cli/*` queries `npx convex export` and `npx convex import` watch. */
export const cli = {
  latestExport: cliQuery('exports:getLatest'),
  queryImport: cliQuery('queryImport:default'),
}

/** The `_system/frontend/*` functions the pages use. */
export const system = {
  getTableMapping: query('getTableMapping:default'),
  tableSize: query('tableSize:default'),
  paginatedTableDocuments: query('paginatedTableDocuments:default'),
  addDocument: mutation('addDocument:default'),
  replaceDocument: mutation('replaceDocument:default'),
  deleteDocuments: mutation('deleteDocuments:default'),
  clearTablePage: mutation('clearTablePage:default'),
  createTable: mutation('createTable:default'),
  components: query('components:list'),
  getSchemas: query('getSchemas:default'),
  indexes: query('indexes:default'),
  modules: query('modules:list'),
  argsValidator: query('modules:argsValidator'),
  listEnvironmentVariables: query('listEnvironmentVariables:default'),
  convexCloudUrl: query('convexCloudUrl:default'),
  convexSiteUrl: query('convexSiteUrl:default'),
  getVersion: query('getVersion:default'),
  backendState: query('backendState:backendState'),
  listAuthProviders: query('listAuthProviders:default'),
  listCronJobs: query('listCronJobs:default'),
  listCronJobRuns: query('listCronJobRuns:default'),
  paginatedScheduledJobs: query('paginatedScheduledJobs:default'),
  fileMetadata: query('fileStorageV2:fileMetadata'),
  numFiles: query('fileStorageV2:numFiles'),
  deleteFiles: mutation('fileStorageV2:deleteFiles'),
  generateUploadUrl: mutation('fileStorageV2:generateUploadUrl'),
}

/** The message of an admin route's refusal: its JSON `message`, else the status. */
async function refusal(res: Response): Promise<string> {
  const text = await res.text()
  try {
    const body = JSON.parse(text) as { message?: unknown }
    if (typeof body.message === 'string') return body.message
  } catch {
    // not JSON
  }
  return text === '' ? `${res.status} ${res.statusText}` : text
}

/** Whether `adminKey` is this deployment's: null if so, else the refusal's message. */
export async function checkAdminKey(url: string, adminKey: string): Promise<string | null> {
  let res: Response
  try {
    res = await fetch(`${url}/api/check_admin_key`, { headers: { authorization: `Convex ${adminKey}` } })
  } catch (e) {
    return `Could not reach the deployment at ${url}: ${(e as Error).message}`
  }
  return res.ok ? null : await refusal(res)
}

/** An admin route of the deployment; fails with the route's message. */
export async function adminFetch(d: Deployment, path: string, init: { method?: string; body?: unknown } = {}): Promise<Response> {
  const res = await fetch(`${d.url}${path}`, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers: { authorization: `Convex ${d.adminKey}`, ...(init.body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  })
  if (!res.ok) throw new Error(await refusal(res))
  return res
}

/** A value as Convex's JSON encoding shows it (int64 as {"$integer": …}, bytes as {"$bytes": …}). */
export function toJsonText(v: Value | undefined, indent?: number): string {
  if (v === undefined) return 'undefined'
  return JSON.stringify(convexToJson(v), null, indent)
}

/** Parses text in Convex's JSON encoding into a value; fails with a message that says what is wrong. */
export function parseValue(text: string): Value {
  let json: JSONValue
  try {
    json = JSON.parse(text) as JSONValue
  } catch (e) {
    throw new Error(`Not valid JSON: ${(e as Error).message}`)
  }
  return jsonToConvex(json)
}

/** What a failed call says: a ConvexError's data (the system functions' schema errors), else its message. */
export function errorText(e: unknown): string {
  if (e instanceof ConvexError) return typeof e.data === 'string' ? e.data : JSON.stringify(e.data)
  if (e instanceof Error) return e.message
  return String(e)
}

/** Convex's nanosecond int64 timestamps as a date. */
export function nanosToDate(ns: bigint | number | null | undefined): string {
  if (ns === null || ns === undefined) return ''
  return new Date(Number(BigInt(ns) / 1_000_000n)).toLocaleString()
}

export function msToDate(ms: number | null | undefined): string {
  return ms === null || ms === undefined ? '' : new Date(ms).toLocaleString()
}

/** The bytes of a scheduled job's or cron's `udfArgs` (the JSON text of its arguments array). */
export function argsText(bytes: ArrayBuffer | null | undefined): string {
  if (bytes === null || bytes === undefined) return ''
  const text = new TextDecoder().decode(bytes)
  try {
    const list = JSON.parse(text) as JSONValue[]
    return JSON.stringify(list.length === 1 ? list[0] : list)
  } catch {
    return text
  }
}

/** `notes.js:add` → `notes:add` (how functions are named to users). */
export function displayPath(udfPath: string): string {
  return udfPath.replace(/\.js(?=:|$)/, '').replace(/:default$/, '')
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GiB`
}

/**
 * The client's admin methods, which Convex's own dashboard uses but the published types leave out
 * (they are marked internal): admin auth (optionally acting as a user), and the sync client's runs
 * that answer with log lines.
 */
export interface AdminClient {
  setAdminAuth(token: string, actingAs?: import('convex/server').UserIdentityAttributes): void
  readonly sync: {
    mutationInternal(name: string, args: Record<string, Value>, options?: undefined, componentPath?: string): Promise<FunctionOutcome>
    actionInternal(name: string, args: Record<string, Value>, componentPath?: string): Promise<FunctionOutcome>
  }
}

export type FunctionOutcome = { success: true; value: Value; logLines: string[] } | { success: false; errorMessage: string; errorData?: Value; logLines: string[] }

export function asAdmin(client: unknown): AdminClient {
  return client as AdminClient
}
