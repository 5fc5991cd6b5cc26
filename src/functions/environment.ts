/**
 * @module EnvironmentVariables: the deployment's `process.env`, set with `npx convex env set`
 * (`POST /api/update_environment_variables`). Each variable is a document of the
 * `_environment_variables` system table, written through the committer like every other write
 * (a batch of changes is one commit; concurrent batches conflict and re-run). A change is visible
 * to the next function call.
 */
import type { Database } from '../database/database.ts'
import type { Transaction } from '../database/transaction.ts'
import { FollowedTable } from '../database/followed-table.ts'

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

/** Where variables were kept before they were documents (read once, at start, to move them). */
const GLOBAL_KEY = 'environment_variables'
export const ENVIRONMENT_VARIABLES_TABLE = '_environment_variables'

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
    readonly db: Database,
    readonly system: SystemVariables,
  ) {
    this.#forFunctions = { ...system }
    this.#table = new FollowedTable(db, ENVIRONMENT_VARIABLES_TABLE, async (txn) => {
      const vars = Object.fromEntries([...(await this.#docs(txn)).values()].map((d) => [d.name, d.value]))
      if (sameVariables(vars, this.#vars)) return
      this.#vars = vars
      this.#notify()
    })
  }

  /** Reads the variables (moving those of an older data folder into their table first). */
  async load(): Promise<void> {
    await this.db.exclusive(async () => void (await this.db.catalog.ensureTable(ENVIRONMENT_VARIABLES_TABLE)))
    const legacy = await this.db.persistence.getGlobal(GLOBAL_KEY)
    if (legacy !== undefined && legacy !== '{}') {
      const vars = JSON.parse(legacy) as Record<string, string>
      await this.db.mutate(async (txn) => {
        const docs = await this.#docs(txn)
        for (const [name, value] of Object.entries(vars)) if (!docs.has(name)) await txn.insertSystem(ENVIRONMENT_VARIABLES_TABLE, { name, value })
      })
      await this.db.persistence.setGlobal(GLOBAL_KEY, '{}')
    }
    // (On a store shared by several processes another one may change them: read again then.)
    await this.#table.load()
  }

  readonly #table: FollowedTable

  /** The variables' documents as `txn` sees them (read recorded: concurrent changes conflict). */
  async #docs(txn: Transaction): Promise<Map<string, { _id: string; name: string; value: string }>> {
    const key = `env:${Math.random()}`
    const stream = txn.openStream(key, { source: { type: 'FullTableScan', tableName: ENVIRONMENT_VARIABLES_TABLE, order: null }, operators: [] })
    const out = new Map<string, { _id: string; name: string; value: string }>()
    try {
      for (let row = await stream.nextRow(); row !== null; row = await stream.nextRow()) {
        const d = JSON.parse(row.json) as { _id: string; name: string; value: string }
        out.set(d.name, d)
      }
    } finally {
      txn.closeStream(key)
    }
    return out
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

  /** The built-in variables changed (a canonical URL was set): functions see them from now. */
  systemChanged(): void {
    this.#notify()
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
    const next = await this.db.mutate(async (txn) => {
      const docs = await this.#docs(txn)
      const next = this.#next(Object.fromEntries([...docs.values()].map((d) => [d.name, d.value])), changes, check)
      for (const [name, d] of docs) {
        if (next[name] === undefined) await txn.removeSystem(d._id, '')
        else if (next[name] !== d.value) await txn.patchSystem(d._id, { value: next[name] }, '')
      }
      for (const [name, value] of Object.entries(next)) if (!docs.has(name)) await txn.insertSystem(ENVIRONMENT_VARIABLES_TABLE, { name, value })
      return next
    })
    this.#vars = next
    this.#notify()
  }

  /** The variables after `changes`, checked (Convex's rules and limits, then `check`). */
  #next(current: Record<string, string>, changes: readonly EnvChange[], check?: (next: Readonly<Record<string, string>>, removed: readonly string[]) => void): Record<string, string> {
    const next = { ...current }
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
    return next
  }
}

function sameVariables(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const keys = Object.keys(a)
  return keys.length === Object.keys(b).length && keys.every((k) => b[k] === a[k])
}
