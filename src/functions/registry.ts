/** @module Registry: the pushed app's functions, looked up by the paths clients send. */
import type { ValidatorJSON } from '../values/index.ts'

export type UdfType = 'Query' | 'Mutation' | 'Action' | 'HttpAction'

export interface FunctionInfo {
  readonly modulePath: string
  readonly exportName: string
  readonly udfType: UdfType
  readonly visibility: 'public' | 'internal' | null
  readonly args: ValidatorJSON | null
  readonly returns: ValidatorJSON | null
  /** The component instance it runs in (absent or '' for the app's own functions). */
  readonly component?: string
  /** Where its definition's modules live in the module set (absent or '' for the app's). */
  readonly prefix?: string
}

/** Splits `dir/mod:fn` (or `mod.js:fn`, or `mod` for the default export) into module and export. */
export function parseFunctionPath(path: string): { modulePath: string; exportName: string } {
  const colon = path.lastIndexOf(':')
  let mod = colon === -1 ? path : path.slice(0, colon)
  const exportName = colon === -1 ? 'default' : path.slice(colon + 1)
  if (mod.startsWith('convex/')) mod = mod.slice('convex/'.length)
  if (!mod.endsWith('.js')) mod = `${mod}.js`
  return { modulePath: mod, exportName }
}

/** The canonical form Convex logs use: `messages.js:list`. */
export function canonicalPath(modulePath: string, exportName: string): string {
  return `${modulePath}:${exportName}`
}

export class Registry {
  readonly #functions = new Map<string, FunctionInfo>()

  constructor(functions: readonly FunctionInfo[] = []) {
    for (const f of functions) this.#functions.set(canonicalPath(f.modulePath, f.exportName), f)
  }

  lookup(path: string): FunctionInfo | undefined {
    const { modulePath, exportName } = parseFunctionPath(path)
    return this.#functions.get(canonicalPath(modulePath, exportName))
  }

  /** Whether some function of this registry lives in `modulePath` (`dir/mod.js`). */
  hasModule(modulePath: string): boolean {
    for (const f of this.#functions.values()) if (f.modulePath === modulePath) return true
    return false
  }

  all(): FunctionInfo[] {
    return [...this.#functions.values()]
  }
}
