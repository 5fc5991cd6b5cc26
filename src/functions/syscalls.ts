/**
 * @module The host side of the syscall ABI: what `Convex.syscall`/`asyncSyscall` ops do, per kind
 * of function. Ops take and return JSON text (Convex-encoded values inside).
 */
import type { HttpStreamOps } from './http-streams.ts'
import { Staging } from './staging.ts'
import { randomBytes } from 'node:crypto'
import { subtleCall } from './subtle.ts'
import { LIMITS, LIMIT_NAMES } from '../database/transaction.ts'
import { DatabaseError, notAllowedInUdf, OccConflictError, SystemFailure } from '../database/errors.ts'
import type { Transaction, TransactionLimits } from '../database/transaction.ts'
import type { QueryStream, SerializedQuery } from '../database/query.ts'
import type { JSONValue } from '../values/index.ts'
import { valueToJson } from '../values/index.ts'
import type { NestedResult, SyscallHandler } from './isolate/isolate-host.ts'
import type { RequestOrigin } from './function-runner.ts'
import type { FunctionAddress } from './components.ts'

/**
 * Rows a query stream hands the sandbox per `queryStreamNext`: one at first (a `first()`, a loop
 * that stops at its first row: no row read for nothing), then more as the function keeps taking.
 */
const STREAM_BATCHES = [1, 16, 256]

/** Nested function calls made from inside a function (`ctx.runQuery` etc.). */
export interface NestedCalls {
  /** `ctx.runQuery`/`ctx.runMutation`; `limits`: the `transactionLimits` option, resolved. */
  runUdf(kind: 'query' | 'snapshotQuery' | 'mutation', address: FunctionAddress, args: JSONValue, limits?: TransactionLimits): Promise<NestedResult>
  runFromAction(kind: 'query' | 'mutation' | 'action', address: FunctionAddress, args: JSONValue): Promise<string>
  /** `ctx.scheduler.runAfter/runAt`: the new job's id. */
  schedule(address: FunctionAddress, tsSeconds: number, args: JSONValue): Promise<string>
  /** `createFunctionHandle(ref)`: the handle. */
  functionHandle(address: FunctionAddress): string
  cancel(id: string): Promise<void>
  /** `ctx.storage` operations other than reading metadata within the transaction (bytes crossing through `staging`). */
  storage(op: string, args: Record<string, any>, staging: Staging): Promise<string>
  /** `ctx.vectorSearch` (actions only): the syscall's request, answered with `{results}`. */
  vectorSearch?(request: unknown): Promise<unknown>
}

/**
 * The caller's identity JSON for `ctx.auth.getUserIdentity()`. An HTTP action whose request carried
 * a token that failed verification runs anyway, but asking for its identity fails with why.
 */
export function authFailureIdentity(message: string): string {
  return JSON.stringify({ $authFailure: message })
}

function userIdentity(identityJson: string): string {
  if (identityJson.startsWith('{"$authFailure":')) throw new Error((JSON.parse(identityJson) as { $authFailure: string }).$authFailure)
  return identityJson
}

/** As Convex words it (the `convex` package recognizes "Unknown async operation", e.g. for getTransactionMetrics in an action). */
function unknown(op: string, isAsync: boolean): Error {
  return new Error(`${isAsync ? 'Unknown async operation' : 'Unknown operation'} ${op}`)
}

/**
 * The `transactionLimits` option of a nested `runQuery`/`runMutation`, read as Convex's backend
 * reads it (serde, into `TransactionLimits`): fields left out take the default limits, unknown
 * fields are ignored, anything but a non-negative integer is refused with serde's words.
 */
export function parseTransactionLimits(raw: unknown): TransactionLimits | undefined {
  if (raw === undefined || raw === null) return undefined
  const invalid = (what: string) => new Error(`Invalid arguments for \`runUdf\`: ${what}`)
  if (typeof raw !== 'object' || Array.isArray(raw)) throw invalid(`invalid type: ${serdeUnexpected(raw)}, expected struct TransactionLimits`)
  const limits = { ...LIMITS }
  for (const name of LIMIT_NAMES) {
    const v = (raw as Record<string, unknown>)[name]
    if (v === undefined) continue
    if (typeof v === 'number' && Number.isInteger(v) && v < 0) throw invalid(`invalid value: integer \`${v}\`, expected usize`)
    if (typeof v !== 'number' || !Number.isInteger(v) || v >= 1e21) throw invalid(`invalid type: ${serdeUnexpected(v)}, expected usize`)
    limits[name] = v
  }
  return limits
}

/** How serde names an unexpected JSON value (`serde::de::Unexpected`). */
function serdeUnexpected(v: unknown): string {
  if (v === null) return 'null'
  if (typeof v === 'boolean') return `boolean \`${v}\``
  if (typeof v === 'string') return `string ${JSON.stringify(v)}`
  if (typeof v === 'number') return Number.isInteger(v) && v < 1e21 ? `integer \`${v}\`` : `floating point \`${v}\``
  return Array.isArray(v) ? 'sequence' : 'map'
}

let nextCallId = 0

/** What `ctx.meta` reports besides the function's name: the deployment, and the request's origin. */
export interface FunctionMeta {
  deploymentJson: string
  origin: RequestOrigin
  /** The component instance the function runs in ('' for the app). */
  component: string
  /** Called by another function in the same transaction (`ctx.runQuery`/`runMutation`). */
  nested?: boolean
  /** The function's kind: a query called from a mutation shares its (writable) transaction. */
  kind?: 'query' | 'mutation'
  /** `ctx.auth.signJwt` (mutations) of a function of `component`: the signed token, or a SignJwtError. */
  signJwt?: (component: string, request: Record<string, unknown>) => string
}

/** The function a syscall's arguments name (`name`, `reference` or `functionHandle`, as the `convex` package sends them). */
function addressOf(args: Record<string, any>): FunctionAddress {
  return { name: args.name, reference: args.reference, functionHandle: args.functionHandle }
}

/** `ctx.meta.getFunctionMetadata()`'s name: the path without `.js`, and no `:default` (Convex's `UdfPath::strip`). */
function functionMetadata(functionName: string, componentPath: string): string {
  const i = functionName.lastIndexOf(':')
  const module = functionName.slice(0, i).replace(/\.js$/, '')
  const name = functionName.slice(i + 1)
  return JSON.stringify({ name: name === 'default' ? module : `${module}:${name}`, componentPath })
}

function requestMetadata(origin: RequestOrigin): string {
  const { userAgent, requestId, scheduledFunctionId, authToken } = origin
  return JSON.stringify({ ip: typeof origin.ip === 'function' ? origin.ip() : origin.ip, userAgent, requestId, scheduledFunctionId, authToken })
}

/** Syscalls of queries and mutations: database access within one transaction. */
export function transactionSyscalls(txn: Transaction, nested: NestedCalls, functionName: string, identityJson: string, meta: FunctionMeta): SyscallHandler {
  // Stream ids restart at 0 in every call; nested calls share `txn`, so keys carry a call id.
  const call = nextCallId++
  const key = (queryId: unknown) => `${call}:${String(queryId)}`
  const component = meta.component
  const pagination = { paginated: false, nested: meta.nested === true }
  /** Each stream's last batch (how many rows it held) and how many batches it gave: see queryCleanup. */
  const lastBatches = new Map<string, { stream: QueryStream; rows: number; batches: number }>()
  // (A mutation's `storage.store` and `storage.get` move bytes.)
  const staging = new Staging()
  return {
    sync(op, argsJson) {
      const args = JSON.parse(argsJson) as Record<string, any>
      switch (op) {
        case '1.0/db/normalizeId':
          return JSON.stringify({ id: txn.normalizeId(args.table, args.idString, component) })
        case '1.0/getSnapshotTs':
          return JSON.stringify(valueToJson(txn.snapshotTs))
        // Convex's syscalls for testing how clients meet the system's failures (its
        // js-integration-tests): a conflict (retried, then OptimisticConcurrencyControlFailure)
        // and an overload. Either ends the call, caught or not.
        case 'throwOcc':
          throw new OccConflictError()
        case 'throwOverloaded':
          throw new SystemFailure('Busy', "I'm a bit busy.")
        case 'concave/notAllowed':
          throw notAllowedInUdf(['setTimeout', 'setInterval', 'fetch()'].includes(args.what) ? args.what : 'this')
      }
      throw unknown(op, false)
    },
    async async(op, argsJson) {
      if (op === 'concave/subtle') return subtleCall(argsJson, staging)
      const args = JSON.parse(argsJson) as Record<string, any>
      const staged = staging.op(op, args)
      if (staged !== undefined) return staged
      switch (op) {
        case '1.0/get':
          return txn.get(args.id, args.table, args.isSystem === true, component)
        case '1.0/queryStreamNext': {
          // The first read carries what `1.0/queryStream` was given (`open`: `{query, version}`).
          const stream = txn.stream(key(args.queryId)) ?? txn.openStream(key(args.queryId), (args.open?.query ?? args.query) as SerializedQuery, component)
          const batches = lastBatches.get(key(args.queryId))?.batches ?? 0
          const batch = await stream.nextBatch(STREAM_BATCHES[Math.min(batches, STREAM_BATCHES.length - 1)]!)
          // A stream read to its end and wholly taken has nothing to give back.
          if (batch.done && batch.rows.length === 0) lastBatches.delete(key(args.queryId))
          else lastBatches.set(key(args.queryId), { stream, rows: batch.rows.length, batches: batches + 1 })
          if (batch.done) txn.closeStream(key(args.queryId))
          return JSON.stringify(batch)
        }
        case '1.0/queryCleanup': {
          // `unread`: how many rows of the last batch the function never took (runtime/index.ts);
          // what the stream read past the ones it took is given back.
          const last = lastBatches.get(key(args.queryId))
          if (last !== undefined) last.stream.giveBack(last.rows - Math.min(typeof args.unread === 'number' ? args.unread : 0, last.rows))
          lastBatches.delete(key(args.queryId))
          txn.closeStream(key(args.queryId))
          return 'true'
        }
        case '1.0/queryPage':
          return txn.page(args as Parameters<Transaction['page']>[0], component, pagination)
        case '1.0/insert':
          return JSON.stringify({ _id: await txn.insert(args.table, args.value, component) })
        case '1.0/shallowMerge':
          return txn.patch(args.id, args.value, args.table, component)
        case '1.0/replace':
          return txn.replace(args.id, args.value, args.table, component)
        case '1.0/remove':
          return txn.remove(args.id, args.table, component)
        case '1.0/getUserIdentity':
          return userIdentity(identityJson)
        case '1.0/getFunctionMetadata':
          return functionMetadata(functionName, component)
        case '1.0/createFunctionHandle':
          return JSON.stringify(nested.functionHandle(addressOf(args)))
        case '1.0/runUdf': {
          const limits = parseTransactionLimits(args.transactionLimits)
          if (args.udfType === 'mutation' && !txn.mutable) throw new Error('Cannot call a Mutation function from a Query function')
          // `useStaleSnapshot` (convex ≥ 1.37): mutations only, as Convex's run_udf checks.
          if (args.udfType === 'snapshotQuery' && !txn.mutable) throw new Error('Cannot call a SnapshotQuery function from a Query function')
          const kind = args.udfType === 'mutation' ? 'mutation' : args.udfType === 'snapshotQuery' ? 'snapshotQuery' : 'query'
          return nested.runUdf(kind, addressOf(args), args.args as JSONValue, limits)
        }
        case '1.0/count':
          // `db.query(table).count()` (not in the convex package's types yet, but served by Convex).
          if (typeof args.table !== 'string') throw new DatabaseError('Invalid argument `table` for `db.count`: expected a string')
          return JSON.stringify(await txn.count(args.table, component))
        case '1.0/signJwt':
          if (!txn.mutable || meta.kind === 'query' || meta.signJwt === undefined) throw unknown(op, true)
          return JSON.stringify(meta.signJwt(component, args))
        case '1.0/getTransactionMetrics':
          return JSON.stringify(txn.metrics())
        case '1.0/auditLog':
          // `log.audit()` (convex/server): Convex sends the line to its log streams; Concave has
          // none, so it is taken as Convex takes it and kept nowhere.
          if (!('body' in args)) throw new DatabaseError('Invalid arguments for `auditLog`: missing field `body`')
          return 'null'
        case '1.0/getDeploymentMetadata':
          return meta.deploymentJson
        case '1.0/getRequestMetadata':
          if (!txn.mutable) throw new Error('Cannot get request metadata in a Query')
          return requestMetadata(meta.origin)
        case '1.0/storageGetUrl':
        case '1.0/storageGetMetadata':
        case '1.0/storageGenerateUploadUrl':
        case '1.0/storageDelete':
        case '1.0/storageStore':
        case '1.0/storageGet':
          // Writing calls need a mutation's transaction; `store` and `get` (convex ≥ 1.48) a
          // mutation itself, not a query it runs.
          if (op === '1.0/storageStore' || op === '1.0/storageGet' ? !txn.mutable || meta.kind === 'query' : !txn.mutable && op !== '1.0/storageGetUrl' && op !== '1.0/storageGetMetadata') {
            throw new Error(`${op.slice(4)} is not available in queries`)
          }
          return nested.storage(op, args, staging)
        case '1.0/schedule':
          if (!txn.mutable) throw new Error('Queries cannot schedule functions')
          return JSON.stringify(await nested.schedule(addressOf(args), args.ts, args.args as JSONValue))
        case '1.0/cancel_job':
          if (!txn.mutable) throw new Error('Queries cannot cancel scheduled functions')
          await nested.cancel(args.id)
          return 'null'
      }
      throw unknown(op, true)
    },
  }
}

/** Syscalls of actions: calls into queries, mutations and other actions. */
export function actionSyscalls(nested: NestedCalls, functionName: string, identityJson: string, http: HttpStreamOps | undefined, meta: FunctionMeta, staging: Staging): SyscallHandler {
  const fetches = new FetchBodies()
  return {
    close: () => fetches.closeAll(),
    sync(op, argsJson) {
      // Actions get real randomness (queries and mutations use their seeded generator).
      if (op === 'concave/random') return JSON.stringify(randomBytes(Math.min(65_536, Number(JSON.parse(argsJson).n) || 0)).toString('base64'))
      throw unknown(op, false)
    },
    async async(op, argsJson) {
      if (op === 'concave/subtle') return subtleCall(argsJson, staging)
      const args = JSON.parse(argsJson) as Record<string, any>
      const staged = staging.op(op, args)
      if (staged !== undefined) return staged
      switch (op) {
        case '1.0/actions/query':
          return nested.runFromAction('query', addressOf(args), args.args as JSONValue)
        case '1.0/actions/mutation':
          return nested.runFromAction('mutation', addressOf(args), args.args as JSONValue)
        case '1.0/actions/action':
          return nested.runFromAction('action', addressOf(args), args.args as JSONValue)
        case '1.0/createFunctionHandle':
          return JSON.stringify(nested.functionHandle(addressOf(args)))
        case '1.0/storageGetUrl':
        case '1.0/storageGetMetadata':
        case '1.0/storageGenerateUploadUrl':
        case '1.0/storageDelete':
        case '1.0/storageStore':
        case '1.0/storageGet':
          return nested.storage(op, args, staging)
        case '1.0/actions/schedule':
          return JSON.stringify(await nested.schedule(addressOf(args), args.ts, args.args as JSONValue))
        case '1.0/actions/cancel_job':
          await nested.cancel(args.id)
          return 'null'
        case '1.0/actions/vectorSearch':
          if (nested.vectorSearch === undefined) break
          return JSON.stringify(await nested.vectorSearch(args))
        case '1.0/auditLog':
          throw new Error('Audit logging is not yet supported in actions')
        case '1.0/createServiceToken': {
          // `getServiceToken("ai-gateway")`: Convex's self-hosted answer (the gateway is a cloud service).
          if (!('service' in args)) throw new Error('Invalid arguments for `createServiceToken`: missing field `service`')
          if (args.service !== 'ai-gateway') throw new Error(`Invalid arguments for \`createServiceToken\`: unknown variant \`${String(args.service)}\`, expected \`ai-gateway\``)
          throw new Error('`getServiceToken("ai-gateway")` isn\'t available on this deployment because the AI gateway is a Convex Cloud service. Deploy to Convex Cloud, or call your model provider directly with your own API key.')
        }
        case '1.0/getServiceUrl': {
          // `getServiceUrl("ai-gateway")` (convex ≥ 1.48), the token's pair: the same answer.
          if (!('service' in args)) throw new Error('Invalid arguments for `getServiceUrl`: missing field `service`')
          if (args.service !== 'ai-gateway') throw new Error(`Invalid arguments for \`getServiceUrl\`: unknown variant \`${String(args.service)}\`, expected \`ai-gateway\``)
          throw new Error('`getServiceUrl("ai-gateway")` isn\'t available on this deployment because the AI gateway is a Convex Cloud service. Deploy to Convex Cloud, or call your model provider directly with your own API key.')
        }
        case '1.0/getUserIdentity':
          return userIdentity(identityJson)
        case '1.0/getFunctionMetadata':
          return functionMetadata(functionName, meta.component)
        case '1.0/getDeploymentMetadata':
          return meta.deploymentJson
        case '1.0/getRequestMetadata':
          return requestMetadata(meta.origin)
        case 'concave/fetch':
          return actionFetch({ ...(args as FetchArgs), body: args.body === null || args.body === undefined ? null : staging.take(args.body) }, fetches)
        case 'concave/fetchRead':
          return fetches.read(Number(args.stream))
        case 'concave/fetchCancel':
          fetches.cancel(Number(args.stream))
          return 'null'
        case 'concave/sleep':
          await new Promise((resolve) => setTimeout(resolve, Math.min(Number(args.ms) || 0, 2 ** 31 - 1)))
          return 'null'
        case 'concave/httpRequestRead':
        case 'concave/httpRequestAborted':
        case 'concave/httpResponseHead':
        case 'concave/httpResponseWrite':
          if (http === undefined) break
          if (op === 'concave/httpRequestAborted') {
            await http.aborted()
            return 'null'
          }
          if (op === 'concave/httpRequestRead') {
            const chunk = await http.readRequest()
            return JSON.stringify({ chunk: chunk === null ? null : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('base64') })
          }
          if (op === 'concave/httpResponseHead') {
            http.head({ status: Number(args.status), statusText: String(args.statusText ?? ''), headers: args.headers as [string, string][] })
            return 'null'
          }
          await http.write(staging.take(args.chunk))
          return 'null'
      }
      throw unknown(op, true)
    },
  }
}

interface FetchArgs {
  url: string
  method: string
  headers: [string, string][]
  body: Buffer | null
}

/** Largest response body an action's fetch may read (Convex's limit is on the order of MBs too). */
const MAX_FETCH_RESPONSE = 64 * 1024 * 1024

/** `fetch` from an action, performed by the host; a network failure rejects like a browser's fetch. */
/**
 * The response bodies of an action's fetches, handed to the sandbox chunk by chunk as it reads
 * them (so a streamed upstream, such as a model's tokens, can be passed on as it arrives), with
 * the size limit applied per body as it streams. Whatever the action left unread is cancelled
 * when it ends.
 */
class FetchBodies {
  readonly #open = new Map<number, { reader: ReadableStreamDefaultReader<Uint8Array>; size: number }>()
  #next = 1
  #closed = false

  add(body: ReadableStream<Uint8Array> | null): number {
    const id = this.#next++
    // A fetch that answers after its action ended (aborted, not awaited, timed out) is let go.
    if (this.#closed) void body?.cancel().catch(() => {})
    else if (body !== null) this.#open.set(id, { reader: body.getReader(), size: 0 })
    return id
  }

  async read(id: number): Promise<string> {
    const stream = this.#open.get(id)
    if (stream === undefined) return '{"chunk":null}'
    const { done, value } = await stream.reader.read()
    if (done) {
      this.#open.delete(id)
      return '{"chunk":null}'
    }
    stream.size += value.byteLength
    if (stream.size > MAX_FETCH_RESPONSE) {
      this.cancel(id)
      throw new Error(`fetch response body is too large (limit ${MAX_FETCH_RESPONSE} bytes)`)
    }
    return JSON.stringify({ chunk: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') })
  }

  cancel(id: number): void {
    void this.#open.get(id)?.reader.cancel().catch(() => {})
    this.#open.delete(id)
  }

  closeAll(): void {
    this.#closed = true
    for (const id of [...this.#open.keys()]) this.cancel(id)
  }
}

async function actionFetch(args: FetchArgs, bodies: FetchBodies): Promise<string> {
  let response: Response
  try {
    response = await fetch(args.url, {
      method: args.method,
      headers: args.headers,
      body: args.body ?? undefined,
      redirect: 'follow',
    })
  } catch (e) {
    const cause = (e as { cause?: { message?: string } }).cause?.message
    throw new Error(`TypeError: fetch failed${cause === undefined ? '' : `: ${cause}`}`)
  }
  // The body is read as the action reads it (concave/fetchRead).
  return JSON.stringify({ status: response.status, statusText: response.statusText, headers: [...response.headers], stream: bodies.add(response.body), url: response.url })
}
