/**
 * convex-local-backend's command line and its Docker image's variables start Concave with the same
 * meaning; the ones Concave can't honour stop it with a message saying what to use instead.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { cleanup, freePort, ROOT, startCommand, TEST_SECRET } from '../helpers/test-backend.ts'
import type { RunningCommand } from '../helpers/test-backend.ts'

const execFileAsync = promisify(execFile)
const NODE = process.execPath
const BACKEND = join(ROOT, 'dist/backend.js')
/** A key in Convex's current format for carnitas and TEST_SECRET (keybroker/admin-key.test.ts). */
const CONVEX_KEY = 'carnitas|01000102030405060708090a0b1e5c06d46516f3f5fa3e99f5af81a957a2adc6f04983839e'

const dirs: string[] = []
let running: RunningCommand | undefined
afterAll(async () => {
  await running?.stop()
  for (const d of dirs) cleanup(d)
})

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'concave-convex-flags-'))
  dirs.push(d)
  return d
}

/** The environment without any of the variables these tests set. */
function baseEnv(): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...process.env }
  for (const k of ['INSTANCE_NAME', 'INSTANCE_SECRET', 'INSTANCE_SECRET_FILE', 'DATABASE_URL', 'POSTGRES_URL', 'MYSQL_URL', 'PORT', 'SITE_PROXY_PORT', 'CONVEX_CLOUD_ORIGIN', 'CONVEX_SITE_ORIGIN',
    'DISABLE_BEACON', 'DO_NOT_REQUIRE_SSL', 'REDACT_LOGS_TO_CLIENT', 'RUST_LOG', 'RUST_BACKTRACE', 'DOCUMENT_RETENTION_DELAY', 'HTTP_SERVER_TIMEOUT_SECONDS', 'DISABLE_METRICS_ENDPOINT', 'CONVEX_RELEASE_VERSION_DEV']) delete env[k]
  for (const k of Object.keys(env)) if (k.startsWith('APPLICATION_MAX_CONCURRENT_') || k.startsWith('S3_STORAGE_')) delete env[k]
  return env
}

/** Runs the backend expecting it to refuse to start; resolves with its exit code and output. */
async function refusedStart(args: string[], env: Record<string, string> = {}): Promise<{ code: number; output: string }> {
  const cwd = tempDir()
  try {
    await execFileAsync(NODE, [BACKEND, '--port', String(await freePort()), '--site-proxy-port', String(await freePort()), '--interface', '127.0.0.1', '--local-storage', cwd, ...args], { cwd, env: { ...baseEnv(), ...env }, timeout: 30_000 })
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string }
    return { code: err.code, output: `${err.stdout}${err.stderr}` }
  }
  throw new Error('expected the backend to refuse to start')
}

describe("convex-local-backend's flags", () => {
  it('a Convex-style command line and Docker variables start the backend with their meaning', async () => {
    const dir = tempDir()
    const port = await freePort()
    const sitePort = await freePort()
    // As Convex's run_backend.sh starts convex-local-backend, with the variables of its compose file.
    running = await startCommand(
      NODE,
      [BACKEND, '--instance-name', 'carnitas', '--instance-secret', TEST_SECRET, '-p', String(port), '--site-proxy-port', String(sitePort), '-i', '127.0.0.1',
        '--convex-origin', 'https://api.example.test', '--convex-site', 'https://site.example.test', '--beacon-tag', 'self-hosted-docker', '--disable-beacon', '--do-not-require-ssl', '--local-storage', dir],
      { port, cwd: dir, env: { ...baseEnv(), DISABLE_BEACON: 'true', RUST_LOG: 'info', APPLICATION_MAX_CONCURRENT_MUTATIONS: '16', DOCUMENT_RETENTION_DELAY: '172800' } },
    )
    expect(await (await fetch(`${running.url}/instance_name`)).text()).toEqual('carnitas')
    expect(await (await fetch(`${running.url}/api/v1/get_canonical_urls`)).json()).toEqual({ convexCloudUrl: 'https://api.example.test', convexSiteUrl: 'https://site.example.test' })
    // A key made by Convex's algorithm for that name and secret is this deployment's admin key.
    const check = await fetch(`${running.url}/api/check_admin_key`, { headers: { authorization: `Convex ${CONVEX_KEY}` } })
    expect(check.status).toEqual(200)
    const notes = running.output().split('\n').filter((l) => l.includes('Ignored Convex options') || l.includes('do-not-require-ssl'))
    expect(notes.map((l) => (JSON.parse(l) as { message: string }).message)).toEqual([
      "--do-not-require-ssl: Concave doesn't insist on SSL to Postgres anyway; it follows the URL (add ?sslmode=require to insist)",
      "Ignored Convex options: --disable-beacon (Concave sends no beacon); --beacon-tag/--beacon-fields (no beacon); APPLICATION_MAX_CONCURRENT_MUTATIONS (settings of Convex's server that Concave has no counterpart for)",
    ])
  })

  it('`keygen admin-key` prints a key for the instance, as convex-local-backend does', async () => {
    const { stdout } = await execFileAsync(NODE, [BACKEND, 'keygen', 'admin-key', '--instance-name', 'carnitas', '--instance-secret', TEST_SECRET], { env: baseEnv() })
    expect(stdout).toMatch(/^carnitas\|01[0-9a-f]{72}\n$/)
    const check = await fetch(`${running!.url}/api/check_admin_key`, { headers: { authorization: `Convex ${stdout.trim()}` } })
    expect(check.status).toEqual(200)
  })

  it.each([
    [['--db', 'mysql-v5', 'mysql://user:pw@db.example.test'], {}, 'MySQL is not supported (--db mysql-v5): keep the data in Postgres (POSTGRES_URL or --db-url) or in SQLite in the data directory (the default), and move it with npx convex export / import'],
    [[], { MYSQL_URL: 'mysql://user:pw@db.example.test' }, 'MySQL is not supported (MYSQL_URL): keep the data in Postgres (POSTGRES_URL or --db-url) or in SQLite in the data directory (the default), and move it with npx convex export / import'],
    [['convex_local_backend.sqlite3'], {}, 'A SQLite file as the first argument ("convex_local_backend.sqlite3") is Convex\'s form: Concave keeps its SQLite database in the data directory, so give --local-storage DIR instead (the file is DIR/concave_local_backend.sqlite3; Convex\'s own file can\'t be opened here: move the data with npx convex export / import)'],
    [['--s3-storage'], {}, '--s3-storage is not supported: stored files are kept in the data directory (SQLite) or in the Postgres database'],
    [[], { REDACT_LOGS_TO_CLIENT: 'true' }, "--redact-logs-to-client (REDACT_LOGS_TO_CLIENT) is not supported yet: Concave sends functions' error messages and log lines to clients. Leave it out to accept that"],
    [['--db', 'postgres-v5'], {}, '--db postgres-v5 needs the Postgres server URL as the first argument (or POSTGRES_URL, or --db-url)'],
  ])('%j with %j is refused, saying what to use instead', async (args, env, message) => {
    const { code, output } = await refusedStart(args, env)
    expect(code).toEqual(1)
    const errors = output.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: string; message: string; error?: string }).filter((l) => l.level === 'error')
    expect(errors).toEqual([expect.objectContaining({ message: 'Failed to start', error: message })])
  })
})
