/** @module Registry: the pushed app's functions, looked up by the paths clients send. */
import { identifierError, type ValidatorJSON } from '../values/index.ts'

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

/**
 * Why `path` is not a path to a function as Convex parses one (`UdfPath`: a module path, then
 * `:` and the export's name), in its words; null if it is one. The module path is read as Rust
 * reads a path (empty and `.` segments skipped), must be relative, name a file, end in `.js` or
 * nothing, and have segments of letters, digits, `_` and `.`; the export must be an identifier.
 */
export function functionPathError(path: string): string | null {
  const colon = path.lastIndexOf(':')
  const module = colon === -1 ? path : path.slice(0, colon)
  const problem = modulePathError(module)
  if (problem !== null) return problem
  return colon === -1 ? null : identifierError(path.slice(colon + 1))
}

function modulePathError(p: string): string | null {
  // Rust's Path::components: a leading `/` is the root, a leading `.` the current directory,
  // empty and other `.` segments are skipped.
  const parts: { kind: 'RootDir' | 'CurDir' | 'ParentDir' | 'Normal'; name: string }[] = []
  if (p.startsWith('/')) parts.push({ kind: 'RootDir', name: '/' })
  p.split('/').forEach((segment, i) => {
    if (segment === '' || (segment === '.' && (i > 0 || p.startsWith('/')))) return
    parts.push({ kind: segment === '.' ? 'CurDir' : segment === '..' ? 'ParentDir' : 'Normal', name: segment })
  })
  const last = parts[parts.length - 1]
  if (last === undefined || last.kind !== 'Normal') return `Module path ${p} doesn't have a filename.`
  const dot = last.name.lastIndexOf('.')
  const extension = dot <= 0 ? null : last.name.slice(dot + 1)
  if (extension !== null && extension !== 'js') return `Module path (${p}) has an extension that isn't 'js'.`
  for (const part of parts) {
    if (part.kind === 'RootDir') return `Module paths must be relative (${p} is absolute).`
    if (part.kind !== 'Normal') return `Invalid path component ${part.kind} in ${p}.`
  }
  for (const part of parts) {
    const name = part === last && extension === null ? `${part.name}.js` : part.name
    const bytes = Buffer.byteLength(name)
    if (bytes > 64) return `Path component is too long (${bytes} > maximum 64): ${name.slice(0, 64)}...`
    if (!/^[A-Za-z0-9_.]*$/.test(name)) return `Path component ${name} can only contain alphanumeric characters, underscores, or periods.`
    if (!/[A-Za-z0-9]/.test(name)) return `Path component ${name} must have at least one alphanumeric character.`
  }
  return null
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
