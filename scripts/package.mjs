// Builds dist/concave-backend: one linux-x64 executable that runs without Node or node_modules.
//
// It is a Node single executable application (SEA): the Node 24 binary from the npm `node`
// package with a blob injected by postject. The blob holds
//   - the main script: src/main.ts bundled to CommonJS with every dependency inlined (SEA main
//     scripts can only require() built-in modules);
//   - assets: the native addons (better-sqlite3 and isolated-vm, the same files node_modules
//     loads), the sqlite-vec extension (vec0.so, loaded by SQLite from the cache directory) and
//     the worker scripts: the checkpointer (src/storage/sqlite/checkpointer.ts) and
//     the Node.js action process's script (src/functions/node/node-worker.ts), CommonJS, which the
//     backend starts as `concave-backend node-executor <extracted script> <dir>`;
//   - the dashboard's files (scripts/build.mjs's buildDashboard), as assets `dashboard/<name>`
//     that src/dashboard/server.ts reads with node:sea's getAsset: they are never extracted.
// At start the main script copies the assets into a cache directory (CONCAVE_CACHE_DIR, else
// $XDG_CACHE_HOME/concave or ~/.cache/concave, else a temp dir removed at exit), keyed by their
// hash, and loads the addons from there with process.dlopen. `import.meta.url` is defined as that
// directory's backend.js, so `new URL('./checkpointer.js', import.meta.url)` in
// sqlite-persistence.ts finds the extracted worker script and checkpoints run in a worker as
// under `node dist/backend`.
//
// Offline and reproducible: only node_modules is read, no code cache is embedded, and the same
// inputs give the same bytes.
import { build } from 'esbuild'
import { execFileSync, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { buildDashboard, bundleReplWrappers, bundleRuntime, root } from './build.mjs'

const started = Date.now()
const require = createRequire(import.meta.url)
const dist = join(root, 'dist')
const output = join(dist, 'concave-backend')
const NODE = join(root, 'node_modules/node/bin/node')
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'

if (process.platform !== 'linux' || process.arch !== 'x64') {
  throw new Error(`npm run package builds a linux-x64 executable and must run on linux-x64 (this is ${process.platform}-${process.arch})`)
}
if (!existsSync(NODE)) throw new Error(`${NODE} is missing: run npm install (the Node binary to embed comes from the npm "node" package)`)
const [nodeVersion, nodeAbi] = execFileSync(NODE, ['-p', 'process.version + " " + process.versions.modules']).toString().trim().split(' ')
if (!nodeVersion.startsWith('v24.')) throw new Error(`expected Node 24 in ${NODE}, found ${nodeVersion}`)
if (!readFileSync(NODE).includes(FUSE)) throw new Error(`${NODE} has no SEA fuse; it cannot become a single executable`)

/** The addon files that `node dist/backend` would load, resolved the way the packages do. */
function addonFiles() {
  const sqliteDir = join(root, 'node_modules/better-sqlite3')
  const sqlite = ['build/Debug/better_sqlite3.node', 'build/Release/better_sqlite3.node', 'prebuilds/linux-x64.node'].map((f) => join(sqliteDir, f)).find((f) => existsSync(f))
  if (sqlite === undefined) throw new Error(`no better-sqlite3 addon for linux-x64 in ${sqliteDir}`)
  const ivmDir = join(root, 'node_modules/isolated-vm')
  const gypBuild = require(join(root, 'node_modules/node-gyp-build'))
  let ivm
  try {
    ivm = gypBuild.path(ivmDir)
  } catch {
    ivm = join(ivmDir, `prebuilds/linux-x64/isolated-vm.abi${nodeAbi}.glibc.node`)
  }
  // The running Node and the embedded one are both Node 24, so node-gyp-build picks the right ABI;
  // check anyway, since a mismatch would only show when the binary starts.
  if (ivm.includes('.abi') && !ivm.includes(`.abi${nodeAbi}.`)) throw new Error(`isolated-vm addon ${ivm} is not for ABI ${nodeAbi}`)
  if (!existsSync(ivm)) throw new Error(`no isolated-vm addon for linux-x64 ABI ${nodeAbi} in ${ivmDir}`)
  const vec = join(root, 'node_modules/sqlite-vec-linux-x64/vec0.so')
  if (!existsSync(vec)) throw new Error(`no sqlite-vec extension for linux-x64 at ${vec}`)
  return { 'better_sqlite3.node': sqlite, 'isolated_vm.node': ivm, 'vec0.so': vec }
}

// Shared by the main script and the worker: the addon packages, with their native part coming
// from globalThis.__concaveSea.loadAddon instead of a file beside the package.
const shims = {
  'better-sqlite3': `
    const createDatabase = require(${JSON.stringify(join(root, 'node_modules/better-sqlite3/lib/database.js'))})
    module.exports = createDatabase(() => globalThis.__concaveSea.loadAddon('better_sqlite3.node'), false)
    module.exports.SqliteError = require(${JSON.stringify(join(root, 'node_modules/better-sqlite3/lib/sqlite-error.js'))})
  `,
  'isolated-vm': `module.exports = globalThis.__concaveSea.loadAddon('isolated_vm.node').ivm`,
  // SQLite loads the extension itself, from the extracted file.
  'sqlite-vec': `module.exports = { getLoadablePath: () => require('node:path').join(globalThis.__concaveSea.dir, 'vec0.so') }`,
}

const loadAddon = `(name) => {
    const module = { exports: {} }
    process.dlopen(module, require('node:path').join(dir, name))
    return module.exports
  }`

// The main script's first module: extracts the assets and sets up globalThis.__concaveSea.
const mainPrelude = (assetHash, assetNames) => `
  const fs = require('node:fs')
  const os = require('node:os')
  const path = require('node:path')
  const { pathToFileURL } = require('node:url')
  const sea = require('node:sea')

  function extract(dir) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
    for (const name of ${JSON.stringify(assetNames)}) {
      const data = Buffer.from(sea.getRawAsset(name))
      const file = path.join(dir, name)
      let current = null
      try {
        current = fs.readFileSync(file)
      } catch {}
      if (current !== null && current.equals(data)) continue
      // Write beside and rename, so that a concurrent start never sees half a file.
      const tmp = file + '.' + process.pid + '.tmp'
      fs.writeFileSync(tmp, data, { mode: 0o700 })
      fs.renameSync(tmp, file)
    }
  }

  function cacheRoot() {
    const env = process.env
    if (env.CONCAVE_CACHE_DIR) return env.CONCAVE_CACHE_DIR
    if (env.XDG_CACHE_HOME) return path.join(env.XDG_CACHE_HOME, 'concave')
    const home = env.HOME || os.homedir()
    return home ? path.join(home, '.cache', 'concave') : null
  }

  // Files whose content differs from the embedded assets are rewritten, never loaded; a cache
  // dir that cannot be used (no home, read-only, someone else's) falls back to a fresh temp dir.
  let dir = null
  try {
    const root = cacheRoot()
    if (root !== null) {
      dir = path.join(root, 'native-' + ${JSON.stringify(assetHash)})
      extract(dir)
    }
  } catch {
    dir = null
  }
  if (dir === null) {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'concave-backend-'))
    extract(tmp)
    process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }))
    dir = tmp
  }
  globalThis.__concaveSea = {
    dir,
    metaUrl: pathToFileURL(path.join(dir, 'backend.js')).href,
    loadAddon: ${loadAddon},
  }
`

// The worker script's first module: the worker runs the extracted file, its addons lie beside it.
const workerPrelude = `
  const dir = __dirname
  globalThis.__concaveSea = {
    dir,
    metaUrl: require('node:url').pathToFileURL(__filename).href,
    loadAddon: ${loadAddon},
  }
`

/** esbuild options for one CommonJS bundle that starts with `prelude` and then imports `entry`. */
function seaBundle(entry, prelude, outfile, define = {}, contents = `import './concave-sea-prelude'\nimport ${JSON.stringify(entry)}\n`) {
  return {
    stdin: { contents, resolveDir: root, sourcefile: 'concave-sea-entry.js', loader: 'js' },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node24',
    outfile,
    // Paths in the output (module comments) are relative to the checkout, wherever it lies.
    absWorkingDir: root,
    logLevel: 'warning',
    legalComments: 'none',
    define: { 'import.meta.url': 'globalThis.__concaveSea.metaUrl', ...define },
    plugins: [
      {
        name: 'concave-sea',
        setup(b) {
          b.onResolve({ filter: /^(\.\/concave-sea-prelude|better-sqlite3|isolated-vm|sqlite-vec)$/ }, (args) => ({ path: args.path, namespace: 'concave-sea' }))
          b.onLoad({ filter: /.*/, namespace: 'concave-sea' }, (args) => ({
            contents: args.path === './concave-sea-prelude' ? prelude : shims[args.path],
            loader: 'js',
            resolveDir: root,
          }))
        },
      },
    ],
  }
}

function step(label, since) {
  process.stdout.write(`  ${label} (${((Date.now() - since) / 1000).toFixed(1)} s)\n`)
}

// A work dir of its own and an atomic rename at the end: several builds may run at once (test runs
// in one checkout), and dist/concave-backend is always either the old or the new executable.
mkdirSync(dist, { recursive: true })
const work = mkdtempSync(join(dist, '.package-'))
process.on('exit', () => rmSync(work, { recursive: true, force: true }))

// 1. The worker scripts first: they are assets, and the assets' hash names the cache directory.
let t = Date.now()
await build(seaBundle(join(root, 'src/storage/sqlite/checkpointer.ts'), workerPrelude, join(work, 'checkpointer.js')))
await build(seaBundle(join(root, 'src/functions/node/node-worker.ts'), workerPrelude, join(work, 'node-executor.js')))
const assets = {
  ...addonFiles(),
  'checkpointer.js': join(work, 'checkpointer.js'),
  'node-executor.js': join(work, 'node-executor.js'),
  // The cache directory might sit below a package.json saying "type": "module".
  'package.json': join(work, 'package.json'),
}
writeFileSync(assets['package.json'], '{ "type": "commonjs" }\n')
const hash = createHash('sha256')
for (const [name, file] of Object.entries(assets)) hash.update(name).update('\0').update(readFileSync(file))
const assetHash = hash.digest('hex').slice(0, 16)

// The dashboard, read from the blob (not extracted, so not in the cache directory's hash).
await buildDashboard(join(work, 'dashboard'))
const dashboardAssets = Object.fromEntries(['index.html', 'app.js', 'app.css', 'favicon.svg'].map((name) => [`dashboard/${name}`, join(work, 'dashboard', name)]))

// 2. The main script.
const runtimeSource = await bundleRuntime()
// `concave-backend node-executor <script> <dir>` is how the backend starts its Node action process
// (src/functions/node/node-executor.ts): the binary runs the extracted worker script and nothing of
// the backend (no prelude, no addons), so the process starts light and holds none of its state.
const mainEntry = `if (process.argv[2] === 'node-executor') {
  const script = process.argv[3]
  require('node:module').createRequire(script)(script)
} else {
  require('./concave-sea-prelude')
  require(${JSON.stringify(join(root, 'src/main.ts'))})
}
`
await build(
  seaBundle(join(root, 'src/main.ts'), mainPrelude(assetHash, Object.keys(assets)), join(work, 'backend.cjs'), {
    __CONCAVE_RUNTIME__: JSON.stringify(runtimeSource),
    __CONCAVE_REPL_WRAPPERS__: JSON.stringify(await bundleReplWrappers()),
  }, mainEntry),
)
step('bundled the main script and the worker', t)

// 3. The blob.
t = Date.now()
const blob = join(work, 'backend.blob')
const config = {
  // Relative to the work dir (the cwd below): the blob records the main script's name.
  main: 'backend.cjs',
  output: 'backend.blob',
  disableExperimentalSEAWarning: true,
  // A code cache would make startup a little faster but the build irreproducible.
  useCodeCache: false,
  useSnapshot: false,
  // Node options come from the command line (`--node-options=...`, how the backend gives its Node
  // action process a heap limit), never from NODE_OPTIONS, which in that process is the
  // deployment's variable.
  execArgvExtension: 'cli',
  assets: { ...assets, ...dashboardAssets },
}
writeFileSync(join(work, 'sea-config.json'), JSON.stringify(config, null, 2))
const blobRun = spawnSync(NODE, ['--experimental-sea-config', 'sea-config.json'], { cwd: work, encoding: 'utf8' })
if (blobRun.status !== 0) {
  process.stderr.write(blobRun.stdout + blobRun.stderr)
  throw new Error(`node --experimental-sea-config failed with ${blobRun.status ?? blobRun.signal}`)
}
step('wrote the SEA blob', t)

// 4. The executable: a copy of the Node binary with the blob injected.
t = Date.now()
const partial = join(work, 'concave-backend')
copyFileSync(NODE, partial)
const inject = spawnSync(process.execPath, [join(root, 'node_modules/postject/dist/cli.js'), partial, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', FUSE], { encoding: 'utf8' })
if (inject.status !== 0) {
  // postject's ELF parser warns about the Node binary's many notes; show its output only on failure.
  process.stderr.write(inject.stdout + inject.stderr)
  throw new Error(`postject failed with ${inject.status ?? inject.signal}`)
}
chmodSync(partial, 0o755)
step('injected it into Node ' + nodeVersion, t)

// Only an executable that starts (unpacking its assets, loading isolated-vm) replaces the old one.
const version = execFileSync(partial, ['--version'], { env: { ...process.env, CONCAVE_CACHE_DIR: join(work, 'cache') } }).toString().trim()
const bytes = readFileSync(partial)
const size = bytes.length
const sha = createHash('sha256').update(bytes).digest('hex')
renameSync(partial, output)
process.stdout.write(`dist/concave-backend ${version}: ${(size / 1024 / 1024).toFixed(1)} MiB, sha256 ${sha}, built in ${((Date.now() - started) / 1000).toFixed(1)} s\n`)
