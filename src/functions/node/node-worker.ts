/**
 * @module The Node.js action worker (built to dist/node-executor.js): runs the actions of
 * `"use node"` modules in a worker thread with the full Node.js API, as Convex's Node runtime does.
 *
 * The pushed node modules sit in `workerData.dir` (ES modules, imported from there). The bundled
 * `convex/server` code reaches the backend through the global `Convex` object, exactly as in the
 * isolate; here its async syscalls travel to the main thread as messages:
 *
 *   main thread                               worker
 *   ─────────────────────────────────────────────────────────────────────
 *   {type:'run', callId, spec} ─────────────▶ invoke the export
 *                              ◀───────────── {type:'op', callId, id, op, argsJson} per syscall
 *   {type:'result', callId, id, ok, payload} ▶ resolve / reject it
 *                              ◀───────────── {type:'done', callId, outcome}
 *   {type:'analyze', callId, path} ─────────▶ ◀─ {type:'analyzed', callId, analysis | error}
 *
 * Calls run concurrently on the worker's event loop; each call's console output is told apart
 * with AsyncLocalStorage.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parentPort, workerData } from 'node:worker_threads'
import { analyzeModule } from '../../../runtime/analyze.ts'
import { formatLogArgs } from '../../../runtime/inspect.ts'
import { describeError, MODULE_URL_PREFIX } from '../../../runtime/outcome.ts'
import type { Outcome } from '../../../runtime/outcome.ts'
import type { CallSpec } from '../../../runtime/protocol.ts'


interface CallState {
  callId: number
  logLines: string[]
  pending: Map<number, { resolve: (v: string) => void; reject: (e: unknown) => void }>
  nextId: number
}

export type ToWorker =
  | { type: 'run'; callId: number; spec: CallSpec }
  | { type: 'result'; callId: number; id: number; ok: boolean; payload: unknown }
  | { type: 'analyze'; callId: number; path: string }

export type FromWorker =
  | { type: 'op'; callId: number; id: number; op: string; argsJson: string }
  | { type: 'done'; callId: number; outcome: Outcome & { logLines: string[] } }
  | { type: 'analyzed'; callId: number; analysis?: unknown; error?: string }

const port = parentPort!
const { dir } = workerData as { dir: string }
// The CLI bundles "use node" files as ES modules; CommonJS packages inside them reach Node's
// built-ins through esbuild's `require` shim, which needs a global `require`.
;(globalThis as { require?: NodeJS.Require }).require = createRequire(join(dir, 'package.json'))
const calls = new Map<number, CallState>()
const current = new AsyncLocalStorage<CallState>()
const post = (m: FromWorker) => port.postMessage(m)

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
    throw new Error(`The JS syscall ${op} is not supported by this backend yet`)
  },
}

// Console output belongs to the call it happens in; outside any running call it is dropped.
const log = (line: string) => {
  const s = current.getStore()
  if (s !== undefined && calls.has(s.callId)) s.logLines.push(line)
}
const logger = (level: string) => (...args: unknown[]) => log(`[${level}] ${formatLogArgs(args)}`)
// A stray rejection or a throw in a timer must not end the worker (and every Node action in it).
process.on('unhandledRejection', (reason) => log(`[ERROR] Unhandled promise rejection: ${formatLogArgs([reason])}`))
process.on('uncaughtException', (e) => log(`[ERROR] Uncaught exception: ${formatLogArgs([e])}`))
Object.assign(console, { log: logger('LOG'), info: logger('INFO'), warn: logger('WARN'), error: logger('ERROR'), debug: logger('DEBUG'), trace: logger('LOG') })

/** Stack frames name the pushed modules as the isolate does (`convex:/<path>`), not by their temporary files. */
const moduleDirUrl = `${pathToFileURL(dir).href}/`
function withModuleUrls(outcome: Outcome): Outcome {
  if (outcome.stack !== undefined) outcome.stack = outcome.stack.replaceAll(moduleDirUrl, MODULE_URL_PREFIX)
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

port.on('message', (m: ToWorker) => {
  if (m.type === 'run') {
    const s: CallState = { callId: m.callId, logLines: [], pending: new Map(), nextId: 1 }
    calls.set(m.callId, s)
    run(s, m.spec).then(
      (value) => ({ ok: true, value }),
      (e: unknown) => withModuleUrls(describeError(e)),
    ).then((outcome) => {
      calls.delete(m.callId)
      post({ type: 'done', callId: m.callId, outcome: { ...outcome, logLines: s.logLines } })
    })
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
