/**
 * @module System functions: the `_system/...` queries the Convex CLI runs over the sync socket
 * (`npx convex env list/get`, …), answered by the host. Admin only.
 */
import type { JSONValue } from '../values/index.ts'
import type { EnvironmentVariables } from './environment.ts'
import { parseFunctionPath } from './registry.ts'

export interface SystemFunction {
  readonly udfType: 'Query' | 'Mutation'
  run(args: Record<string, JSONValue>): JSONValue
}

export function systemFunctions(env: EnvironmentVariables): Map<string, SystemFunction> {
  const list = (): JSONValue =>
    Object.entries(env.all)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, value]) => ({ name, value }))
  return new Map<string, SystemFunction>([
    ['_system/cli/queryEnvironmentVariables.js:default', { udfType: 'Query', run: list }],
    [
      '_system/cli/queryEnvironmentVariables.js:get',
      {
        udfType: 'Query',
        run: ({ name }) => (typeof name === 'string' && env.all[name] !== undefined ? { name, value: env.all[name]! } : null),
      },
    ],
  ])
}

/** The canonical key of a `_system/...` path, or null if the path is not a system path. */
export function systemKey(path: string): string | null {
  if (!path.startsWith('_system/')) return null
  const { modulePath, exportName } = parseFunctionPath(path)
  return `${modulePath}:${exportName}`
}
