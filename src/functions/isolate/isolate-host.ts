/**
 * @module IsolateHost: one isolated-vm isolate with one context, the runtime and the user modules.
 *
 * Queries and mutations are driven synchronously from the main thread (`applySync`), which costs
 * a few µs per entry instead of the tens of µs a thread hop costs; see runtime/index.ts for the
 * protocol. Each entry runs under a timeout, so one that loops is stopped after its time limit (1 s).
 * Actions may run for minutes, so they enter the isolate asynchronously on isolated-vm's own
 * thread and never hold the main thread. The memory limit is the isolate's heap limit; an isolate
 * that hits it is disposed and replaced by the pool.
 */
import ivm from 'isolated-vm'
import { DYNAMIC_IMPORT_OP } from '../../../runtime/protocol.ts'
import type { CallSpec } from '../../../runtime/protocol.ts'
import type { ModuleAnalysis } from '../../../runtime/analyze.ts'
import type { Outcome } from '../../../runtime/outcome.ts'
import type { ModuleRecord } from '../../storage/persistence.ts'
import { ISOLATED_VM_BOUNDARY, SourceMaps, timedOutMessage, uncaughtMessage } from '../errors.ts'
import type { FrameData } from '../../../runtime/frames.ts'
import { urlOp } from '../url-ops.ts'
import { UncatchableError } from '../../database/errors.ts'
import { rewriteDynamicImports } from './dynamic-import.ts'
import { COMPONENT_MODULES } from '../components.ts'

/**
 * An async syscall's result that also carries the log lines of a nested query or mutation it ran
 * (`ctx.runQuery`/`ctx.runMutation` in a mutation): Convex adds them to the caller's log where the
 * call returns. A rejection may carry them as `logLines` too.
 */
export interface NestedResult {
  value: string
  logLines: string[]
}

/** What a call asks of the host while it runs. */
export interface SyscallHandler {
  sync(op: string, argsJson: string): string
  async(op: string, argsJson: string): Promise<string | NestedResult>
  /** Releases what the call left open (fetch response streams), once it has finished. */
  close?(): void
}

export type { CallSpec }

/**
 * How a call ended (see runtime/outcome.ts), with the console lines it logged; from IsolateHost,
 * also how long it ran by its time limit's measure (`elapsedMs`: an action's whole run, a query's
 * or mutation's time in the isolate) and the async operations an action left unawaited when it
 * ended (`dangling`, their syscall names). For a failure the runtime didn't report itself:
 * `mappedFrames`, its frames mapped to the app's sources already (see mappedFrames), and `asIs`,
 * its message is the whole text (a developer error's, not an uncaught exception's).
 */
export type CallOutcome = Outcome & { logLines: string[]; elapsedMs?: number; dangling?: string[]; mappedFrames?: string; asIs?: boolean }

/** A failure of the sandbox itself (time or memory limit), not of user code. */
export class SandboxError extends Error {
  override name = 'SandboxError'
  constructor(
    message: string,
    readonly fatal: boolean,
  ) {
    super(message)
  }
}

/** How long a query or mutation may wait on its syscalls in all (Convex: 15 s). */
export const SYSTEM_TIMEOUT_MS = 15_000
/** Convex's SYSTEM_TIMEOUT_ERROR_MESSAGE. */
export const SYSTEM_TIMEOUT_MESSAGE = 'Your request timed out performing too many system operations.'

export interface Limits {
  timeoutMs: number
  memoryLimitMb: number
}

type Ref = ivm.Reference<(...args: any[]) => any>

/** Syscall results (three arguments each) a step passes as arguments; past this, as one JSON array. */
const MAX_STEP_ARGUMENTS = 3 * 10_000

export class IsolateHost {
  readonly isolate: ivm.Isolate
  readonly context: ivm.Context
  readonly #start: Ref
  readonly #step: Ref
  readonly #register: Ref
  readonly #analyze: Ref
  readonly #exportDefault: Ref
  readonly #beginImport: Ref
  readonly #setEnv: Ref
  readonly #trackMissingEnv: Ref
  readonly #missingEnv: Ref
  readonly #abandonRef: Ref
  readonly #loaded = new Map<string, ivm.Module>()
  readonly #paths = new Map<ivm.Module, string>()
  #handler: SyscallHandler | null = null
  /** The running call's queued async syscalls and outcome, as the isolate reports them. */
  #queued: [number, string, string][] = []
  #done: CallOutcome | null = null
  /**
   * The running call's record of a syscall error that ends it (see terminatesCall and #end), once
   * one was thrown; null between calls.
   */
  #ending: { error: unknown } | null = null
  /** Whether the running call is an action's (its code may catch the system's errors). */
  #offThread = false
  #envJson = ''
  readonly #sourceMaps = new SourceMaps(() => this.modules)
  #envObject: Record<string, string> | null = null

  constructor(
    runtimeSource: string,
    readonly modules: ReadonlyMap<string, ModuleRecord>,
    readonly generation: number,
    readonly memoryLimitMb: number,
    /** `performance.timeOrigin` in the sandbox: when this module set was loaded (Convex: pushed). */
    readonly timeOrigin: number = Date.now(),
  ) {
    this.isolate = new ivm.Isolate({ memoryLimit: memoryLimitMb })
    this.context = this.isolate.createContextSync()
    const global = this.context.global
    global.setSync('globalThis', global.derefInto())
    global.setSync(
      '__hostSync',
      new ivm.Callback(
        (op: string, argsJson: string) => {
          const url = urlOp(op, argsJson)
          if (url !== undefined) return url
          // An error's `stack`, as Convex builds it: its frames mapped to the app's sources.
          if (op === 'error/stack') return this.#sourceMaps.frames(undefined, JSON.parse(argsJson) as FrameData[]) ?? ''
          if (this.#handler === null) throw new Error(`Syscall ${op} outside of a call`)
          try {
            if (op === 'concave/uncatchable') {
              const { message, frames } = JSON.parse(argsJson) as { message: string; frames: FrameData[] }
              throw new UncatchableError(message, this.#sourceMaps.frames(undefined, frames))
            }
            return this.#handler.sync(op, argsJson)
          } catch (e) {
            this.#end(e)
            throw e
          }
        },
        { sync: true },
      ),
    )
    // Outside a call (module evaluation) async syscalls have no one to answer them: dropped.
    global.setSync('__hostOp', new ivm.Callback((id: number, op: string, argsJson: string) => void (this.#handler !== null && this.#queued.push([id, op, argsJson])), { sync: true }))
    global.setSync(
      '__hostDone',
      new ivm.Callback(
        (value: string | undefined, restJson: string) => {
          if (this.#handler === null) return
          const done = JSON.parse(restJson) as CallOutcome
          if (value !== undefined) done.value = value
          this.#done = done
        },
        { sync: true },
      ),
    )
    // A line logged by what a returned query or mutation left behind (see run).
    global.setSync('__hostLate', new ivm.Callback((line: string) => void this.#done?.logLines.push(line), { sync: true }))
    this.context.evalSync(runtimeSource, { filename: 'concave-runtime.js' })
    const api = global.getSync('__concave', { reference: true }) as ivm.Reference<Record<string, unknown>>
    const fn = (name: string) => api.getSync(name, { reference: true }) as Ref
    this.#start = fn('start')
    this.#step = fn('step')
    this.#register = fn('registerModule')
    this.#analyze = fn('analyze')
    this.#exportDefault = fn('exportDefault')
    this.#beginImport = fn('beginImport')
    this.#setEnv = fn('setEnv')
    this.#trackMissingEnv = fn('trackMissingEnv')
    this.#missingEnv = fn('missingEnv')
    this.#abandonRef = fn('abandon')
  }

  get disposed(): boolean {
    return this.isolate.isDisposed
  }

  dispose(): void {
    if (!this.isolate.isDisposed) this.isolate.dispose()
  }

  /** Evaluates `path`'s default export (as exportDefault) and lists the unset env vars it read. */
  exportDefaultTrackingEnv(path: string, timeoutMs: number): { json: string; missingEnv: string[] } {
    this.#trackMissingEnv.applySync(undefined, [])
    try {
      this.loadModule(path, timeoutMs)
      return { json: this.exportDefault(path), missingEnv: JSON.parse(this.#missingEnv.applySync(undefined, []) as string) as string[] }
    } catch (e) {
      this.#missingEnv.applySync(undefined, [])
      throw e
    }
  }

  setEnv(env: Record<string, string>): void {
    // The same object as last time (the pool's, or a component's cached one): nothing to compare.
    if (env === this.#envObject) return
    this.#envObject = env
    const json = JSON.stringify(env)
    if (json === this.#envJson) return
    this.#envJson = json
    this.#setEnv.applySync(undefined, [json])
  }

  #compile(path: string): ivm.Module {
    let mod = this.#loaded.get(path)
    if (mod !== undefined) return mod
    return this.#keep(path, this.isolate.compileModuleSync(this.#source(path), { filename: `convex:/${path}` }))
  }

  /** #compile with isolated-vm's async compile: a step of the call that runs meanwhile isn't waited on. */
  async #compileOffThread(path: string): Promise<ivm.Module> {
    const compiled = this.#loaded.get(path)
    if (compiled !== undefined) return compiled
    return this.#keep(path, await this.isolate.compileModule(this.#source(path), { filename: `convex:/${path}` }))
  }

  /** A compiled module kept by its path (another compiled meanwhile, by an import: the first stays). */
  #keep(path: string, mod: ivm.Module): ivm.Module {
    const kept = this.#loaded.get(path)
    if (kept !== undefined) return kept
    this.#loaded.set(path, mod)
    this.#paths.set(mod, path)
    return mod
  }

  /** A module's source as compiled: its dynamic imports rewritten (see dynamic-import.ts), once per push. */
  #source(path: string): string {
    const record = this.modules.get(path)
    if (record === undefined) throw new ModuleResolutionError(`Module not found: ${path}`)
    let source = rewritten.get(record)
    if (source === undefined) rewritten.set(record, (source = rewriteDynamicImports(record.source)))
    return source
  }

  /** How `path`'s imports name modules: resolved against its own path. */
  #resolver(path: string): (specifier: string, referrer: ivm.Module) => string {
    return (specifier, referrer) => resolveSpecifier(specifier, this.#paths.get(referrer) ?? path)
  }

  /** Imports `path` (and what it imports) once; module evaluation is deterministic like a query. */
  loadModule(path: string, timeoutMs: number): void {
    if (this.#evaluated.has(path)) return
    const mod = this.#instantiate(path)
    this.#beginImport.applySync(undefined, [0, Date.now(), this.timeOrigin])
    try {
      mod.evaluateSync({ timeout: timeoutMs })
    } catch (e) {
      this.#evaluationFailed(path, e)
    }
    this.#register.applySync(undefined, [path, mod.namespace.derefInto()])
    this.#evaluated.add(path)
  }
  readonly #evaluated = new Set<string>()

  /**
   * loadModule for an action: the module's top level runs on isolated-vm's threads, so one that
   * runs long doesn't hold up the server. Within the call (`importPhase` false: an `import(…)`),
   * it runs as the call's code (its lines are the call's, its clock real), as in Convex.
   */
  loadModuleOffThread(path: string, timeoutMs: number, importPhase: boolean): Promise<void> {
    // One at a time (imports made together wait in turn): a second evaluation started while one
    // runs would find the module half done, and compiling would wait on the busy isolate.
    const loading = this.#loading.then(() => this.#loadOffThread(path, timeoutMs, importPhase))
    this.#loading = loading.catch(() => {})
    return loading
  }
  #loading: Promise<void> = Promise.resolve()

  async #loadOffThread(path: string, timeoutMs: number, importPhase: boolean): Promise<void> {
    if (this.#evaluated.has(path)) return
    if (this.#failed.has(path)) throw this.#failed.get(path)
    const mod = await this.#compileOffThread(path)
    const resolve = this.#resolver(path)
    await mod.instantiate(this.context, (specifier, referrer) => this.#compileOffThread(resolve(specifier, referrer)))
    if (importPhase) await this.#beginImport.apply(undefined, [0, Date.now(), this.timeOrigin])
    try {
      await mod.evaluate({ timeout: timeoutMs })
    } catch (e) {
      this.#evaluationFailed(path, e)
    }
    await this.#register.apply(undefined, [path, mod.namespace.derefInto()])
    this.#evaluated.add(path)
  }

  /** `path`'s module compiled and linked to what it imports (a module whose evaluation failed: its error again). */
  #instantiate(path: string): ivm.Module {
    if (this.#failed.has(path)) throw this.#failed.get(path)
    const mod = this.#compile(path)
    const resolve = this.#resolver(path)
    mod.instantiateSync(this.context, (specifier, referrer) => this.#compile(resolve(specifier, referrer)))
    return mod
  }

  /**
   * A module's evaluation threw: isolated-vm would not throw it again were the module evaluated
   * again (Convex's fresh context would), so the error is kept for this call's later imports and
   * the isolate is not used again (the pool disposes it).
   */
  #evaluationFailed(path: string, e: unknown): never {
    this.#retired = true
    this.#failed.set(path, e)
    throw e
  }
  readonly #failed = new Map<string, unknown>()
  #retired = false

  /** Whether the pool should dispose this isolate rather than use it again (see #evaluationFailed). */
  get retired(): boolean {
    return this.#retired
  }

  /**
   * An action's `import(…)` (runtime/index.ts dynamicImport): the module is evaluated within the
   * call, as Convex's are (its top level logs to the call, reads the real clock). Answers the
   * syscall's `ok, payload`: the module's path, or the error as Convex puts it (a module that
   * isn't there, or what its code threw: Convex rejects with an Error of that text); running out
   * of time or memory ends the call (its limit `callTimeoutMs` named in the message).
   */
  async #importDynamically(argsJson: string, root: string, timeoutMs: number, callTimeoutMs: number): Promise<[boolean, string]> {
    const { specifier, referrer } = JSON.parse(argsJson) as { specifier: string; referrer: string }
    try {
      // Within the component's own modules (a path climbing past their root stays at it), as
      // Convex resolves against each component's module set; the app's don't include components'.
      const local = resolveSpecifier(specifier, referrer.startsWith(root) ? referrer.slice(root.length) : referrer)
      const path = `${root}${local}`
      if (!this.modules.has(path) || (root === '' && local.startsWith(COMPONENT_MODULES))) {
        throw new ModuleResolutionError(`Couldn't find JavaScript module '${local}'. Did you forget to run \`npx convex dev\`?`)
      }
      await this.loadModuleOffThread(path, timeoutMs, false)
      return [true, JSON.stringify(path)]
    } catch (e) {
      const translated = this.#translate(e, callTimeoutMs)
      if (translated instanceof SandboxError) throw translated
      return [false, JSON.stringify({ message: this.loadErrorText(e) })]
    }
  }

  /**
   * An error thrown while a module was loaded, as Convex prints it in a push's failure: what the
   * module's code threw as a JsError (`Uncaught <name>: <message>`, then its frames mapped to the
   * app's sources); an import that names no module, or the time limit, as its message.
   */
  loadErrorText(e: unknown): string {
    // A thrown non-object: Convex says `Uncaught <value>`.
    if (!(e instanceof Error)) return uncaughtMessage('', String(e))
    const err = e
    if (err instanceof ModuleResolutionError || err instanceof SandboxError || /Script execution timed out/.test(err.message)) return err.message
    const text = uncaughtMessage(err.name, err.message)
    const frames = mappedFrames(err)
    return frames === null ? text : `${text}\n${frames}`
  }

  /** The functions, routes and crons a loaded module exports (push analysis). */
  analyze(path: string): ModuleAnalysis {
    return JSON.parse(this.#analyze.applySync(undefined, [path]) as string)
  }

  /** The JSON of a module's default export's `export()` (schema.js, convex.config.js). */
  exportDefault(path: string): string {
    return this.#exportDefault.applySync(undefined, [path]) as string
  }

  /**
   * Runs one call to completion, serving its syscalls through `handler`.
   *
   * `timeoutMs` bounds an action's whole run. For a query or mutation it bounds the time its code
   * runs (the entries into the isolate), as Convex's user timeout does: the host's work on its
   * syscalls (database reads, nested calls), and waiting on them, is not counted; that has a budget
   * of its own (`systemTimeoutMs`, Convex's DATABASE_UDF_SYSTEM_TIMEOUT).
   */
  async run(spec: CallSpec, handler: SyscallHandler, timeoutMs: number, opts: { systemTimeoutMs?: number; clock?: () => number } = {}): Promise<CallOutcome> {
    const clock = opts.clock ?? (() => performance.now())
    const systemTimeoutMs = opts.systemTimeoutMs ?? SYSTEM_TIMEOUT_MS
    const offThread = spec.kind === 'action' || spec.kind === 'httpAction'
    const startedAt = clock()
    /** A query's or mutation's running time so far: the time spent inside the isolate. */
    let used = 0
    const running = <T>(enterIsolate: () => T): T => {
      const t0 = clock()
      try {
        return enterIsolate()
      } finally {
        used += clock() - t0
      }
    }
    const remaining = () => Math.max(1, Math.ceil(offThread ? startedAt + timeoutMs - clock() : timeoutMs - used))
    const overTime = () => (offThread ? clock() - startedAt : used) > timeoutMs
    /** The host's time on the call's syscalls, and waiting on them. */
    const systemTime = () => clock() - startedAt - used
    this.#handler = handler
    const ending: { error: unknown } = { error: null }
    this.#ending = ending
    this.#offThread = offThread
    /** Results for the next step: `id, ok, payload` each (see runtime/index.ts). */
    const settled: (number | boolean | string)[] = []
    /** Operations dispatched and not settled yet. */
    let inflight = 0
    /** An action's operations dispatched whose results it hasn't been given yet, by id (see `dangling`). */
    const undelivered = new Map<number, string>()
    let wake: (() => void) | null = null
    const enter = async (ref: Ref, args: unknown[]): Promise<unknown> => {
      const r = offThread ? await ref.apply(undefined, args, { timeout: remaining() }) : running(() => ref.applySync(undefined, args, { timeout: remaining() }))
      // A syscall failed in a way that ends the call, whatever the code did with the error.
      if (ending.error !== null) throw ending.error
      return r
    }
    this.#queued = []
    this.#done = null
    try {
      if (offThread) await this.loadModuleOffThread(spec.modulePath, remaining(), true)
      else running(() => this.loadModule(spec.modulePath, remaining()))
      const start: unknown[] = [spec.kind, spec.modulePath, spec.exportName, spec.argsJson, spec.seed, spec.nowMs, spec.snapshotTs, spec.requestId]
      if (spec.request !== undefined) start.push(JSON.stringify(spec.request))
      await enter(this.#start, start)
      for (;;) {
        // A query or mutation that returned still runs the syscalls it left behind (an insert
        // nobody awaited, and what follows it) to completion, as Convex's: its value stands.
        if (ending.error !== null) throw ending.error
        const done = this.#done as CallOutcome | null
        if (done !== null && (!done.ok || offThread)) {
          done.elapsedMs = offThread ? clock() - startedAt : used
          // (An action's operations still running or not started: Convex warns of them.)
          if (offThread) done.dangling = [...undelivered.values(), ...this.#queued.filter(([id]) => id !== 0).map(([, op]) => op)]
          return done
        }
        for (const [id, op, argsJson] of this.#queued.splice(0)) {
          // (Only an action's. A query or mutation is refused in the sandbox; one that sends the op
          // itself, through Convex.asyncSyscall, gets the host's unknown-operation error.)
          if (op === DYNAMIC_IMPORT_OP && offThread) {
            inflight++
            undelivered.set(id, op)
            this.#importDynamically(argsJson, spec.root ?? '', remaining(), timeoutMs).then(
              ([ok, payload]) => settled.push(id, ok, payload),
              (e: unknown) => {
                if (ending === this.#ending && ending.error === null) ending.error = e
              },
            ).finally(() => {
              inflight--
              wake?.()
            })
            continue
          }
          if (id === 0) {
            void handler.async(op, argsJson).catch(() => {})
            continue
          }
          inflight++
          if (offThread) undelivered.set(id, op)
          handler.async(op, argsJson).then(
            (result) => {
              // (A nested call's lines go first, under id -1: see runtime/index.ts `step`.)
              if (typeof result === 'string') settled.push(id, true, result)
              else settled.push(-1, true, JSON.stringify(result.logLines), id, true, result.value)
            },
            (e: unknown) => {
              const lines = (e as { logLines?: unknown } | null)?.logLines
              if (Array.isArray(lines)) settled.push(-1, true, JSON.stringify(lines))
              // (A syscall that settles after its call ended touches no later call.)
              if (ending === this.#ending) this.#end(e)
              settled.push(id, false, JSON.stringify(errorPayload(e)))
            },
          ).finally(() => {
            inflight--
            wake?.()
          })
        }
        if (done !== null && settled.length === 0 && inflight === 0) {
          done.elapsedMs = used
          return done
        }
        if (settled.length === 0 && inflight > 0) {
          const timer = setTimeout(() => wake?.(), offThread ? remaining() : Math.max(1, Math.ceil(systemTimeoutMs - systemTime())))
          await new Promise<void>((resolve) => (wake = resolve))
          wake = null
          clearTimeout(timer)
          // Let other syscalls that settle at the same moment join this step.
          await Promise.resolve()
        }
        if (!offThread && systemTime() >= systemTimeoutMs) throw new SandboxError(SYSTEM_TIMEOUT_MESSAGE, true)
        if (overTime()) throw new SandboxError(timedOutMessage(timeoutMs), true)
        // An entry returns only after the microtasks it caused: with nothing in flight, nothing
        // can ever wake the call again. (A wake-up timer that fired a hair early just loops.)
        if (settled.length === 0 && inflight > 0) continue
        if (settled.length === 0) throw new SandboxError('Returned promise will never resolve', false)
        const results = settled.splice(0)
        if (offThread) for (let i = 0; i < results.length; i += 3) undelivered.delete(results[i] as number)
        // Arguments live on the stack: a huge batch (tens of thousands of syscalls at once) goes as JSON.
        await enter(this.#step, results.length > MAX_STEP_ARGUMENTS ? [JSON.stringify(results)] : results)
      }
    } catch (e) {
      // A call a syscall ended fails with that error, whatever was thrown after it (the code's
      // rejection of it, left unhandled, is one), unless the sandbox itself failed since (out of
      // memory, out of time: the isolate is spent).
      const thrown = this.#translate(e, timeoutMs)
      const translated = thrown instanceof SandboxError && thrown.fatal ? thrown : this.#translate(ending.error ?? e, timeoutMs)
      // A developer error Convex lets no code catch: the call fails with its message as it is,
      // and the lines logged until then.
      if (translated instanceof UncatchableError) {
        const failed: CallOutcome = { ok: false, message: translated.message, asIs: true, logLines: this.#abandon(), elapsedMs: offThread ? clock() - startedAt : used }
        if (translated.frames !== null) failed.mappedFrames = translated.frames
        return failed
      }
      // A promise rejection nothing handled: isolated-vm throws it once the microtasks have run.
      // As Convex, it fails the call with its error (`Uncaught Error: …` and its frames), the
      // lines logged so far kept.
      if (!(translated instanceof SandboxError) && !terminatesCall(translated) && translated instanceof Error && (translated.stack ?? '').includes(ISOLATED_VM_BOUNDARY)) {
        const failed: CallOutcome = { ok: false, name: translated.name, message: translated.message, logLines: this.#abandon(), elapsedMs: offThread ? clock() - startedAt : used }
        const frames = mappedFrames(translated)
        if (frames !== null) failed.mappedFrames = frames
        return failed
      }
      throw translated
    } finally {
      this.#handler = null
      this.#queued = []
      this.#done = null
      this.#ending = null
      this.#offThread = false
    }
  }

  /**
   * Records a syscall's error that ends the running call (see terminatesCall), if it is the first:
   * in a query or mutation any such error; in an action, whose code may catch the system's errors
   * as in Convex, only a developer error Convex can't let it catch.
   */
  #end(e: unknown): void {
    const ending = this.#ending
    if (ending === null || ending.error !== null || !terminatesCall(e)) return
    if (!this.#offThread || e instanceof UncatchableError) ending.error = e
  }

  /**
   * Ends the running call in the sandbox (it failed in a way the runtime didn't see: see run) and
   * gives the lines it logged. (A query or mutation that had returned handed over its lines with
   * its value.)
   */
  #abandon(): string[] {
    const earlier = (this.#done as CallOutcome | null)?.logLines ?? []
    try {
      return [...earlier, ...(JSON.parse(this.#abandonRef.applySync(undefined, [], { timeout: 1000 }) as string) as string[])]
    } catch {
      // (An isolate that can't say is past using: the lines it held are lost with it.)
      return earlier
    }
  }

  #translate(e: unknown, timeoutMs: number): unknown {
    if (e instanceof SandboxError) return e
    const message = e instanceof Error ? e.message : String(e)
    if (this.isolate.isDisposed || /memory limit/i.test(message)) {
      return new SandboxError(`JavaScript execution ran out of memory (maximum memory usage: ${this.memoryLimitMb} MB)`, true)
    }
    if (/Script execution timed out/.test(message)) {
      return new SandboxError(timedOutMessage(timeoutMs), true)
    }
    return e
  }
}

/**
 * The frames of an error a module's evaluation threw, as the sandbox's `stack` already holds them
 * mapped to the app's sources (see runtime/frames.ts: the host maps them when `stack` is built),
 * or null when it has none. isolated-vm passes the error out as `<name>: <message>` followed by
 * that text, then its own boundary and the host's frames, which are cut off.
 */
function mappedFrames(err: Error): string | null {
  const stack = err.stack ?? ''
  const head = `${err.name}: ${err.message}`
  if (!stack.startsWith(head)) return null
  const rest = stack.slice(head.length)
  // (No boundary: the error was made on the host's side, its frames the host's own.)
  const boundary = rest.indexOf(`    at ${ISOLATED_VM_BOUNDARY}`)
  if (boundary === -1) return null
  // (The host's own frames, of an error a host callback made, are left out: the app's are mapped.)
  const frames = rest
    .slice(0, boundary)
    .split('\n')
    .filter((line) => line.startsWith('    at ') && !/\(?(file:\/\/|node:)/.test(line))
    .join('\n')
  return frames === '' ? null : frames
}

/**
 * Whether a syscall's error ends the call it was made in (the system's failure, such as a
 * conflict or an overload, not the function's: see SystemFailure in database/errors.ts), rather
 * than being thrown to the code to handle.
 */
function terminatesCall(e: unknown): boolean {
  return e !== null && typeof e === 'object' && (e as { terminatesCall?: unknown }).terminatesCall === true
}

/** What an async syscall rejection looks like to the library: `{message, data?}`. */
export function errorPayload(e: unknown): { message: string; data?: unknown } {
  if (e !== null && typeof e === 'object' && 'message' in e) {
    const err = e as { message: string; data?: unknown }
    return err.data === undefined ? { message: String(err.message) } : { message: String(err.message), data: err.data }
  }
  return { message: String(e) }
}

/** Each pushed module's source as compiled (its dynamic imports rewritten), once per push. */
const rewritten = new WeakMap<ModuleRecord, string>()

/** An import that names no module the push has (Convex: a ModuleResolutionError, not the module's own throw). */
export class ModuleResolutionError extends Error {
  override name = 'ModuleResolutionError'
}

/** Resolves an import specifier against the importing module's path (`./_deps/X.js` etc.). */
export function resolveSpecifier(specifier: string, from: string): string {
  // The system modules a test query may import (`convex:/_system/repl/wrappers.js`).
  if (specifier.startsWith('convex:/_system/')) return specifier.slice('convex:/'.length)
  if (!specifier.startsWith('./') && !specifier.startsWith('../')) {
    throw new ModuleResolutionError(`Cannot import "${specifier}" from ${from}: only relative imports between pushed modules are supported`)
  }
  const parts = from.split('/').slice(0, -1)
  for (const seg of specifier.split('/')) {
    if (seg === '.' || seg === '') continue
    if (seg === '..') parts.pop()
    else parts.push(seg)
  }
  return parts.join('/')
}
