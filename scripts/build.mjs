// Builds dist/: the sandbox runtime (bundled to one script, inlined into the backend), the
// backend (dist/backend.js, a Node.js version check that loads dist/backend-main.js), the
// keybroker CLI and the dashboard (dist/dashboard/: the page the backend serves on
// --dashboard-port, from src/dashboard/app). Native addons (better-sqlite3, isolated-vm) and the sqlite-vec extension stay
// external.
// scripts/package.mjs imports `root` and `bundleRuntime` to build the single executable.
import { build } from 'esbuild'
import { copyFileSync, mkdirSync, realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'

export const root = join(dirname(fileURLToPath(import.meta.url)), '..')

/**
 * object-inspect reaches for Node's `util.inspect` (a file its package.json maps to nothing for
 * browsers): the sandbox has no `util`, so it gets the empty module.
 */
const noNodeInspect = {
  name: 'no-node-inspect',
  setup(b) {
    b.onResolve({ filter: /^\.\/util\.inspect(\.js)?$/ }, () => ({ path: 'util.inspect', namespace: 'empty-module' }))
    b.onLoad({ filter: /.*/, namespace: 'empty-module' }, () => ({ contents: 'module.exports = {}', loader: 'js' }))
  },
}

/** The sandbox runtime (runtime/index.ts) as one script, inlined as `__CONCAVE_RUNTIME__`. */
export async function bundleRuntime() {
  const runtime = await build({
    entryPoints: [join(root, 'runtime/index.ts')],
    absWorkingDir: root,
    bundle: true,
    format: 'iife',
    platform: 'neutral',
    target: 'es2022',
    write: false,
    minifySyntax: true,
    plugins: [noNodeInspect],
  })
  return runtime.outputFiles[0].text
}

/**
 * `convex:/_system/repl/wrappers.js`, the module a test query (`/api/run_test_function`: the
 * dashboard's function runner, `npx convex run --inline-query`) imports `query` from: the `convex`
 * package's own registration, bundled, inlined as `__CONCAVE_REPL_WRAPPERS__`.
 */
export async function bundleReplWrappers() {
  const wrappers = await build({
    stdin: { contents: "export { queryGeneric as query, internalQueryGeneric as internalQuery } from 'convex/server'", resolveDir: root, loader: 'js' },
    absWorkingDir: root,
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    mainFields: ['module', 'main'],
    conditions: ['import'],
    target: 'es2022',
    write: false,
    minifySyntax: true,
  })
  return wrappers.outputFiles[0].text
}

/**
 * The dashboard (src/dashboard/app: React and the `convex` browser client) as static files in
 * `outdir`: index.html, app.js, app.css, favicon.svg (src/dashboard/server.ts's DASHBOARD_FILES).
 * Everything it needs is in them: no CDN, font or script from elsewhere.
 */
export async function buildDashboard(outdir) {
  const app = join(root, 'src/dashboard/app')
  mkdirSync(outdir, { recursive: true })
  await build({
    entryPoints: { app: join(app, 'main.tsx') },
    absWorkingDir: root,
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: ['es2022', 'chrome111', 'firefox111', 'safari16'],
    jsx: 'automatic',
    minify: true,
    legalComments: 'none',
    define: { 'process.env.NODE_ENV': '"production"' },
    logLevel: 'warning',
    outdir,
  })
  for (const file of ['index.html', 'favicon.svg']) copyFileSync(join(app, file), join(outdir, file))
}

async function buildDist() {
  await buildDashboard(join(root, 'dist/dashboard'))
  const runtimeSource = await bundleRuntime()
  const replWrappers = await bundleReplWrappers()
  await build({
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    sourcemap: true,
    external: ['better-sqlite3', 'isolated-vm', 'sqlite-vec'],
    // yargs and friends use require(); give ESM bundles a require.
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    logLevel: 'warning',
    entryPoints: { 'backend-main': join(root, 'src/main.ts'), keybroker: join(root, 'keybroker/main.ts'), checkpointer: join(root, 'src/storage/sqlite/checkpointer.ts'), 'node-executor': join(root, 'src/functions/node/node-worker.ts') },
    outdir: join(root, 'dist'),
    define: { __CONCAVE_RUNTIME__: JSON.stringify(runtimeSource), __CONCAVE_REPL_WRAPPERS__: JSON.stringify(replWrappers) },
  })
  // dist/backend.js checks the Node.js version before it loads backend-main.js (src/launcher.ts):
  // built for old Node.js versions, so the check runs where the backend can't.
  await build({
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node16',
    logLevel: 'warning',
    sourcemap: true,
    entryPoints: { backend: join(root, 'src/launcher.ts') },
    outdir: join(root, 'dist'),
  })
}

// Run as a script (`node scripts/build.mjs`), not when imported by package.mjs.
if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))) await buildDist()
