/**
 * @module What Convex checks of a scheduled function, and when, with its words. Scheduling
 * (`ctx.scheduler.runAfter/runAt`) checks only that the function exists: its module, then its
 * export. Its kind is checked when the job runs, so a query scheduled through a function handle
 * (or an `any` cast) is scheduled, and its job then fails; as does a job whose function a later
 * push removed.
 */

import { parseFunctionPath } from './registry.ts'
import type { FunctionInfo, Registry } from './registry.ts'

/** ` in 'parent/child'` after a name scoped to a component ('' for the app's own). */
function inComponent(component: string): string {
  return component === '' ? '' : ` in '${component}'`
}

/** Why `name` (`dir/mod:fn`) of `component` can't be scheduled, or null if it can. */
export function schedulingError(registry: Registry | undefined, component: string, name: string): string | null {
  const { modulePath, exportName } = parseFunctionPath(name)
  if (registry?.lookup(name) !== undefined) return null
  if (registry === undefined || !registry.hasModule(modulePath)) {
    return `Attempted to schedule function at nonexistent path: ${component === '' ? '' : `${component} `}${modulePath}`
  }
  return `Attempted to schedule function, but no exported function ${exportName} found in the file: ${modulePath}${inComponent(component)}. Did you forget to export it?`
}

/**
 * What a due job runs as: its function's kind, or the message its job fails with (its module or
 * export is gone, or it is neither a mutation nor an action).
 */
export function jobKind(registry: Registry | undefined, component: string, name: string): 'mutation' | 'action' | string {
  const fn: FunctionInfo | undefined = registry?.lookup(name)
  const { modulePath, exportName } = parseFunctionPath(name)
  if (fn === undefined) {
    if (registry === undefined || !registry.hasModule(modulePath)) return `Couldn't find JavaScript module '${modulePath}'. Did you forget to run \`npx convex dev\`?`
    return `Couldn't find ${JSON.stringify(exportName)} in module ${JSON.stringify(modulePath)}.`
  }
  if (fn.udfType === 'Mutation') return 'mutation'
  if (fn.udfType === 'Action') return 'action'
  // Convex's text verbatim: its format string is a raw string literal that spans two source lines,
  // so the message carries the quotes, newline and indentation between its sentences.
  return `Unsupported function type. FunctionName(${JSON.stringify(exportName)}) in module "${modulePath}"${inComponent(component)} is defined as a ${fn.udfType}. "\n                            "Only Mutation and Action can be scheduled.`
}
