/**
 * @module The command-line flags and environment variables of Convex's `convex-local-backend` (and
 * of its Docker image's run_backend.sh) that Concave's own don't already cover: each is taken with
 * Convex's meaning where Concave has the feature, ignored with a note where it changes nothing
 * here, and refused with a message saying what to use instead where ignoring it would surprise.
 * README.md ("Coming from Convex's self-hosted backend") has the table.
 */

/** What Convex's flags parse to (yargs names), as main.ts declares them. */
export interface ConvexFlags {
  /** Convex's positional DB spec: a SQLite file, or with `--db postgres-v5` a Postgres server URL. */
  dbSpec?: string | undefined
  db?: string | undefined
  s3Storage?: boolean | undefined
  doNotRequireSsl?: boolean | undefined
  disableBeacon?: boolean | undefined
  beaconTag?: string | undefined
  beaconFields?: string | undefined
  sentryIdentifier?: string | undefined
  redactLogsToClient?: boolean | undefined
  localLogSink?: string | undefined
  convexHttpProxy?: string | undefined
}

export interface ConvexSettings {
  /** Set when a Convex form names the Postgres database (POSTGRES_URL, the positional URL). */
  dbUrl?: string
  /** From V8_/NODE_ACTION_USER_TIMEOUT_SECS (or the older ACTIONS_USER_TIMEOUT_SECS), when CONCAVE_ACTION_TIMEOUT_MS isn't set. */
  actionTimeoutMs?: number
  /** From DOCUMENT_RETENTION_DELAY (seconds), when CONCAVE_HISTORY_RETENTION_MS isn't set. */
  historyRetentionMs?: number
  /** Why the start is refused (empty: go ahead). */
  refusals: string[]
  /** What was ignored, for one log line. */
  notes: string[]
}

/**
 * Variables of Convex's docker-compose.yml that tune its server; nothing here reads them. (Its
 * RUST_LOG, RUST_BACKTRACE and CONVEX_RELEASE_VERSION_DEV are ignored without a note: Rust users
 * often have the first two set for everything they run.)
 */
const IGNORED_KNOBS = [
  'APPLICATION_MAX_CONCURRENT_MUTATIONS',
  'APPLICATION_MAX_CONCURRENT_NODE_ACTIONS',
  'APPLICATION_MAX_CONCURRENT_QUERIES',
  'APPLICATION_MAX_CONCURRENT_V8_ACTIONS',
  'HTTP_SERVER_TIMEOUT_SECONDS',
  'DISABLE_METRICS_ENDPOINT',
]

/** The buckets Convex's run_backend.sh needs all of before it switches to S3. */
const S3_BUCKETS = ['S3_STORAGE_EXPORTS_BUCKET', 'S3_STORAGE_SNAPSHOT_IMPORTS_BUCKET', 'S3_STORAGE_MODULES_BUCKET', 'S3_STORAGE_FILES_BUCKET', 'S3_STORAGE_SEARCH_BUCKET']

const set = (env: NodeJS.ProcessEnv, name: string) => (env[name] ?? '').trim() !== ''
/** Convex's boolish values (clap's BoolishValueParser): true/false, yes/no, on/off, 1/0 and friends. */
const truthy = (value: string | undefined) => value !== undefined && /^(1|y|yes|t|true|on)$/i.test(value.trim())

/**
 * A Postgres server URL in Convex's form has no database: Convex uses the instance name, dashes made
 * underscores (`convex-self-hosted` → `convex_self_hosted`). A URL that names one is used as given.
 */
export function convexPostgresUrl(url: string, instanceName: string): string {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new Error(`Not a Postgres URL: ${JSON.stringify(url.replace(/\/\/[^@/]*@/, '//…@'))}`)
  }
  if (parsed.pathname !== '' && parsed.pathname !== '/') return url
  parsed.pathname = `/${instanceName.replace(/-/g, '_')}`
  return parsed.toString()
}

/**
 * Works out what Convex's flags and variables ask for. `dbUrl` is Concave's own (`--db-url` or
 * DATABASE_URL) when given; `instanceName` names the database of a Convex-style Postgres URL.
 */
export function convexSettings(flags: ConvexFlags, env: NodeJS.ProcessEnv, own: { dbUrl?: string | undefined; instanceName: string }): ConvexSettings {
  const out: ConvexSettings = { refusals: [], notes: [] }
  const refuse = (message: string) => out.refusals.push(message)

  // The database.
  const driver = flags.db ?? 'sqlite'
  if (driver === 'mysql-v5' || set(env, 'MYSQL_URL')) {
    refuse(`MySQL is not supported (${driver === 'mysql-v5' ? '--db mysql-v5' : 'MYSQL_URL'}): keep the data in Postgres (POSTGRES_URL or --db-url) or in SQLite in the data directory (the default), and move it with npx convex export / import`)
  } else if (driver !== 'sqlite' && driver !== 'postgres-v5') {
    refuse(`--db ${driver} is not a database Concave knows: use postgres-v5 (with a server URL), or leave it out for SQLite`)
  }
  if (flags.dbSpec !== undefined && flags.dbSpec !== '') {
    const isUrl = /^postgres(ql)?:\/\//i.test(flags.dbSpec)
    if (driver === 'postgres-v5' || isUrl) {
      if (!isUrl) refuse(`--db postgres-v5 needs a postgres:// URL as its database spec, not ${JSON.stringify(flags.dbSpec)}`)
      else if (own.dbUrl !== undefined) refuse('The database is given twice: as the positional URL and as --db-url (or DATABASE_URL); give one')
      else out.dbUrl = flags.dbSpec
    } else if (driver === 'sqlite') {
      refuse(`A SQLite file as the first argument (${JSON.stringify(flags.dbSpec)}) is Convex's form: Concave keeps its SQLite database in the data directory, so give --local-storage DIR instead (the file is DIR/concave_local_backend.sqlite3; Convex's own file can't be opened here: move the data with npx convex export / import)`)
    }
  } else if (driver === 'postgres-v5' && own.dbUrl === undefined && !set(env, 'POSTGRES_URL')) {
    refuse('--db postgres-v5 needs the Postgres server URL as the first argument (or POSTGRES_URL, or --db-url)')
  }
  if (out.dbUrl === undefined && own.dbUrl === undefined && set(env, 'POSTGRES_URL')) out.dbUrl = env.POSTGRES_URL!.trim()
  if (out.dbUrl !== undefined) {
    try {
      out.dbUrl = convexPostgresUrl(out.dbUrl, own.instanceName)
    } catch (e) {
      refuse((e as Error).message)
    }
  }
  if (flags.doNotRequireSsl || truthy(env.DO_NOT_REQUIRE_SSL)) {
    out.notes.push("--do-not-require-ssl: Concave doesn't insist on SSL to Postgres anyway; it follows the URL (add ?sslmode=require to insist)")
  }

  // File storage.
  if (flags.s3Storage) refuse('--s3-storage is not supported: stored files are kept in the data directory (SQLite) or in the Postgres database')
  else if (S3_BUCKETS.every((b) => set(env, b)) && set(env, 'AWS_REGION')) {
    refuse('S3 storage (AWS_REGION and the S3_STORAGE_*_BUCKET variables) is not supported: stored files are kept in the data directory (SQLite) or in the Postgres database. Unset the variables to go on')
  }

  // Clients and the outside world.
  if (flags.redactLogsToClient || truthy(env.REDACT_LOGS_TO_CLIENT)) {
    refuse("--redact-logs-to-client (REDACT_LOGS_TO_CLIENT) is not supported yet: Concave sends functions' error messages and log lines to clients. Leave it out to accept that")
  }
  if (flags.convexHttpProxy !== undefined) {
    refuse("--convex-http-proxy is not supported: actions' fetch calls go out directly. Screen outgoing requests with a firewall or leave the flag out")
  }
  if (flags.localLogSink !== undefined) refuse('--local-log-sink is not supported: the server log goes to stdout (--log-format json or pretty)')
  const ignored: string[] = []
  if (flags.disableBeacon || truthy(env.DISABLE_BEACON)) ignored.push('--disable-beacon (Concave sends no beacon)')
  if (flags.beaconTag !== undefined || flags.beaconFields !== undefined) ignored.push('--beacon-tag/--beacon-fields (no beacon)')
  if (flags.sentryIdentifier !== undefined) ignored.push('--sentry-identifier (no Sentry)')
  const knobs = IGNORED_KNOBS.filter((k) => set(env, k))
  if (knobs.length > 0) ignored.push(`${knobs.join(', ')} (settings of Convex's server that Concave has no counterpart for)`)
  if (ignored.length > 0) out.notes.push(`Ignored Convex options: ${ignored.join('; ')}`)

  // Limits.
  if (!set(env, 'CONCAVE_ACTION_TIMEOUT_MS')) {
    // ACTIONS_USER_TIMEOUT_SECS: Convex's one knob for both runtimes until July 2026.
    const secs = ['V8_ACTION_USER_TIMEOUT_SECS', 'NODE_ACTION_USER_TIMEOUT_SECS', 'ACTIONS_USER_TIMEOUT_SECS'].filter((k) => set(env, k)).map((k) => {
      const n = Number(env[k])
      if (!Number.isFinite(n) || n <= 0) refuse(`${k} must be a positive number of seconds, not ${JSON.stringify(env[k])}`)
      return n
    })
    if (secs.length > 0) out.actionTimeoutMs = Math.max(...secs) * 1000
  }
  // Convex's document retention window: how far back the write log reaches (history reads,
  // point-in-time restore, streaming export cursors).
  if (!set(env, 'CONCAVE_HISTORY_RETENTION_MS') && set(env, 'DOCUMENT_RETENTION_DELAY')) {
    const secs = Number(env.DOCUMENT_RETENTION_DELAY)
    if (!Number.isFinite(secs) || secs < 0) refuse(`DOCUMENT_RETENTION_DELAY must be a number of seconds, not ${JSON.stringify(env.DOCUMENT_RETENTION_DELAY)}`)
    else out.historyRetentionMs = secs * 1000
  }
  return out
}
