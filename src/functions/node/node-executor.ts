/**
 * @module NodeExecutor: runs the actions of `"use node"` modules in a Node.js child process
 * (dist/node-executor.js, see node-worker.ts), with the full Node.js API.
 *
 * One process serves the current push and environment variables; it is started at the first Node
 * action (a process costs ~60 MB, which apps without Node actions never pay). When the modules or
 * the environment change, the next Node action starts a new process and the old one is stopped once
 * the calls running in it have finished. The pushed node modules are written to a temporary directory
 * and imported from there; its `node_modules` links to the push's external packages, if any
 * (node-packages.ts). Unlike isolate functions, Node actions are not sandboxed: they run with
 * the backend's file-system and network access, as trusted app code. But they run in a process of
 * their own that never holds the backend's secrets: its whole environment is the deployment's
 * variables, its command line names only its script, heap limit and module folder, and it shares
 * no memory with the backend. A Node action that reaches its time limit fails alone, as in Convex;
 * one that never yields (so its process can't end it) and a process that runs out of memory fail
 * every Node action then running in that process; the process is replaced and the server keeps
 * serving.
 *
 * How the process is started: `node --max-old-space-size=N dist/node-executor.js <dir>` under
 * `node dist/backend`; the single executable (scripts/package.mjs) runs itself as
 * `concave-backend --node-options=--max-old-space-size=N node-executor <extracted node-executor.js> <dir>`.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { isSea } from 'node:sea'
import { fileURLToPath } from 'node:url'
import type { ModuleRecord } from '../../storage/persistence.ts'
import { errorPayload } from '../isolate/isolate-host.ts'
import type { CallOutcome, CallSpec, SyscallHandler } from '../isolate/isolate-host.ts'
import type { FromWorker, ToWorker } from './node-worker.ts'
import type { ModuleAnalysis } from '../../../runtime/analyze.ts'

/** How long past its time limit a Node action that never yields runs before its worker is stopped (Convex: 5 s). */
const STUCK_GRACE_MS = 5000

/** A Node action ended at its time limit, with Convex's message and the lines it had logged. */
export class NodeActionTimeout extends Error {
  constructor(
    message: string,
    readonly logLines: string[],
  ) {
    super(message)
  }
}

interface Running {
  handler: SyscallHandler
  resolve: (outcome: CallOutcome) => void
  reject: (e: Error) => void
}

/** The last bytes of the process's stderr kept to tell an out-of-memory end from another crash. */
const STDERR_TAIL_BYTES = 4096

/** The command that starts an action process for `script` (dist/node-executor.js) over `dir`. */
export function executorCommand(script: string, dir: string, heapMb: number, sea: boolean): string[] {
  const heap = `--max-old-space-size=${heapMb}`
  // The single executable runs its own main script whatever its arguments; it takes Node options
  // as --node-options (execArgvExtension "cli") and starts the extracted script when told to.
  return sea ? [`--node-options=${heap}`, 'node-executor', script, dir] : [heap, script, dir]
}

/** One action process over one set of node modules. */
class NodeWorker {
  readonly child: ChildProcess
  readonly #dir: string
  readonly #calls = new Map<number, Running>()
  readonly #analyses = new Map<number, { resolve: (a: ModuleAnalysis) => void; reject: (e: Error) => void }>()
  #nextCallId = 1
  #exited: Error | null = null

  constructor(
    script: string,
    modules: readonly ModuleRecord[],
    env: Record<string, string>,
    readonly heapMb: number,
    packagesDir: string | null,
  ) {
    this.#dir = mkdtempSync(join(tmpdir(), 'concave-node-'))
    try {
      writeFileSync(join(this.#dir, 'package.json'), '{ "type": "module" }\n')
      // External packages (node-packages.ts): bare imports resolve through this link.
      if (packagesDir !== null) symlinkSync(join(packagesDir, 'node_modules'), join(this.#dir, 'node_modules'), 'dir')
      for (const m of modules) {
        const file = join(this.#dir, m.path)
        mkdirSync(dirname(file), { recursive: true })
        writeFileSync(file, m.source)
      }
      // Its whole environment is the deployment's variables: nothing of the backend's (its
      // secret, its settings) reaches the process, not even in /proc/<pid>/environ.
      this.child = spawn(process.execPath, executorCommand(script, this.#dir, heapMb, isSea()), { env: { ...env }, stdio: ['ignore', 'inherit', 'pipe', 'ipc'], serialization: 'advanced' })
    } catch (e) {
      rmSync(this.#dir, { recursive: true, force: true })
      throw e
    }
    // Neither the process nor its channel keeps the backend running.
    this.child.unref()
    this.child.channel?.unref()
    this.child.stderr!.on('data', (d: Buffer) => {
      process.stderr.write(d)
      this.#stderrTail = (this.#stderrTail + d.toString()).slice(-STDERR_TAIL_BYTES)
    })
    ;(this.child.stderr as unknown as { unref?: () => void }).unref?.()
    this.child.on('message', (m: FromWorker) => this.#onMessage(m))
    this.child.on('error', (e: Error) => this.#fail(e))
    this.child.on('exit', (code, signal) => {
      // V8 ends a process that runs out of heap with SIGABRT, after its report on stderr: read
      // that to the end (or for a second, if something the action started still holds the pipe).
      const failed = () => this.#fail(this.#stderrTail.includes('JavaScript heap out of memory') ? new Error(`JavaScript execution ran out of memory (maximum memory usage: ${this.heapMb} MB)`) : new Error(`The Node.js action worker exited (code ${code ?? signal})`))
      if (signal !== 'SIGABRT' || this.child.stderr!.readableEnded) return failed()
      const timer = setTimeout(failed, 1000)
      this.child.stderr!.once('close', () => {
        clearTimeout(timer)
        failed()
      })
    })
  }

  #stderrTail = ''

  get alive(): boolean {
    return this.#exited === null
  }

  #fail(e: Error): void {
    if (this.#exited !== null) return
    this.#exited = e
    for (const c of this.#calls.values()) c.reject(this.#exited)
    for (const a of this.#analyses.values()) a.reject(this.#exited)
    this.#calls.clear()
    this.#analyses.clear()
    rmSync(this.#dir, { recursive: true, force: true })
  }

  #onMessage(m: FromWorker): void {
    if (m.type === 'op') {
      const call = this.#calls.get(m.callId)
      if (call === undefined) return
      call.handler.async(m.op, m.argsJson).then(
        (payload) => ({ ok: true, payload }),
        (e: unknown) => ({ ok: false, payload: errorPayload(e) }),
      ).then(({ ok, payload }) => {
        if (this.#calls.has(m.callId)) this.#post({ type: 'result', callId: m.callId, id: m.id, ok, payload })
      })
    } else if (m.type === 'done') {
      const call = this.#calls.get(m.callId)
      this.#calls.delete(m.callId)
      call?.resolve(m.outcome)
      if (this.#retiring && this.#calls.size === 0) void this.terminate('The Node.js action worker was stopped')
    } else if (m.type === 'timedOut') {
      const call = this.#calls.get(m.callId)
      this.#calls.delete(m.callId)
      call?.reject(new NodeActionTimeout(m.message, m.logLines))
      if (this.#retiring && this.#calls.size === 0) void this.terminate('The Node.js action worker was stopped')
    } else if (m.type === 'analyzed') {
      const a = this.#analyses.get(m.callId)
      this.#analyses.delete(m.callId)
      if (m.error !== undefined) a?.reject(new Error(m.error))
      else a?.resolve(m.analysis as ModuleAnalysis)
    }
  }

  #post(m: ToWorker): void {
    // A process that has just ended fails its calls from its 'close' handler.
    if (this.child.connected) this.child.send(m)
  }

  run(spec: CallSpec, handler: SyscallHandler, timeoutMs: number): Promise<CallOutcome> {
    const callId = this.#nextCallId++
    return new Promise<CallOutcome>((resolve, reject) => {
      if (this.#exited !== null) return reject(this.#exited)
      this.#calls.set(callId, { handler, resolve, reject })
      this.#post({ type: 'run', callId, spec, timeoutMs })
    })
  }

  analyze(path: string): Promise<ModuleAnalysis> {
    const callId = this.#nextCallId++
    return new Promise<ModuleAnalysis>((resolve, reject) => {
      if (this.#exited !== null) return reject(this.#exited)
      this.#analyses.set(callId, { resolve, reject })
      this.#post({ type: 'analyze', callId, path })
    })
  }

  /** Stops the process now; calls still running in it fail with `reason`. */
  async terminate(reason: string): Promise<void> {
    const ended = this.child.exitCode !== null || this.child.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => this.child.once('exit', () => r()))
    this.#fail(new Error(reason))
    this.child.kill('SIGKILL')
    await ended
  }

  /** Stops the worker once the calls running in it have finished (after a push or an env change). */
  retire(): void {
    this.#retiring = true
    if (this.#calls.size === 0) void this.terminate('The Node.js action worker was stopped')
  }
  #retiring = false
}

export class NodeExecutor {
  readonly #script: string | null
  #worker: NodeWorker | null = null
  /** What the worker was made for: a worker for other modules or variables is replaced. */
  #modules: ReadonlyMap<string, ModuleRecord> | null = null
  #env: Record<string, string> | null = null
  /** The installed external packages of the live push (node-packages.ts), if it has any. */
  #packagesDir: string | null = null

  constructor(readonly heapMb: number) {
    const script = new URL('./node-executor.js', import.meta.url)
    this.#script = script.protocol === 'file:' && existsSync(script) ? fileURLToPath(script) : null
  }

  /** Sets the external packages' folder for the workers started from now on (with setModules). */
  setPackages(dir: string | null): void {
    if (dir === this.#packagesDir) return
    this.#packagesDir = dir
    this.retire()
  }

  /** Loads each of `paths` (node modules among `modules`) in a scratch worker and analyzes it. */
  async analyze(modules: readonly ModuleRecord[], paths: readonly string[], env: Record<string, string>, timeoutMs: number, packagesDir: string | null): Promise<Map<string, ModuleAnalysis>> {
    if (this.#script === null) throw new Error('the Node.js action worker (dist/node-executor.js) is missing: build with `npm run build`')
    const worker = new NodeWorker(this.#script, modules.filter((m) => m.environment === 'node'), env, this.heapMb, packagesDir)
    let timer: NodeJS.Timeout | undefined
    try {
      const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`loading took longer than ${timeoutMs / 1000}s`)), timeoutMs)))
      const out = new Map<string, ModuleAnalysis>()
      for (const path of paths) out.set(path, await Promise.race([worker.analyze(path), timeout]))
      return out
    } finally {
      clearTimeout(timer)
      await worker.terminate('Push analysis finished')
    }
  }

  /** Runs one Node action to completion (or to its time limit). */
  async run(modules: ReadonlyMap<string, ModuleRecord>, env: Record<string, string>, spec: CallSpec, handler: SyscallHandler, timeoutMs: number): Promise<CallOutcome> {
    if (this.#script === null) throw new Error('the Node.js action worker (dist/node-executor.js) is missing: build with `npm run build`')
    if (this.#worker === null || !this.#worker.alive || this.#modules !== modules || this.#env !== env) {
      this.#worker?.retire()
      this.#worker = new NodeWorker(this.#script, [...modules.values()].filter((m) => m.environment === 'node'), env, this.heapMb, this.#packagesDir)
      this.#modules = modules
      this.#env = env
    }
    const worker = this.#worker
    // The worker ends the call at its limit (NodeActionTimeout); past that and a grace period, the
    // action must be spinning: as Convex's executor does with a stuck process, the worker goes,
    // and with it the other Node actions running there.
    const done = worker.run(spec, handler, timeoutMs)
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(new Error('Function execution unexpectedly timed out. Check your function for infinite loops or other long-running operations.'))
        if (this.#worker === worker) this.#worker = null
        void worker.terminate('The Node.js action worker was stopped: another Node action running in it exceeded its time limit')
      }, timeoutMs + STUCK_GRACE_MS)
    })
    try {
      return await Promise.race([done, timedOut])
    } finally {
      clearTimeout(timer)
    }
  }

  /** After a push or an env change: the current worker stops once its calls finish. */
  retire(): void {
    this.#worker?.retire()
    this.#worker = null
    this.#modules = null
    this.#env = null
  }

  async close(): Promise<void> {
    const worker = this.#worker
    this.#worker = null
    await worker?.terminate('The backend is shutting down')
  }
}
