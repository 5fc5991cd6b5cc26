/**
 * @module External packages of Node.js actions (`node.externalPackages` in convex.json).
 *
 * The CLI leaves those packages out of the bundle and sends their names and exact versions (as
 * installed in the app's node_modules) in the push request, as `nodeDependencies`. As Convex does,
 * they are installed with `npm install` from the npm registry, install scripts included (packages
 * with native addons need them), into `<dataDir>/node-packages/<key>/`, where the key is a hash of
 * the sorted list: a push with the same list reuses the folder and installs nothing. A folder
 * appears only once its install succeeded (it is installed next to it, then renamed). The Node
 * action worker resolves bare imports from its `node_modules`.
 *
 * npm is the one on PATH, run with this process's Node (so native addons are built for the Node
 * the worker runs on), with the backend's environment minus its secrets.
 */
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { delimiter, dirname, join } from 'node:path'

export interface NodeDependency {
  name: string
  version: string
}

/** How long one `npm install` may take. */
const INSTALL_TIMEOUT_MS = 10 * 60_000
/** npm error lines kept in a failed push's message. */
const ERROR_LINES = 20

/** The push request's `nodeDependencies`, checked, sorted by name and without repeats. */
export function parseNodeDependencies(list: unknown): NodeDependency[] {
  if (list === undefined || list === null) return []
  if (!Array.isArray(list)) throw new Error('nodeDependencies must be an array')
  const byName = new Map<string, string>()
  for (const d of list as { name?: unknown; version?: unknown }[]) {
    if (typeof d?.name !== 'string' || typeof d.version !== 'string' || d.name === '' || d.version === '') throw new Error('each of nodeDependencies must have a name and a version')
    // A name or version npm would read as something else (a path, a URL, a flag) is refused.
    if (!/^(@[a-z0-9][\w.~-]*\/)?[a-z0-9][\w.~-]*$/i.test(d.name)) throw new Error(`"${d.name}" is not an npm package name`)
    if (!/^[\w.+~^<>=| -]+$/.test(d.version)) throw new Error(`"${d.version}" (${d.name}) is not an npm version`)
    byName.set(d.name, d.version)
  }
  return [...byName].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([name, version]) => ({ name, version }))
}

/** The folder name for a list (already sorted): a hash of it. */
export function packagesKey(deps: readonly NodeDependency[]): string {
  return createHash('sha256').update(JSON.stringify(deps.map((d) => [d.name, d.version]))).digest('hex').slice(0, 32)
}

/** The failure of `npm install`, summed up by its error lines. */
export function summarizeNpmFailure(deps: readonly NodeDependency[], code: number | null, signal: string | null, output: string): string {
  const lines = output.split('\n').map((l) => l.trimEnd())
  let errors = lines
    .filter((l) => /^npm (error|ERR!)/.test(l))
    .map((l) => l.replace(/^npm (error|ERR!) ?/, ''))
    // npm's pointer to its debug log is about a file in a folder of ours.
    .filter((l) => !/^(A complete log of this run can be found in:|\s*\/\S+-debug-\d+\.log)$/.test(l) && !l.includes('-debug-0.log'))
  if (errors.length === 0) errors = lines.filter((l) => l !== '').slice(-ERROR_LINES)
  const shown = errors.length > ERROR_LINES ? [...errors.slice(0, ERROR_LINES), `… (${errors.length - ERROR_LINES} more lines)`] : errors
  const how = signal !== null ? `was stopped (${signal})` : `exited with code ${code}`
  return `Installing the external packages of Node.js actions (${deps.map((d) => `${d.name}@${d.version}`).join(', ')}) failed: npm install ${how}\n${shown.join('\n')}`.trimEnd()
}

/** The `npm` on PATH: the command to run it with this process's Node, or on its own. */
function findNpm(): { command: string; args: string[] } | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue
    const candidate = join(dir, 'npm')
    if (!existsSync(candidate)) continue
    const real = realpathSync(candidate)
    // npm's launcher is a Node script: run it with our Node, unless this is the single executable
    // (whose own binary runs only the backend).
    if (real.endsWith('.js') && !isSingleExecutable()) return { command: process.execPath, args: [real] }
    return { command: candidate, args: [] }
  }
  return null
}

function isSingleExecutable(): boolean {
  try {
    return (process as { getBuiltinModule?: (id: string) => { isSea?: () => boolean } | undefined }).getBuiltinModule?.('node:sea')?.isSea?.() === true
  } catch {
    return false
  }
}

/**
 * What an `npm run` that started the backend (`npm start`) tells its script about that run: its
 * project folder, script and package. The install must not take them for its own.
 */
const NPM_RUN_CONTEXT = /^(npm_(package|lifecycle)_.*|npm_execpath|npm_node_execpath|npm_command|init_cwd|npm_config_(local_prefix|prefix|call|npm_version|user_agent))$/i

/** The backend's environment for npm and the packages' install scripts, without its secrets. */
function npmEnvironment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (name === 'INSTANCE_SECRET' || name === 'INSTANCE_NAME' || /^(CONCAVE|CONVEX)_/.test(name) || NPM_RUN_CONTEXT.test(name)) continue
    env[name] = value
  }
  // Install scripts that run `node` get this Node (native addons are built for it).
  if (!isSingleExecutable()) env.PATH = [dirname(process.execPath), env.PATH ?? ''].join(delimiter)
  env.npm_config_update_notifier = 'false'
  return env
}

export class NodePackages {
  readonly root: string
  readonly #installing = new Map<string, Promise<string>>()

  constructor(
    dataDir: string,
    readonly log: (message: string, fields?: Record<string, unknown>) => void = () => {},
  ) {
    this.root = join(dataDir, 'node-packages')
  }

  /** The folder for `deps` (installing them if it isn't there yet), or null for no packages. */
  async ensure(deps: readonly NodeDependency[]): Promise<string | null> {
    if (deps.length === 0) return null
    const key = packagesKey(deps)
    const dir = join(this.root, key)
    if (existsSync(dir)) return dir
    let install = this.#installing.get(key)
    if (install === undefined) {
      install = this.#install(deps, dir).finally(() => this.#installing.delete(key))
      this.#installing.set(key, install)
    }
    return install
  }

  async #install(deps: readonly NodeDependency[], dir: string): Promise<string> {
    const npm = findNpm()
    if (npm === null) throw new Error(`Installing the external packages of Node.js actions needs npm, and there is no npm on PATH`)
    mkdirSync(this.root, { recursive: true })
    const work = mkdtempSync(`${dir}.installing-`)
    const names = deps.map((d) => `${d.name}@${d.version}`)
    try {
      const pkg = {
        name: 'concave-node-packages',
        private: true,
        dependencies: Object.fromEntries(deps.map((d) => [d.name, d.version])),
        // The app chose these packages; their install scripts run, as in Convex.
        allowScripts: Object.fromEntries(deps.map((d) => [d.name, true])),
      }
      writeFileSync(join(work, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`)
      this.log('Installing external packages for Node.js actions', { packages: names })
      const started = performance.now()
      const { code, signal, output } = await run(npm.command, [...npm.args, 'install', '--no-audit', '--no-fund', '--loglevel=error'], work)
      if (code !== 0) throw new Error(summarizeNpmFailure(deps, code, signal, output))
      if (existsSync(dir)) rmSync(work, { recursive: true, force: true })
      else renameSync(work, dir)
      this.log('Installed external packages for Node.js actions', { packages: names, dir, durationMs: Math.round(performance.now() - started) })
      return dir
    } catch (e) {
      rmSync(work, { recursive: true, force: true })
      throw e
    }
  }

  /** Removes the folders of other package lists, and installs that never finished. */
  prune(keep: string | null): void {
    if (!existsSync(this.root)) return
    for (const name of readdirSync(this.root)) {
      const path = join(this.root, name)
      if (path !== keep) rmSync(path, { recursive: true, force: true })
    }
  }
}

function run(command: string, args: string[], cwd: string): Promise<{ code: number | null; signal: string | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: npmEnvironment(), stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    const keep = (d: Buffer) => {
      // Enough to find npm's error lines in; a chatty install script can't grow it without bound.
      output = (output + d.toString()).slice(-256 * 1024)
    }
    child.stdout.on('data', keep)
    child.stderr.on('data', keep)
    const timer = setTimeout(() => child.kill('SIGKILL'), INSTALL_TIMEOUT_MS)
    child.on('error', (e) => {
      clearTimeout(timer)
      reject(e)
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, output })
    })
  })
}
