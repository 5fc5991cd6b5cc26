/**
 * The single executable (`npm run package` -> dist/concave-backend) and the self-hosted scripts,
 * run the way a machine without Node runs them: copied to a temp dir with no node_modules, with a
 * PATH that holds only a few shell tools (no node).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { execFile, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { issueAdminKey } from '../../keybroker/index.ts'
import { cleanup, convexCli, freePort, prepareFixture, ROOT, startCommand, TEST_INSTANCE, TEST_SECRET } from '../helpers/test-backend.ts'
import type { RunningCommand } from '../helpers/test-backend.ts'

const execFileAsync = promisify(execFile)
const api = anyApi as any
const BINARY = join(ROOT, 'dist/concave-backend')
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version

/** Newest modification time under the inputs of `npm run package`. */
function newestSource(): number {
  let newest = 0
  const visit = (path: string) => {
    const st = statSync(path)
    if (st.isDirectory()) for (const entry of readdirSync(path)) visit(join(path, entry))
    else newest = Math.max(newest, st.mtimeMs)
  }
  for (const p of ['src', 'runtime', 'keybroker', 'scripts/build.mjs', 'scripts/package.mjs', 'package.json', 'package-lock.json']) visit(join(ROOT, p))
  return newest
}

/** The tools the scripts use, alone in a directory: the PATH of a machine without Node. */
function shellOnlyPath(dir: string): string {
  const bin = join(dir, 'bin')
  mkdirSync(bin)
  for (const tool of ['bash', 'dirname', 'mkdir', 'sed', 'tail']) {
    const found = ['/usr/bin', '/bin'].map((d) => join(d, tool)).find((p) => existsSync(p))
    if (found === undefined) throw new Error(`${tool} not found`)
    symlinkSync(found, join(bin, tool))
  }
  return bin
}

let root: string // the "machine": an install dir, a home and a PATH, all in one temp dir
let install: string // concave-backend with generate_admin_key.sh, run_backend.sh and read_credentials.sh beside it
let home: string
let path: string
let buildNote = ''

/** The whole environment of a process on that machine. */
function machineEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { HOME: home, PATH: path, ...extra }
}

beforeAll(async () => {
  if (!existsSync(BINARY) || statSync(BINARY).mtimeMs < newestSource()) {
    const started = Date.now()
    await execFileAsync(process.execPath, [join(ROOT, 'scripts/package.mjs')], { cwd: ROOT, timeout: 110_000, maxBuffer: 16 * 1024 * 1024 })
    buildNote = `built dist/concave-backend in ${((Date.now() - started) / 1000).toFixed(1)} s`
  } else {
    buildNote = 'reused dist/concave-backend'
  }
  root = mkdtempSync(join(tmpdir(), 'concave-binary-'))
  install = join(root, 'convex')
  home = join(root, 'home')
  mkdirSync(install)
  mkdirSync(home)
  copyFileSync(BINARY, join(install, 'concave-backend'))
  copyFileSync(join(ROOT, 'scripts/generate_admin_key.sh'), join(install, 'generate_admin_key.sh'))
  copyFileSync(join(ROOT, 'self-hosted/run_backend.sh'), join(install, 'run_backend.sh'))
  copyFileSync(join(ROOT, 'self-hosted/read_credentials.sh'), join(install, 'read_credentials.sh'))
  path = shellOnlyPath(root)
}, 120_000)

afterAll(() => cleanup(root))

test('the machine has no node and no node_modules', () => {
  expect(buildNote).toMatch(/^(built dist\/concave-backend in [\d.]+ s|reused dist\/concave-backend)$/)
  expect(spawnSync(join(path, 'bash'), ['-c', 'command -v node'], { env: machineEnv() }).status).not.toBe(0)
  for (let dir = install; dir !== '/'; dir = join(dir, '..')) expect(existsSync(join(dir, 'node_modules'))).toBe(false)
  const version = spawnSync(join(install, 'concave-backend'), ['--version'], { cwd: install, env: machineEnv(), encoding: 'utf8' })
  expect(version.stdout.trim()).toBe(VERSION)
  expect(version.status).toBe(0)
})

describe('the single executable', () => {
  let backend: RunningCommand
  let dataDir: string
  let appDir: string | undefined
  let siteUrl: string
  let dashboardUrl: string

  beforeAll(async () => {
    dataDir = join(root, 'data')
    const port = await freePort()
    const sitePort = await freePort()
    const dashboardPort = await freePort()
    siteUrl = `http://127.0.0.1:${sitePort}`
    dashboardUrl = `http://127.0.0.1:${dashboardPort}`
    const secretFile = join(root, 'instance_secret')
    writeFileSync(secretFile, `${TEST_SECRET}\n`, { mode: 0o600 })
    const args = ['--port', String(port), '--site-proxy-port', String(sitePort), '--interface', '127.0.0.1', '--local-storage', dataDir, '--instance-name', TEST_INSTANCE, '--instance-secret-file', secretFile, '--dashboard-port', String(dashboardPort)]
    backend = await startCommand(join(install, 'concave-backend'), args, { port, cwd: install, env: machineEnv() })
  })

  afterAll(async () => {
    await backend?.stop('SIGKILL')
    cleanup(appDir)
  })

  test('takes a push from the real CLI and runs mutations and queries', async () => {
    appDir = prepareFixture('basic')
    const pushed = await convexCli(appDir, ['deploy', '--url', backend.url, '--admin-key', issueAdminKey(TEST_INSTANCE, TEST_SECRET), '-y'])
    expect(pushed.stderr).toContain('Deployed Convex functions to')

    const client = new ConvexHttpClient(backend.url)
    const id = await client.mutation(api.messages.send, { author: 'ada', body: 'hello from one file', n: 1 })
    expect(typeof id).toBe('string')
    expect(await client.query(api.messages.list, { author: 'ada' })).toEqual([{ _id: id, _creationTime: expect.any(Number), author: 'ada', body: 'hello from one file', n: 1 }])
    expect(await client.mutation(api.counter.increment, { name: 'binary' })).toBe(1)
    expect(await client.mutation(api.counter.increment, { name: 'binary' })).toBe(2)
    expect(await client.query(api.counter.get, { name: 'binary' })).toBe(2)
    expect(await client.query(api.counter.get, { name: 'other' })).toBe(0)
  })

  test('unpacks its addons and checkpointer to the cache dir and starts the checkpointer worker once the WAL grows', async () => {
    const cacheDirs = readdirSync(join(home, '.cache/concave'))
    expect(cacheDirs).toHaveLength(1)
    expect(readdirSync(join(home, '.cache/concave', cacheDirs[0]!)).sort()).toEqual(['better_sqlite3.node', 'checkpointer.js', 'isolated_vm.node', 'node-executor.js', 'package.json', 'vec0.so'])
    // Node names a worker's thread "WorkerThread"; the checkpointer is the only worker there is.
    const taskDir = `/proc/${backend.process.pid}/task`
    const workers = () => readdirSync(taskDir).filter((t) => readFileSync(join(taskDir, t, 'comm'), 'utf8').trim() === 'WorkerThread').length
    // A push and a few small writes leave the WAL far below 4 MiB: no worker (it costs ~20 MB).
    expect(workers()).toBe(0)
    // Each of these writes ~1.7 MB to the WAL (the document and its write-log entry).
    const client = new ConvexHttpClient(backend.url)
    for (let i = 0; i < 3; i++) await client.mutation(api.messages.send, { author: 'wal', body: `${i}`.padEnd(900_000, 'x') })
    expect(workers()).toBe(1)
    // The worker checkpoints every 200 ms, so a commit reaches the database file itself soon;
    // SQLite's own auto-checkpoint is off while the worker is in charge.
    await client.mutation(api.messages.send, { author: 'wal', body: 'checkpointed-by-the-worker' })
    const db = join(dataDir, 'concave_local_backend.sqlite3')
    const deadline = Date.now() + 5_000
    while (!readFileSync(db).includes('checkpointed-by-the-worker') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    expect(readFileSync(db).includes('checkpointed-by-the-worker')).toBe(true)
    expect(backend.output()).not.toMatch(/error/i)
  })

  test('serves the dashboard from its own blob: the same files npm run build makes', async () => {
    const index = await fetch(dashboardUrl)
    expect([index.status, index.headers.get('content-type')]).toEqual([200, 'text/html; charset=utf-8'])
    expect(await index.text()).toBe(readFileSync(join(ROOT, 'src/dashboard/app/index.html'), 'utf8'))
    const app = await fetch(`${dashboardUrl}/app.js`)
    expect([app.status, app.headers.get('content-type')]).toEqual([200, 'text/javascript; charset=utf-8'])
    // The bundle: React and the convex client inside, nothing loaded from elsewhere.
    const js = await app.text()
    expect(js.length).toBeGreaterThan(100_000)
    expect(js.includes('paginatedTableDocuments:default')).toBe(true)
    expect((await fetch(`${dashboardUrl}/app.css`)).status).toBe(200)
    // Nothing of it was unpacked to the cache directory (the test below lists what was).
    expect(readdirSync(join(home, '.cache/concave')).flatMap((d) => readdirSync(join(home, '.cache/concave', d))).some((f) => f.includes('dashboard') || f.endsWith('.html'))).toBe(false)
  })

  test('generate_admin_key.sh beside it prints a key the backend accepts', async () => {
    const { stdout } = await execFileAsync(join(install, 'generate_admin_key.sh'), [], { cwd: install, env: machineEnv({ INSTANCE_NAME: TEST_INSTANCE, INSTANCE_SECRET: TEST_SECRET }) })
    const key = stdout.trim().split('\n').at(-1)!
    expect(key.startsWith(`${TEST_INSTANCE}|`)).toBe(true)

    const admin = new ConvexHttpClient(backend.url)
    ;(admin as any).setAdminAuth(key)
    expect(await (admin as any).function(api.messages.secret, undefined, {})).toBe('internal only')

    // A key for another secret is refused: the check above means something.
    const other = new ConvexHttpClient(backend.url)
    ;(other as any).setAdminAuth(issueAdminKey(TEST_INSTANCE, 'ab'.repeat(32)))
    await expect((other as any).function(api.messages.secret, undefined, {})).rejects.toThrow(/admin key was invalid/)
  })

  test('the keybroker subcommand verifies keys', async () => {
    const env = machineEnv({ INSTANCE_NAME: TEST_INSTANCE, INSTANCE_SECRET: TEST_SECRET })
    const { stdout } = await execFileAsync(join(install, 'concave-backend'), ['keybroker', 'verify-key', issueAdminKey(TEST_INSTANCE, TEST_SECRET)], { env })
    expect(stdout.trim()).toBe('valid')
    const secret = await execFileAsync(join(install, 'concave-backend'), ['keybroker', 'generate-secret'], { env })
    expect(secret.stdout.trim()).toMatch(/^[0-9a-f]{64}$/)
  })

  test('runs Node actions ("use node") from its unpacked worker script', async () => {
    const nodeApp = prepareFixture('node')
    try {
      await convexCli(nodeApp, ['deploy', '--url', backend.url, '--admin-key', issueAdminKey(TEST_INSTANCE, TEST_SECRET), '-y'])
      const client = new ConvexHttpClient(backend.url)
      expect(await client.action(api.nodeActions.sha256, { text: 'one file' })).toBe(createHash('sha256').update('one file').digest('hex'))
      expect(await client.action(api.nodeActions.roundTrip, { body: 'via the binary' })).toEqual({ bodies: ['via the binary'], base64: Buffer.from('via the binary').toString('base64'), nodeMajor: 24 })
      // In a child process: the binary re-run as `node-executor` with the extracted script, its
      // heap limit given as --node-options, and only the deployment's variables.
      const info = await client.action(api.nodeActions.processInfo, {})
      expect(info.ppid).toBe(backend.process.pid)
      expect(info.execArgv).toEqual(['--max-old-space-size=512'])
      const cacheDir = join(home, '.cache/concave', readdirSync(join(home, '.cache/concave'))[0]!)
      expect(info.cmdline).toMatch(new RegExp(`^${join(install, 'concave-backend')} --node-options=--max-old-space-size=512 node-executor ${join(cacheDir, 'node-executor.js')} /tmp/concave-node-\\w+ $`))
      expect(JSON.parse(info.env)).toEqual({ CONVEX_CLOUD_URL: backend.url, CONVEX_SITE_URL: siteUrl })
      expect(info.environ).toBe(`CONVEX_CLOUD_URL=${backend.url} CONVEX_SITE_URL=${siteUrl} NODE_CHANNEL_FD=3 NODE_CHANNEL_SERIALIZATION_MODE=advanced `)
    } finally {
      cleanup(nodeApp)
    }
  })

  test('SIGTERM stops it cleanly', async () => {
    expect(await backend.stop('SIGTERM')).toEqual({ code: 0, signal: null })
    expect(backend.output()).toContain('Concave backend stopped')
  })
})

describe('self-hosted/run_backend.sh', () => {
  /** The Docker image's environment with docker compose's passthrough of unset variables. */
  async function runBackend(dataDir: string, env: Record<string, string>) {
    const port = await freePort()
    const sitePort = await freePort()
    const composeEnv = { INSTANCE_NAME: '', INSTANCE_SECRET: '', INSTANCE_SECRET_FILE: '', CONVEX_CLOUD_ORIGIN: '', CONVEX_SITE_ORIGIN: '', CONCAVE_LOG_FORMAT: '', CONCAVE_FUNCTION_TIMEOUT_MS: '', CONCAVE_ACTION_TIMEOUT_MS: '', CONCAVE_FUNCTION_MEMORY_MB: '' }
    const fullEnv = machineEnv({ ...composeEnv, DATA_DIR: dataDir, PORT: String(port), SITE_PROXY_PORT: String(sitePort), DASHBOARD_PORT: '0', CONCAVE_INTERFACE: '127.0.0.1', BASH_ENV: join(install, 'read_credentials.sh'), ...env })
    return { backend: await startCommand(join(install, 'run_backend.sh'), [], { port, cwd: install, env: fullEnv }), env: fullEnv }
  }

  async function metricsStatus(url: string, key: string): Promise<number> {
    return (await fetch(`${url}/api/concave/metrics`, { headers: { authorization: `Convex ${key}` } })).status
  }

  test('with env only and no secret: serves, keeps a generated secret in the data dir, and generate_admin_key.sh finds it', async () => {
    const dataDir = join(root, 'volume')
    const { backend, env } = await runBackend(dataDir, {})
    try {
      const version = await fetch(`${backend.url}/version`)
      expect(version.status).toBe(200)
      expect(await version.text()).toBe(VERSION)
      const saved = JSON.parse(readFileSync(join(dataDir, 'concave_credentials.json'), 'utf8')) as { instanceName: string; instanceSecret: string }
      expect(saved.instanceName).toBe('convex-self-hosted')
      expect(saved.instanceSecret).toMatch(/^[0-9a-f]{64}$/)
      const printed = /Admin key: +(\S+)/.exec(backend.output())?.[1]
      expect(printed).toBeDefined()
      expect(await metricsStatus(backend.url, printed!)).toBe(200)

      // `docker compose exec backend ./generate_admin_key.sh`: same env, INSTANCE_SECRET empty.
      const { stdout } = await execFileAsync(join(install, 'generate_admin_key.sh'), [], { cwd: install, env })
      const key = stdout.trim().split('\n').at(-1)!
      expect(key.startsWith('convex-self-hosted|')).toBe(true)
      expect(await metricsStatus(backend.url, key)).toBe(200)
      expect(await metricsStatus(backend.url, issueAdminKey('convex-self-hosted', TEST_SECRET))).toBe(401)

      // The script execs the backend, so the container's stop signal reaches it.
      expect(await backend.stop('SIGINT')).toEqual({ code: 0, signal: null })
      expect(backend.output()).toContain('Concave backend stopped')

      // A restart on the same volume keeps the secret: the old key still works.
      const again = await runBackend(dataDir, {})
      try {
        expect(await metricsStatus(again.backend.url, key)).toBe(200)
      } finally {
        await again.backend.stop()
      }
    } finally {
      await backend.stop('SIGKILL')
    }
  })

  test('with INSTANCE_SECRET_FILE (a Docker secret): the secret stays out of the environment, and generate_admin_key.sh reads the file too', async () => {
    const secretFile = join(root, 'docker_secret')
    writeFileSync(secretFile, `${TEST_SECRET}\n`, { mode: 0o600 })
    const { backend, env } = await runBackend(join(root, 'volume-with-secret-file'), { INSTANCE_SECRET_FILE: secretFile })
    try {
      const expected = issueAdminKey('convex-self-hosted', TEST_SECRET)
      expect(await metricsStatus(backend.url, expected)).toBe(200)
      const pid = backend.process.pid!
      expect(readFileSync(`/proc/${pid}/environ`, 'latin1')).not.toContain(TEST_SECRET)
      expect(readFileSync(`/proc/${pid}/cmdline`, 'latin1')).not.toContain(TEST_SECRET)
      expect(backend.output()).not.toContain('Admin key:')
      const { stdout } = await execFileAsync(join(install, 'generate_admin_key.sh'), [], { cwd: install, env })
      const key = stdout.trim().split('\n').at(-1)!
      expect(key.startsWith('convex-self-hosted|')).toBe(true)
      expect(await metricsStatus(backend.url, key)).toBe(200)
    } finally {
      expect(await backend.stop()).toEqual({ code: 0, signal: null })
    }
  })

  test('with INSTANCE_NAME, INSTANCE_SECRET and origins from the environment', async () => {
    const dataDir = join(root, 'volume-with-secret')
    const { backend } = await runBackend(dataDir, { INSTANCE_NAME: TEST_INSTANCE, INSTANCE_SECRET: TEST_SECRET, CONVEX_CLOUD_ORIGIN: 'https://api.example.test', CONVEX_SITE_ORIGIN: 'https://site.example.test' })
    try {
      expect(await (await fetch(`${backend.url}/instance_name`)).text()).toBe(TEST_INSTANCE)
      expect(await (await fetch(`${backend.url}/api/v1/get_canonical_urls`)).json()).toEqual({ convexCloudUrl: 'https://api.example.test', convexSiteUrl: 'https://site.example.test' })
      expect(await metricsStatus(backend.url, issueAdminKey(TEST_INSTANCE, TEST_SECRET))).toBe(200)
      expect(existsSync(join(dataDir, 'concave_credentials.json'))).toBe(false)
      expect(backend.output()).not.toContain('Admin key:')
    } finally {
      expect(await backend.stop()).toEqual({ code: 0, signal: null })
    }
  })
})
