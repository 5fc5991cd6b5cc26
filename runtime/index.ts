/**
 * @module The sandbox side of the call protocol. Evaluated once per isolate context.
 *
 * The host drives every call from its main thread with synchronous entries into the isolate; the
 * isolate reports back through two host callbacks while an entry runs (an entry returns only once
 * the microtasks it caused have run, so everything a step leads to is reported by then):
 *
 *   host                                   isolate
 *   ──────────────────────────────────────────────────────────────────────────
 *   __concave.start(call…) ──────────────▶ invoke the export; user code runs until it
 *                         ◀─────────────── awaits syscalls: queueHostOp(id, op, argsJson) each
 *   (host runs the ops: reads, writes, nested calls)
 *   __concave.step(id, ok, payload, …) ──▶ resolve/reject the awaiting promises; user code
 *                         ◀─────────────── runs on: more queueHostOp(…), or reportDone(value, rest)
 *   … until the call settles
 *
 * Text that is JSON already (the arguments, syscall results, the return value) crosses as its own
 * argument, never inside another JSON document: that would escape and re-parse it on each side.
 *
 * A call owns the context while it runs: the host never interleaves two calls in one isolate, so
 * the per-call state below (seeded Math.random, frozen Date, log lines) is simply global.
 */
import { TextDecoderPolyfill, TextEncoderPolyfill, atob, btoa, nameGlobalClasses } from './polyfills.ts'
import { formatLogArgs, formatLogMessages, logLine } from './inspect.ts'
import { DYNAMIC_IMPORT, DYNAMIC_IMPORT_OP } from './protocol.ts'
import type { BytesRef, CallSpec } from './protocol.ts'
import { analyzeModule } from './analyze.ts'
import { describeError } from './outcome.ts'
import { callerFileName, captureFrames } from './frames.ts'
import type { Outcome } from './outcome.ts'
import { base64ToBytes, HeadersPolyfill, makeFetch, receiveBytes, RequestPolyfill, ResponsePolyfill, sendBytes } from './web.ts'
import { BlobPolyfill, FilePolyfill } from './blob.ts'
import { ReadableStreamPolyfill, TextDecoderStreamPolyfill, TextEncoderStreamPolyfill, TransformStreamPolyfill, WritableStreamPolyfill, WritableStreamWriter } from './streams.ts'
import { AbortControllerPolyfill, AbortSignalPolyfill, CustomEventPolyfill, DOMExceptionPolyfill, EventPolyfill, EventTargetPolyfill, resetCallListeners, setEventClock, setExceptionReporter } from './dom.ts'
import { FormDataPolyfill } from './form-data.ts'
import { structuredClone } from './clone.ts'
import { URLPolyfill, URLSearchParamsPolyfill } from './url.ts'
import { CryptoKeyPolyfill, makeSubtle } from './subtle.ts'
import { installWasm } from './wasm.ts'
import { callEnded, callHostSync, endCall, queueHostOp, reportDone, reportLate, resetEnded, throwUncatchable } from './host.ts'
import { loneSurrogate } from './json-text.ts'
import type { Wasm } from './wasm.ts'

type Pending = { resolve: (v: string) => void; reject: (e: unknown) => void }
/** A call's kind, or the module-evaluation phase before any call. */
type Kind = CallSpec['kind'] | 'import'
type RuntimeCall = Omit<CallSpec, 'kind'> & { kind: Kind }


const g = globalThis as any
const modules = new Map<string, Record<string, any>>()
const pending = new Map<number, Pending>()
let nextSyscallId = 1
let logLines: string[] = []
/** The query or mutation that returned but still runs what it left behind (see `start`). */
let returned: RuntimeCall | null = null
/** Lines a call may log (Convex's MAX_LOG_LINES); the last place is the overflow's line. */
const MAX_LOG_LINES = 256
/** Log lines the current call has used (its own and its nested calls'), the overflow's included. */
let logCount = 0

const LOG_OVERFLOW = `[ERROR] Log overflow (maximum ${MAX_LOG_LINES}). Remaining log lines omitted.`

/** A console line of the running call: reported as it comes once the call has returned. */
function emit(line: string): void {
  if (returned !== null && returned === call) reportLate(line)
  else logLines.push(line)
}

function log(line: string): void {
  // (A call that was ended goes on only until the host stops it: it logs no more.)
  if (callEnded()) return
  // As Convex: past 255 lines one more says so, and the rest are dropped.
  if (logCount > MAX_LOG_LINES - 1) return
  emit(logCount === MAX_LOG_LINES - 1 ? LOG_OVERFLOW : line)
  logCount++
}

/**
 * A nested query's or mutation's lines, after the lines so far, as Convex keeps them: each counts
 * as one of the call's lines (its LogLines' length is its lines flattened); those that don't fit
 * are cut, and the overflow's line follows them.
 */
function logNested(lines: readonly string[]): void {
  if (logCount > MAX_LOG_LINES - 1) return
  const room = MAX_LOG_LINES - 1 - logCount
  if (lines.length > room) {
    for (const line of lines.slice(0, room)) emit(line)
    emit(LOG_OVERFLOW)
    logCount = MAX_LOG_LINES
  } else {
    for (const line of lines) emit(line)
    logCount += lines.length
  }
}
let call: RuntimeCall | null = null
let missingEnv: Set<string> | null = null

// ── Streams: the host answers `1.0/queryStreamNext` in batches; we hand out one row at a time. ──
interface Stream {
  /** What `1.0/queryStream` was called with (`{query, version}` as JSON), sent on the first read as it is. */
  openArgs: string
  buffer: string[]
  done: boolean
  opened: boolean
}
const streams = new Map<number, Stream>()
let nextStreamId = 0

// ── Determinism: seeded PRNG (xorshift128+ style via mulberry32) and a frozen clock. ──
let rngState = 0
function random(): number {
  rngState = (rngState + 0x6d2b79f5) | 0
  let t = rngState
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}
Math.random = random

const RealDate = Date
let frozenNow: number | null = 0
function now(): number {
  return frozenNow ?? RealDate.now()
}
/**
 * `Date` at the frozen clock: `new Date()` is now, `Date()` (called, not constructed) is now as
 * a string, as the standard has it; other arguments as the real `Date`. Dates are the real
 * `Date`'s (its prototype, statics and `instanceof`).
 */
const ConvexDate = function Date(this: unknown, ...args: any[]): unknown {
  if (new.target === undefined) return new RealDate(now()).toString()
  return Reflect.construct(RealDate, args.length === 0 ? [now()] : args, new.target)
} as unknown as DateConstructor
Object.setPrototypeOf(ConvexDate, RealDate)
Object.defineProperty(ConvexDate, 'prototype', { value: RealDate.prototype, writable: false })
Object.defineProperty(ConvexDate, 'length', { value: 7 })
Object.defineProperty(ConvexDate, 'name', { value: 'Date' })
Object.defineProperty(ConvexDate, 'now', { value: now, writable: true, configurable: true })
Object.defineProperty(RealDate.prototype, 'constructor', { value: ConvexDate, writable: true, configurable: true })
g.Date = ConvexDate

/**
 * `performance`, as Convex's runtime has it: `timeOrigin` is when the modules were pushed (here:
 * loaded by this process), `now()` is 0 while modules are imported, then the call's start time
 * past the origin: fixed for the whole of a query (queries are deterministic), and advancing
 * with real time in mutations and actions.
 */
let timeOrigin = 0
let callStartedAt = 0
let lastPerformanceNow = 0
function performanceNow(): number {
  if (call === null || call.kind === 'import') return 0
  const atStart = call.nowMs - timeOrigin
  if (call.kind === 'query') return atStart
  lastPerformanceNow = Math.max(lastPerformanceNow, atStart + (RealDate.now() - callStartedAt))
  return lastPerformanceNow
}
g.performance = {
  now: performanceNow,
  get timeOrigin() {
    return timeOrigin
  },
  toJSON() {
    return { timeOrigin }
  },
  get [Symbol.toStringTag]() {
    return 'Performance'
  },
}
setEventClock(performanceNow)

// ── Console: every call collects its own log lines. ──
function logger(level: string) {
  return (...args: unknown[]) => {
    log(logLine(level, formatLogMessages(args)))
  }
}
// console.time labels of the current call, timed by the real clock (as Convex's isolate does,
// even in queries and mutations, whose Date is frozen); their lines are not inspected.
let consoleTimers = new Map<string, number>()
const timerLabel = (label: unknown) => (label === undefined ? 'default' : label === null ? 'null' : String(label))
g.console = {
  log: logger('LOG'),
  info: logger('INFO'),
  warn: logger('WARN'),
  error: logger('ERROR'),
  debug: logger('DEBUG'),
  // The message, then where console.trace was called from (as Convex appends the stack: a line
  // break, then each frame on a line of its own).
  trace(...args: unknown[]): void {
    const stack = String(new Error().stack ?? '')
    log(`[LOG] ${formatLogArgs(args)} \n${stack === '' ? '' : `${stack}\n`}`)
  },
  time(label?: unknown): void {
    const name = timerLabel(label)
    if (consoleTimers.has(name)) log(`[WARN] Timer '${name}' already exists`)
    else consoleTimers.set(name, RealDate.now())
  },
  timeLog(label?: unknown, ...args: unknown[]): void {
    const name = timerLabel(label)
    const start = consoleTimers.get(name)
    if (start === undefined) log(`[WARN] Timer '${name}' does not exist`)
    else log(`[INFO] ${name}: ${RealDate.now() - start}ms${args.length === 0 ? '' : ` ${formatLogArgs(args)}`}`)
  },
  timeEnd(label?: unknown): void {
    const name = timerLabel(label)
    const start = consoleTimers.get(name)
    if (start === undefined) return void log(`[WARN] Timer '${name}' does not exist`)
    consoleTimers.delete(name)
    log(`[INFO] ${name}: ${RealDate.now() - start}ms`)
  },
}

g.TextEncoder = TextEncoderPolyfill
g.TextDecoder = TextDecoderPolyfill
g.atob = atob
g.btoa = btoa
g.self = g
g.structuredClone = structuredClone
/** The environment variables `process.env` reads (setEnv). */
let currentEnv: Record<string, string> = {}
/**
 * `process.env` as Convex's: a proxy over an empty object whose reads look the variable up, so it
 * lists nothing (`Object.keys`, `JSON.stringify`, `in`: no secret reaches a log by accident), logs
 * as `[process.env]`, and keeps no value written to it. Each call gets its own `process` (see
 * resetCall), so what one call does to it is gone at the next.
 */
function freshProcess(): { env: Record<string, string> } {
  return {
    env: new Proxy({} as Record<string, string>, {
      get(target, key, receiver) {
        if (typeof key !== 'string') return Reflect.get(target, key, receiver)
        if (Object.prototype.hasOwnProperty.call(currentEnv, key)) return currentEnv[key]
        // Reads of unset variables are noted while tracking is on (push checks auth.config.ts with it).
        missingEnv?.add(key)
        return key === 'inspect' ? () => '[process.env]' : undefined
      },
    }),
  }
}
g.process = freshProcess()
g.CryptoKey ??= CryptoKeyPolyfill
g.crypto = {
  subtle: makeSubtle((op, argsJson) => hostAsync(op, argsJson)),
  getRandomValues<T extends ArrayBufferView>(arr: T): T {
    // Convex's checks, with its messages.
    if (arguments.length < 1) throw new TypeError("Failed to execute 'getRandomValues' on 'Crypto': 1 argument required, but only 0 present.")
    if (arr instanceof Float32Array || arr instanceof Float64Array) throw new DOMExceptionPolyfill('The provided ArrayBufferView is not an integer array type', 'TypeMismatchError')
    const bytes = new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength)
    if (call?.kind === 'action' || call?.kind === 'httpAction') {
      bytes.set(base64ToBytes(JSON.parse(callHostSync('concave/random', JSON.stringify({ n: bytes.length }))) as string))
      return arr
    }
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(random() * 256)
    return arr
  },
  randomUUID(): string {
    const b = new Uint8Array(16)
    g.crypto.getRandomValues(b)
    b[6] = (b[6]! & 0x0f) | 0x40
    b[8] = (b[8]! & 0x3f) | 0x80
    const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
  },
}
g.Headers ??= HeadersPolyfill
g.Response ??= ResponsePolyfill
g.Request ??= RequestPolyfill
g.Blob ??= BlobPolyfill
g.File ??= FilePolyfill
g.FormData ??= FormDataPolyfill
g.ReadableStream ??= ReadableStreamPolyfill
g.WritableStream ??= WritableStreamPolyfill
g.WritableStreamDefaultWriter ??= WritableStreamWriter
g.TransformStream ??= TransformStreamPolyfill
g.TextEncoderStream ??= TextEncoderStreamPolyfill
g.TextDecoderStream ??= TextDecoderStreamPolyfill
g.DOMException ??= DOMExceptionPolyfill
g.Event ??= EventPolyfill
g.CustomEvent ??= CustomEventPolyfill
g.EventTarget ??= EventTargetPolyfill
// The global object is an EventTarget, as in Convex (and browsers).
for (const method of ['addEventListener', 'removeEventListener', 'dispatchEvent'] as const) g[method] ??= EventTargetPolyfill.prototype[method]
// A listener that throws doesn't stop the others: its error is logged, as a browser reports it.
setExceptionReporter((e) => g.console.error(e))
g.URL ??= URLPolyfill
g.URLSearchParams ??= URLSearchParamsPolyfill

// As in Convex (and a browser's main thread), a function may not block on Atomics.wait.
if (typeof g.Atomics === 'object') {
  g.Atomics.wait = function wait(): never {
    throw new TypeError('Atomics.wait cannot be called in this context')
  }
}

/**
 * No code from strings, as in Convex (its isolates disallow it; isolated-vm allows strings shorter
 * than an eighth of the memory limit): `eval` and the constructors of every kind of function throw
 * V8's EvalError. `instanceof Function` and the like keep working (each stand-in has the
 * original's prototype).
 */
function refuseCodeFromStrings(): never {
  throw new EvalError('Code generation from strings disallowed for this context')
}
g.eval = { eval: (): never => refuseCodeFromStrings() }.eval
for (const proto of [Function.prototype, Object.getPrototypeOf(async function () {}), Object.getPrototypeOf(function* () {}), Object.getPrototypeOf(async function* () {})] as { constructor: unknown }[]) {
  const name = (proto.constructor as { name: string }).name
  const refused = { [name]: function (): never { return refuseCodeFromStrings() } }[name]!
  Object.defineProperty(refused, 'prototype', { value: proto })
  Object.defineProperty(proto, 'constructor', { value: refused, writable: true, configurable: true })
  if (proto === Function.prototype) g.Function = refused
}

const cancelledTimers = new Set<number>()
let nextTimer = 1
const actionFetch = makeFetch((op, argsJson) => hostAsync(op, argsJson))
/** Whether the running call may use timers and fetch (an action's; a query or mutation must stay deterministic). */
const inAction = (): boolean => call?.kind === 'action' || call?.kind === 'httpAction'
/** Their use in a query or mutation ends the call: the host's error for it can't be caught, as in Convex. */
const onlyInActions = (what: string): never => endCall('concave/notAllowed', JSON.stringify({ what }))
/**
 * Timers and fetch, one implementation for every kind of call: each use asks what kind the
 * running call is (a module may keep a reference taken when it loaded, or in another call).
 */
const timersAndFetch = {
  setTimeout: (fn: (...a: unknown[]) => void, ms = 0, ...args: unknown[]) => {
    if (!inAction()) return onlyInActions('setTimeout')
    const id = nextTimer++
    void hostAsync('concave/sleep', JSON.stringify({ ms: Math.max(0, Number(ms) || 0) })).then(() => {
      if (!cancelledTimers.delete(id)) fn(...args)
    })
    return id
  },
  setInterval: (fn: (...a: unknown[]) => void, ms = 0, ...args: unknown[]) => {
    if (!inAction()) return onlyInActions('setInterval')
    const id = nextTimer++
    const wait = JSON.stringify({ ms: Math.max(0, Number(ms) || 0) })
    const tick = (): void =>
      void hostAsync('concave/sleep', wait).then(() => {
        if (cancelledTimers.delete(id)) return
        fn(...args)
        tick()
      })
    tick()
    return id
  },
  fetch: async (...args: Parameters<typeof actionFetch>) => (inAction() ? actionFetch(...args) : onlyInActions('fetch()')),
}
g.clearTimeout = (id: number) => void cancelledTimers.add(id)
g.clearInterval = (id: number) => void cancelledTimers.add(id)
g.AbortController ??= AbortControllerPolyfill
g.AbortSignal ??= AbortSignalPolyfill
installWasm((g as unknown as { WebAssembly: Wasm }).WebAssembly)
nameGlobalClasses(g, [
  'TextEncoder', 'TextDecoder', 'CryptoKey', 'Headers', 'Response', 'Request', 'Blob', 'File', 'FormData', 'ReadableStream', 'WritableStream',
  'WritableStreamDefaultWriter', 'TransformStream', 'TextEncoderStream', 'TextDecoderStream', 'DOMException', 'Event', 'CustomEvent', 'EventTarget',
  'URL', 'URLSearchParams', 'AbortController', 'AbortSignal',
])

function installGlobals(): void {
  // Most calls find them in place already: reading is cheaper than writing globals, and a call
  // that replaced one still gets it put back.
  if (g.setTimeout === timersAndFetch.setTimeout && g.setInterval === timersAndFetch.setInterval && g.fetch === timersAndFetch.fetch) return
  Object.assign(g, timersAndFetch)
}
installGlobals()
// Errors keep the frames their stack was built from, for the host to print as Convex does. A
// `stack` is what Convex makes it: those frames mapped to the app's sources (no `Name: message`
// line; the runtime's and the harness's frames left out), by the host.
const stackText = (_error: unknown, _sites: unknown, frames: unknown): string => callHostSync('error/stack', JSON.stringify(frames))
captureFrames(stackText)

/**
 * A synchronous syscall. Its error is made again here: one that crossed from the host carries
 * isolated-vm's own stack (the host's files), where Convex's has the app's frames.
 */
function hostSync(op: string, argsJson: string): string {
  try {
    return callHostSync(op, argsJson)
  } catch (e) {
    const made = e instanceof TypeError ? new TypeError((e as Error).message) : new Error(e instanceof Error ? e.message : String(e))
    throw made
  }
}

function hostAsync(op: string, argsJson: string): Promise<string> {
  // Nothing answers async syscalls while a module is being imported (outside any call).
  if (call === null || call.kind === 'import') return Promise.reject(new Error(`${op} can only be used while a Convex function runs, not at a module's top level`))
  return new Promise<string>((resolve, reject) => {
    const id = nextSyscallId++
    pending.set(id, { resolve, reject })
    queueHostOp(id, op, argsJson)
  })
}

/**
 * A module's `import(…)` (the host rewrote its keyword to this: see protocol.ts). As Convex's: an
 * action or HTTP action loads the module (resolved from the importing module's path) and gets its
 * namespace; a query, a mutation, or a module's top level, is refused with Convex's TypeError.
 */
function dynamicImport(specifier: unknown): Promise<unknown> {
  const file = callerFileName(dynamicImport)
  if (call === null || (call.kind !== 'action' && call.kind !== 'httpAction')) return Promise.reject(new TypeError('dynamic module import unsupported'))
  let text: string
  try {
    // (As V8 makes a specifier a string: a symbol is a TypeError.)
    text = `${specifier as string}`
  } catch (e) {
    return Promise.reject(e)
  }
  const referrer = file !== null && file.startsWith('convex:/') ? file.slice('convex:/'.length) : ''
  return hostAsync(DYNAMIC_IMPORT_OP, JSON.stringify({ specifier: text, referrer })).then(
    (path) => modules.get(JSON.parse(path) as string),
    (e: { message: string }) => {
      throw new Error(e.message)
    },
  )
}
Object.defineProperty(g, DYNAMIC_IMPORT, { value: dynamicImport })

async function streamNext(argsJson: string): Promise<string> {
  const { queryId } = JSON.parse(argsJson) as { queryId: number }
  const s = streams.get(queryId)
  if (s === undefined) throw new Error(`Query stream ${queryId} is not open`)
  if (s.buffer.length === 0 && !s.done) {
    const batch = JSON.parse(await hostAsync('1.0/queryStreamNext', s.opened ? `{"queryId":${queryId}}` : `{"queryId":${queryId},"open":${s.openArgs}}`)) as { rows: string[]; done: boolean }
    s.opened = true
    s.buffer = batch.rows
    s.done = batch.done
  }
  const row = s.buffer.shift()
  if (row === undefined) return '{"value":null,"done":true}'
  return `{"value":${row},"done":false}`
}

function checkSyscallArgs(argsJson: string): void {
  const invalid = loneSurrogate(argsJson)
  if (invalid !== null) throw new Error(`Received invalid json: ${invalid}`)
}

const convexGlobal = {
  syscall(op: string, argsJson: string): string {
    checkSyscallArgs(argsJson)
    switch (op) {
      case '1.0/queryStream': {
        const queryId = nextStreamId++
        streams.set(queryId, { openArgs: argsJson, buffer: [], done: false, opened: false })
        return JSON.stringify({ queryId })
      }
      case '1.0/queryCleanup': {
        const { queryId } = JSON.parse(argsJson) as { queryId: number }
        const s = streams.get(queryId)
        streams.delete(queryId)
        // The host counted the whole batch as read: it takes back the rows never taken.
        if (s?.opened === true && (!s.done || s.buffer.length > 0)) queueHostOp(0, '1.0/queryCleanup', JSON.stringify({ queryId, unread: s.buffer.length }))
        return 'true'
      }
      case '1.0/getSnapshotTs':
        if (call?.snapshotTs == null) throw new Error('getSnapshotTs is only available in queries and mutations')
        return JSON.stringify({ $integer: call.snapshotTs })
      default:
        return hostSync(op, argsJson)
    }
  },
  asyncSyscall(op: string, argsJson: string): Promise<string> {
    checkSyscallArgs(argsJson)
    if (op === '1.0/queryStreamNext') return streamNext(argsJson)
    return hostAsync(op, argsJson)
  },
  /** Syscalls whose arguments are JS objects (Blobs): turned into the plain host ops. */
  async jsSyscall(op: string, args: { blob?: BlobPolyfill; options?: { sha256?: string }; storageId?: string; requestId?: string; version?: string }): Promise<unknown> {
    if (op === 'storage/storeBlob') {
      const blob = args.blob
      if (!(blob instanceof BlobPolyfill)) throw new Error('store() expects a Blob. If you are trying to store a Request, `await request.blob()` will give you the correct input.')
      const result = await hostAsync('1.0/storageStore', JSON.stringify({ blob: await sendBytes(hostAsync, blob._bytes()), contentType: blob.type, sha256: args.options?.sha256 }))
      return JSON.parse(result)
    }
    if (op === 'storage/getBlob') {
      const result = JSON.parse(await hostAsync('1.0/storageGet', JSON.stringify({ storageId: args.storageId }))) as { blob: BytesRef; contentType: string | null } | null
      return result === null ? null : BlobPolyfill._adopt(await receiveBytes(hostAsync, result.blob), result.contentType ?? '')
    }
    // As Convex: an op it doesn't know ends the call, whatever the code does with the error.
    return throwUncatchable(`Unknown JS syscall: ${op}`)
  },
}
g.Convex = { ...convexGlobal }

/** Serializes an HTTP response for the host: status, headers and the body (see BytesRef). */
async function responseJson(res: ResponsePolyfill): Promise<string> {
  const headers: [string, string][] = []
  res.headers.forEach((v, k) => headers.push([k, v]))
  return JSON.stringify({ status: res.status, statusText: res.statusText, headers, body: await sendBytes(hostAsync, await res._take()) })
}

/** Routes a request through the pushed `http.js` router and runs the matching HTTP action. */
async function runHttpAction(spec: CallSpec): Promise<string> {
  const r = spec.request!
  const router = modules.get(spec.modulePath)?.default
  // A component mounted under a prefix matches on the rest of the path (`routedPath`).
  const path = r.routedPath ?? new URLPolyfill(r.url).pathname
  const match = router?.isRouter === true ? router.lookup(path, r.method) : null
  // As Convex, whose backend answers a path no route matches itself.
  if (match === null || match === undefined) return responseJson(new ResponsePolyfill('No matching routes found', { status: 404, headers: { 'content-type': 'text/plain; charset=utf-8' } }))
  // (A GET or HEAD request's Request has no body: the Fetch standard allows none.)
  const body = r.method === 'GET' || r.method === 'HEAD' ? undefined : r.body !== null ? await receiveBytes(hostAsync, r.body) : r.streamed === true ? requestBodyStream() : undefined
  // Its signal aborts when the client goes away before the response is done, as in Convex.
  const aborted = new AbortControllerPolyfill()
  void hostAsync('concave/httpRequestAborted', '{}').then(() => aborted.abort(), () => {})
  const request = new RequestPolyfill(r.url, { method: r.method, headers: r.headers, body, signal: aborted.signal })
  const response = await match[0].invokeHttpAction(request)
  if (!(response instanceof ResponsePolyfill)) throw new Error('An HTTP action must return a Response')
  return response._isStream() ? streamResponse(response) : responseJson(response)
}

/** A request body the host hands over chunk by chunk, as the action reads it. */
function requestBodyStream(): ReadableStreamPolyfill {
  return new ReadableStreamPolyfill({
    async pull(controller) {
      const { chunk } = JSON.parse(await hostAsync('concave/httpRequestRead', '{}')) as { chunk: string | null }
      if (chunk === null) controller.close()
      else controller.enqueue(base64ToBytes(chunk))
    },
  })
}

/**
 * Sends a stream-bodied response as it is produced: the head once the first chunk is there (so a
 * stream that fails at once still gets a 500 with its message), then each chunk.
 */
async function streamResponse(res: ResponsePolyfill): Promise<string> {
  const headers: [string, string][] = []
  res.headers.forEach((v, k) => headers.push([k, v]))
  const reader = res.body!.getReader()
  let next = await reader.read()
  await hostAsync('concave/httpResponseHead', JSON.stringify({ status: res.status, statusText: res.statusText, headers }))
  while (!next.done) {
    const bytes = chunkBytes(next.value)
    if (bytes.length > 0) await hostAsync('concave/httpResponseWrite', JSON.stringify({ chunk: await sendBytes(hostAsync, bytes) }))
    next = await reader.read()
  }
  return '{"streamed":true}'
}

function chunkBytes(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value
  if (typeof value === 'string') return new TextEncoderPolyfill().encode(value)
  if (value instanceof ArrayBuffer) return new Uint8Array(value)
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
  throw new TypeError('A response body stream must produce Uint8Array chunks')
}

function resetCall(spec: RuntimeCall | null): void {
  // Each call gets its own `Convex` (what the convex package calls the backend through): one
  // that changed or deleted it spoils only itself, as in Convex's fresh context per call.
  if (spec !== null) g.Convex = { ...convexGlobal }
  call = spec
  resetEnded()
  g.process = freshProcess()
  returned = null
  logLines = []
  logCount = 0
  consoleTimers = new Map()
  pending.clear()
  streams.clear()
  nextStreamId = 0
  rngState = spec?.seed ?? 0
  frozenNow = spec === null ? 0 : spec.kind === 'action' || spec.kind === 'httpAction' ? null : spec.nowMs
  callStartedAt = RealDate.now()
  lastPerformanceNow = 0
  cancelledTimers.clear()
  installGlobals()
  // A call that changed how errors keep their frames doesn't change it for the next (each Convex
  // call starts in a fresh context).
  Error.stackTraceLimit = 10
  captureFrames(stackText)
  resetCallListeners(spec !== null && spec.kind !== 'import')
}

g.__concave = {
  /** Makes an evaluated module's namespace callable by path (`messages.js`). */
  registerModule(path: string, namespace: Record<string, any>): void {
    modules.set(path, namespace)
  },
  /** Sets `process.env` for the functions that follow. */
  setEnv(envJson: string): void {
    currentEnv = JSON.parse(envJson) as Record<string, string>
  },
  /**
   * Ends the running call, which failed outside the runtime's reach (isolated-vm threw a promise
   * rejection nothing handled, or the host ended it): the lines it logged, as JSON.
   */
  abandon(): string {
    const lines = JSON.stringify(logLines)
    resetCall(null)
    return lines
  },
  /** Starts noting the unset environment variables code reads. */
  trackMissingEnv(): void {
    missingEnv = new Set()
  },
  /** The unset variables read since trackMissingEnv, as a JSON array; stops tracking. */
  missingEnv(): string {
    const names = JSON.stringify([...(missingEnv ?? [])])
    missingEnv = null
    return names
  },
  /** Prepares deterministic state for module evaluation (import phase); `origin` is performance.timeOrigin. */
  beginImport(seed: number, nowMs: number, origin?: number): void {
    if (origin !== undefined) timeOrigin = origin
    resetCall({ kind: 'import', modulePath: '', exportName: '', argsJson: '[]', seed, nowMs, snapshotTs: null, requestId: '' })
  },
  /** Lists a module's registered functions for push analysis. */
  analyze(path: string): string {
    const ns = modules.get(path)
    if (ns === undefined) throw new Error(`Module ${path} is not loaded`)
    return JSON.stringify(analyzeModule(path, ns))
  },
  /** Evaluates a module default export's `export()` (schema.js) as JSON text. */
  exportDefault(path: string): string {
    const ns = modules.get(path)
    const value = ns?.default
    if (value === undefined) throw new Error(`${path} has no default export`)
    const exported = typeof value.export === 'function' ? value.export() : value
    return typeof exported === 'string' ? exported : JSON.stringify(exported)
  },
  /**
   * Starts a call; its first syscalls (or its outcome) are reported before this returns. The
   * call's fields come one by one (IsolateHost.run), an HTTP action's request as JSON.
   */
  start(kind: CallSpec['kind'], modulePath: string, exportName: string, argsJson: string, seed: number, nowMs: number, snapshotTs: string | null, requestId: string, requestJson?: string): void {
    const spec: CallSpec = { kind, modulePath, exportName, argsJson, seed, nowMs, snapshotTs, requestId }
    if (requestJson !== undefined) spec.request = JSON.parse(requestJson) as CallSpec['request']
    resetCall(spec)
    const finish = (outcome: Outcome) => {
      if (call !== spec) return // a call abandoned by the host: its late settling is not news
      const { value, ...rest } = outcome
      const restJson = JSON.stringify({ ...rest, logLines })
      // A query or mutation that returned stays open: the host runs the syscalls it left behind
      // to completion (their lines go to the host one by one: see `log`). Anything else ends here.
      if (outcome.ok && (spec.kind === 'query' || spec.kind === 'mutation')) {
        returned = spec
        logLines = []
      } else resetCall(null)
      reportDone(value, restJson)
    }
    let promise: Promise<string>
    try {
      if (spec.kind === 'httpAction') promise = runHttpAction(spec)
      else {
        const fn = modules.get(spec.modulePath)?.[spec.exportName]
        if (fn === undefined) throw new Error(`Could not find function ${spec.exportName} in ${spec.modulePath}`)
        if (spec.kind === 'query') promise = fn.invokeQuery(spec.argsJson)
        else if (spec.kind === 'mutation') promise = fn.invokeMutation(spec.argsJson)
        else promise = fn.invokeAction(spec.requestId, spec.argsJson)
      }
    } catch (e) {
      finish(describeError(e))
      return
    }
    promise.then(
      (value) => finish({ ok: true, value }),
      (e: unknown) => finish(describeError(e)),
    )
  },
  /**
   * Delivers syscall results, three arguments each: `id, ok, payload`, the payload the result's
   * JSON text, or for a failure the JSON of `{message, data?}`. (One argument: a JSON array of them.)
   */
  step(...args: (number | boolean | string)[]): void {
    // A batch too large to pass as arguments comes as one JSON array of them.
    const results = args.length === 1 ? (JSON.parse(args[0] as string) as (number | boolean | string)[]) : args
    for (let i = 0; i < results.length; i += 3) {
      // A nested query's or mutation's log lines, just before its result.
      if (results[i] === -1) {
        logNested(JSON.parse(results[i + 2] as string) as string[])
        continue
      }
      const p = pending.get(results[i] as number)
      if (p === undefined) continue
      pending.delete(results[i] as number)
      if (results[i + 1] === true) p.resolve(results[i + 2] as string)
      else p.reject(JSON.parse(results[i + 2] as string))
    }
  },
}
