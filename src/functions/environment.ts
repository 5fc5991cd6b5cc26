/**
 * @module EnvironmentVariables: the deployment's `process.env`, set with `npx convex env set`
 * (`POST /api/update_environment_variables`) and kept in the store. A change is visible to the
 * next function call.
 */
import type { Persistence } from '../storage/persistence.ts'

/** Convex's limits (crates/common: environment_variables.rs, knobs.rs). */
const MAX_VARIABLES = 512
const MAX_TOTAL_BYTES = 512 * 1024
const MAX_NAME_LENGTH = 256
const MAX_VALUE_BYTES = 8 * 1024
const NAME = /^[a-zA-Z_]+[a-zA-Z0-9_]*$/

/** Built-in variables every function sees (Convex's CONVEX_CLOUD_URL and CONVEX_SITE_URL). */
export interface SystemVariables {
  readonly CONVEX_CLOUD_URL: string
  readonly CONVEX_SITE_URL: string
}

const GLOBAL_KEY = 'environment_variables'

/** A refused change, answered as HTTP 400 with `code`. */
export class EnvironmentError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

export interface EnvChange {
  name: string
  value: string | null
}

export class EnvironmentVariables {
  #vars: Record<string, string> = {}
  #forFunctions: Record<string, string>
  readonly #listeners: ((vars: Record<string, string>) => void)[] = []

  constructor(
    readonly persistence: Persistence,
    readonly system: SystemVariables,
  ) {
    this.#forFunctions = { ...system }
  }

  async load(): Promise<void> {
    const saved = await this.persistence.getGlobal(GLOBAL_KEY)
    this.#vars = saved === undefined ? {} : (JSON.parse(saved) as Record<string, string>)
    this.#notify()
  }

  /** The variables set on the deployment (what `npx convex env list` shows). */
  get all(): Readonly<Record<string, string>> {
    return this.#vars
  }

  /** What functions see as `process.env`: the built-in variables and the deployment's. */
  get forFunctions(): Readonly<Record<string, string>> {
    return this.#forFunctions
  }

  /** Called with `forFunctions` now and after every change. */
  onChange(listener: (vars: Record<string, string>) => void): void {
    this.#listeners.push(listener)
    listener(this.#forFunctions)
  }

  #notify(): void {
    this.#forFunctions = { ...this.#vars, ...this.system }
    for (const l of this.#listeners) l(this.#forFunctions)
  }

  /**
   * Applies a batch of changes (`value: null` removes) atomically, or none if one is invalid.
   * `check` may refuse the result (the app definition's required variables and validators).
   */
  async apply(changes: readonly EnvChange[], check?: (next: Readonly<Record<string, string>>, removed: readonly string[]) => void): Promise<void> {
    const next = { ...this.#vars }
    const removed: string[] = []
    // Convex applies every removal before any set.
    const ordered = [...changes].sort((a, b) => Number(a?.value !== null) - Number(b?.value !== null))
    for (const change of ordered) {
      if (change === null || typeof change !== 'object' || typeof change.name !== 'string') {
        throw new EnvironmentError('InvalidEnvironmentVariables', 'Each change must be {"name": string, "value": string | null}')
      }
      const { name, value } = change
      if (!NAME.test(name)) {
        throw new EnvironmentError(
          'EnvironmentVariableNameInvalid',
          `The environment variable name ${name} is invalid. Environment variable names must begin with a letter and may only include characters a-z, A-Z, 0-9, and underscores.`,
        )
      }
      if (name.length > MAX_NAME_LENGTH) {
        throw new EnvironmentError('EnvironmentVariableNameTooLong', `The environment variable name ${name} is too long. Environment variable names must be less than ${MAX_NAME_LENGTH}.`)
      }
      if (value === null) {
        delete next[name]
        removed.push(name)
        continue
      }
      if (typeof value !== 'string') throw new EnvironmentError('InvalidEnvironmentVariables', `The value of environment variable "${name}" must be a string`)
      const length = Buffer.byteLength(value)
      if (length > MAX_VALUE_BYTES) {
        throw new EnvironmentError('EnvironmentVariableValueTooLarge', `The environment variable value is ${length} bytes, which is too large. (max size: ${MAX_VALUE_BYTES}`)
      }
      if (Object.hasOwn(this.system, name)) {
        throw new EnvironmentError('EnvVarNameForbidden', `Environment variable with name "${name}" is built-in and cannot be overridden`)
      }
      next[name] = value
    }
    if (Object.keys(next).length > MAX_VARIABLES) {
      throw new EnvironmentError('EnvVarLimitMet', `The environment variable limit (${MAX_VARIABLES}) has been met.`)
    }
    const total = Object.entries(next).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0)
    if (total > MAX_TOTAL_BYTES) {
      throw new EnvironmentError('EnvVarTotalSizeLimitMet', `The total size of all environment variables (${total} bytes) exceeds the limit (${MAX_TOTAL_BYTES} bytes).`)
    }
    check?.(next, removed)
    await this.persistence.setGlobal(GLOBAL_KEY, JSON.stringify(next))
    this.#vars = next
    this.#notify()
  }
}
