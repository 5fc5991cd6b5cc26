/**
 * @module The Node.js action process (built to dist/node-executor.js): runs the actions of
 * `"use node"` modules in a child process of the backend with the full Node.js API, as Convex's
 * Node runtime does. The process never holds the backend's secrets: it is started with the
 * deployment's variables as its whole environment and a command line of its own
 * (`node --max-old-space-size=N node-executor.js <dir>`, node-executor.ts), so app code reading
 * `process.env`, `/proc/self/environ` or `/proc/self/cmdline` finds nothing of the backend's.
 *
 * The pushed node modules sit in `<dir>` (the last command-line argument; ES modules, imported
 * from there). The bundled `convex/server` code reaches the backend through the global `Convex`
 * object, exactly as in the isolate; here its async syscalls travel to the backend as messages
 * over the IPC channel:
 *
 *   backend                                   action process
 *   ─────────────────────────────────────────────────────────────────────
 *   {type:'run', callId, spec} ─────────────▶ invoke the export
 *                              ◀───────────── {type:'op', callId, id, op, argsJson} per syscall
 *   {type:'result', callId, id, ok, payload} ▶ resolve / reject it
 *                              ◀───────────── {type:'done', callId, outcome}
 *                                               or {type:'timedOut', callId, message} at its time limit
 *   {type:'analyze', callId, path} ─────────▶ ◀─ {type:'analyzed', callId, analysis | error}
 *
 * Calls run concurrently on the process's event loop; each call's console output, and an exception
 * or rejection nothing handles (which fails that call), is told apart with AsyncLocalStorage.
 * When the backend goes away (its IPC channel closes, or it dies while an action spins) the
 * process ends itself.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { Console } from 'node:console'
import { realpathSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Writable } from 'node:stream'
import { Worker } from 'node:worker_threads'
import { analyzeModule } from '../../../runtime/analyze.ts'
import { inspect } from 'node:util'
import { captureFrames } from '../../../runtime/frames.ts'
import type { FrameData } from '../../../runtime/frames.ts'
import { describeError, MODULE_URL_PREFIX } from '../../../runtime/outcome.ts'
import type { Outcome } from '../../../runtime/outcome.ts'
import type { CallSpec } from '../../../runtime/protocol.ts'


interface CallState {
  callId: number
  logLines: string[]
  /** The characters of the messages logged so far, and whether a log limit was reached (see `log`). */
  logLength: number
  logLimitHit: boolean
  pending: Map<number, { resolve: (v: string) => void; reject: (e: unknown) => void }>
  nextId: number
  /** `console.time` labels and their start (ms since the epoch). */
  timers: Map<string, number>
}

export type ToWorker =
  | { type: 'run'; callId: number; spec: CallSpec; timeoutMs: number }
  | { type: 'result'; callId: number; id: number; ok: boolean; payload: unknown }
  | { type: 'analyze'; callId: number; path: string }

export type FromWorker =
  | { type: 'op'; callId: number; id: number; op: string; argsJson: string }
  | { type: 'done'; callId: number; outcome: Outcome & { logLines: string[] } }
  | { type: 'timedOut'; callId: number; message: string; logLines: string[] }
  | { type: 'analyzed'; callId: number; analysis?: unknown; error?: string }

if (process.send === undefined) {
  process.stderr.write('node-executor.js is started by the Concave backend (with an IPC channel), not by hand\n')
  process.exit(2)
}
const send = process.send.bind(process)
const dir = process.argv.at(-1)!
/** process.exit as Node has it: app code gets its own (below), which fails only its call. */
const exitProcess = process.exit.bind(process)
// The CLI bundles "use node" files as ES modules; CommonJS packages inside them reach Node's
// built-ins through esbuild's `require` shim, which needs a global `require`.
;(globalThis as { require?: NodeJS.Require }).require = createRequire(join(dir, 'package.json'))
const calls = new Map<number, CallState>()
const current = new AsyncLocalStorage<CallState>()
const post = (m: FromWorker) => void send(m)

function state(): CallState {
  const s = current.getStore()
  if (s === undefined) throw new Error('Convex syscalls are only available while a Convex function runs')
  return s
}

function hostAsync(op: string, argsJson: string): Promise<string> {
  const s = state()
  // A timer or promise a finished call left behind gets no answers.
  if (!calls.has(s.callId)) return Promise.reject(new Error(`${op}: the Convex function this belongs to has already finished`))
  return new Promise<string>((resolve, reject) => {
    const id = s.nextId++
    s.pending.set(id, { resolve, reject })
    post({ type: 'op', callId: s.callId, id, op, argsJson })
  })
}

;(globalThis as any).Convex = {
  syscall(op: string): string {
    throw new Error(`${op} is not available in actions`)
  },
  asyncSyscall: hostAsync,
  /** Storage syscalls whose arguments are Blobs: turned into the plain host ops, as in the isolate. */
  async jsSyscall(op: string, args: { blob?: Blob; options?: { sha256?: string }; storageId?: string }): Promise<unknown> {
    if (op === 'storage/storeBlob') {
      const blob = args.blob
      if (!(blob instanceof Blob)) throw new Error('store() expects a Blob. If you are trying to store a Request, `await request.blob()` will give you the correct input.')
      const bytes = Buffer.from(await blob.arrayBuffer())
      return JSON.parse(await hostAsync('1.0/storageStore', JSON.stringify({ blob: bytes.toString('base64'), contentType: blob.type, sha256: args.options?.sha256 })))
    }
    if (op === 'storage/getBlob') {
      const result = JSON.parse(await hostAsync('1.0/storageGet', JSON.stringify({ storageId: args.storageId }))) as { blob: string; contentType: string | null } | null
      return result === null ? null : new Blob([Buffer.from(result.blob, 'base64')], { type: result.contentType ?? '' })
    }
    throw new Error(`Unknown JS syscall: ${op}`)
  },
}

/**
 * Console output belongs to the call it happens in; outside any running call it is dropped. As
 * Convex's node-executor: at most 256 lines and a million characters of messages, then one line
 * saying which was reached, and nothing more.
 */
const log = (line: string) => {
  const s = current.getStore()
  if (s === undefined || !calls.has(s.callId) || s.logLimitHit) return
  const length = line.length - line.indexOf('] ') - 2
  if (s.logLength + length > 1_048_576) {
    s.logLines.push('[ERROR] Log overflow (maximum 1M characters). Remaining log lines omitted.')
    s.logLimitHit = true
  } else if (s.logLines.length >= 256) {
    s.logLines.push('[ERROR] Log overflow (maximum 256). Remaining log lines omitted.')
    s.logLimitHit = true
  } else s.logLines.push(line)
  s.logLength += length
}
// As Convex's node-executor: each argument through Node's own util.inspect, with its options.
const formatLogArgs = (args: unknown[]) => args.map((a) => inspect(a, { maxStringLength: 32768, customInspect: true })).join(' ')
const logger = (level: string) => (...args: unknown[]) => log(`[${level}] ${formatLogArgs(args)}`)
/** The console's time methods as Convex's Node runtime has them: whole milliseconds, Info level, warnings as Warn. */
const timerLabel = (label: unknown) => (label === undefined ? 'default' : label === null ? 'null' : String(label))
const timers = () => current.getStore()?.timers ?? new Map<string, number>()
function time(label?: unknown): void {
  const name = timerLabel(label)
  if (timers().has(name)) logger('WARN')(`Timer '${name}' already exists`)
  else timers().set(name, Date.now())
}
function timeLog(label?: unknown, ...args: unknown[]): void {
  const name = timerLabel(label)
  const start = timers().get(name)
  if (start === undefined) logger('WARN')(`Timer '${name}' does not exist`)
  else logger('INFO')(`${name}: ${Date.now() - start}ms`, ...args)
}
function timeEnd(label?: unknown): void {
  const name = timerLabel(label)
  const start = timers().get(name)
  if (start === undefined) return logger('WARN')(`Timer '${name}' does not exist`)
  timers().delete(name)
  logger('INFO')(`${name}: ${Date.now() - start}ms`)
}
// The rest of Node's console (count, assert, table, dir, group, trace, …) keeps Node's own
// formatting; its output goes to the call's log lines (stdout as Log, stderr as Error) rather than
// the backend's stdout.
const consoleStream = (level: string) =>
  new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      const text = String(chunk)
      log(`[${level}] ${text.endsWith('\n') ? text.slice(0, -1) : text}`)
      done()
    },
  })
const nodeConsole = new Console({ stdout: consoleStream('LOG'), stderr: consoleStream('ERROR') })
for (const method of ['count', 'countReset', 'assert', 'table', 'dir', 'dirxml', 'group', 'groupCollapsed', 'groupEnd', 'trace'] as const) {
  ;(console as any)[method] = (nodeConsole as any)[method].bind(nodeConsole)
}
Object.assign(console, { log: logger('LOG'), info: logger('INFO'), warn: logger('WARN'), error: logger('ERROR'), debug: logger('DEBUG'), time, timeLog, timeEnd })

/**
 * An exception nothing catches (thrown in a timer or an event handler) or a rejected promise
 * nobody handles fails the call it belongs to, with Convex's message ("Uncaught
 * uncaughtException: …"); the worker and its other calls carry on. One that belongs to no running
 * call (its call has finished) is dropped.
 */
function failCall(event: 'uncaughtException' | 'unhandledRejection' | 'process.exit', e: unknown): void {
  const s = current.getStore()
  if (s === undefined || !calls.has(s.callId)) return
  finish(s, { ok: false, name: event, message: errorMessage(e) })
}
/** A thrown value's message as Convex's Node runtime reads it. */
function errorMessage(e: unknown): string {
  if (e === null || e === undefined) return 'unknown error'
  try {
    const message = (e as { message?: unknown }).message
    const text = message !== undefined && message !== null ? String(message) : String(e)
    return typeof text === 'string' ? text : 'unknown error'
  } catch {
    return 'unknown error'
  }
}
process.on('uncaughtException', (e) => failCall('uncaughtException', e))
process.on('unhandledRejection', (reason) => failCall('unhandledRejection', reason))
// process.exit() would end the process and every call in it: it fails its own call.
process.exit = ((code?: number | string | null) => {
  const message = `process.exit() called ${code === undefined ? 'with no exit code' : `with exit code ${code}`}`
  failCall('process.exit', new Error(message))
  throw new Error(message)
}) as typeof process.exit

/** Reports a call's outcome, once: later outcomes (after an uncaught exception failed it) are dropped. */
function finish(s: CallState, outcome: Outcome): void {
  if (!calls.has(s.callId)) return
  calls.delete(s.callId)
  post({ type: 'done', callId: s.callId, outcome: { ...outcome, logLines: s.logLines } })
}

/** Ends a call at its time limit with Convex's message (npm-packages/node-executor's executor.ts). */
function timeOut(s: CallState, exportName: string, timeoutMs: number): void {
  if (!calls.has(s.callId)) return
  calls.delete(s.callId)
  for (const waiter of s.pending.values()) waiter.reject(new Error('The action this call belongs to has timed out'))
  s.pending.clear()
  post({ type: 'timedOut', callId: s.callId, message: `Action \`${exportName}\` execution timed out (maximum duration ${timeoutMs / 1000}s)`, logLines: s.logLines })
}

/**
 * `stack` as Convex's Node executor writes it (npm-packages/node-executor/src/errors.ts), for app
 * code and the libraries that read it: `Error[: message]`, then a frame a line, the pushed modules
 * named `convex:/user/<path>` (not by their temporary files), Node's own `node:…`, any other file
 * (this worker's) as `bundledFunctions.js`; `at name (place)`, or `at place` for an unnamed function.
 */
const USER_MODULE_PREFIX = 'convex:/user/'
const moduleDirs = [...new Set([dir, realpathSync(dir)])]
captureFrames(
  (error, _sites, frames) => {
    const message = errorMessage(error)
    return `Error${message !== '' ? `: ${message}` : ''}\n${frames.map(nodeTraceLine).join('\n')}`
  },
  (fileName) => {
    if (fileName === null) return null
    for (const d of moduleDirs) {
      const at = fileName.indexOf(`${d}/`)
      if (at !== -1) return USER_MODULE_PREFIX + fileName.slice(at + d.length + 1)
    }
    return fileName
  },
)
function nodeTraceLine(frame: FrameData): string {
  let file = (frame.fileName ?? '').replace(/\.js\?.*/, '.js')
  if (file !== '' && !file.startsWith('convex:') && !file.startsWith('node:')) file = 'bundledFunctions.js'
  const location = frame.fileName !== null ? `${file}:${frame.lineNumber}:${frame.columnNumber}` : '<unknown location>'
  const name = frame.functionName || frame.methodName || ''
  return name !== '' ? `    at${frame.isAsync ? ' async' : ''} ${name} (${location})` : `    at ${location}`
}

/** The backend maps frames of the pushed modules named as the isolate names them (`convex:/<path>`). */
function withModuleUrls(outcome: Outcome): Outcome {
  outcome.frames = outcome.frames?.map((f) => (f.fileName?.startsWith(USER_MODULE_PREFIX) ? { ...f, fileName: MODULE_URL_PREFIX + f.fileName.slice(USER_MODULE_PREFIX.length) } : f))
  return outcome
}

const namespaces = new Map<string, Promise<Record<string, any>>>()
function load(path: string): Promise<Record<string, any>> {
  let ns = namespaces.get(path)
  if (ns === undefined) {
    ns = import(pathToFileURL(join(dir, path)).href) as Promise<Record<string, any>>
    namespaces.set(path, ns)
  }
  return ns
}

async function run(s: CallState, spec: CallSpec): Promise<string> {
  const fn = (await load(spec.modulePath))[spec.exportName]
  if (fn === undefined || typeof fn.invokeAction !== 'function') throw new Error(`Could not find action ${spec.exportName} in ${spec.modulePath}`)
  return current.run(s, () => fn.invokeAction(spec.requestId, spec.argsJson) as Promise<string>)
}

process.on('message', (m: ToWorker) => {
  if (m.type === 'run') {
    const s: CallState = { callId: m.callId, logLines: [], logLength: 0, logLimitHit: false, pending: new Map(), nextId: 1, timers: new Map() }
    calls.set(m.callId, s)
    // As Convex's Node executor: the action races its time limit; at the limit the call ends (its
    // later syscalls are refused) and the worker carries on. An action that never yields keeps
    // this timer from firing: the backend stops the process then (node-executor.ts).
    const timer = setTimeout(() => timeOut(s, m.spec.exportName, m.timeoutMs), m.timeoutMs)
    run(s, m.spec)
      .then(
        (value) => finish(s, { ok: true, value }),
        (e: unknown) => finish(s, withModuleUrls(describeError(e))),
      )
      .finally(() => clearTimeout(timer))
  } else if (m.type === 'result') {
    const p = calls.get(m.callId)?.pending
    const waiter = p?.get(m.id)
    if (waiter === undefined) return
    p!.delete(m.id)
    if (m.ok) waiter.resolve(m.payload as string)
    else waiter.reject(m.payload)
  } else if (m.type === 'analyze') {
    load(m.path).then(
      (ns) => post({ type: 'analyzed', callId: m.callId, analysis: analyzeModule(m.path, ns) }),
      (e: unknown) => post({ type: 'analyzed', callId: m.callId, error: e instanceof Error ? e.message : String(e) }),
    )
  }
})

// The backend closed the channel: nothing more will come. If the backend died, no one else
// removes the module folder.
process.on('disconnect', () => {
  rmSync(dir, { recursive: true, force: true })
  exitProcess(0)
})
watchParent()

/**
 * If the backend dies while an action never yields, this process's event loop never sees the
 * channel close: a watchdog thread notices that the parent changed (this process was handed to
 * init or a subreaper), removes the module folder and ends the process.
 */
function watchParent(): void {
  const watchdog = new Worker(
    `const { workerData } = require('node:worker_threads')
     setInterval(() => {
       if (process.ppid === workerData.ppid) return
       require('node:fs').rmSync(workerData.dir, { recursive: true, force: true })
       process.kill(workerData.pid, 'SIGKILL')
     }, 1000)`,
    { eval: true, workerData: { ppid: process.ppid, pid: process.pid, dir }, env: {}, argv: [], execArgv: [], resourceLimits: { maxOldGenerationSizeMb: 8 } },
  )
  watchdog.unref()
}
