// Builds dist/: the sandbox runtime (bundled to one script, inlined into the backend), the
// backend and the keybroker CLI. Native addons (better-sqlite3, isolated-vm) stay external.
import { build } from 'esbuild'
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')

const runtime = await build({
  entryPoints: [join(root, 'runtime/index.ts')],
  bundle: true,
  format: 'iife',
  platform: 'neutral',
  target: 'es2022',
  write: false,
  minifySyntax: true,
})
const runtimeSource = runtime.outputFiles[0].text

const common = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node24',
  sourcemap: true,
  external: ['better-sqlite3', 'isolated-vm'],
  // yargs and friends use require(); give ESM bundles a require.
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  logLevel: 'warning',
}

await build({
  ...common,
  entryPoints: { backend: join(root, 'src/main.ts'), keybroker: join(root, 'keybroker/main.ts'), checkpointer: join(root, 'src/storage/sqlite/checkpointer.ts') },
  outdir: join(root, 'dist'),
  define: { __CONCAVE_RUNTIME__: JSON.stringify(runtimeSource) },
})
