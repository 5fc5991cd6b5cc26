/**
 * @module `node dist/backend`: the command line. Flags fall back to environment variables
 * (INSTANCE_NAME, INSTANCE_SECRET / INSTANCE_SECRET_FILE, PORT, SITE_PROXY_PORT, DASHBOARD_PORT, …) so the same
 * binary suits docker.
 * `concave-backend keybroker <command>` runs the keybroker CLI instead, so the single executable
 * (scripts/package.mjs) also serves scripts/generate_admin_key.sh; `concave-backend replicate …`
 * runs a live replica or asks one for its lag (src/replicate/cli.ts).
 */
import { setFlagsFromString } from 'node:v8'
import yargs from 'yargs'
import { hideBin } from 'yargs/helpers'
import { Backend, DEFAULT_INSTANCE_NAME, VERSION } from './backend.ts'
import { convexSettings } from './convex-flags.ts'
import { DEFAULT_HISTORY_RETENTION_MS } from './database/history-retention.ts'
import { createLogger } from './util/log.ts'
import { hideFromCommandLine, resolveInstanceSecret } from './instance-secret.ts'
import type { GivenSecret } from './instance-secret.ts'
import { main as keybrokerMain } from '../keybroker/cli.ts'
import { replicaArgs, replicateStatus } from './replicate/cli.ts'

export async function main(argv: string[]): Promise<void> {
  const env = process.env
  // libuv's thread pool (4 threads by default) runs the WAL fsync that every commit waits for, and
  // also file storage I/O, DNS lookups for fetch and crypto work: a bigger pool keeps a few slow
  // jobs from holding up commits. It is sized when first used, which is after this.
  env.UV_THREADPOOL_SIZE ??= '16'
  boundYoungGeneration()
  const args = await yargs(argv)
    .scriptName('concave-backend')
    .usage('$0 [options]\n\nRuns a Convex-compatible backend: the API and sync socket on --port, HTTP actions on --site-proxy-port.')
    .option('instance-name', { type: 'string', default: env.INSTANCE_NAME, describe: 'Instance name (env INSTANCE_NAME); admin keys are bound to it' })
    // No `default` from the environment for these two: --help would print the secret.
    .option('instance-secret-file', { type: 'string', describe: 'File holding the instance secret, 64 hex chars (env INSTANCE_SECRET_FILE). Keeps it off the command line and out of the environment' })
    .option('instance-secret', { type: 'string', describe: 'Instance secret, 64 hex chars (env INSTANCE_SECRET). Prefer --instance-secret-file or the variable: a command line is visible in `ps`. Without a secret, a dev secret is made and kept in the data directory' })
    .option('port', { alias: 'p', type: 'number', default: Number(env.PORT ?? 3210), describe: 'API and sync port (env PORT)' })
    .option('site-proxy-port', { type: 'number', default: Number(env.SITE_PROXY_PORT ?? 3211), describe: 'HTTP actions port (env SITE_PROXY_PORT)' })
    .option('dashboard-port', { type: 'number', default: Number(env.DASHBOARD_PORT || 6791), describe: 'Dashboard port, 0 for none (env DASHBOARD_PORT)' })
    .option('interface', { alias: 'i', type: 'string', default: env.CONCAVE_INTERFACE ?? '0.0.0.0', describe: 'Address to listen on (env CONCAVE_INTERFACE)' })
    .option('local-storage', { type: 'string', default: env.CONCAVE_LOCAL_STORAGE ?? process.cwd(), describe: 'Data directory: the SQLite file and credentials (env CONCAVE_LOCAL_STORAGE; default: the working directory)' })
    .option('db-url', { type: 'string', default: env.DATABASE_URL || undefined, describe: 'Keep the data in this Postgres database (postgres://user:password@host:port/db) instead of SQLite in the data directory (env DATABASE_URL; or POSTGRES_URL as Convex takes it: a server URL, the database named after the instance)' })
    .option('convex-origin', { type: 'string', default: env.CONVEX_CLOUD_ORIGIN, describe: 'Public URL of the API (env CONVEX_CLOUD_ORIGIN)' })
    .option('convex-site', { type: 'string', default: env.CONVEX_SITE_ORIGIN, describe: 'Public URL of HTTP actions (env CONVEX_SITE_ORIGIN)' })
    .option('replicate-from', { type: 'string', default: env.CONCAVE_REPLICATE_FROM || undefined, describe: 'Replicate live from the deployment at this URL (another Concave, or Convex), with the admin key in CONCAVE_REPLICATE_ADMIN_KEY (env CONCAVE_REPLICATE_FROM)' })
    // Convex's convex-local-backend flags (src/convex-flags.ts says what each does here).
    .command('$0 [db-spec]', false, (y) => y.positional('db-spec', { type: 'string', describe: "Convex's database spec: with --db postgres-v5, a Postgres server URL (as POSTGRES_URL)" }))
    .option('db', { alias: 'd', type: 'string', describe: "Convex's database driver: postgres-v5 (with a server URL as the first argument) or sqlite (the default); mysql-v5 is refused", group: 'Convex compatibility:' })
    .option('do-not-require-ssl', { type: 'boolean', describe: 'Accepted (env DO_NOT_REQUIRE_SSL): Concave follows the Postgres URL\'s sslmode', group: 'Convex compatibility:' })
    .option('disable-beacon', { type: 'boolean', describe: 'Accepted and ignored (env DISABLE_BEACON): Concave sends no beacon', group: 'Convex compatibility:' })
    .option('beacon-tag', { type: 'string', hidden: true })
    .option('beacon-fields', { type: 'string', hidden: true })
    .option('sentry-identifier', { type: 'string', hidden: true })
    .option('s3-storage', { type: 'boolean', describe: 'Refused: files are kept in the data directory or the Postgres database', group: 'Convex compatibility:' })
    .option('redact-logs-to-client', { type: 'boolean', describe: 'Refused (env REDACT_LOGS_TO_CLIENT): not supported yet', group: 'Convex compatibility:' })
    .option('convex-http-proxy', { type: 'string', describe: "Refused: actions' fetch goes out directly", group: 'Convex compatibility:' })
    .option('local-log-sink', { type: 'string', describe: 'Refused: the log goes to stdout', group: 'Convex compatibility:' })
    .option('log-format', { choices: ['json', 'pretty'] as const, default: (env.CONCAVE_LOG_FORMAT as 'json' | 'pretty' | undefined) ?? 'json', describe: 'Server log format (env CONCAVE_LOG_FORMAT)' })
    .strict()
    .version(VERSION)
    .help()
    .parse()
  const log = createLogger(args['log-format'])
  const convex = convexSettings(
    {
      dbSpec: args['db-spec'] as string | undefined,
      db: args.db,
      s3Storage: args['s3-storage'],
      doNotRequireSsl: args['do-not-require-ssl'],
      disableBeacon: args['disable-beacon'],
      beaconTag: args['beacon-tag'],
      beaconFields: args['beacon-fields'],
      sentryIdentifier: args['sentry-identifier'],
      redactLogsToClient: args['redact-logs-to-client'],
      localLogSink: args['local-log-sink'],
      convexHttpProxy: args['convex-http-proxy'],
    },
    env,
    { dbUrl: args['db-url'] === '' ? undefined : args['db-url'], instanceName: args['instance-name'] || DEFAULT_INSTANCE_NAME },
  )
  if (convex.refusals.length > 0) {
    for (const error of convex.refusals) log.error('Failed to start', { error })
    process.exitCode = 1
    return
  }
  for (const note of convex.notes) log.info(note)
  let given: GivenSecret | undefined
  try {
    given = resolveInstanceSecret({ secret: args['instance-secret'], secretFile: args['instance-secret-file'] }, env)
  } catch (e) {
    log.error('Failed to start', { error: (e as Error).message })
    process.exitCode = 1
    return
  }
  // Read once; from here only the backend's memory holds it. Nothing this process starts later
  // (npm, the Node action process) inherits the variables. /proc/<pid>/environ still shows the
  // environment the process was started with: the kernel's copy can't be changed (docs/architecture.md).
  delete env.INSTANCE_SECRET
  delete env.INSTANCE_SECRET_FILE
  const replicationKey = env.CONCAVE_REPLICATE_ADMIN_KEY
  delete env.CONCAVE_REPLICATE_ADMIN_KEY
  if (given?.source === 'flag') {
    const hidden = hideFromCommandLine(given.secret)
    log.warn(
      `--instance-secret puts the secret on the command line, where any user of this machine can read it (ps, /proc/<pid>/cmdline)${hidden ? ', until the backend hid it at start-up' : ''}. Give it with --instance-secret-file or the INSTANCE_SECRET environment variable instead.`,
    )
  }
  let limits: { queryMutationTimeoutMs: number; actionTimeoutMs: number; memoryLimitMb: number; nodeMemoryLimitMb: number; jobRetentionMs: number; historyRetentionMs: number; requestBodyBudgetMb: number; functionResultMb: number }
  try {
    limits = {
      queryMutationTimeoutMs: numberSetting(env, 'CONCAVE_FUNCTION_TIMEOUT_MS', 1000, 1),
      actionTimeoutMs: numberSetting(env, 'CONCAVE_ACTION_TIMEOUT_MS', convex.actionTimeoutMs ?? 600_000, 1),
      memoryLimitMb: numberSetting(env, 'CONCAVE_FUNCTION_MEMORY_MB', 64, 8),
      nodeMemoryLimitMb: numberSetting(env, 'CONCAVE_NODE_ACTION_MEMORY_MB', 512, 16),
      jobRetentionMs: numberSetting(env, 'CONCAVE_JOB_RETENTION_MS', 7 * 24 * 3600 * 1000, 0),
      historyRetentionMs: numberSetting(env, 'CONCAVE_HISTORY_RETENTION_MS', convex.historyRetentionMs ?? DEFAULT_HISTORY_RETENTION_MS, 0),
      requestBodyBudgetMb: numberSetting(env, 'CONCAVE_REQUEST_BODY_BUDGET_MB', 32, 1),
      functionResultMb: numberSetting(env, 'CONCAVE_FUNCTION_RESULT_MB', 16, 1),
    }
    if (args['replicate-from'] !== undefined && !replicationKey) throw new Error('--replicate-from needs an admin key of the source in CONCAVE_REPLICATE_ADMIN_KEY')
  } catch (e) {
    log.error('Failed to start', { error: (e as Error).message })
    process.exitCode = 1
    return
  }
  const backend = new Backend(
    {
      instanceName: args['instance-name'],
      instanceSecret: given?.secret,
      port: args.port,
      sitePort: args['site-proxy-port'],
      dashboardPort: args['dashboard-port'],
      interface: args.interface,
      dataDir: args['local-storage'],
      dbUrl: convex.dbUrl ?? (args['db-url'] === '' ? undefined : args['db-url']),
      convexOrigin: args['convex-origin'],
      siteOrigin: args['convex-site'],
      ...limits,
      replicateFrom: args['replicate-from'] === undefined ? undefined : { url: args['replicate-from'], adminKey: replicationKey! },
    },
    log,
  )
  try {
    await backend.start()
  } catch (e) {
    // A bug of ours (not a refusal with its reason) comes with where it happened.
    log.error('Failed to start', { error: (e as Error).message, ...(e instanceof TypeError || e instanceof ReferenceError ? { stack: e.stack } : {}) })
    process.exitCode = 1
    await backend.stop().catch(() => {})
    return
  }
  if (backend.devAdminKey !== null) {
    const dashboard = args['dashboard-port'] > 0 ? `  Dashboard:        http://127.0.0.1:${args['dashboard-port']}\n` : ''
    process.stdout.write(`\nConcave is running.\n  Deployment URL:   ${backend.cloudUrl}\n  HTTP actions URL: ${backend.siteUrl}\n${dashboard}  Admin key:        ${backend.devAdminKey}\n\n`)
  }
  let stopping = false
  const stop = (signal: string) => {
    if (stopping) return
    stopping = true
    log.info('Shutting down', { signal })
    // stdout to a pipe is asynchronous: exit only once the last log line is written.
    const exit = (code: number) => process.stdout.write('', () => process.exit(code))
    // Shutdown lets work in flight finish for 5 s; whatever still holds it after that much longer
    // again (a stuck store, a worker that won't stop) must not keep the process alive.
    setTimeout(() => {
      log.error('Shutdown did not finish in time; exiting anyway')
      process.exit(1)
    }, 15_000).unref()
    backend.stop().then(
      () => exit(0),
      (e: unknown) => {
        log.error('Error during shutdown', { error: String(e) })
        exit(1)
      },
    )
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
}

const argv = hideBin(process.argv)
// `keygen admin-key --instance-name N --instance-secret S` is convex-local-backend's form (the convex
// CLI runs it to make a local deployment's key): the keybroker's generate-key does the same.
const keybrokerArgv = argv[0] === 'keybroker' ? argv.slice(1) : argv[0] === 'keygen' && argv[1] === 'admin-key' ? ['generate-key', ...argv.slice(2)] : null
if (keybrokerArgv !== null) {
  keybrokerMain(keybrokerArgv).then(
    (code) => {
      process.exitCode = code
    },
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`)
      process.exitCode = 1
    },
  )
} else if (argv[0] === 'replicate') {
  replicateCommand(argv.slice(1)).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`)
    process.exitCode = 1
  })
} else {
  void main(argv)
}

/** `concave-backend replicate …` (src/replicate/cli.ts). */
async function replicateCommand(rest: string[]): Promise<void> {
  if (rest[0] === 'status') process.exitCode = await replicateStatus(rest.slice(1), process.env)
  else await main(replicaArgs(rest, process.env))
}

/** A number setting from the environment: `fallback` when unset or empty; anything but a number >= `min` is refused. */
function numberSetting(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number): number {
  const value = env[name]
  if (value === undefined || value.trim() === '') return fallback
  const n = Number(value)
  if (!Number.isFinite(n) || n < min) throw new Error(`${name} must be a number of at least ${min}, not ${JSON.stringify(value)}`)
  return n
}

/**
 * Keeps V8's young generation at its starting size. By default it doubles under load up to 64 MB
 * per semi-space (measured: 16 MB after 500 sync sockets connect, 128 MB after a heavy burst), and
 * gives that back only after the process has been idle for a while: a backend's memory would then
 * measure its last burst rather than what it holds. Mutation throughput is the same either way
 * (bench: c=32 within run-to-run noise). The growth factor is read at each resize, so setting it
 * at run time works (unlike --max-semi-space-size, read once when the heap is made); given on the
 * command line it is overridden at heap set-up, so this is the only way it takes.
 */
function boundYoungGeneration(): void {
  setFlagsFromString('--semi-space-growth-factor=1')
}
