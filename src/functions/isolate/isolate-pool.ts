/**
 * @module IsolatePool: warm isolates for the current module set.
 *
 * A call takes an isolate exclusively and gives it back when done; idle isolates keep their
 * loaded modules, so a warm call pays a few µs instead of building a context. A push starts a new
 * generation: idle isolates of the old one are disposed, busy ones when they come back.
 */
import type { ModuleRecord } from '../../storage/persistence.ts'
import { IsolateHost } from './isolate-host.ts'
import { NodeExecutor } from '../node/node-executor.ts'

/**
 * Idle isolates kept warm at most (each holds the modules it ran; ~5 MB each with a component
 * app). A call nested in another (`ctx.runQuery`/`ctx.runMutation`, component calls) takes an
 * isolate of its own, so a burst of scheduled work through components holds several per job: 12
 * workflows of @convex-dev/workflow at once held 42. With fewer kept, the extra isolates are
 * disposed as they come back and built again for the next calls, with their modules compiled and
 * evaluated anew (~10-50 ms of main-thread work each; measured on that burst: 8 kept, 27 s and
 * 30 s of CPU; 48 kept, 8 s and 9 s of CPU). Earlier, 5,000 subscription runs went from ~75 s to
 * ~8 s when the cap rose from 1 to 8.
 */
const MAX_IDLE = 48
/** Idle isolates kept however long they go unused. */
const MIN_IDLE = 8
/** An idle isolate past MIN_IDLE unused this long is disposed (its memory goes back). */
export const IDLE_TRIM_MS = 30_000

export class IsolatePool {
  /** Idle isolates, the most recently used last (taken first), with when each came back. */
  #idle: IsolateHost[] = []
  readonly #idleSince = new WeakMap<IsolateHost, number>()
  #trimTimer: NodeJS.Timeout | null = null
  #generation = 0
  #modules: ReadonlyMap<string, ModuleRecord> = new Map()
  /** When the current module set was loaded: functions see it as `performance.timeOrigin`. */
  #modulesLoadedAt = Date.now()
  #env: Record<string, string> = {}
  /** Isolates this pool created that are not disposed yet, and the most there have been. */
  #live = new Set<IsolateHost>()
  peak = 0
  /** Where the actions of `"use node"` modules run. */
  readonly node: NodeExecutor

  constructor(
    readonly runtimeSource: string,
    readonly memoryLimitMb: number,
    nodeMemoryLimitMb: number,
    /** The clock idle isolates are aged by (injectable for tests). */
    readonly now: () => number = Date.now,
  ) {
    this.node = new NodeExecutor(nodeMemoryLimitMb)
  }

  get modules(): ReadonlyMap<string, ModuleRecord> {
    return this.#modules
  }

  /** The deployment's environment variables (a new object whenever they change). */
  get env(): Record<string, string> {
    return this.#env
  }

  /** Switches to a new module set (after a push), with its Node actions' external packages. */
  setModules(modules: readonly ModuleRecord[], nodePackagesDir: string | null = null): void {
    this.#modules = new Map(modules.map((m) => [m.path, m]))
    this.#modulesLoadedAt = Date.now()
    this.node.setPackages(nodePackagesDir)
    this.#generation++
    for (const host of this.#idle) host.dispose()
    this.#idle = []
    this.node.retire()
  }

  /**
   * Sets `process.env` for calls from now on. Modules may read it at import time, so warm
   * isolates (which imported with the old values) are retired, as after a push.
   */
  setEnv(env: Record<string, string>): void {
    if (JSON.stringify(env) === JSON.stringify(this.#env)) return
    this.#env = env
    this.#generation++
    for (const host of this.#idle) host.dispose()
    this.#idle = []
    this.node.retire()
  }

  /** The JSON of a module's default export's `export()` (e.g. crons.js), or null if absent. */
  exportOf(path: string): string | null {
    if (!this.#modules.has(path)) return null
    const host = this.scratch([...this.#modules.values()])
    try {
      host.setEnv(this.#env)
      host.loadModule(path, 10_000)
      return host.exportDefault(path)
    } finally {
      host.dispose()
    }
  }

  /** A fresh isolate over the given modules, not part of the pool (push analysis). */
  scratch(modules: readonly ModuleRecord[]): IsolateHost {
    return new IsolateHost(this.runtimeSource, new Map(modules.map((m) => [m.path, m])), -1, this.memoryLimitMb)
  }

  acquire(): IsolateHost {
    let host = this.#idle.pop()
    while (host !== undefined && host.disposed) host = this.#idle.pop()
    if (host === undefined) {
      host = new IsolateHost(this.runtimeSource, this.#modules, this.#generation, this.memoryLimitMb, this.#modulesLoadedAt)
      this.#live.add(host)
      this.peak = Math.max(this.peak, this.live)
    }
    host.setEnv(this.#env)
    return host
  }

  /** Live isolates (in use or idle). */
  get live(): number {
    for (const h of this.#live) if (h.disposed) this.#live.delete(h)
    return this.#live.size
  }

  release(host: IsolateHost): void {
    if (host.disposed) return
    // (A retired isolate holds a module that failed to load, which it would not fail again: see IsolateHost.retired.)
    if (this.#closed || host.retired || host.generation !== this.#generation || this.#idle.length >= MAX_IDLE) return host.dispose()
    this.#idle.push(host)
    this.#idleSince.set(host, this.now())
    if (this.#idle.length > MIN_IDLE && this.#trimTimer === null) {
      this.#trimTimer = setInterval(() => this.trim(), IDLE_TRIM_MS / 2)
      this.#trimTimer.unref()
    }
  }

  /**
   * Disposes idle isolates past MIN_IDLE that have gone unused for IDLE_TRIM_MS (the least
   * recently used are first in line), so a burst's isolates don't hold memory once it is over.
   */
  trim(): void {
    const cutoff = this.now() - IDLE_TRIM_MS
    let stale = 0
    while (this.#idle.length - stale > MIN_IDLE && (this.#idleSince.get(this.#idle[stale]!) ?? 0) <= cutoff) stale++
    for (const host of this.#idle.splice(0, stale)) host.dispose()
    if (this.#idle.length <= MIN_IDLE && this.#trimTimer !== null) {
      clearInterval(this.#trimTimer)
      this.#trimTimer = null
    }
  }

  #closed = false

  close(): void {
    this.#closed = true
    for (const host of this.#idle) host.dispose()
    this.#idle = []
    if (this.#trimTimer !== null) clearInterval(this.#trimTimer)
    this.#trimTimer = null
    void this.node.close()
  }
}
