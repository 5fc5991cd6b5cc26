/**
 * @module The API on port 3210: function calls (`ConvexHttpClient`), push (`npx convex deploy`)
 * and instance info. Routes are bound per area, like `bindFunctionRoutes(app, deps)`.
 */
import type { RestoreTarget } from '../snapshot/restore-into.ts'
import type { RestoreOptions, RestoreResult } from '../snapshot/restore.ts'
import { Hono } from 'hono'
import type { Context } from 'hono'
import { BodyBudgetError, readLimited, refuseBody } from './body.ts'
import type { BodyBudget, BodyHold } from './body.ts'
import { MAX_ECHO_BODY, MAX_FUNCTION_BODY, MAX_PUSH_BODY } from './limits.ts'
import type { Logger } from '../util/log.ts'
import { brotliDecompressSync, gunzipSync } from 'node:zlib'
import { splitAdminAuthorization, verifyAdminKey } from '../../keybroker/index.ts'
import type { AdminKeyKind } from '../../keybroker/index.ts'
import { allowedOps, requireOperation } from '../auth/admin-permissions.ts'
import type { DeploymentOp } from '../auth/admin-permissions.ts'
import type { Database } from '../database/database.ts'
import type { FunctionKind, FunctionRunner, UdfResult } from '../functions/function-runner.ts'
import { errorText } from '../functions/errors.ts'
import { OutOfRetentionError, SystemFailure } from '../database/errors.ts'
import { BY_CREATION_TIME } from '../database/catalog.ts'
import { tableShape } from './shapes.ts'
import { uniqueHexId } from '../util/unique-id.ts'
import { Readable } from 'node:stream'
import { PushError } from '../push/push.ts'
import { TableDeletionRefused } from '../database/database.ts'
import { EnvironmentError } from '../functions/environment.ts'
import type { EnvironmentVariables } from '../functions/environment.ts'
import type { DeploymentState } from '../functions/deployment-state.ts'
import { REQUEST_DESTINATIONS } from '../functions/canonical-urls.ts'
import type { CanonicalUrls, RequestDestination } from '../functions/canonical-urls.ts'
import { FileStorageError, MAX_UPLOAD_BYTES, STORAGE_TABLE } from '../files/file-storage.ts'
import type { FileStorage } from '../files/file-storage.ts'
import { actingAsIdentity, AuthError } from '../auth/auth.ts'
import type { Auth, UserIdentity } from '../auth/auth.ts'
import type { PushService } from '../push/push.ts'
import { decodeTs, encodeTs, jsonToValue } from '../values/index.ts'
import { functionPathError } from '../functions/registry.ts'
import { encodedToExportJson } from '../snapshot/export-json.ts'
import { EMPTY_BODY_ERROR, QUERY_BATCH_ARGS, requestShapeError, unexpectedValue, UDF_POST_REQUEST, UDF_POST_REQUEST_ARGS_ONLY, UDF_POST_REQUEST_WITH_COMPONENT, type RequestShape } from './udf-request.ts'
import type { JSONValue, Value } from '../values/index.ts'
import { isClientAbort, badRequest, forbidden, HttpError, unauthorized } from './errors.ts'
import { serveHttpAction } from './site-app.ts'
import { parseAuthorizationHeader } from './auth-header.ts'
import type { AuthorizationHeader } from './auth-header.ts'
import { clientOf } from './client-info.ts'
import { bindSnapshotRoutes } from './snapshot-routes.ts'
import { bindStreamingExportRoutes } from './streaming-export-routes.ts'
import { SCHEDULED_FUNCTIONS } from '../functions/scheduler.ts'

/** How many of a table's latest documents its shape is inferred from (`/api/shapes2`). */
const SHAPE_SAMPLE = 10_000

export interface HttpDeps {
  /** The server's own log (one JSON object per line). */
  readonly log?: Logger
  readonly auth: Auth
  readonly files: FileStorage
  readonly env: EnvironmentVariables
  readonly deploymentState: DeploymentState
  readonly canonicalUrls: CanonicalUrls
  /** Live counters for operators and benchmarks (admin only). */
  readonly metrics: () => Record<string, number>
  readonly instanceName: string
  readonly instanceSecret: string
  readonly version: string
  readonly cloudUrl: () => string
  readonly siteUrl: () => string
  readonly db: Database
  readonly runner: FunctionRunner
  readonly push: PushService
  /** Bounds the bytes of request bodies held at once (function calls and HTTP actions). */
  readonly bodyBudget?: BodyBudget
  /** Restores into a new deployment (POST /api/restore with `into` or `intoDbUrl`; see src/snapshot/restore-into.ts). */
  readonly restoreInto?: (target: RestoreTarget, ts: bigint, opts: RestoreOptions) => Promise<RestoreResult>
  /** Present while this backend replicates another deployment (`--replicate-from`). */
  readonly replication?: { status(): Promise<Record<string, unknown>> }
}


/**
 * Reads the body, refusing it as soon as it passes `limit` (before or after decompression). Its
 * bytes are taken from `hold` (the request body budget) before they are read.
 */
async function readBody(c: Context, limit: number, hold?: BodyHold): Promise<Buffer> {
  const tooLarge = (n: number | string) => new HttpError(413, 'PayloadTooLarge', `Request body is too large: ${n} bytes (limit ${limit})`)
  const length = c.req.header('content-length')
  const declared = Number(length ?? '0')
  if (declared > limit) throw tooLarge(declared)
  let body: Buffer
  if (length !== undefined) {
    // Declared and within the limit: read it whole (the fast path; Node enforces the length).
    try {
      hold?.take(declared)
    } catch (e) {
      if (e instanceof BodyBudgetError) await refuseBody(c.req.raw.body, limit, e)
      throw e
    }
    body = Buffer.from(await c.req.arrayBuffer())
    if (body.length > limit) throw tooLarge(body.length)
  } else {
    const read = await readLimited(c.req.raw.body, limit, hold)
    if (read === null) throw tooLarge(`more than ${limit}`)
    body = read
  }
  const decoded = decode(c, body, limit, tooLarge)
  hold?.take(decoded.length - body.length)
  return decoded
}

/** Decompresses a `br`/`gzip` body, refusing output past `limit`. */
function decode(c: Context, raw: Buffer, limit: number, tooLarge: (n: number | string) => HttpError): Buffer {
  let body = raw
  const encoding = c.req.header('content-encoding')
  try {
    if (encoding === 'br') body = brotliDecompressSync(body, { maxOutputLength: limit })
    else if (encoding === 'gzip') body = gunzipSync(body, { maxOutputLength: limit })
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge(`more than ${limit} (decompressed)`)
    throw badRequest('BadRequest', `Could not decode the ${encoding}-compressed request body`)
  }
  return body
}

/** Parses a JSON request body; an empty body is `{}` (as `/api/query_ts` sends). */
async function readJson(c: Context, limit = MAX_FUNCTION_BODY, hold?: BodyHold): Promise<Record<string, unknown>> {
  if (!jsonContentType(c.req.header('content-type'))) throw badRequest('BadJsonBody', 'Expected request with `Content-Type: application/json`')
  return parseJsonBody(await readBody(c, limit, hold))
}

/**
 * Reads a function call's body as Convex deserializes it into `shape` (see udf-request.ts): an
 * empty body, a field of the wrong type or a missing one gets serde's words.
 */
async function readCall(c: Context, shape: RequestShape, hold?: BodyHold): Promise<Record<string, unknown>> {
  if (!jsonContentType(c.req.header('content-type'))) throw badRequest('BadJsonBody', 'Expected request with `Content-Type: application/json`')
  const raw = await readBody(c, MAX_FUNCTION_BODY, hold)
  if (raw.length === 0) throw badRequest('BadJsonBody', EMPTY_BODY_ERROR)
  const text = raw.toString('utf8')
  const parsed = parseJsonText(text)
  const refused = requestShapeError(text, parsed, shape)
  if (refused !== null) throw badRequest('BadJsonBody', refused)
  if (Array.isArray(parsed)) throw badRequest('BadJsonBody', 'The request body must be a JSON object')
  return parsed as Record<string, unknown>
}

/** Whether a body of this `Content-Type` is read as JSON (none counts). */
function jsonContentType(contentType: string | undefined): boolean {
  return contentType === undefined || contentType === '' || contentType.toLowerCase().includes('json')
}

function parseJsonText(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch (e) {
    throw badRequest('BadJsonBody', `Failed to parse the request body as JSON: ${(e as Error).message}`)
  }
}

function parseJsonBody(body: Buffer): Record<string, unknown> {
  if (body.length === 0) return {}
  const parsed = parseJsonText(body.toString('utf8'))
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw badRequest('BadJsonBody', 'The request body must be a JSON object')
  return parsed as Record<string, unknown>
}

/** A test query's args (`/api/run_test_function`): `[obj]` or `obj`. */
function unwrapArgs(args: unknown): JSONValue {
  if (args === undefined || args === null) return {}
  if (Array.isArray(args)) {
    if (args.length === 0) return {}
    if (args.length !== 1) throw badRequest('BadRequest', 'args must be an object or a one-element array')
    return args[0] as JSONValue
  }
  return args as JSONValue
}

/** Convex's "clean JSON": int64 as a decimal string, bytes as base64, special floats as strings. */
function toCleanJson(v: Value): unknown {
  if (typeof v === 'bigint') return v.toString()
  if (typeof v === 'number') return Number.isFinite(v) && !Object.is(v, -0) ? v : String(v)
  if (v instanceof ArrayBuffer) return Buffer.from(v).toString('base64')
  if (Array.isArray(v)) return v.map(toCleanJson)
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toCleanJson(x)]))
  return v
}

function udfResponse(c: Context, result: UdfResult, format: unknown): Response {
  // As Convex: the format is read once the function has run (a mutation's writes stand).
  checkFormat(format)
  return answered(c, udfBody(result, format, requestIdOf(c)))
}

function checkFormat(format: unknown): void {
  if (format !== undefined && format !== null && !VALUE_FORMATS.has(format as string)) throw badRequest('BadFormat', `format param must be one of [\`json\`]. Got ${String(format)}`)
}

/** The value formats Convex's answers come in (`ValueFormat`): the encoded one, or clean JSON. */
const VALUE_FORMATS = new Set(['convex_encoded_json', 'convex_json', 'json', 'convex_clean_json', 'export_json'])

/** The body of a function call's answer (status 200 whether it succeeded or not). */
function udfBody(result: UdfResult, format: unknown, requestId: string): string {
  // As Convex's UdfResponse: `logLines` only when there are some.
  const logLines = result.logLines.length === 0 ? '' : `,"logLines":${JSON.stringify(result.logLines)}`
  const encoded = format === 'convex_encoded_json' || format === 'convex_json'
  // `export_json`: Convex's lossless clean form (int64 a bare integer, a float always a float).
  const encode = (json: string) => (encoded ? json : format === 'export_json' ? encodedToExportJson(JSON.parse(json) as JSONValue) : JSON.stringify(toCleanJson(jsonToValue(JSON.parse(json) as JSONValue))))
  if (result.ok) return `{"status":"success","value":${encode(result.value)}${logLines}}`
  const data = result.data === undefined ? '' : `,"errorData":${encode(result.data)}`
  const message = `[Request ID: ${requestId}] Server Error\n${errorText(result)}\n`
  return `{"status":"error","errorMessage":${JSON.stringify(message)}${data}${logLines}}`
}

/** Marks a response made with every header the middleware would add (see `answered`). */
const HEADERS_DONE = Symbol('headers done')

/**
 * A 200 JSON answer of an `/api/` route with its final headers, in the order and spelling the
 * middleware and @hono/node-server would give them (CORS and request id, then the length), as a
 * plain object: node-server writes it as is, where headers added later would each turn it into a
 * `Headers` to be copied back out (a function call's answer is the hot path).
 */
function answered(c: Context, body: string): Response {
  const res = new Response(body, { status: 200, headers: finalHeaders(c.req.header('origin'), requestIdOf(c), body) })
  ;(res as { [HEADERS_DONE]?: true })[HEADERS_DONE] = true
  return res
}

/**
 * The headers of an `/api/` JSON answer (or, with a null body, of one without a body), as
 * @hono/node-server writes them after the middleware set CORS and the request id on a `Headers`:
 * sorted by name, then the length. `extra` are `connection`/`retry-after` (sorted in).
 */
function finalHeaders(origin: string | undefined, requestId: string, body: string | null, extra?: { connection?: string; 'retry-after'?: string }): Record<string, string> {
  const headers: Record<string, string> = { 'access-control-allow-origin': origin ?? '*' }
  if (extra?.connection !== undefined) headers.connection = extra.connection
  if (body !== null) headers['content-type'] = 'application/json'
  headers['convex-request-id'] = requestId
  if (extra?.['retry-after'] !== undefined) headers['retry-after'] = extra['retry-after']
  if (origin !== undefined) headers.vary = 'origin'
  if (body !== null) headers['Content-Length'] = String(Buffer.byteLength(body))
  return headers
}

function headersDone(res: Response): boolean {
  return (res as { [HEADERS_DONE]?: true })[HEADERS_DONE] === true
}

/** The request's hold on the body budget (none when the budget is off). */
function holdFor(c: Context, deps: HttpDeps): BodyHold | undefined {
  if (deps.bodyBudget === undefined) return undefined
  let hold = heldBody(c)
  if (hold === undefined) {
    hold = deps.bodyBudget.hold()
    c.set('bodyHold' as never, hold as never)
  }
  return hold
}

function heldBody(c: Context): BodyHold | undefined {
  return c.get('bodyHold' as never) as BodyHold | undefined
}

/** The request's id: the client's `convex-request-id`, else a fresh one; echoed on the response. */
function requestIdOf(c: Context): string {
  let id = c.get('requestId' as never) as string | undefined
  if (id === undefined) {
    id = c.req.header('convex-request-id') ?? uniqueHexId()
    c.set('requestId' as never, id as never)
  }
  return id
}

/** What a failed request is answered (a null `json`: no body), with its log line written. */
interface ErrorAnswer {
  status: number
  json: { code: string; message: string } | null
  connection?: 'close'
  'retry-after'?: string
}

function errorAnswer(err: unknown, deps: HttpDeps, at: { requestId: () => string; method: string; path: string; request: { readonly signal: { readonly aborted: boolean } } }): ErrorAnswer {
  if (err instanceof HttpError) {
    const answer: ErrorAnswer = { status: err.status, json: { code: err.code, message: err.message } }
    // The rest of a refused body was never read: the connection can't carry another request.
    if (err.status === 413 || (err instanceof BodyBudgetError && !err.drained)) answer.connection = 'close'
    if (err instanceof BodyBudgetError) answer['retry-after'] = String(err.retryAfterSeconds)
    return answer
  }
  if (err instanceof PushError) return { status: err.status, json: { code: err.code, message: err.message } }
  if (err instanceof EnvironmentError) return { status: 400, json: { code: err.code, message: err.message } }
  if (err instanceof FileStorageError) {
    const answer: ErrorAnswer = { status: err.status, json: { code: err.code, message: err.message } }
    if (err.status === 413) answer.connection = 'close'
    return answer
  }
  // The system's failure (a conflict on every retry, an overload): 503 with its code, as Convex.
  if (err instanceof SystemFailure) return { status: 503, json: { code: err.code, message: err.message } }
  if (isClientAbort(err, at.request)) {
    deps.log?.info('Client went away mid-request', { requestId: at.requestId(), method: at.method, path: at.path })
    return { status: 499, json: null }
  }
  if (err instanceof OutOfRetentionError) {
    // Convex's out-of-retention error: 503 with the generic text; the timestamp goes to the log.
    deps.log?.warn('Read out of the history retention window', { requestId: at.requestId(), error: err.message })
    return { status: 503, json: { code: 'InternalServerError', message: "Your request couldn't be completed. Try again later." } }
  }
  deps.log?.error('Request failed', { requestId: at.requestId(), method: at.method, path: at.path, error: err instanceof Error ? (err.stack ?? err.message) : String(err) })
  return { status: 500, json: { code: 'InternalServerError', message: "Your request couldn't be completed. Try again later." } }
}

export function createHttpApp(deps: HttpDeps): Hono {
  const app = new Hono()
  app.use('*', async (c, next) => {
    const id = requestIdOf(c)
    try {
      await next()
    } finally {
      // The request is answered: its body's bytes go back to the budget.
      heldBody(c)?.release()
    }
    if (!headersDone(c.res)) c.res.headers.set('convex-request-id', id)
  })
  app.onError((err, c) => {
    const answer = errorAnswer(err, deps, { requestId: () => requestIdOf(c), method: c.req.method, path: c.req.path, request: c.req.raw })
    if (answer.connection !== undefined) c.header('connection', answer.connection)
    if (answer['retry-after'] !== undefined) c.header('retry-after', answer['retry-after'])
    return answer.json === null ? c.body(null, answer.status as never) : c.json(answer.json, answer.status as 400)
  })
  app.notFound((c) => c.json({ code: 'NotFound', message: `No route for ${c.req.method} ${c.req.path}` }, 404))
  app.use('/api/*', async (c, next) => {
    const origin = c.req.header('origin')
    if (c.req.method === 'OPTIONS') {
      return c.body(null, 204, {
        'access-control-allow-origin': origin ?? '*',
        'access-control-allow-methods': 'GET, POST, OPTIONS',
        'access-control-allow-headers': 'Content-Type, Convex-Client, Authorization',
        'access-control-max-age': '86400',
        vary: 'origin',
      })
    }
    await next()
    if (headersDone(c.res)) return
    c.res.headers.set('access-control-allow-origin', origin ?? '*')
    if (origin !== undefined) c.res.headers.set('vary', 'origin')
  })
  app.all('/http/*', (c) => serveHttpAction(c, { runner: deps.runner, auth: deps.auth, adminKey: (key) => verifiedKind(key, deps), siteUrl: deps.siteUrl, bodyBudget: deps.bodyBudget }, '/http'))
  bindInstanceRoutes(app, deps)
  bindFunctionRoutes(app, deps)
  bindPushRoutes(app, deps)
  bindStorageRoutes(app, deps)
  bindSnapshotRoutes(app, deps)
  bindStreamingExportRoutes(app, deps)
  bindDashboardRoutes(app, deps)
  return app
}

function bindInstanceRoutes(app: Hono, deps: HttpDeps): void {
  app.get('/version', (c) => c.text(deps.version))
  // For load balancers and container healthchecks: no auth, no work.
  // Unhealthy (503, with the cause) while commits can't be made, so a balancer moves traffic away.
  app.get('/health', (c) => {
    const unhealthy = deps.db.unhealthy
    return unhealthy === null ? c.text('OK') : c.text(`Unhealthy: ${unhealthy.message}`, 503)
  })
  app.get('/instance_name', (c) => c.text(deps.instanceName))
  // The public key of `ctx.auth.signJwt`'s tokens (convex ≥ 1.48), for anyone to verify them with.
  app.get('/.well-known/jwks.json', (c) => {
    c.header('cache-control', 'public, max-age=3600')
    return c.json({ keys: deps.runner.signing === null ? [] : [deps.runner.signing.key.publicJwk] })
  })
  app.get('/instance_version', (c) => c.text(deps.version))
  // The body sent back as it comes (`npx convex network-test` checks the network with it): streamed
  // when its length is declared, else read first (within the limit).
  app.post('/echo', async (c) => {
    const declared = c.req.header('content-length')
    if (declared === undefined) return c.body(new Uint8Array(await readBody(c, MAX_ECHO_BODY, holdFor(c, deps))))
    if (Number(declared) > MAX_ECHO_BODY) throw new HttpError(413, 'PayloadTooLarge', `Request body is too large: ${declared} bytes (limit ${MAX_ECHO_BODY})`)
    return new Response(c.req.raw.body, { status: 200 })
  })
  app.get('/api/v1/get_canonical_urls', (c) => c.json({ convexCloudUrl: deps.cloudUrl(), convexSiteUrl: deps.siteUrl() }))
  app.get('/api/concave/metrics', (c) => {
    adminAuth(c, deps, true, 'ViewMetrics')
    // `?gc=1` collects garbage first when the process runs with --expose-gc (the benchmarks do), so
    // heapUsedBytes is live memory.
    if (c.req.query('gc') === '1') (globalThis as { gc?: () => void }).gc?.()
    return c.json(deps.metrics())
  })
}

/**
 * The caller's authorization: `Convex <adminKey>` is an admin (checked against this instance's
 * secret), `Bearer <jwt>` or no header a plain client, anything else a 400 (./auth-header.ts). A
 * header that claims admin with a bad key is refused.
 * With `op`, an admin key that may not perform it (a read-only one) is refused as Convex refuses
 * it (403 `OperationNotPermitted`).
 */
export function adminAuth(c: Context, deps: HttpDeps, required: boolean, op?: DeploymentOp): boolean {
  const kind = adminKindOf(c, deps, required)
  if (kind !== null && op !== undefined) requireOperation(kind, op)
  return kind !== null
}

/** The kind of admin key the request carries (null: none), with adminAuth's refusals. */
export function adminKindOf(c: Context, deps: HttpDeps, required: boolean): AdminKeyKind | null {
  return adminKindOfHeader(c.req.header('authorization'), deps, required)
}

/** The kind of this instance's admin key `key` (null: not one). */
function verifiedKind(key: string, deps: HttpDeps): AdminKeyKind | null {
  const verified = verifyAdminKey(key, deps.instanceName, deps.instanceSecret)
  return verified.ok ? verified.kind : null
}

function adminKindOfHeader(header: string | undefined, deps: HttpDeps, required: boolean): AdminKeyKind | null {
  return adminKindOfParsed(parseAuthorizationHeader(header), deps, required)
}

function adminKindOfParsed(parsed: AuthorizationHeader, deps: HttpDeps, required: boolean): AdminKeyKind | null {
  if (parsed.kind === 'none') {
    if (required) throw forbidden('BadDeployKey', `The provided deploy key was invalid for deployment '${deps.instanceName}'. Double check that the environment this key was generated for matches the desired deployment.`)
    return null
  }
  if (parsed.kind === 'user') {
    if (required) throw unauthorized('BadAdminKey', 'The provided admin key was invalid for this instance')
    return null
  }
  const { adminKey } = splitAdminAuthorization(parsed.value)
  const verified = verifyAdminKey(adminKey, deps.instanceName, deps.instanceSecret)
  if (!verified.ok) throw unauthorized('BadAdminKey', 'The provided admin key was invalid for this instance')
  return verified.kind
}

/**
 * Who is calling a function: `Bearer <jwt>` is a user (verified against auth.config.ts),
 * `Convex <admin key>[:<base64 identity>]` an admin, optionally acting as a user.
 */
async function caller(authorization: string | undefined, deps: HttpDeps): Promise<{ admin: boolean; readOnly: boolean; identity: UserIdentity | null; authToken: string | null }> {
  const parsed = parseAuthorizationHeader(authorization)
  try {
    if (parsed.kind === 'user') return { admin: false, readOnly: false, identity: await deps.auth.verify(parsed.token), authToken: parsed.token }
    const kind = adminKindOfParsed(parsed, deps, false)
    const actingAs = parsed.kind === 'admin' ? splitAdminAuthorization(parsed.value).actingAs : undefined
    if (kind !== null && actingAs !== undefined) requireOperation(kind, 'ActAsUser')
    return { admin: kind !== null, readOnly: kind === 'read-only', identity: actingAs === undefined ? null : actingAsIdentity(actingAs), authToken: null }
  } catch (e) {
    if (e instanceof AuthError) throw unauthorized(e.code, e.message)
    throw e
  }
}

function bindFunctionRoutes(app: Hono, deps: HttpDeps): void {
  /**
   * Runs a call with the body's `args` as Convex takes them: an array is the function's arguments
   * positionally, anything else its one argument.
   */
  const run = async (c: Context, kind: FunctionKind | null, given: unknown, path: unknown, ts?: bigint, componentPath?: string, who?: Awaited<ReturnType<typeof caller>>): Promise<UdfResult> => {
    const positional = (Array.isArray(given) ? given : [given === undefined ? {} : given]) as JSONValue[]
    const only = positional.length === 1 ? positional[0] : undefined
    const args: JSONValue = only !== null && typeof only === 'object' && !Array.isArray(only) ? only : {}
    if (typeof path !== 'string') throw badRequest('BadRequest', 'Missing function path: the body must contain "path"')
    const invalid = functionPathError(path)
    if (invalid !== null) throw badRequest('BadConvexFunctionIdentifier', `${path} is not a valid path to a Convex function. ${invalid}`)
    const { admin, readOnly, identity, authToken } = who ?? (await caller(c.req.header('authorization'), deps))
    // As Convex: a component path that names no component is an internal error (500); an
    // unmounted one's functions are simply not found.
    if (componentPath !== undefined && componentPath !== '' && !deps.push.components.known(componentPath)) throw new Error('Component path not found')
    return deps.runner.call(kind, path, args, { admin, readOnly, ts, identity, componentPath, positional, request: { requestId: requestIdOf(c), ...clientOf(c), authToken } })
  }
  const call = async (c: Context, kind: FunctionKind | null, body: Record<string, unknown>, args: unknown, path: unknown, ts?: bigint, componentPath?: string) =>
    udfResponse(c, await run(c, kind, args, path, ts, componentPath), body.format)
  // Convex's public API also takes a query as GET (`?path=…&args=<JSON>&format=…`), and several
  // queries in one request, all read at one timestamp (`/api/query_batch`).
  app.get('/api/query', async (c) => {
    const path = c.req.query('path')
    const argsText = c.req.query('args')
    for (const [name, value] of [['path', path], ['args', argsText]] as const) {
      if (value === undefined) throw badRequest('BadQueryArgs', `Failed to deserialize query string: missing field \`${name}\``)
    }
    let args: unknown
    try {
      args = JSON.parse(argsText!)
    } catch (e) {
      throw badRequest('BadQueryArgs', `Failed to deserialize query string: args: ${(e as Error).message}`)
    }
    return call(c, 'query', { format: c.req.query('format') }, args, path)
  })
  app.post('/api/query_batch', async (c) => {
    const body = await readCall(c, QUERY_BATCH_ARGS, holdFor(c, deps))
    const queries = body.queries
    // (serde's path to the field is given; its position in the whole body is left out.)
    if (!Array.isArray(queries)) throw badRequest('BadJsonBody', `Failed to deserialize the JSON body into the target type: queries: invalid type: ${unexpectedValue(queries)}, expected a sequence`)
    queries.forEach((q: unknown, i) => {
      const problem = requestShapeError(() => JSON.stringify(q), q, UDF_POST_REQUEST, `queries[${i}]`)
      if (problem !== null) throw badRequest('BadJsonBody', problem)
    })
    // One caller and one timestamp for every query, as Convex's.
    const who = await caller(c.req.header('authorization'), deps)
    const ts = await deps.db.currentTs()
    const results: string[] = []
    for (const q of queries as Record<string, unknown>[]) {
      checkFormat(q.format)
      results.push(udfBody(await run(c, 'query', q.args, q.path, ts, undefined, who), q.format, requestIdOf(c)))
    }
    return answered(c, `{"results":[${results.join(',')}]}`)
  })
  for (const kind of ['query', 'mutation', 'action'] as const) {
    app.post(`/api/${kind}`, async (c) => {
      const body = await readCall(c, UDF_POST_REQUEST, holdFor(c, deps))
      return call(c, kind, body, body.args, body.path)
    })
  }
  // The CLI's door (`npx convex run`, `--component`): admins only, as in Convex. (`/api/query` and
  // the others ignore a `componentPath`: clients reach only the app's own functions.)
  app.post('/api/function', async (c) => {
    const body = await readCall(c, UDF_POST_REQUEST_WITH_COMPONENT, holdFor(c, deps))
    adminAuth(c, deps, true)
    const componentPath = body.componentPath
    if (componentPath !== undefined && componentPath !== null && (typeof componentPath !== 'string' || !/^([A-Za-z_][A-Za-z0-9_]*(\/[A-Za-z_][A-Za-z0-9_]*)*)?$/.test(componentPath))) {
      throw badRequest('InvalidComponentPath', `Invalid component path ${JSON.stringify(componentPath)}`)
    }
    return call(c, null, body, body.args, body.path, undefined, (componentPath as string | null | undefined) ?? undefined)
  })
  app.post('/api/run/*', async (c) => {
    const body = await readCall(c, UDF_POST_REQUEST_ARGS_ONLY, holdFor(c, deps))
    const segments = c.req.path.slice('/api/run/'.length).split('/').filter((s) => s !== '')
    if (segments.length < 2) throw badRequest('MissingIdentifier', 'Path or function name not provided in path, e.g. /api/run/messages/list')
    const fn = segments.pop()!
    return call(c, null, { ...body, format: body.format ?? 'json' }, body.args, `${segments.join('/')}:${fn}`)
  })
  // A query module the caller sends, run once read-only (the dashboard's function runner,
  // `npx convex run --inline-query`): the admin key comes in the body, as Convex takes it.
  app.post('/api/run_test_function', async (c) => {
    const body = await readJson(c, MAX_FUNCTION_BODY, holdFor(c, deps))
    const key = typeof body.adminKey === 'string' ? body.adminKey : ''
    const verified = verifyAdminKey(key, deps.instanceName, deps.instanceSecret)
    if (!verified.ok) throw unauthorized('BadAdminKey', 'The provided admin key was invalid for this instance')
    requireOperation(verified.kind, 'RunTestQuery')
    const bundle = body.bundle as { source?: unknown } | undefined
    if (typeof bundle?.source !== 'string') throw badRequest('BadRequest', 'The body must contain bundle.source')
    const componentId = body.componentId
    const componentPath = componentId === undefined || componentId === null ? '' : deps.push.components.byId(String(componentId))?.path
    if (componentPath === undefined) throw badRequest('ComponentNotFound', `Component with ID ${JSON.stringify(componentId)} not found`)
    const result = await deps.runner.runTestQuery(bundle.source, unwrapArgs(body.args), componentPath)
    return udfResponse(c, result, body.format)
  })
  app.post('/api/query_ts', async (c) => {
    await readJson(c, MAX_FUNCTION_BODY, holdFor(c, deps))
    return c.json({ ts: encodeTs(await deps.db.currentTs()) })
  })
  app.post('/api/query_at_ts', async (c) => {
    const body = await readJson(c, MAX_FUNCTION_BODY, holdFor(c, deps))
    if (typeof body.ts !== 'string') throw badRequest('BadRequest', 'query_at_ts requires "ts"')
    let ts: bigint
    try {
      ts = decodeTs(body.ts)
    } catch {
      throw badRequest('BadRequest', `Invalid ts ${JSON.stringify(body.ts)}`)
    }
    if (ts > (await deps.db.currentTs())) throw badRequest('BadRequest', `Timestamp ${ts} is in the future`)
    return call(c, 'query', body, body.args, body.path, ts)
  })
}

/** How long `/api/stream_function_logs` waits for new entries before answering none. */
const LOG_POLL_MS = 5000

function bindPushRoutes(app: Hono, deps: HttpDeps): void {
  const admin = (path: string, handler: (body: Record<string, unknown>) => Promise<unknown> | unknown, op: DeploymentOp = 'Deploy') =>
    app.post(path, async (c) => {
      adminAuth(c, deps, true, op)
      const body = await readJson(c, MAX_PUSH_BODY)
      const answer = await handler(body)
      // (A route with nothing to say answers 200 with no body, as Convex's.)
      return answer === undefined ? c.body(null, 200) : c.json(answer as object)
    })
  admin('/api/get_config_hashes', () => deps.push.configHashes())
  admin('/api/deploy2/evaluate_schema', () => ({ componentSchemaEvaluations: {}, newComponentDefinitions: [] }))
  admin('/api/deploy2/evaluate_push', () => ({ schemaChange: {} }))
  admin('/api/deploy2/start_push', (body) => deps.push.startPush(body as never))
  admin('/api/deploy2/wait_for_schema', (body) => deps.push.waitForSchema(body as never))
  admin('/api/deploy2/finish_push', (body) => deps.push.finishPush(body as never))
  admin('/api/delete_component', (body) => deps.push.deleteComponent((body as { componentId?: unknown }).componentId), 'WriteData')
  // The dashboard's "Delete table": {tableNames, componentId} (null: the app).
  admin('/api/delete_tables', async (body) => {
    const { tableNames, componentId } = (body ?? {}) as { tableNames?: unknown; componentId?: unknown }
    if (!Array.isArray(tableNames) || tableNames.some((t) => typeof t !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(t))) throw badRequest('InvalidTableName', '`tableNames` must be a list of table names')
    const component = componentId === undefined || componentId === null ? '' : deps.push.components.byId(String(componentId))?.path
    if (component === undefined) throw badRequest('ComponentNotFound', `Component with ID ${JSON.stringify(componentId)} not found`)
    try {
      await deps.db.deleteTables(component, tableNames as string[])
    } catch (e) {
      if (e instanceof TableDeletionRefused) throw badRequest(e.code, e.message)
      throw e
    }
    return {}
  }, 'WriteData')
  admin('/api/deploy2/report_push_completed', () => ({}))
  // Environment variables, at the dashboard's paths and at Convex's deployment platform API's
  // (`/api/v1`, what scripts call with a deploy key): 200 with no body, as Convex's.
  const updateEnvironment = async (body: Record<string, unknown>) => {
    if (!Array.isArray(body.changes)) throw badRequest('InvalidEnvironmentVariables', 'The body must be {"changes": [{"name": string, "value": string | null}]}')
    await deps.env.apply(body.changes as never, (next, removed) => deps.push.checkEnvironmentChange(next, removed))
  }
  admin('/api/update_environment_variables', updateEnvironment, 'WriteEnvironmentVariables')
  admin('/api/v1/update_environment_variables', updateEnvironment, 'WriteEnvironmentVariables')
  for (const path of ['/api/list_environment_variables', '/api/v1/list_environment_variables']) {
    app.get(path, (c) => {
      adminAuth(c, deps, true, 'ViewEnvironmentVariables')
      const all = deps.env.all
      return c.json({ environmentVariables: Object.fromEntries(Object.keys(all).sort().map((name) => [name, all[name]!])) })
    })
  }
  // Pausing: the app's functions stop (Convex's message), jobs wait, crons are skipped. Pausing a
  // paused deployment is no error; resuming a running one is Convex's 400.
  // (No body: none is read.)
  app.post('/api/v1/pause_deployment', async (c) => {
    adminAuth(c, deps, true, 'PauseDeployment')
    await deps.deploymentState.setPaused(true)
    return c.body(null, 200)
  })
  app.post('/api/v1/unpause_deployment', async (c) => {
    adminAuth(c, deps, true, 'UnpauseDeployment')
    if (!(await deps.deploymentState.setPaused(false))) throw badRequest('UnpauseDeploymentFailed', 'Deployment is not currently paused.')
    return c.body(null, 200)
  })
  // Canonical URLs: what functions see as CONVEX_CLOUD_URL/CONVEX_SITE_URL, what stored files'
  // URLs begin with, what get_canonical_urls answers; no `url` puts back the backend's own.
  const updateCanonicalUrl = async (body: Record<string, unknown>) => {
    const destination = body.requestDestination
    if (!REQUEST_DESTINATIONS.includes(destination as RequestDestination)) {
      const given = typeof destination === 'string' ? `unknown variant \`${destination}\`, expected \`convexCloud\` or \`convexSite\`` : destination === undefined ? 'missing field `requestDestination`' : 'invalid type: expected `convexCloud` or `convexSite`'
      throw badRequest('BadJsonBody', `Failed to deserialize the JSON body into the target type: ${destination === undefined ? '' : 'requestDestination: '}${given}`)
    }
    if (body.url !== undefined && body.url !== null && typeof body.url !== 'string') throw badRequest('BadJsonBody', 'Failed to deserialize the JSON body into the target type: url: invalid type: expected a string')
    await deps.canonicalUrls.set(destination as RequestDestination, typeof body.url === 'string' ? body.url : null)
  }
  admin('/api/update_canonical_url', updateCanonicalUrl, 'WriteEnvironmentVariables')
  admin('/api/v1/update_canonical_url', updateCanonicalUrl, 'WriteEnvironmentVariables')
  // A self-hosted deployment has no team or project: Convex answers `{"kind": "selfHosted"}`.
  app.get('/api/v1/deployment_info', (c) => {
    adminAuth(c, deps, true, 'ViewData')
    return c.json({ kind: 'selfHosted' })
  })
  // `npx convex logs`: entries after `cursor`, long-polled (the CLI asks again at once).
  app.get('/api/stream_function_logs', async (c) => {
    adminAuth(c, deps, true, 'ViewLogs')
    const cursor = Number(c.req.query('cursor') ?? '0')
    if (!Number.isFinite(cursor) || cursor < 0) throw badRequest('BadRequest', `Invalid cursor ${JSON.stringify(c.req.query('cursor'))}`)
    return c.json(await deps.runner.log.poll(cursor, LOG_POLL_MS, c.req.raw.signal))
  })
}

/**
 * An upload's `Digest: sha-256=<base64>` header as Convex reads it: the base64 of exactly 32
 * bytes; anything else is a 400 `BadHeader`.
 */
function uploadDigest(header: string | undefined): string | undefined {
  if (header === undefined) return undefined
  const b64 = header.startsWith('sha-256=') ? header.slice('sha-256='.length) : null
  if (b64 === null || !/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0 || Buffer.from(b64, 'base64').length !== 32 || Buffer.from(b64, 'base64').toString('base64') !== b64) {
    throw badRequest('BadHeader', 'Bad header for digest: invalid HTTP header')
  }
  return b64
}

function bindStorageRoutes(app: Hono, deps: HttpDeps): void {
  // Upload: the body of a POST to a URL from ctx.storage.generateUploadUrl().
  app.post('/api/storage/upload', async (c) => {
    const { component } = deps.files.checkUploadToken(c.req.query('token'))
    const declared = Number(c.req.header('content-length') ?? '0')
    // The storage layer enforces the limit while streaming too (chunked uploads declare no length).
    if (declared > MAX_UPLOAD_BYTES) throw new HttpError(413, 'PayloadTooLarge', `The file is larger than ${MAX_UPLOAD_BYTES} bytes`)
    const contentType = c.req.header('content-type') ?? null
    // A declared digest is checked once the body is in: on a mismatch nothing is stored.
    const sha256 = uploadDigest(c.req.header('digest'))
    const body = c.req.raw.body ?? new ReadableStream<Uint8Array>({ start: (controller) => controller.close() })
    const storageId = await deps.files.store(body as unknown as AsyncIterable<Uint8Array>, contentType, sha256, async (id, file) => {
      await deps.db.mutate(async (txn) => {
        await txn.insertSystem(STORAGE_TABLE, { sha256: file.sha256, size: file.size, ...(file.contentType === null ? {} : { contentType: file.contentType }) }, id, component)
      })
    }, component)
    return c.json({ storageId })
  })

  // Download: the file, with its content type, length, digest and Range support (Convex's
  // storage_get: a Range answer has no digest; an empty file has no range to give, so any
  // Range on it answers 200 with no body).
  app.get('/api/storage/:storageId', async (c) => {
    const storageId = c.req.param('storageId')
    if (!deps.files.isStorageIdFormat(storageId)) {
      throw badRequest(
        'InvalidStoragePath',
        `Invalid storage path: "${storageId}". Please use \`storage.getUrl(storageId: Id<"_storage">)\` to generate a valid URL to retrieve files. See https://docs.convex.dev/file-storage/serve-files for more details`,
      )
    }
    // A component's file: its URL names the component (`?component=<id>`, as Convex's).
    const componentParam = c.req.query('component')
    const component = componentParam === undefined ? '' : deps.push.components.byId(componentParam)?.path
    const txn = await deps.db.begin(false)
    let meta
    try {
      meta = component === undefined ? null : await deps.files.metadata(txn, storageId, component)
    } finally {
      deps.db.end(txn)
    }
    if (meta === null) return c.json({ code: 'FileNotFound', message: `File ${storageId} not found` }, 404)
    const headers: Record<string, string> = {
      ...(meta.contentType === null ? {} : { 'content-type': meta.contentType }),
      'cache-control': 'private, max-age=2592000',
      'accept-ranges': 'bytes',
    }
    const rangeHeader = c.req.header('range') ?? ''
    // Only one range is served; several are refused; a header that isn't a byte range is ignored.
    if (/^bytes=[^,]*,/.test(rangeHeader)) return c.body(null, 416)
    const range = /^bytes=(\d*)-(\d*)$/.exec(rangeHeader)
    if (range !== null && (range[1] !== '' || range[2] !== '')) {
      if (meta.size === 0) return c.body(null, 200, { ...headers, 'content-length': '0' })
      const start = range[1] === '' ? Math.max(0, meta.size - Number(range[2])) : Number(range[1])
      const end = range[1] === '' || range[2] === '' ? meta.size - 1 : Math.min(Number(range[2]), meta.size - 1)
      if (start > end || start >= meta.size) {
        return c.body(null, 416, { ...headers, 'content-range': `bytes */${meta.size}` })
      }
      const { stream } = await deps.files.stream(storageId, start, end)
      return c.body(Readable.toWeb(stream) as ReadableStream, 206, { ...headers, 'content-range': `bytes ${start}-${end}/${meta.size}`, 'content-length': String(end - start + 1) })
    }
    const { stream } = await deps.files.stream(storageId)
    return c.body(Readable.toWeb(stream) as ReadableStream, 200, { digest: `sha-256=${meta.sha256}`, ...headers, 'content-length': String(meta.size) })
  })
}

/** The admin routes Convex's dashboard calls besides its system functions. */
function bindDashboardRoutes(app: Hono, deps: HttpDeps): void {
  // The dashboard's sign-in: is this admin key good here, and what may it do.
  app.get('/api/check_admin_key', (c) => {
    const kind = adminKindOf(c, deps, true)!
    // As Convex: a system key is no admin's (BadDeployKey); a full admin key's empty list means
    // every operation, a read-only key's lists what it may do.
    if (kind === 'system') throw forbidden('BadDeployKey', `The provided deploy key was invalid for deployment '${deps.instanceName}'. Double check that the environment this key was generated for matches the desired deployment.`)
    return c.json({ success: true, allowedOps: kind === 'read-only' ? allowedOps(kind) : [], isReadOnly: kind === 'read-only' })
  })
  /** The component a `componentId` names ('' for none: the app). */
  const componentOf = (id: unknown): string => {
    if (id === undefined || id === null) return ''
    const instance = typeof id === 'string' ? deps.push.components.byId(id) : undefined
    if (instance === undefined) throw badRequest('InvalidComponentId', `Invalid component id ${JSON.stringify(id)}`)
    return instance.path
  }
  const scheduler = (component: string) => {
    const s = deps.runner.schedulers?.get(component)
    if (s === undefined) throw badRequest('InvalidComponentId', `Component ${JSON.stringify(component)} has no scheduler`)
    return s
  }
  // The Schedules page: cancel one scheduled function (a finished one is left alone, as Convex).
  app.post('/api/cancel_job', async (c) => {
    adminAuth(c, deps, true, 'WriteData')
    const body = await readJson(c)
    if (typeof body.id !== 'string') throw badRequest('BadJsonBody', 'The body must be {"id": string, "componentId"?: string | null}')
    const s = scheduler(componentOf(body.componentId))
    try {
      await deps.db.mutate((txn) => s.cancel(txn, body.id as string))
    } catch (e) {
      throw badRequest('InvalidArgument', (e as Error).message.replace(/^InvalidArgument: /, ''))
    }
    return c.body(null, 200)
  })
  // Cancel every pending or running scheduled function, or those of one function (`udfPath`).
  app.post('/api/cancel_all_jobs', async (c) => {
    adminAuth(c, deps, true, 'WriteData')
    const body = await readJson(c)
    const component = componentOf(body.componentId)
    const s = scheduler(component)
    const wanted = typeof body.udfPath === 'string' ? body.udfPath.replace(/\.js(?=:|$)/, '') : null
    const wantedComponent = typeof body.componentPath === 'string' ? body.componentPath : component
    await deps.db.mutate(async (txn) => {
      const ids: string[] = []
      for (const doc of await txn.readTable(SCHEDULED_FUNCTIONS, component)) {
        const job = doc as { _id: string; name: string; state: { kind: string }; component?: string }
        if (job.state.kind !== 'pending' && job.state.kind !== 'inProgress') continue
        if (wanted !== null && (job.name.replace(/\.js(?=:|$)/, '') !== wanted || (job.component ?? component) !== wantedComponent)) continue
        ids.push(job._id)
      }
      for (const id of ids) await s.cancel(txn, id)
    })
    return c.body(null, 200)
  })
  // The dashboard's column list: each user table's shape (see shapes.ts), read from its latest documents.
  app.get('/api/shapes2', async (c) => {
    adminAuth(c, deps, true, 'ViewData')
    const component = componentOf(c.req.query('component') ?? null)
    const txn = await deps.db.begin(false)
    try {
      const tableName = (n: number) => deps.db.catalog.tableForId(component, n)?.name
      const out: Record<string, unknown> = {}
      for (const table of deps.db.catalog.tablesOf(component).filter((t) => !t.name.startsWith('_')).sort((a, b) => (a.name < b.name ? -1 : 1))) {
        const index = table.indexes.get(BY_CREATION_TIME)!
        const rows = await txn.snapshot.scan(index.indexId, { lo: Buffer.alloc(0), hi: null }, 'desc', SHAPE_SAMPLE)
        out[table.name] = tableShape(rows.map((r) => JSON.parse(r.doc.json) as Record<string, never>), tableName)
      }
      return c.json(out)
    } finally {
      deps.db.end(txn)
    }
  })
  // The Schedules page's "Delete all": `_scheduled_functions` emptied in one commit (Convex's
  // replace_with_empty_table): nothing pending runs, finished records go; a job already running
  // finishes without a record.
  app.post('/api/delete_scheduled_functions_table', async (c) => {
    adminAuth(c, deps, true, 'WriteData')
    const body = await readJson(c)
    const component = componentOf(body.componentId)
    scheduler(component)
    await deps.db.mutate(async (txn) => {
      for (const job of await txn.readTable(SCHEDULED_FUNCTIONS, component)) await txn.removeSystem(job._id as string, component)
    })
    return c.body(null, 200)
  })
}

