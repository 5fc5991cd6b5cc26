/**
 * @module A pushed module's `import(…)` expressions, rewritten to the runtime's loader before the
 * module is compiled. isolated-vm sets no dynamic-import callback, so V8 would reject each with
 * "Not supported"; Convex serves them in actions (and refuses them in queries and mutations with
 * a TypeError), which the runtime does once it is called instead (runtime/index.ts).
 *
 * es-module-lexer finds the expressions (not a regular expression: `import(` may sit in a string,
 * a comment or a template), and only the keyword changes, to a name of the same length.
 */
import { initSync, parse } from 'es-module-lexer'
import { DYNAMIC_IMPORT } from '../../../runtime/protocol.ts'

/** es-module-lexer's kind of a dynamic `import(…)` expression. */
const DYNAMIC = 2

let ready = false

/** `source` with each dynamic import calling the runtime's loader; as it was when it has none. */
export function rewriteDynamicImports(source: string): string {
  // (Any `import` keyword: a comment may sit between it and its parenthesis.)
  if (!/\bimport\b/.test(source)) return source
  if (!ready) {
    initSync()
    ready = true
  }
  let imports: ReturnType<typeof parse>[0]
  try {
    imports = parse(source)[0]
  } catch {
    // What the lexer can't read, V8 reports as it compiles the module (or rejects its imports).
    return source
  }
  let out = ''
  let at = 0
  for (const found of imports) {
    if (found.t !== DYNAMIC) continue
    out += source.slice(at, found.ss) + DYNAMIC_IMPORT
    at = found.ss + 'import'.length
  }
  return at === 0 ? source : out + source.slice(at)
}
