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
 * Idle isolates kept warm at most (each holds the user's modules; a few MB each). As many as
 * queries and mutations run at once (8, function-runner.ts): with fewer, a steady stream of
 * calls disposes the extra isolates as they come back and builds new ones for the next calls
 * (~10 ms of main-thread work each, measured: 5,000 subscription runs went from ~75 s to ~8 s).
 */
const MAX_IDLE = 8

export class IsolatePool {
  #idle: IsolateHost[] = []
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
    if (host.generation !== this.#generation || this.#idle.length >= MAX_IDLE) host.dispose()
    else this.#idle.push(host)
  }

  close(): void {
    for (const host of this.#idle) host.dispose()
    this.#idle = []
    void this.node.close()
  }
}
