/**
 * A throwaway PostgreSQL cluster for tests: `initdb` + `pg_ctl` in a temp directory, on a free
 * port of 127.0.0.1 (and a Unix socket in the same directory), trusting local connections.
 * Needs Debian's `postgresql` package (binaries in /usr/lib/postgresql/<version>/bin) or
 * `initdb`/`pg_ctl` on PATH, or PG_BIN naming their directory. As root, the cluster runs as the
 * `postgres` OS user (initdb refuses to run as root).
 */
import { execFile } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'
import { afterAll, beforeAll } from 'vitest'
import { ConvexHttpClient } from 'convex/browser'
import { cleanup, convexCli, prepareFixture, startBackend } from './test-backend.ts'
import type { TestBackend } from './test-backend.ts'

const run = promisify(execFile)

export interface PostgresCluster {
  /** The URL of the `postgres` database (superuser `postgres`, no password). */
  readonly url: string
  /**
   * Creates a new empty database (UTF8) and returns its URL. Its default collation is ICU's
   * English one (not byte order), as on most managed Postgres, so that tests see a store that
   * relies on the default collation where it must not.
   */
  newDatabase(): Promise<string>
  /** Stops the server (as a crash would: `immediate`), keeping its data, until `resume`. */
  pause(): Promise<void>
  /** Starts the paused server again, on the same port. */
  resume(): Promise<void>
  /** Stops the cluster and removes its directory. */
  stop(): Promise<void>
}

/** The directory of initdb and pg_ctl: PG_BIN, Debian's newest /usr/lib/postgresql/<v>/bin, or PATH (''). */
function binDir(): string {
  if (process.env.PG_BIN) return process.env.PG_BIN
  const root = '/usr/lib/postgresql'
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
      .sort((a, b) => Number(b) - Number(a))
    if (versions.length > 0) return join(root, versions[0]!, 'bin')
  }
  return ''
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port
      server.close(() => resolve(port))
    })
  })
}

export async function startPostgres(): Promise<PostgresCluster> {
  const bin = binDir()
  const tool = (name: string) => (bin === '' ? name : join(bin, name))
  const asRoot = process.getuid?.() === 0
  // As root: run the cluster's tools as the postgres OS user, who owns the directory.
  const exec = (file: string, args: string[]) => (asRoot ? run('runuser', ['-u', 'postgres', '--', file, ...args]) : run(file, args))
  const dir = mkdtempSync(join(tmpdir(), 'concave-pg-'))
  if (asRoot) await run('chown', ['postgres:', dir])
  chmodSync(dir, 0o700)
  const data = join(dir, 'data')
  const port = await freePort()
  let started = false
  const stop = async () => {
    if (started) await exec(tool('pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => {})
    started = false
    rmSync(dir, { recursive: true, force: true })
  }
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=200 -c shared_buffers=32MB`
  const startServer = async () => {
    await exec(tool('pg_ctl'), ['-D', data, '-l', join(dir, 'log'), '-o', options, '-w', '-t', '60', 'start'])
    started = true
  }
  try {
    await exec(tool('initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-locale', '--no-sync'])
    await startServer()
  } catch (e) {
    await stop()
    throw new Error(`Could not start a PostgreSQL cluster for tests (apt-get install -y postgresql): ${(e as Error).message}`)
  }
  const url = `postgresql://postgres@127.0.0.1:${port}/postgres`
  let databases = 0
  return {
    url,
    async newDatabase() {
      const name = `test_${++databases}`
      const client = new pg.Client({ connectionString: url })
      await client.connect()
      try {
        await client.query(`CREATE DATABASE ${name} TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US'`)
      } finally {
        await client.end()
      }
      return `postgresql://postgres@127.0.0.1:${port}/${name}`
    },
    async pause() {
      await exec(tool('pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop'])
      started = false
    },
    resume: startServer,
    stop,
  }
}

export interface TwoProcesses {
  cluster: PostgresCluster
  /** Started first: it holds the background lease (scheduled functions and crons). */
  a: TestBackend
  b: TestBackend
  appDir: string
  viaA: ConvexHttpClient
  viaB: ConvexHttpClient
}

/**
 * Registers the hooks of a two-process test: a Postgres cluster, two backends on one database of
 * it (each with its own ports and data folder), and `fixture` pushed through `b`, the process that
 * doesn't run the scheduled functions; after all, everything stopped and removed.
 */
export function useTwoProcessesOnPostgres(fixture: string, assign: (t: TwoProcesses) => void, opts: { env?: Record<string, string> } = {}): void {
  let t: TwoProcesses | undefined
  beforeAll(async () => {
    const cluster = await startPostgres()
    const dbUrl = await cluster.newDatabase()
    const a = await startBackend({ args: ['--db-url', dbUrl], env: opts.env })
    const b = await startBackend({ args: ['--db-url', dbUrl], env: opts.env })
    const appDir = prepareFixture(fixture)
    await convexCli(appDir, ['deploy', '--url', b.url, '--admin-key', b.adminKey, '-y'])
    t = { cluster, a, b, appDir, viaA: new ConvexHttpClient(a.url), viaB: new ConvexHttpClient(b.url) }
    assign(t)
  }, 180_000)
  afterAll(async () => {
    await Promise.all([t?.a.stop(), t?.b.stop()])
    cleanup(t?.a.dataDir)
    cleanup(t?.b.dataDir)
    cleanup(t?.appDir)
    await t?.cluster.stop()
  })
}
