/**
 * @module FunctionRunner: runs a pushed function by path, end to end.
 *
 * Looks the function up, checks visibility and argument validators, runs it in a pooled isolate
 * inside a transaction, checks the return validator, and for mutations commits — re-running the
 * whole mutation on a fresh snapshot when the commit hits an optimistic-concurrency conflict.
 */
import { operationNotPermitted, requireOperation } from '../auth/admin-permissions.ts'
import type { Database } from '../database/database.ts'
import { DatabaseError, OccConflictError, SystemFailure } from '../database/errors.ts'
import { resolveCommitTsText } from '../database/committer.ts'
import { signDeploymentJwt } from '../auth/sign-jwt.ts'
import type { DeploymentSigningKey } from '../../keybroker/jwt-key.ts'
import type { Transaction } from '../database/transaction.ts'
import { danglingWarning, durationWarning, sizeWarning, type RunStats } from './warnings.ts'
import { loneSurrogate } from '../../runtime/json-text.ts'
import { vectorSearch } from '../database/vector.ts'
import { ReadSet } from '../database/read-set.ts'
import { checkArgs, checkResultSize, displayValue, encodeTs, MAX_FUNCTION_ARGS_SIZE, inFieldOrder, inFieldOrderText, jsonToDocumentValue, jsonToValue, MAX_FUNCTION_RESULT_SIZE, validateArgs, validateReturns } from '../values/index.ts'
import type { JSONValue, Value, ValidatorJSON } from '../values/index.ts'
import { SandboxError } from './isolate/isolate-host.ts'
import { REPL_WRAPPERS_SOURCE } from './isolate/runtime-source.ts'
import type { ModuleRecord } from '../storage/persistence.ts'
import type { CallOutcome, CallSpec, IsolateHost, SyscallHandler } from './isolate/isolate-host.ts'
import type { IsolatePool } from './isolate/isolate-pool.ts'
import { NodeActionTimeout } from './node/node-executor.ts'
import { HttpActionStreams } from './http-streams.ts'
import { Staging } from './staging.ts'
import type { FunctionInfo } from './registry.ts'
import { canonicalPath, parseFunctionPath } from './registry.ts'
import { componentId, loadPath, UnresolvedFunction } from './components.ts'
import { PAUSED_ERROR_MESSAGE } from './deployment-state.ts'
import type { Components, FunctionAddress } from './components.ts'
import { actionSyscalls, transactionSyscalls } from './syscalls.ts'
import { systemKey, SystemFunctionError } from './system-functions.ts'
import { Semaphore } from '../util/semaphore.ts'
import type { JobRunner, ScheduledJob, Scheduler, SchedulerSet } from './scheduler.ts'
import { STORAGE_TABLE } from '../files/file-storage.ts'
import type { FileStorage } from '../files/file-storage.ts'
import type { UserIdentity } from '../auth/auth.ts'
import type { SystemContext, SystemFunction } from './system-functions.ts'
import { FunctionLog } from './function-log.ts'
import type { UdfType } from './function-log.ts'
import type { NestedCalls } from './syscalls.ts'
import { errorText, SourceMaps, uncaughtMessage } from './errors.ts'
import type { CallFailure } from './errors.ts'
export type { CallFailure } from './errors.ts'
import { uniqueHexId } from '../util/unique-id.ts'
import { jobKind, schedulingError } from './schedule-checks.ts'
/** A sync-socket mutation's (session, request): the key its outcome is recorded under. */
export interface RequestKey {
  sessionId: string
  requestId: number
}

/**
 * Where sync-socket mutations' outcomes are recorded, in the mutation's own transaction, so a
 * re-send is answered from the record (the sync layer's `SessionRequests`).
 */
export interface MutationRecords {
  find(txn: Transaction, key: RequestKey): Promise<{ value: string; logLines: string[] } | null>
  record(txn: Transaction, key: RequestKey, outcome: { value: string; logLines: string[] }): Promise<void>
}

export type FunctionKind = 'query' | 'mutation' | 'action'

/**
 * Where a call comes from, for admission: execution slots go to the sources in turn, so one that
 * floods (thousands of HTTP requests, a socket's thousands of queries) waits behind itself.
 */
export type Admission = 'http' | 'sync' | 'scheduler'

/** The outcome of a call as the HTTP API and sync protocol report it. */
export type UdfResult = { ok: true; value: string; logLines: string[]; ts: bigint | null } | CallFailure


/**
 * Where a call came from, for `ctx.meta.getRequestMetadata()`; nested calls inherit their
 * caller's (Convex's `RequestContext` and `parent_scheduled_job`).
 */
export interface RequestOrigin {
  requestId: string
  /** The client's address (`x-forwarded-for`'s first, else the connection's); null for system calls. */
  ip: string | null | (() => string | null)
  userAgent: string | null
  /** The JWT a user call was authenticated with; null for admins and anonymous callers. */
  authToken: string | null
  /** The `_scheduled_functions` job a scheduled function (and what it calls) runs for. */
  scheduledFunctionId: string | null
}

function systemOrigin(scheduledFunctionId: string | null = null): RequestOrigin {
  return { requestId: uniqueHexId(), ip: null, userAgent: null, authToken: null, scheduledFunctionId }
}

export interface CallOptions {
  /** Called with an admin key: internal functions are allowed. */
  admin: boolean
  /**
   * The admin key is read-only: as Convex, it may not run internal mutations or actions, nor a
   * component's mutations or actions, nor `_system` ones (403 `OperationNotPermitted`, thrown).
   */
  readOnly?: boolean | undefined
  /** The request the call came in on (a fresh request id and no client details when absent). */
  request?: Partial<Omit<RequestOrigin, 'scheduledFunctionId'>> | undefined
  /** Run a query at this earlier commit timestamp (`/api/query_at_ts`). */
  ts?: bigint | undefined
  /** The user the call runs as (`ctx.auth.getUserIdentity()`); none when absent. */
  identity?: UserIdentity | null | undefined
  /** A sync-socket mutation's (session, request): it runs once, its result recorded with its writes. */
  requestKey?: RequestKey | undefined
  /** Where the call comes from (default: an HTTP request). */
  source?: Admission | undefined
  /** The component whose function is called (admins only; '' or absent: the app's own). */
  componentPath?: string | undefined
  /**
   * The arguments as an HTTP body gave them, positionally (an `args` array of any length, or one
   * value): a pushed function gets them so, as in Convex; absent, it gets `[args]`.
   */
  positional?: JSONValue[] | undefined
}

export interface RunnerLimits {
  /** Wall-clock limit for a query or mutation, in ms. */
  queryMutationTimeoutMs: number
  /** Wall-clock limit for an action, in ms. */
  actionTimeoutMs: number
  /** Largest return value of a function, in bytes of Convex value size (default 16 MiB, as Convex). */
  maxResultBytes?: number
}

/**
 * How one execution in an isolate ended (before the HTTP/sync layer shapes it); `run`, when the
 * isolate reports it, how long it ran against its time limit and what it left unawaited (see
 * CallOutcome), for Convex's warnings.
 */
type ExecOutcome = ({ ok: true; value: string; logLines: string[] } | CallFailure) & { run?: RunStats; quiet?: true }
/** Convex's warnings for a call that ran (in its order), given how it ended. */
type Warnings = (outcome: ExecOutcome) => (string | null)[]

/**
 * Queries and mutations running at once (each holds a warm isolate while it runs), and actions
 * (which may wait on the network for minutes). Others wait their turn; calls made from inside a
 * running function don't, so that a caller can't deadlock on its own callee.
 */
const MAX_CONCURRENT_QUERIES_MUTATIONS = 8
const MAX_CONCURRENT_ACTIONS = 16

/** Re-runs of a mutation that keeps conflicting before giving up (Convex: 4). */
const MAX_OCC_RETRIES = 4
/** Attempts after which a conflicted mutation runs alone on a shared store (see #runMutation). */
const ALONE_AFTER_ATTEMPTS = 2

/** Raised when a mutation conflicted on every attempt; answered as HTTP 503. */
export class OccFailure extends SystemFailure {
  constructor(readonly path: string) {
    super('OptimisticConcurrencyControlFailure', `Documents read from or written to this mutation changed while it was being run and on every subsequent retry. A concurrent call to "${path}" or another mutation changed them. See https://docs.convex.dev/error#1`)
  }
}

/** `messages.js:list` or `messages:list` as Convex shows it in errors: `messages:list`. */
function displayPath(path: string): string {
  return path.replace(/\.js(?=:|$)/, '')
}

/** A function's path as Convex's logs name it: no `.js`, and a default export by its module alone. */
function strippedPath(fn: FunctionInfo): string {
  const module = fn.modulePath.replace(/\.js$/, '')
  return fn.exportName === 'default' ? module : `${module}:${fn.exportName}`
}

const KIND_UDF: Record<FunctionKind, FunctionInfo['udfType']> = { query: 'Query', mutation: 'Mutation', action: 'Action' }
const EXECUTION_UDF: Record<CallSpec['kind'], UdfType> = { query: 'Query', mutation: 'Mutation', action: 'Action', httpAction: 'HttpAction' }

/**
 * What Convex asks of a read-only admin key for a call it may make (public functions of the app
 * need nothing: anyone may call them): internal functions need the RunInternal* operation of their
 * kind, a component's functions ViewData or WriteData. Throws Convex's 403 when refused.
 */
function requireReadOnlyAccess(fn: FunctionInfo, componentPath: string): void {
  const reads = fn.udfType === 'Query'
  if (fn.visibility !== 'public') requireOperation('read-only', reads ? 'RunInternalQueries' : fn.udfType === 'Mutation' ? 'RunInternalMutations' : 'RunInternalActions')
  else if (componentPath !== '') requireOperation('read-only', reads ? 'ViewData' : 'WriteData')
}

/** A user-facing failure before or around the function (not found, bad args, limits). */
class CallError extends Error {
  constructor(
    message: string,
    readonly data?: string,
  ) {
    super(message)
  }
}

/** The storage calls that take a storage id, and the name Convex's errors give each. */
const STORAGE_ID_METHODS: Record<string, string> = {
  '1.0/storageGetUrl': 'storage.getUrl',
  '1.0/storageGetMetadata': 'storage.getMetadata',
  '1.0/storageDelete': 'storage.delete',
  '1.0/storageGet': 'storage.getMetadata',
}

export class FunctionRunner implements JobRunner {
  /** Each component instance's scheduler ('' the app's); set once they exist (they need the runner too). */
  schedulers: SchedulerSet | null = null
  /** `ctx.auth.signJwt`'s key and the deployment URL its tokens name as issuer; null: unavailable. */
  signing: { key: DeploymentSigningKey; cloudUrl: () => string } | null = null
  /** Whether the deployment is paused (deployment-state.ts): the app's functions are not run. */
  paused: () => boolean = () => false
  /** Where sync-socket mutations record their results (exactly once across restarts). */
  sessionRequests: MutationRecords | null = null
  /** `ctx.meta.getDeploymentMetadata()`'s name (the instance name; self-hosted has no region, class s16 as in Convex). */
  deploymentName = 'convex-self-hosted'
  #deploymentJson(): string {
    return JSON.stringify({ name: this.deploymentName, region: null, class: 's16' })
  }
  readonly #quickSlots = new Semaphore(MAX_CONCURRENT_QUERIES_MUTATIONS)
  readonly #actionSlots = new Semaphore(MAX_CONCURRENT_ACTIONS)
  files: FileStorage | null = null
  /** Recent executions, for `npx convex logs`. */
  readonly log = new FunctionLog()
  readonly #sourceMaps = new SourceMaps(() => this.pool.modules)

  /** `ctx.storage` ops; reads and deletes go through `txn` (a fresh one in actions). */
  async #storage(op: string, args: Record<string, any>, txn: Transaction | null, component: string, staging: Staging): Promise<string> {
    const files = this.files
    if (files === null) throw new Error('File storage is not available')
    const inTxn = <T>(body: (t: Transaction) => Promise<T>, write: boolean): Promise<T> =>
      txn !== null ? body(txn) : write ? this.#systemMutation(body) : this.#systemQuery(body)
    // Convex's checks of the id, by the name of the call (`get` reports as getMetadata, as there).
    const method = STORAGE_ID_METHODS[op]
    if (method !== undefined) {
      const kind = files.storageIdKind(args.storageId)
      if (kind === 'invalid') {
        // Convex's message has a line break and indentation in the middle (its source's line wrap).
        throw new Error(`Invalid argument \`storageId\` for \`${method}\`: Invalid storage ID: "${String(args.storageId)}". Storage ID should be an\n                    Id of '_storage' table, or a UUID string.`)
      }
      if (kind === 'otherTable') throw new Error("Invalid storage ID. Storage ID cannot be an ID on any table other than '_storage'.")
    }
    switch (op) {
      case '1.0/storageGenerateUploadUrl':
        return JSON.stringify(files.uploadUrl(component))
      case '1.0/storageGetUrl':
        return JSON.stringify(await inTxn(async (t) => ((await files.metadata(t, args.storageId, component)) === null ? null : files.fileUrl(args.storageId, component === '' ? null : componentId(component))), false))
      case '1.0/storageGetMetadata':
        return JSON.stringify(
          await inTxn(async (t) => {
            const m = await files.metadata(t, args.storageId, component)
            return m === null ? null : { storageId: m.storageId, sha256: Buffer.from(m.sha256, 'base64').toString('hex'), size: m.size, contentType: m.contentType }
          }, false),
        )
      case '1.0/storageDelete':
        await inTxn((t) => files.delete(t, args.storageId, component), true)
        return 'null'
      case '1.0/storageStore': {
        const bytes = staging.take(args.blob ?? '')
        const contentType = typeof args.contentType === 'string' && args.contentType !== '' ? args.contentType : null
        // In a mutation the file's `_storage` document is one of its writes, and its bytes count
        // as written.
        txn?.recordFileBytes('write', bytes.length)
        const id = await files.store(bytes, contentType, args.sha256 ?? undefined, (storageId, f) =>
          inTxn(async (t) => {
            await t.insertSystem(STORAGE_TABLE, { sha256: f.sha256, size: f.size, ...(f.contentType === null ? {} : { contentType: f.contentType }) }, storageId, component)
          }, true),
          component,
        )
        // A mutation whose writes don't land (it throws, conflicts and runs again, or is a nested
        // mutation rolled back) takes its file with it.
        txn?.afterAbort(() => files.discard(id))
        return JSON.stringify(id)
      }
      case '1.0/storageGet': {
        const m = await inTxn((t) => files.metadata(t, args.storageId, component), false)
        if (m === null) return 'null'
        txn?.recordFileBytes('read', m.size)
        return JSON.stringify({ blob: staging.give(await files.read(m.storageId)), contentType: m.contentType })
      }
    }
    throw new Error(`Unknown storage operation ${op}`)
  }

  /** Runs `body` in a read-only transaction of the system's own. */
  async #systemQuery<T>(body: (txn: Transaction) => Promise<T>): Promise<T> {
    const txn = await this.db.begin(false)
    txn.system = true
    try {
      return await body(txn)
    } finally {
      this.db.end(txn)
    }
  }

  constructor(
    readonly db: Database,
    readonly pool: IsolatePool,
    readonly components: () => Components,
    readonly limits: RunnerLimits,
    readonly system: ReadonlyMap<string, SystemFunction> = new Map(),
  ) {}

  /**
   * A `_system/...` function (admin only), answered by the host; undefined if `path` isn't one.
   * Also what its reads covered (null if it read nothing) and the snapshot they were at, so a
   * subscription to it is live like any query's.
   */
  async #system(path: string, kind: FunctionKind | null, args: JSONValue, opts: CallOptions): Promise<{ result: UdfResult; readSet: ReadSet | null; ts: bigint } | undefined> {
    const key = systemKey(path)
    if (key === null) return undefined
    const done = (result: UdfResult) => ({ result, readSet: null, ts: this.db.committer.publishedTs })
    const fn = this.system.get(key)
    if (fn === undefined || !opts.admin) return done(failure(new CallError(missingPublicFunction(displayPath(path), '')), []))
    if (kind !== null && fn.udfType !== KIND_UDF[kind]) return done(failure(new CallError(`Trying to execute ${key} as ${KIND_UDF[kind]}, but it is defined as ${fn.udfType}.`), []))
    if (opts.readOnly && fn.udfType !== 'Query') throw operationNotPermitted('WriteData')
    // As Convex: a system function runs in the component the caller names (`npx convex data --component`).
    const componentPath = opts.componentPath ?? ''
    // An unmounted component's data is still there to look at.
    const known = this.components().instance(componentPath) !== undefined || this.components().unmounted().some((u) => u.path === componentPath)
    if (!known) return done(failure(new CallError('Component path not found'), []))
    let reads: ReadSet | null = null
    let readTs: bigint | null = null
    const ctx: SystemContext = {
      query: (body) =>
        this.#systemQuery(async (txn) => {
          try {
            return await body(txn)
          } finally {
            reads ??= new ReadSet()
            for (const [indexId, intervals] of txn.readSet.intervals) for (const interval of intervals) reads.add(indexId, interval)
            if (readTs === null || txn.snapshotTs < readTs) readTs = txn.snapshotTs
          }
        }),
      mutate: (body, system = false) => this.#systemMutation(body, system),
      componentPath,
      components: this.components(),
      files: this.files,
      scheduler: (component) => this.schedulers?.get(component),
    }
    try {
      const value = await fn.run((args ?? {}) as Record<string, JSONValue>, ctx)
      return { result: { ok: true, value: JSON.stringify(value), logLines: [], ts: this.db.committer.publishedTs }, readSet: reads, ts: readTs ?? this.db.committer.publishedTs }
    } catch (e) {
      if (e instanceof SystemFunctionError) return done(e.data === undefined ? { ok: false, message: e.message, logLines: [] } : { ok: false, message: e.message, data: e.data, logLines: [] })
      return done(failure(e, []))
    }
  }

  /** Finds a function of the requested kind (`null`: any kind) that the caller may call. */
  #resolve(path: string, kind: FunctionKind | null, opts: CallOptions): FunctionInfo {
    // (As Convex's validation: before the path is looked at; the system's functions still run.)
    if (this.paused()) throw new CallError(PAUSED_ERROR_MESSAGE)
    const component = opts.componentPath ?? ''
    if (!this.components().known(component)) throw new CallError('Component path not found')
    const fn = this.components().lookup(component, path)
    const visible = fn !== undefined && fn.udfType !== 'HttpAction' && (fn.visibility === 'public' || opts.admin)
    if (!visible) {
      const shown = displayPath(path)
      // As Convex: a call of a given kind says "public function" (admins included); a call of any
      // kind (`/api/function`, `npx convex run`) says "function".
      const where = component === '' ? '' : ` in '${component}'`
      throw new CallError(kind === null ? `Could not find function for '${shown}'${where}. Did you forget to run \`npx convex dev\`?` : missingPublicFunction(shown, where))
    }
    if (kind !== null && fn.udfType !== KIND_UDF[kind]) {
      throw new CallError(`Trying to execute ${canonicalPath(fn.modulePath, fn.exportName)} as ${KIND_UDF[kind]}, but it is defined as ${fn.udfType}.`)
    }
    return fn
  }

  /**
   * Checks a call's arguments. `fromMutation`: a mutation calls (`ctx.runQuery/runMutation`), and
   * may pass along a `db.vars.commitTs` it holds, as Convex allows.
   */
  #checkArgs(fn: FunctionInfo, args: JSONValue, fromMutation = false): void {
    const [value] = readArgs([args], fromMutation)
    if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof ArrayBuffer) {
      throw new CallError(`ArgumentValidationError: Expected to receive an object as the function's argument. Instead received: ${displayValue(value)}`)
    }
    this.#checkPositional(fn, [value])
  }

  /**
   * Checks arguments given positionally, as Convex's `check_args` does: a validated function
   * takes exactly one object; an unvalidated one takes what it is given.
   */
  #checkPositional(fn: FunctionInfo, values: Value[]): void {
    const refused = checkArgs(canonicalPath(fn.modulePath, fn.exportName), values)
    if (refused !== null) throw new CallError(refused)
    const error = validateArgs(fn.args, values, this.db.validatorContextFor(fn.component ?? ''))
    if (error !== null) throw new CallError(error)
  }

  #checkReturns(fn: FunctionInfo, valueJson: string): void {
    if (fn.returns === null) return
    // (A mutation may return a `db.vars.commitTs` it holds: resolved once it commits.)
    const error = validateReturns(fn.returns, jsonToDocumentValue(JSON.parse(valueJson) as JSONValue), this.db.validatorContextFor(fn.component ?? ''))
    if (error !== null) throw new CallError(error)
  }

  /** Runs `path` as `kind` (or whatever it is, for `/api/function`). Never throws for user errors. */
  async call(kind: FunctionKind | null, path: string, args: JSONValue, opts: CallOptions): Promise<UdfResult> {
    const system = await this.#system(path, kind, args, opts)
    if (system !== undefined) return system.result
    let fn: FunctionInfo
    try {
      fn = this.#resolve(path, kind, opts)
    } catch (e) {
      return failure(e, [])
    }
    if (opts.readOnly) requireReadOnlyAccess(fn, opts.componentPath ?? '')
    try {
      if (opts.positional === undefined) this.#checkArgs(fn, args)
      else this.#checkPositional(fn, readArgs(opts.positional))
    } catch (e) {
      // As in Convex, where the validator runs inside the function: a failed execution, logged.
      const refused = failure(e, [])
      if (!refused.ok) this.log.record({ udfType: fn.udfType as UdfType, identifier: strippedPath(fn), component: fn.component ?? '', startedMs: Date.now(), durationMs: 0, logLines: [], error: errorText(refused) })
      return refused
    }
    const argsJson = opts.positional === undefined ? argsText(args) : JSON.stringify(opts.positional.map((a) => inFieldOrder(a)))
    const who = JSON.stringify(opts.identity ?? null)
    const r = opts.request
    const origin: RequestOrigin = { requestId: r?.requestId ?? uniqueHexId(), ip: r?.ip ?? null, userAgent: r?.userAgent ?? null, authToken: r?.authToken ?? null, scheduledFunctionId: null }
    switch (fn.udfType) {
      case 'Query':
        return this.#runQuery(fn, argsJson, opts.ts, undefined, who, origin, opts.source)
      case 'Mutation':
        return this.#runMutation(fn, argsJson, who, origin, opts.requestKey, opts.source)
      default:
        return this.#runAction(fn, argsJson, undefined, who, false, undefined, origin, opts.source)
    }
  }

  /**
   * Runs a query for a subscription: also reports what it read (null when it never ran, e.g. an
   * unknown function) and the snapshot timestamp it read at.
   */
  async runSubscribedQuery(path: string, args: JSONValue, opts: CallOptions, journal: string | null): Promise<{ result: UdfResult; readSet: ReadSet | null; ts: bigint; journal: string | null }> {
    const system = await this.#system(path, 'query', args, opts)
    if (system !== undefined) return { result: system.result, readSet: system.readSet, ts: system.ts, journal }
    let fn: FunctionInfo
    try {
      fn = this.#resolve(path, 'query', opts)
      this.#checkArgs(fn, args)
    } catch (e) {
      return { result: failure(e, []), readSet: null, ts: await this.db.currentTs(), journal }
    }
    let txn: Transaction | null = null
    const result = await this.#runQuery(fn, argsText(args), undefined, (t) => {
      txn = t
      t.journal = parseJournal(journal)
    }, JSON.stringify(opts.identity ?? null), undefined, 'sync')
    const ran = txn as Transaction | null
    return { result, readSet: ran?.readSet ?? null, ts: ran?.snapshotTs ?? 0n, journal: ran?.pageEnd == null ? journal : JSON.stringify({ endCursor: ran.pageEnd }) }
  }

  async #runQuery(fn: FunctionInfo, argsJson: string, ts?: bigint, observe?: (txn: Transaction) => void, who = 'null', origin = systemOrigin(), source: Admission = 'http'): Promise<UdfResult> {
    // Take the execution slot before the snapshot: a call waiting its turn holds no snapshot.
    const slot = await this.#quickSlots.acquire(source)
    let txn: Transaction
    try {
      // A live query is run again on every commit this process follows: it needn't ask other
      // processes of a shared store for the very latest first (an HTTP query does).
      txn = await this.db.begin(false, ts, { latest: source !== 'sync' })
    } catch (e) {
      slot()
      // Not the function's failure but the backend's (out of retention: HTTP 503, as Convex
      // answers it; the database unreachable: 500): thrown, never shown to the client as its own.
      throw e
    }
    try {
      observe?.(txn)
      const outcome = await this.#inTransaction(fn, 'query', argsJson, txn, who, null, origin)
      return outcome.ok ? { ...outcome, ts: txn.snapshotTs } : outcome
    } catch (e) {
      // A query is not retried: a conflict it meets is the system's failure, as Convex answers it.
      if (e instanceof OccConflictError) throw new OccFailure(displayPath(canonicalPath(fn.modulePath, fn.exportName)))
      throw e
    } finally {
      this.db.end(txn)
      slot()
    }
  }

  /**
   * Runs a mutation optimistically; after a conflict, re-runs it in the retry lane, where retried
   * mutations go one at a time so that contended ones stop invalidating each other.
   */
  async #runMutation(fn: FunctionInfo, argsJson: string, who = 'null', origin = systemOrigin(), requestKey?: RequestKey, source: Admission = 'http'): Promise<UdfResult> {
    return this.#retryingConflicts(async (attempt) => {
      let slot: (() => void) | null = null
      // On a store shared by several processes, a mutation that conflicted twice runs with every
      // process's commits held back (the lane only orders this process's retries): it could
      // otherwise keep losing to another process's stream of first attempts.
      const alone = attempt >= ALONE_AFTER_ATTEMPTS && this.db.persistence.shared !== undefined
      try {
        // The execution slot before the snapshot (see #runQuery), and before the section: one
        // who waits for a slot must not hold every process's commits back meanwhile.
        const acquired = await this.#quickSlots.acquire(source)
        slot = () => {
          slot = null
          acquired()
        }
        const once = () => this.#attemptMutation(fn, argsJson, who, origin, requestKey, () => slot?.())
        return alone ? await this.db.alone(once) : await once()
      } finally {
        slot?.()
      }
    }, () => new OccFailure(displayPath(canonicalPath(fn.modulePath, fn.exportName))))
  }

  /**
   * The one retry policy of mutations (a client's, a scheduled job's): `attempt` runs, and runs
   * again after a conflict, in the retry lane, up to MAX_OCC_RETRIES times; then `exhausted`'s
   * error is thrown.
   */
  async #retryingConflicts<T>(attempt: (n: number) => Promise<T>, exhausted: (e: OccConflictError) => Error): Promise<T> {
    for (let n = 0; ; n++) {
      const release = n === 0 ? null : await this.#retryLane()
      try {
        return await attempt(n)
      } catch (e) {
        if (!(e instanceof OccConflictError)) throw e
        if (n >= MAX_OCC_RETRIES) throw exhausted(e)
      } finally {
        release?.()
      }
    }
  }

  /** One attempt at a mutation: its outcome, or OccConflictError thrown (run it again). */
  async #attemptMutation(fn: FunctionInfo, argsJson: string, who: string, origin: ReturnType<typeof systemOrigin>, requestKey: RequestKey | undefined, execution: () => void): Promise<UdfResult> {
    // The execution slot is freed before the commit.
    let slot: (() => void) | null = execution
    let txn: Transaction
    try {
      txn = await this.db.begin(true)
    } catch (e) {
      slot()
      throw e
    }
    try {
      // Already run (before a reconnect or a restart): answered from its record, run no more.
      const recorded = requestKey === undefined || this.sessionRequests === null ? null : await this.sessionRequests.find(txn, requestKey)
      if (recorded !== null) return { ok: true, value: recorded.value, logLines: recorded.logLines, ts: txn.snapshotTs }
      const outcome = await this.#inTransaction(fn, 'mutation', argsJson, txn, who, null, origin)
      slot()
      slot = null
      if (!outcome.ok) {
        // A failure decided on a stale snapshot is no answer: it runs again (see `confirmReads`).
        await this.db.confirmReads(txn)
        return outcome
      }
      if (requestKey !== undefined && this.sessionRequests !== null) await this.sessionRequests.record(txn, requestKey, outcome)
      const ts = await this.db.commit(txn)
      // What it returned holds the commit's timestamp where it held `db.vars.commitTs`.
      return { ...outcome, value: resolveCommitTsText(outcome.value, ts), ts }
    } catch (e) {
      if (e instanceof OccConflictError || e instanceof SystemFailure) throw e
      return failure(e, [])
    } finally {
      slot?.()
      this.db.end(txn)
    }
  }

  /**
   * `/api/run_test_function` (the dashboard's function runner, `npx convex run --inline-query`):
   * runs the default export of a module the caller sends, a query, read-only, in a scratch isolate
   * beside the deployment's modules, in the app or a component.
   */
  async runTestQuery(source: string, args: JSONValue, componentPath: string): Promise<UdfResult> {
    if (this.components().instance(componentPath) === undefined) throw new Error('Component path not found')
    const definition = componentPath === '' ? '' : (this.components().definition(this.components().instance(componentPath)!.definitionPath)?.prefix ?? '')
    const modulePath = `${definition}testQuery.js`
    const modules: ModuleRecord[] = [
      ...this.pool.modules.values(),
      { path: '_system/repl/wrappers.js', environment: 'isolate', source: REPL_WRAPPERS_SOURCE, sourceMap: null, hash: '' },
      { path: modulePath, environment: 'isolate', source, sourceMap: null, hash: '' },
    ]
    const host = this.pool.scratch(modules)
    const fn: FunctionInfo = { modulePath: 'testQuery.js', exportName: 'default', udfType: 'Query', visibility: 'internal', args: null, returns: null, component: componentPath, prefix: definition }
    const txn = await this.db.begin(false)
    try {
      // Run by an admin, as nobody in particular (`ctx.auth` gives null).
      const outcome = await this.#inTransaction(fn, 'query', argsText(args), txn, 'null', null, systemOrigin(), 0, host)
      return outcome.ok ? { ...outcome, ts: txn.snapshotTs } : outcome
    } finally {
      this.db.end(txn)
      host.dispose()
    }
  }

  /** The scheduler of a component instance's `_scheduled_functions` ('' the app's). */
  async #scheduler(component: string): Promise<Scheduler> {
    // Once started: a push's new components are callable before their schedulers start.
    const scheduler = await this.schedulers?.ready(component)
    if (scheduler === undefined) throw new Error('The scheduler is not running')
    return scheduler
  }

  /**
   * `ctx.scheduler.runAfter/runAt` from a function of `caller`: the job goes into the caller's
   * `_scheduled_functions`, naming the function it runs (which a handle or reference may place in
   * another component).
   */
  async #schedule(txn: Transaction, caller: string, address: FunctionAddress, ts: number, args: JSONValue, parentJobId: string | null): Promise<string> {
    const target = this.#address(caller, address)
    return (await this.#scheduler(caller)).schedule(txn, target, ts, args, parentJobId)
  }

  /** Where an address points, seen from `caller` (a user-facing error if nowhere). */
  #address(caller: string, address: FunctionAddress): { component: string; path: string; publicOnly: boolean } {
    try {
      return this.components().resolve(caller, address)
    } catch (e) {
      if (e instanceof UnresolvedFunction) throw new CallError(e.message)
      throw e
    }
  }

  /** Runs `body` in a mutation transaction of the system's own (Database.mutate's retries). */
  #systemMutation<T>(body: (txn: Transaction) => Promise<T>, system = true): Promise<T> {
    return this.db.mutate(body, { system })
  }

  isPublic(component: string, name: string): boolean {
    return this.components().lookup(component, name)?.visibility === 'public'
  }

  schedulingError(component: string, name: string): string | null {
    return schedulingError(this.components().registry(component), component, name)
  }

  jobKind(component: string, name: string): 'mutation' | 'action' | string {
    return jobKind(this.components().registry(component), component, name)
  }

  /**
   * Runs a scheduled mutation and marks its job, in one transaction: it runs exactly once. As in
   * Convex, the mutation sees its own job `inProgress` (others see it pending until it ends), and
   * a mutation that canceled its own job leaves it `canceled` rather than `success`.
   */
  async runMutationJob(job: ScheduledJob, scheduledFunctionId: string | null): Promise<void> {
    const argsJson = JSON.stringify(inFieldOrder(job.args))
    // The retry policy of every mutation; past the last re-run the conflict is thrown, and the
    // scheduler backs off and tries the job again.
    return this.#retryingConflicts(() => this.#mutationJobAttempt(job, argsJson, scheduledFunctionId), (e) => e)
  }

  async #mutationJobAttempt(job: ScheduledJob, argsJson: string, scheduledFunctionId: string | null): Promise<void> {
    await this.db.mutate(async (txn) => {
      const doc = await txn.read(job.id)
      if ((doc?.state as { kind?: string } | undefined)?.kind !== 'pending') return
      const fail = (error: string) => txn.patchSystem(job.id, { state: { kind: 'failed', error }, completedTime: Date.now() })
      const fn = this.components().lookup(job.component, job.name)
      if (fn === undefined || fn.udfType !== 'Mutation') return void (await fail(this.jobKind(job.component, job.name)))
      try {
        this.#checkArgs(fn, (job.args[0] ?? {}) as JSONValue)
      } catch (e) {
        return void (await fail((e as Error).message))
      }
      await txn.patchSystem(job.id, { state: { kind: 'inProgress' } })
      const rollback = txn.savepoint()
      const outcome = await this.#inTransaction(fn, 'mutation', argsJson, txn, 'null', 'scheduler', systemOrigin(scheduledFunctionId))
      if (!outcome.ok) {
        rollback()
        await fail(errorText(outcome))
      } else if (((await txn.read(job.id))?.state as { kind?: string } | undefined)?.kind === 'inProgress') {
        await txn.patchSystem(job.id, { state: { kind: 'success' }, completedTime: Date.now() })
      }
    }, { system: false, attempts: 1 })
  }

  /** Marks a scheduled action in progress, runs it, then records how it ended: at most once. */
  async runActionJob(job: ScheduledJob, scheduledFunctionId: string | null): Promise<void> {
    const started = await this.#systemMutation(async (txn) => {
      const doc = await txn.read(job.id)
      if ((doc?.state as { kind?: string } | undefined)?.kind !== 'pending') return false
      await txn.patchSystem(job.id, { state: { kind: 'inProgress' } })
      return true
    })
    if (!started) return
    const fn = this.components().lookup(job.component, job.name)
    let outcome: UdfResult
    if (fn === undefined || fn.udfType !== 'Action') outcome = { ok: false, message: this.jobKind(job.component, job.name), logLines: [] }
    else {
      try {
        this.#checkArgs(fn, (job.args[0] ?? {}) as JSONValue)
        outcome = await this.#runAction(fn, JSON.stringify(inFieldOrder(job.args)), undefined, 'null', false, undefined, systemOrigin(scheduledFunctionId), 'scheduler')
      } catch (e) {
        outcome = failure(e, [])
      }
    }
    await this.#systemMutation(async (txn) => {
      const doc = await txn.read(job.id)
      if ((doc?.state as { kind?: string } | undefined)?.kind !== 'inProgress') return
      await txn.patchSystem(job.id, { state: outcome.ok ? { kind: 'success' } : { kind: 'failed', error: errorText(outcome) }, completedTime: Date.now() })
    })
  }

  #lane: Promise<void> = Promise.resolve()

  /** Waits for the retry lane; resolves with the function that frees it. */
  #retryLane(): Promise<() => void> {
    let free!: () => void
    const mine = new Promise<void>((resolve) => (free = resolve))
    const turn = this.#lane.then(() => free)
    this.#lane = this.#lane.then(() => mine)
    return turn
  }

  /**
   * Runs a query or mutation body in `txn` (shared by top-level and nested `runQuery`/`runMutation`);
   * `depth`: how many such calls down it is (0 at the top); `nowMs`: its `Date.now()` (a nested
   * call's is its caller's, as in Convex).
   */
  async #inTransaction(fn: FunctionInfo, kind: 'query' | 'mutation', argsJson: string, txn: Transaction, who: string, admission: Admission | null, origin = systemOrigin(), depth = 0, host?: IsolateHost, nowMs = Date.now()): Promise<Exclude<UdfResult, { ts: bigint | null }> | { ok: true; value: string; logLines: string[] }> {
    const name = canonicalPath(fn.modulePath, fn.exportName)
    const nested = depth > 0
    const component = fn.component ?? ''
    const nestedCalls: NestedCalls = {
      runUdf: async (requested, address, nestedArgs, limits) => {
        const nestedKind = requested === 'snapshotQuery' ? 'query' : requested
        const callee = this.#resolveNested(component, address, nestedKind)
        this.#checkArgs(callee, nestedArgs, kind === 'mutation')
        // As Convex's MAX_REACTOR_CALL_DEPTH: at most 8 calls down (an infinite recursion ends here).
        if (depth >= MAX_CALL_DEPTH) throw new CallError('Cross component call depth limit exceeded. Do you have an infinite loop in your app?')
        // A nested mutation is a sub-transaction: if it fails, its writes are rolled back.
        const rollback = nestedKind === 'mutation' ? txn.savepoint() : null
        // A snapshot query reads the mutation's starting snapshot, and leaves no reads behind.
        const inner = requested === 'snapshotQuery' ? txn.snapshotView() : txn
        // `transactionLimits` hold for the nested call only.
        const outerLimits = limits === undefined ? null : inner.applyBudget(limits)
        let result
        try {
          // The user crosses into a component here (same transaction), not from an action.
          result = await this.#inTransaction(callee, nestedKind, argsText(nestedArgs), inner, who, null, origin, depth + 1, undefined, nowMs)
        } finally {
          if (outerLimits !== null) inner.limits = outerLimits
        }
        if (!result.ok) rollback?.()
        // Its log lines join the caller's where it returns, as Convex's sub-function lines do.
        if (!result.ok) throw { ...nestedError(result), logLines: result.logLines }
        return { value: result.value, logLines: result.logLines }
      },
      runFromAction: () => Promise.reject(new Error('Only actions can call actions')),
      schedule: (target, ts, args) => this.#schedule(txn, component, target, ts, args, origin.scheduledFunctionId),
      cancel: async (id) => (await this.#scheduler(component)).cancel(txn, id),
      storage: (op, args, staging) => this.#storage(op, args, txn, component, staging),
      functionHandle: (address) => this.#functionHandle(component, address),
    }
    const meta = { deploymentJson: this.#deploymentJson(), origin, component, nested, kind, signJwt: this.signing === null ? undefined : this.#signJwt }
    // A call near a limit says so in its log, as Convex's (once, at the top; in its order: the
    // arguments, the transaction's limits and largest documents, the return value, the time).
    const warnings: Warnings | undefined = nested
      ? undefined
      : (outcome) => [
          sizeWarning('Large size of the function arguments', argsJson, MAX_FUNCTION_ARGS_SIZE),
          ...txn.limitWarnings(),
          outcome.ok ? sizeWarning('Large size of the function return value', outcome.value, this.limits.maxResultBytes ?? MAX_FUNCTION_RESULT_SIZE) : null,
          durationWarning(outcome.run),
        ]
    // A nested call is no execution of its own in the function log, as in Convex: its lines are
    // its caller's (see runUdf above).
    return this.#execute(fn, kind, argsJson, transactionSyscalls(txn, nestedCalls, name, who, meta), encodeTs(txn.snapshotTs), undefined, admission, host, warnings, !nested, nowMs)
  }

  /** `ctx.auth.signJwt` from a mutation of `component`: its issuer is the deployment, or the component in it. */
  readonly #signJwt = (component: string, request: Record<string, unknown>): string => {
    const { key, cloudUrl } = this.signing!
    return signDeploymentJwt(key, component === '' ? cloudUrl() : `${cloudUrl()}/components/${component}`, request, Date.now())
  }

  /**
   * The function a nested call names, from a function of `caller`: any function of its own
   * component or one a handle names, only public ones of a child component.
   */
  #resolveNested(caller: string, address: FunctionAddress, kind: FunctionKind, fromAction = false): FunctionInfo {
    const target = this.#address(caller, address)
    if (target.publicOnly) {
      // As Convex: a child exports only its public functions; an action resolves before it calls.
      const fn = this.components().lookup(target.component, target.path)
      if (fn === undefined || fn.visibility !== 'public' || fn.udfType === 'HttpAction') {
        const { modulePath, exportName } = parseFunctionPath(target.path)
        const attrs = [...modulePath.replace(/\.js$/, '').split('/'), exportName]
        const name = target.component.slice(target.component.lastIndexOf('/') + 1)
        throw new CallError(fromAction ? `Couldn't resolve ${name}.${attrs.join('.')}` : `Child component ${name} does not export [${attrs.map((a) => `PathComponent(${JSON.stringify(a)})`).join(', ')}]`)
      }
    }
    return this.#resolve(target.path, kind, { admin: true, componentPath: target.component })
  }

  /** `createFunctionHandle(ref)` from a function of `caller`. */
  #functionHandle(caller: string, address: FunctionAddress): string {
    const target = this.#address(caller, address)
    const fn = this.components().lookup(target.component, target.path)
    // As Convex: no such function (or a child's internal one) has no handle.
    if (fn === undefined || fn.udfType === 'HttpAction' || (target.publicOnly && fn.visibility !== 'public')) throw new CallError('Function handle not found')
    return this.components().handleFor(fn)
  }

  /**
   * Serves an HTTP request through the pushed `http.js` router (on isolated-vm's own thread, like
   * actions). A request no route matches gets Convex's 404 text. `who` is the caller's identity JSON
   * (from a `Bearer` token), as for other calls.
   */
  async runHttpAction(request: HttpRequest, who = 'null', requestId = uniqueHexId(), client: Partial<Omit<RequestOrigin, 'scheduledFunctionId' | 'requestId'>> = {}): Promise<HttpResponse> {
    const path = new URL(request.url).pathname
    // Which router serves it: the app's, or a component's mounted under a prefix (whose router
    // matches on the rest of the path; the request keeps its full URL, as in Convex).
    const target = this.components().routeHttp(path, request.method, (prefix) => this.pool.modules.has(`${prefix}http.js`))
    if (target === null) return textResponse(404, 'This Convex deployment does not have HTTP actions enabled.')
    if (this.paused()) return httpActionFailure(failure(new CallError(PAUSED_ERROR_MESSAGE), []) as CallFailure, requestId)
    // A component's HTTP action runs as nobody (as in Convex).
    if (target.component !== '') who = 'null'
    const streamedRequest = request.body instanceof ReadableStream ? request.body : null
    // Answered at the response head when the action streams its body, else when it finishes.
    return new Promise<HttpResponse>((resolve) => {
      const streams = new HttpActionStreams(streamedRequest, (head, body) => resolve({ ...head, body }), request.signal)
      const spec = {
        url: request.url,
        method: request.method,
        headers: request.headers,
        body: request.body instanceof Buffer ? streams.staging.give(request.body) : null,
        ...(streamedRequest !== null ? { streamed: true } : {}),
        ...(target.routedPath !== path ? { routedPath: target.routedPath } : {}),
      }
      const origin: RequestOrigin = { requestId, ip: client.ip ?? null, userAgent: client.userAgent ?? null, authToken: client.authToken ?? null, scheduledFunctionId: null }
      void this.#runAction({ modulePath: 'http.js', exportName: 'default', udfType: 'HttpAction', visibility: null, args: null, returns: null, component: target.component, prefix: target.prefix }, '[]', spec, who, false, streams, origin).then((outcome) => {
        // (A whole response is read before the rest of what was staged is let go.)
        const whole = streams.streaming || !outcome.ok ? null : streams.response(outcome.value)
        streams.finish()
        if (streams.streaming) return
        resolve(whole ?? httpActionFailure(outcome as CallFailure, requestId))
      }, (e: unknown) => {
        streams.finish()
        resolve(textResponse(500, e instanceof Error ? e.message : String(e)))
      })
    })
  }

  async #runAction(fn: FunctionInfo, argsJson: string, request?: CallSpec['request'], who = 'null', fromAction = false, http?: HttpActionStreams, origin = systemOrigin(), source: Admission = 'http'): Promise<UdfResult> {
    const name = canonicalPath(fn.modulePath, fn.exportName)
    const component = fn.component ?? ''
    const nested: NestedCalls = {
      runUdf: () => Promise.reject(new Error('runUdf is not available in actions')),
      runFromAction: async (kind, address, calleeArgs) => {
        const callee = this.#resolveNested(component, address, kind, true)
        this.#checkArgs(callee, calleeArgs)
        const calleeArgsJson = argsText(calleeArgs)
        const calleeWho = calleeIdentity(fn, callee, who)
        const result =
          kind === 'query'
            ? await this.#runQuery(callee, calleeArgsJson, undefined, undefined, calleeWho, origin, source)
            : kind === 'mutation'
              ? await this.#runMutation(callee, calleeArgsJson, calleeWho, origin, undefined, source)
              : await this.#runAction(callee, calleeArgsJson, undefined, calleeWho, true, undefined, origin, source)
        return unwrapNested(result)
      },
      schedule: (target, ts, args) => this.#systemMutation((txn) => this.#schedule(txn, component, target, ts, args, origin.scheduledFunctionId)),
      cancel: async (id) => {
        const scheduler = await this.#scheduler(component)
        return this.#systemMutation((txn) => scheduler.cancel(txn, id))
      },
      storage: (op, args, staging) => this.#storage(op, args, null, component, staging),
      vectorSearch: (request) => vectorSearch(this.db, request, component),
      functionHandle: (address) => this.#functionHandle(component, address),
    }
    // A Node action's worker takes bytes whole (it has no isolate's memory limit).
    const staging = http?.staging ?? new Staging(this.pool.modules.get(loadPath(fn))?.environment === 'node')
    const handler = actionSyscalls(nested, name, who, http, { deploymentJson: this.#deploymentJson(), origin, component }, staging)
    try {
      // Convex's warnings for an action: its arguments, what it left unawaited, its time, its
      // return value. An HTTP action's: its response body (a whole one is sent now), then the
      // middle two.
      const warnings: Warnings = (outcome) => {
        if (http !== undefined && outcome.ok && !http.streaming) http.response(outcome.value)
        return [
          ...(http?.logLines() ?? []),
          request === undefined ? sizeWarning('Large size of the action arguments', argsJson, MAX_FUNCTION_ARGS_SIZE) : null,
          danglingWarning(outcome.run),
          durationWarning(outcome.run),
          request === undefined && outcome.ok ? sizeWarning('Large size of the action return value', outcome.value, this.limits.maxResultBytes ?? MAX_FUNCTION_RESULT_SIZE) : null,
        ]
      }
      const outcome = await this.#execute(fn, request === undefined ? 'action' : 'httpAction', argsJson, handler, null, request, fromAction ? null : source, undefined, warnings)
      return outcome.ok ? { ...outcome, ts: null } : outcome
    } finally {
      handler.close?.()
    }
  }

  /** `nowMs`: the time `Date.now()` gives a query or mutation (a nested one gets its caller's). */
  async #execute(fn: FunctionInfo, kind: CallSpec['kind'], argsJson: string, handler: SyscallHandler, snapshotTs: string | null, request: CallSpec['request'] | undefined, admission: Admission | null, host?: IsolateHost, warnings?: Warnings, logged = true, nowMs = Date.now()): Promise<ExecOutcome> {
    // Admission: a bounded number of calls run at once (each holds an isolate), taken by source in
    // turn. Nested calls (`admission` null) go ahead: their caller holds a slot and waits for them,
    // or they took theirs before opening their snapshot (#runQuery, #runMutation).
    const release = admission === null ? null : await (kind === 'action' || kind === 'httpAction' ? this.#actionSlots : this.#quickSlots).acquire(admission)
    const startedMs = Date.now()
    const started = performance.now()
    let outcome: ExecOutcome
    try {
      outcome = await this.#executeInIsolate(fn, kind, argsJson, handler, snapshotTs, request, host, nowMs)
    } finally {
      release?.()
    }
    // (A failure Convex reports as the system's rather than the function's has no log at all.)
    if (warnings !== undefined && outcome.quiet !== true) for (const w of warnings(outcome)) if (w !== null) outcome.logLines.push(w)
    delete outcome.run
    delete outcome.quiet
    if (!logged) return outcome
    this.log.record({
      udfType: EXECUTION_UDF[kind],
      // As Convex's log stream: the stripped path (`lib:fn`), and the component apart.
      identifier: request === undefined ? strippedPath(fn) : `${request.method} ${new URL(request.url).pathname}`,
      component: fn.component ?? '',
      startedMs,
      durationMs: performance.now() - started,
      logLines: outcome.logLines,
      error: outcome.ok ? null : errorText(outcome),
    })
    return outcome
  }

  async #executeInIsolate(fn: FunctionInfo, kind: CallSpec['kind'], argsJson: string, handler: SyscallHandler, snapshotTs: string | null, request: CallSpec['request'] | undefined, given: IsolateHost | undefined, nowMs: number): Promise<ExecOutcome> {
    const spec: CallSpec = { kind, modulePath: loadPath(fn), root: fn.prefix ?? '', exportName: fn.exportName, argsJson, seed: Math.floor(Math.random() * 2 ** 31), nowMs, snapshotTs, requestId: '', ...(request === undefined ? {} : { request }) }
    const timeoutMs = kind === 'action' || kind === 'httpAction' ? this.limits.actionTimeoutMs : this.limits.queryMutationTimeoutMs
    let outcome: CallOutcome
    // A component sees none of the deployment's environment variables: only what its parent
    // passes it (`app.use(c, { env })`) and the system's.
    const env = (fn.component ?? '') === '' ? this.pool.env : this.components().environment(fn.component!, this.pool.env)
    if (this.pool.modules.get(spec.modulePath)?.environment === 'node') {
      try {
        outcome = await this.pool.node.run(this.pool.modules, env, spec, handler, timeoutMs)
      } catch (e) {
        return failure(e, e instanceof NodeActionTimeout ? e.logLines : [])
      }
    } else {
      const host: IsolateHost = given ?? this.pool.acquire()
      try {
        host.setEnv(env)
        outcome = await host.run(spec, handler, timeoutMs)
      } catch (e) {
        if (e instanceof SandboxError && e.fatal) host.dispose()
        // The system's failure, not the function's: the caller's (a retry, or 503 / a closed socket).
        if (e instanceof OccConflictError || e instanceof SystemFailure) throw e
        return failure(e, [])
      } finally {
        if (given === undefined) this.pool.release(host)
      }
    }
    const run: RunStats | undefined = outcome.elapsedMs === undefined ? undefined : { elapsedMs: outcome.elapsedMs, limitMs: timeoutMs, dangling: outcome.dangling ?? [] }
    const ran = (o: ExecOutcome): ExecOutcome => (run === undefined ? o : Object.assign(o, { run }))
    if (!outcome.ok) {
      // As Convex: `Uncaught <name>: <message>` (a ConvexError subclass keeps its own name), then
      // the stack mapped to the app's sources.
      const failed: CallFailure = { ok: false, message: outcome.asIs === true ? (outcome.message ?? '') : uncaughtMessage(outcome.name, outcome.message), logLines: outcome.logLines }
      const frames = outcome.mappedFrames ?? this.#sourceMaps.frames(outcome.stack, outcome.frames)
      if (frames !== null) failed.frames = frames
      if (outcome.data !== undefined) failed.data = outcome.data
      return ran(failed)
    }
    // As Convex: a return value that isn't JSON Convex reads (a lone surrogate) fails the call
    // (FunctionReturnInvalidJson, a user error whose log lines are dropped); then its size is
    // checked, then its validator (an HTTP action's response is not a return value).
    const invalidJson = kind === 'httpAction' ? null : loneSurrogate(outcome.value!)
    if (invalidJson !== null) return { ok: false, message: `Function ${canonicalPath(fn.modulePath, fn.exportName)} failed. Could not parse return value as json: ${invalidJson}`, logLines: [], quiet: true }
    const tooLarge = kind === 'httpAction' ? null : checkResultSize(canonicalPath(fn.modulePath, fn.exportName), outcome.value!, this.limits.maxResultBytes ?? MAX_FUNCTION_RESULT_SIZE)
    if (tooLarge !== null) return ran({ ok: false, message: tooLarge, logLines: outcome.logLines })
    try {
      this.#checkReturns(fn, outcome.value!)
    } catch (e) {
      return ran(failure(e, outcome.logLines))
    }
    // A return value passes with its objects' fields in order, as in Convex, up to 16 KiB: ordering
    // means parsing the text, and larger results are mostly documents, stored in order already.
    const value = outcome.value!
    return ran({ ok: true, value: kind === 'httpAction' || value.length > ORDERED_RESULT_MAX ? value : inFieldOrderText(value), logLines: outcome.logLines })
  }
}

/** How many `runQuery`/`runMutation` calls down a query or mutation may call (Convex's MAX_REACTOR_CALL_DEPTH). */
const MAX_CALL_DEPTH = 8

/** The longest return value (JSON text) put in field order (see #executeInIsolate). */
const ORDERED_RESULT_MAX = 16 * 1024

/**
 * A call's arguments read as Convex values (`fromMutation`: a `db.vars.commitTs` a mutation holds
 * may be among them); one that isn't a value fails the call as an argument validation error.
 */
function readArgs(args: readonly JSONValue[], fromMutation = false): Value[] {
  try {
    return args.map((a) => (fromMutation ? jsonToDocumentValue(a) : jsonToValue(a)))
  } catch (e) {
    throw new CallError(`ArgumentValidationError: ${(e as Error).message}`)
  }
}

/** A call's arguments as the function gets them: one object, its fields in order as in Convex. */
function argsText(args: JSONValue): string {
  return JSON.stringify([inFieldOrder(args)])
}

export interface HttpRequest {
  url: string
  method: string
  headers: [string, string][]
  /** The whole body, or a stream of it (handed to the action as it reads). */
  body: Buffer | ReadableStream<Uint8Array> | null
  /** Aborts when the client goes away before the response is done. */
  signal?: AbortSignal
}

export interface HttpResponse {
  status: number
  statusText: string
  headers: [string, string][]
  /** The whole body, or a stream the action is still producing. */
  body: Buffer | ReadableStream<Uint8Array>
}

/**
 * An HTTP action that threw, answered as Convex does: 500 with JSON naming the request, the
 * error's text with its frames (`trace`) and a ConvexError's data.
 */
function httpActionFailure(f: CallFailure, requestId: string): HttpResponse {
  const body: Record<string, unknown> = { code: `[Request ID: ${requestId}] Server Error: ${f.message}`, trace: `${errorText(f)}\n` }
  if (f.data !== undefined) body.data = JSON.parse(f.data) as JSONValue
  return { status: 500, statusText: '', headers: [['content-type', 'application/json']], body: Buffer.from(JSON.stringify(body)) }
}

/**
 * Convex's error for a call of a function that doesn't exist or isn't public (validation.rs
 * `missing_or_internal_error`), with the hint its backends gave for years (`… \`npx convex dev\`
 * or \`npx convex deploy\`?`), which apps' and libraries' tests look for; Convex's backends since
 * June 2026 say only "…for 'x'.", which this text begins with.
 */
function missingPublicFunction(shown: string, where: string): string {
  return `Could not find public function for '${shown}'${where}. Did you forget to run \`npx convex dev\` or \`npx convex deploy\`?`
}

function textResponse(status: number, text: string): HttpResponse {
  return { status, statusText: '', headers: [['content-type', 'text/plain; charset=utf-8']], body: Buffer.from(text) }
}

/** A journal is ours to define: `{"endCursor": string | null}`; anything else is ignored. */
function parseJournal(journal: string | null): { endCursor: string | null } | null {
  if (journal === null) return null
  try {
    const parsed = JSON.parse(journal) as { endCursor?: unknown }
    return typeof parsed?.endCursor === 'string' ? { endCursor: parsed.endCursor } : null
  } catch {
    return null
  }
}

/**
 * The identity a call from an action runs with: as in Convex, a call into another component runs
 * as nobody (queries and mutations, sharing their caller's transaction, pass the user on).
 */
function calleeIdentity(caller: FunctionInfo, callee: FunctionInfo, who: string): string {
  return (caller.component ?? '') === (callee.component ?? '') ? who : 'null'
}

function failure(e: unknown, logLines: string[]): CallFailure {
  if (e instanceof CallError) return e.data === undefined ? { ok: false, message: e.message, logLines } : { ok: false, message: e.message, data: e.data, logLines }
  if (e instanceof SandboxError || e instanceof DatabaseError) return { ok: false, message: e.message, logLines }
  return { ok: false, message: e instanceof Error ? e.message : String(e), logLines }
}

/** A nested call's result for the calling isolate: the value, or a rejection the library rethrows. */
function unwrapNested(result: { ok: true; value: string } | CallFailure): string {
  if (result.ok) return result.value
  throw nestedError(result)
}

/**
 * A nested call's failure as the caller sees it, as Convex shows it: the callee's error as a JsError
 * prints (its "Uncaught …" line, each frame, every line ended), which the caller's own failure
 * prefixes and frames again.
 */
function nestedError(result: CallFailure): { message: string; data?: JSONValue } {
  const err: { message: string; data?: JSONValue } = { message: `${errorText(result)}\n` }
  if (result.data !== undefined) err.data = JSON.parse(result.data) as JSONValue
  return err
}

export type { ValidatorJSON }
