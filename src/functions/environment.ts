/**
 * @module EnvironmentVariables: the deployment's `process.env`, set with `npx convex env set`
 * (`POST /api/update_environment_variables`) and kept in the store. A change is visible to the
 * next function call.
 */
import type { Persistence } from '../storage/persistence.ts'

/** Limits from Convex's documentation. */
const MAX_VARIABLES = 100
const MAX_NAME_LENGTH = 40
const MAX_VALUE_BYTES = 8 * 1024
const NAME = /^[A-Za-z][A-Za-z0-9_]*$/

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
  readonly #listeners: ((vars: Record<string, string>) => void)[] = []

  constructor(readonly persistence: Persistence) {}

  async load(): Promise<void> {
    const saved = await this.persistence.getGlobal(GLOBAL_KEY)
    this.#vars = saved === undefined ? {} : (JSON.parse(saved) as Record<string, string>)
    this.#notify()
  }

  get all(): Readonly<Record<string, string>> {
    return this.#vars
  }

  onChange(listener: (vars: Record<string, string>) => void): void {
    this.#listeners.push(listener)
    listener(this.#vars)
  }

  #notify(): void {
    for (const l of this.#listeners) l(this.#vars)
  }

  /** Applies a batch of changes (`value: null` removes) atomically, or none if one is invalid. */
  async apply(changes: readonly EnvChange[]): Promise<void> {
    const next = { ...this.#vars }
    for (const change of changes) {
      if (change === null || typeof change !== 'object' || typeof change.name !== 'string') {
        throw new EnvironmentError('InvalidEnvironmentVariables', 'Each change must be {"name": string, "value": string | null}')
      }
      const { name, value } = change
      if (!NAME.test(name) || name.length > MAX_NAME_LENGTH) {
        throw new EnvironmentError(
          'InvalidEnvVarName',
          `Invalid environment variable name "${name}": names must be at most ${MAX_NAME_LENGTH} characters, start with a letter and only contain letters, numbers and underscores.`,
        )
      }
      if (value === null) {
        delete next[name]
        continue
      }
      if (typeof value !== 'string') throw new EnvironmentError('InvalidEnvVarValue', `The value of environment variable "${name}" must be a string`)
      if (Buffer.byteLength(value) > MAX_VALUE_BYTES) {
        throw new EnvironmentError('InvalidEnvVarValue', `The value of environment variable "${name}" is too large: environment variable values can be at most 8KB.`)
      }
      next[name] = value
    }
    if (Object.keys(next).length > MAX_VARIABLES) {
      throw new EnvironmentError('TooManyEnvironmentVariables', `A deployment can have at most ${MAX_VARIABLES} environment variables.`)
    }
    await this.persistence.setGlobal(GLOBAL_KEY, JSON.stringify(next))
    this.#vars = next
    this.#notify()
  }
}
