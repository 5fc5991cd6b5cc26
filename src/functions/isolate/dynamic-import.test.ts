import { expect, test } from 'vitest'
import { rewriteDynamicImports } from './dynamic-import.ts'
import { DYNAMIC_IMPORT } from '../../../runtime/protocol.ts'

test('each dynamic import() calls the runtime loader; columns stay where they were', () => {
  const source = [
    'import { a } from "./a.js";',
    'const m = await import("./heavy.js");',
    'const n = import (`./${x}.js`, { with: {} }), o = obj.import(1);',
    'export { m };',
  ].join('\n')
  const out = rewriteDynamicImports(source)
  expect(out).toBe(
    [
      'import { a } from "./a.js";',
      `const m = await ${DYNAMIC_IMPORT}("./heavy.js");`,
      `const n = ${DYNAMIC_IMPORT} (\`./\${x}.js\`, { with: {} }), o = obj.import(1);`,
      'export { m };',
    ].join('\n'),
  )
  expect(out.length).toBe(source.length)
})

test('import( in strings, comments, templates and import.meta are left alone', () => {
  const source = 'const s = "import(x)"; // import(y)\n/* import(z) */ const t = `import(${1})`; const u = import.meta.url;\nexport {}'
  expect(rewriteDynamicImports(source)).toBe(source)
})

test('a module without dynamic imports, or one the lexer cannot read, is returned as it is', () => {
  const plain = 'import { a } from "./a.js";\nexport const b = a;'
  expect(rewriteDynamicImports(plain)).toBe(plain)
  const broken = 'export const x = import("./a.js"; {'
  expect(rewriteDynamicImports(broken)).toBe(broken)
})

test('an import with a comment before its parenthesis is rewritten too', () => {
  const source = 'export const m = () => import /* lazy */ ("./a.js");'
  expect(rewriteDynamicImports(source)).toBe(`export const m = () => ${DYNAMIC_IMPORT} /* lazy */ ("./a.js");`)
})
