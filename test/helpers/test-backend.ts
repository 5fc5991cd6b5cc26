/**
 * @module Test harness: starts the built backend (dist/backend.js) as a real process on free
 * ports in a temp dir, and pushes fixture apps with the real `convex` CLI.
 */
import { spawn, execFile } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { cpSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll } from 'vitest'
import { ConvexHttpClient } from 'convex/browser'
import { issueAdminKey } from '../../keybroker/index.ts'

const execFileAsync = promisify(execFile)
export const ROOT = resolve(import.meta.dirname, '../..')
const NODE = process.execPath

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolvePort(port))
    })
  })
}

export const TEST_SECRET = '4361726e697461732c206c69746572616c6c79206d65616e696e6720226c6974'
export const TEST_INSTANCE = 'concave-test'

export interface TestBackend {
  url: string
  siteUrl: string
  adminKey: string
  dataDir: string
  process: ChildProcess
  output: () => string
  /** Stops gracefully (SIGTERM) or hard (SIGKILL); resolves with the exit code/signal. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Starts the backend again on the same data dir and ports. */
  restart(): Promise<void>
}

export interface StartOptions {
  dataDir?: string
  env?: Record<string, string>
  args?: string[]
  /** Pass the secret (default) or leave it out to exercise the embedded dev default. */
  withSecret?: boolean
}

export async function startBackend(opts: StartOptions = {}): Promise<TestBackend> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'concave-test-'))
  const port = await freePort()
  const sitePort = await freePort()
  let child!: ChildProcess
  let out = ''
  const launch = async () => {
    const args = [join(ROOT, 'dist/backend.js'), '--port', String(port), '--site-proxy-port', String(sitePort), '--interface', '127.0.0.1', '--local-storage', dataDir, ...(opts.args ?? [])]
    if (opts.withSecret !== false) args.push('--instance-name', TEST_INSTANCE, '--instance-secret', TEST_SECRET)
    // CONCAVE_TEST_NODE_ARGS: node flags for the backend under test (e.g. --cpu-prof when profiling).
    const nodeArgs = process.env.CONCAVE_TEST_NODE_ARGS?.split(' ').filter(Boolean) ?? []
    child = spawn(NODE, [...nodeArgs, ...args], { cwd: dataDir, env: { ...process.env, CONCAVE_ACTION_TIMEOUT_MS: '2000', DASHBOARD_PORT: '0', ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] })
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()))
    const deadline = Date.now() + 15_000
    for (;;) {
      if (child.exitCode !== null) throw new Error(`backend exited with ${child.exitCode}:\n${out}`)
      try {
        const res = await fetch(`http://127.0.0.1:${port}/version`)
        if (res.ok) break
      } catch {
        // not up yet
      }
      if (Date.now() > deadline) throw new Error(`backend did not start:\n${out}`)
      await new Promise((r) => setTimeout(r, 25))
    }
  }
  await launch()
  const backend: TestBackend = {
    url: `http://127.0.0.1:${port}`,
    siteUrl: `http://127.0.0.1:${sitePort}`,
    adminKey: issueAdminKey(TEST_INSTANCE, TEST_SECRET),
    dataDir,
    get process() {
      return child
    },
    output: () => out,
    stop: (signal = 'SIGTERM') =>
      new Promise((resolveStop) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolveStop({ code: child.exitCode, signal: child.signalCode })
        // A graceful stop that hasn't ended after 30 s (the backend's own limit is 15 s) is
        // reported with the backend's last output, then forced, so one stuck stop can't time out
        // a whole file's hooks.
        const force = setTimeout(() => {
          process.stderr.write(`backend did not stop on ${signal} within 30 s; killing it. Its last output:\n${out.slice(-4000)}\n`)
          child.kill('SIGKILL')
        }, 30_000)
        child.once('exit', (code, sig) => {
          clearTimeout(force)
          resolveStop({ code, signal: sig })
        })
        child.kill(signal)
      }),
    restart: launch,
  }
  return backend
}

/** Copies a fixture app to a temp dir (with node_modules linked) and returns its path. */
export function prepareFixture(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `concave-app-${name}-`))
  cpSync(join(ROOT, 'test/fixtures', name), dir, { recursive: true })
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir')
  return dir
}

/** Runs the real convex CLI in `appDir`; resolves with its output, rejects on a non-zero exit. */
export async function convexCli(appDir: string, args: string[], env: Record<string, string> = {}): Promise<{ stdout: string; stderr: string }> {
  const cli = join(ROOT, 'node_modules/convex/bin/main.js')
  return execFileAsync(NODE, [cli, ...args], {
    cwd: appDir,
    env: { ...process.env, CI: '1', CONVEX_DEPLOYMENT: '', CONVEX_DEPLOY_KEY: '', ...env },
    timeout: 120_000,
    maxBuffer: 16 * 1024 * 1024,
  })
}

/** Pushes a fixture with `npx convex deploy --url --admin-key -y`. */
export async function deploy(backend: TestBackend, fixture: string): Promise<{ appDir: string; stdout: string; stderr: string }> {
  const appDir = prepareFixture(fixture)
  const { stdout, stderr } = await convexCli(appDir, ['deploy', '--url', backend.url, '--admin-key', backend.adminKey, '-y'])
  return { appDir, stdout, stderr }
}

export function cleanup(dir: string | undefined): void {
  if (dir === undefined) return
  rmSync(dir, { recursive: true, force: true })
}

export interface RunningCommand {
  url: string
  process: ChildProcess
  output: () => string
  /** Sends `signal` (default SIGTERM); resolves with the exit code/signal once the process ended. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/**
 * Starts any command that serves the backend's API on `port` (the single executable, an entry
 * script) and resolves once `GET /version` answers there; rejects if it exits or takes too long.
 */
export async function startCommand(command: string, args: string[], opts: { port: number; cwd: string; env: Record<string, string | undefined>; timeoutMs?: number }): Promise<RunningCommand> {
  const child = spawn(command, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) => child.once('close', (code, signal) => resolveExit({ code, signal })))
  const spawnFailure: { error?: Error } = {}
  child.once('error', (e) => (spawnFailure.error = e))
  const url = `http://127.0.0.1:${opts.port}`
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000)
  for (;;) {
    if (spawnFailure.error !== undefined) throw new Error(`${command} could not start: ${spawnFailure.error.message}`)
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${command} exited with ${child.exitCode ?? child.signalCode}:\n${out}`)
    try {
      const res = await fetch(`${url}/version`)
      if (res.ok) break
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`${command} did not start:\n${out}`)
    }
    await new Promise((r) => setTimeout(r, 25))
  }
  return {
    url,
    process: child,
    output: () => out,
    stop: (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    },
  }
}

export interface DeployedBackend {
  backend: TestBackend
  appDir: string
  client: ConvexHttpClient
}

/**
 * Registers the usual hooks: before all tests, start a backend and push `fixture` to it (then
 * `assign` receives both and a ConvexHttpClient); after all, stop it and remove both dirs.
 */
export function useDeployedBackend(
  fixture: string,
  assign: (t: DeployedBackend) => void,
  opts: StartOptions & {
    /** Runs between start and push (e.g. sets a variable the app requires). */
    beforeDeploy?: (backend: TestBackend, appDir: string) => Promise<void>
  } = {},
): void {
  let backend: TestBackend | undefined
  let appDir: string | undefined
  beforeAll(async () => {
    backend = await startBackend(opts)
    appDir = prepareFixture(fixture)
    await opts.beforeDeploy?.(backend, appDir)
    await convexCli(appDir, ['deploy', '--url', backend.url, '--admin-key', backend.adminKey, '-y'])
    assign({ backend, appDir, client: new ConvexHttpClient(backend.url) })
  })
  afterAll(async () => {
    await backend?.stop()
    cleanup(backend?.dataDir)
    cleanup(appDir)
  })
}

/** The error a call fails with; fails the test if the call succeeds. */
export async function errorOf(p: Promise<unknown>): Promise<Error> {
  try {
    await p
  } catch (e) {
    return e as Error
  }
  throw new Error('expected the call to fail')
}

/**
 * Reads until `pred` holds (every 50 ms), and returns what it read; past `timeoutMs` it fails with
 * the last value. For effects that land after the call returns (scheduled functions, crons,
 * subscriptions): a deadline instead of a sleep.
 */
export async function until<T>(read: () => Promise<T> | T, pred: (v: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await read()
    if (pred(v)) return v
    if (Date.now() > deadline) throw new Error(`timed out; last ${JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x))}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}
