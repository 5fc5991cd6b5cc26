/**
 * @module Backend: wires storage, database, runtime, push and HTTP together and owns their
 * lifetime. `start()` listens on the API port (3210) and the HTTP-actions port (3211); `stop()`
 * drains requests and closes the database cleanly.
 */
import { RequestStats } from './util/request-stats.ts'
import { SessionRequests } from './sync/session-requests.ts'
import { lockDataDir } from './storage/sqlite/data-dir-lock.ts'
import type { DataDirLock } from './storage/sqlite/data-dir-lock.ts'
import { CursorCodec } from './database/cursors.ts'
import { serve } from '@hono/node-server'
import type { ServerType } from '@hono/node-server'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { getHeapSpaceStatistics } from 'node:v8'
import { deploymentSigningKey, generateInstanceSecret, issueAdminKey, parseInstanceSecret, validateInstanceName, verifyAdminKey } from '../keybroker/index.ts'
import { Database } from './database/database.ts'
import { FunctionRunner } from './functions/function-runner.ts'
import { EnvironmentVariables } from './functions/environment.ts'
import { DeploymentState } from './functions/deployment-state.ts'
import { CanonicalUrls } from './functions/canonical-urls.ts'
import { systemFunctions } from './functions/system-functions.ts'
import { frontendSystemFunctions } from './functions/frontend-functions.ts'
import { snapshotSystemFunctions } from './snapshot/system-functions.ts'
import { snapshotService } from './snapshot/snapshots.ts'
import { SCHEDULED_FUNCTIONS, Scheduler, SchedulerSet } from './functions/scheduler.ts'
import { CRON_RUNS, CronSet } from './functions/crons.ts'
import { FileStorage } from './files/file-storage.ts'
import { FolderBlobStore } from './storage/blob-store.ts'
import { Auth } from './auth/auth.ts'
import type { CronSpec } from './functions/crons.ts'
import { IsolatePool } from './functions/isolate/isolate-pool.ts'
import { RUNTIME_SOURCE } from './functions/isolate/runtime-source.ts'
import { createHttpApp } from './http/http-app.ts'
import { apiBodyLimit, MAX_HTTP_ACTION_BODY } from './http/limits.ts'
import { createSiteApp } from './http/site-app.ts'
import { createDashboardApp, serveDashboard } from './dashboard/server.ts'
import { refuseOversizedEarly } from './http/early-refusal.ts'
import { BodyBudget } from './http/body.ts'
import { NodePackages } from './functions/node/node-packages.ts'
import { PushService } from './push/push.ts'
import type { Persistence } from './storage/persistence.ts'
import { PostgresPersistence } from './storage/postgres/postgres-persistence.ts'
import { SqlitePersistence } from './storage/sqlite/sqlite-persistence.ts'
import { MutationLog } from './sync/mutation-log.ts'
import { SubscriptionManager } from './sync/subscriptions.ts'
import { restoreInto } from './snapshot/restore-into.ts'
import { attachSyncServer } from './sync/sync-server.ts'
import type { Server } from 'node:http'
import type { Logger } from './util/log.ts'
import { Replicator } from './replicate/replicator.ts'
import type { ReplicationSource } from './replicate/replicator.ts'

export const VERSION = '0.1.0'
export const DATABASE_FILE = 'concave_local_backend.sqlite3'
export const CREDENTIALS_FILE = 'concave_credentials.json'
/** Where a Postgres-backed deployment keeps the embedded default's credentials: in the database. */
const CREDENTIALS_GLOBAL = 'instance_credentials'
export const DEFAULT_INSTANCE_NAME = 'convex-self-hosted'

export interface BackendConfig {
  instanceName?: string | undefined
  instanceSecret?: string | undefined
  port: number
  sitePort: number
  /** The dashboard's port (0 or absent: no dashboard). */
  dashboardPort?: number
  interface: string
  dataDir: string
  /** A Postgres database to keep the data in (absent: SQLite in the data directory). */
  dbUrl?: string | undefined
  convexOrigin?: string | undefined
  siteOrigin?: string | undefined
  /** Per-call limits for user functions. */
  queryMutationTimeoutMs: number
  actionTimeoutMs: number
  memoryLimitMb: number
  /** Heap limit of the Node.js action worker. */
  nodeMemoryLimitMb: number
  /** How long finished scheduled functions' records are kept (cron runs' at most an hour). */
  jobRetentionMs: number
  /** How long superseded document revisions stay readable by `/api/query_at_ts` (default 4 minutes). */
  historyRetentionMs?: number
  /** Request body bytes held at once (function calls, HTTP actions), in MiB; beyond it, 503. */
  requestBodyBudgetMb: number
  /** Largest return value of a function, in MiB (Convex: 16). */
  functionResultMb: number
  /** Replicate this deployment (live) from another one (`--replicate-from`, src/replicate/replicator.ts). */
  replicateFrom?: ReplicationSource | undefined
}

export class Backend {
  #api: ServerType | null = null
  #site: ServerType | null = null
  #dashboard: ServerType | null = null
  #db: Database | null = null
  /** The store, until the database owns it (closed by stop() if start-up fails before that). */
  #persistence: Persistence | null = null
  #lock: DataDirLock | null = null
  #sessionRequests: SessionRequests | null = null
  #draining = false
  #pool: IsolatePool | null = null
  #sync: ReturnType<typeof attachSyncServer> | null = null
  #schedulers: SchedulerSet | null = null
  #crons: CronSet | null = null
  #replicator: Replicator | null = null
  /** The store's size, read every few seconds for the metrics (reading it may take a query). */
  #databaseBytes = 0
  #sizeTimer: NodeJS.Timeout | null = null
  instanceName = ''
  instanceSecret = ''
  /** Set when the secret was generated or loaded from the data directory (the embedded default). */
  devAdminKey: string | null = null

  constructor(
    readonly config: BackendConfig,
    readonly log: Logger,
  ) {}

  /** The deployment's URL: its canonical one if set (canonical-urls.ts), else the one it was started with. */
  get cloudUrl(): string {
    return this.#canonical?.get('convexCloud') ?? this.config.convexOrigin ?? `http://127.0.0.1:${this.config.port}`
  }

  get siteUrl(): string {
    return this.#canonical?.get('convexSite') ?? this.config.siteOrigin ?? `http://127.0.0.1:${this.config.sitePort}`
  }
  #canonical: CanonicalUrls | null = null

  /**
   * The instance name and secret: given, or the embedded default's, made once and kept with the
   * data — in the data directory for SQLite, in the database itself for Postgres (so any data
   * directory on that database serves the same deployment, with the same admin key).
   */
  async #credentials(dataDir: string, persistence: Persistence): Promise<void> {
    const { config } = this
    if (config.instanceSecret !== undefined && config.instanceSecret !== '') {
      this.instanceName = config.instanceName ?? DEFAULT_INSTANCE_NAME
      this.instanceSecret = config.instanceSecret
    } else {
      type Saved = { instanceName: string; instanceSecret: string }
      const file = join(dataDir, CREDENTIALS_FILE)
      const inDatabase = config.dbUrl !== undefined
      const stored = inDatabase ? await persistence.getGlobal(CREDENTIALS_GLOBAL) : existsSync(file) ? readFileSync(file, 'utf8') : undefined
      if (stored !== undefined) {
        const saved = JSON.parse(stored) as Saved
        this.instanceName = config.instanceName ?? saved.instanceName
        this.instanceSecret = saved.instanceSecret
        // A copy beside the data for tools that read it (the Docker image's generate_admin_key.sh).
        if (inDatabase && (!existsSync(file) || readFileSync(file, 'utf8') !== stored)) writeFileSync(file, stored, { mode: 0o600 })
      } else {
        const made = `${JSON.stringify({ instanceName: config.instanceName ?? DEFAULT_INSTANCE_NAME, instanceSecret: generateInstanceSecret() }, null, 2)}\n`
        // Several processes starting at once on a new database agree on the first one stored.
        const text = inDatabase ? await persistence.setGlobalIfAbsent(CREDENTIALS_GLOBAL, made) : made
        const saved = JSON.parse(text) as Saved
        this.instanceName = config.instanceName ?? saved.instanceName
        this.instanceSecret = saved.instanceSecret
        writeFileSync(file, text, { mode: 0o600 })
      }
      this.devAdminKey = issueAdminKey(this.instanceName, this.instanceSecret)
    }
    validateInstanceName(this.instanceName)
    parseInstanceSecret(this.instanceSecret)
  }

  async start(): Promise<void> {
    const { config, log } = this
    const dataDir = resolve(config.dataDir)
    mkdirSync(dataDir, { recursive: true })
    // Before anything in the folder is read or written: one backend per data folder.
    this.#lock = lockDataDir(dataDir, { port: config.port })
    const persistence: Persistence =
      config.dbUrl === undefined ? SqlitePersistence.open(join(dataDir, DATABASE_FILE), (m) => log.info(m)) : await PostgresPersistence.open(config.dbUrl, { log: (m) => log.info(m) })
    this.#persistence = persistence
    await this.#credentials(dataDir, persistence)
    const db = await Database.open(persistence, new CursorCodec(this.instanceSecret), {
      historyRetentionMs: config.historyRetentionMs,
      onError: (message, e) => log.warn(message, { error: (e as Error)?.message ?? String(e) }),
    })
    db.log = (message, fields) => log.error(message, fields)
    // Each change of the store's health is logged once, with its cause.
    db.committer.onHealthChange((error) => (error === null ? log.info('Writes are committing again') : log.error('Writes are failing', { error: error.message })))
    db.onReadHealthChange((error) => (error === null ? log.info('The database can be read again') : log.error("The database can't be read", { error: error.message })))
    this.#db = db
    const readSize = () => void persistence.sizeBytes().then((n) => (this.#databaseBytes = n), () => {})
    readSize()
    this.#sizeTimer = setInterval(readSize, 5000)
    this.#sizeTimer.unref()
    const pool = new IsolatePool(RUNTIME_SOURCE, config.memoryLimitMb, config.nodeMemoryLimitMb)
    this.#pool = pool
    const canonical = new CanonicalUrls(db)
    await canonical.load()
    this.#canonical = canonical
    // (Read each time functions' variables are made: a canonical URL set later is seen.)
    const backend = this
    const env = new EnvironmentVariables(db, {
      get CONVEX_CLOUD_URL() {
        return backend.cloudUrl
      },
      get CONVEX_SITE_URL() {
        return backend.siteUrl
      },
    })
    canonical.onChange(() => env.systemChanged())
    await env.load()
    const push = new PushService(db, pool, env, new NodePackages(dataDir, (message, fields) => log.info(message, fields)), (message, fields) => log.warn(message, fields))
    await push.load()
    env.onChange((vars) => pool.setEnv(vars))
    const deploymentState = new DeploymentState(db)
    await deploymentState.load()
    const runner = new FunctionRunner(db, pool, () => push.components, { queryMutationTimeoutMs: config.queryMutationTimeoutMs, actionTimeoutMs: config.actionTimeoutMs, maxResultBytes: Math.floor(config.functionResultMb * 1024 * 1024) }, new Map([...systemFunctions(env), ...snapshotSystemFunctions(db, () => subscriptions.invalidateAll()), ...frontendSystemFunctions({ version: VERSION, cloudUrl: () => this.cloudUrl, siteUrl: () => this.siteUrl, authProviders: () => auth.providers() })]))
    runner.paused = () => deploymentState.paused
    runner.deploymentName = this.instanceName
    const signingKey = deploymentSigningKey(this.instanceSecret)
    runner.signing = { key: signingKey, cloudUrl: () => this.cloudUrl }
    const auth = new Auth(() => pool.exportOf('auth.config.js'), (message, fields) => log.warn(message, fields))
    push.onPush(() => auth.invalidate())
    env.onChange(() => auth.invalidate())
    // Files go where the data goes: the Postgres database (shared by every process on it), or the data directory.
    const blobs = persistence instanceof PostgresPersistence ? persistence.blobStore() : new FolderBlobStore(join(dataDir, 'storage'))
    const files = new FileStorage(db, dataDir, blobs, this.instanceSecret, () => this.cloudUrl, this.instanceName)
    // The system's own table first, in a catalog section (on a shared store: under every process's
    // commit lock, caught up with what the others made), before anything reads.
    const sessionRequests = new SessionRequests(db, (message, fields) => log.warn(message, fields))
    await sessionRequests.start()
    this.#sessionRequests = sessionRequests
    runner.sessionRequests = sessionRequests
    // Imports a restart cut off are failed and their uploads deleted before anything is served.
    await snapshotService(db).attach(files).recover()
    const swept = await files.sweepOrphans()
    if (swept > 0) log.info('Removed orphaned storage files', { count: swept })
    runner.files = files
    // Background work — running scheduled functions and crons, pruning history — is done by one
    // process: this one alone on SQLite; on a shared store, whichever holds the background lease
    // (another takes it over within seconds when that process dies).
    const lease = persistence.shared?.lease('background') ?? null
    // A replica (--replicate-from) runs none: its data is the source's, whose own jobs and crons
    // already ran there (they start once it is started without the flag).
    const holdsLease = () => config.replicateFrom === undefined && (lease === null || lease.held)
    // A paused deployment runs no jobs or crons either: its jobs wait for it to resume, its crons
    // are skipped (its history is still pruned).
    const leading = () => holdsLease() && !deploymentState.paused
    const schedulers = new SchedulerSet((component) => new Scheduler(db, (message, fields) => log.warn(message, fields), SCHEDULED_FUNCTIONS, config.jobRetentionMs, component), leading())
    runner.schedulers = schedulers
    const syncSchedulers = () => schedulers.sync(push.components.instances().map((i) => i.path), runner)
    await syncSchedulers()
    push.onPush(() => void syncSchedulers().catch((e: unknown) => log.warn('Could not start the scheduler of a component', { error: (e as Error)?.message ?? String(e) })))
    this.#schedulers = schedulers
    // Cron runs go through a scheduler of their own, so they don't show in _scheduled_functions
    // (as in Convex) but are run with the same at-most-once / exactly-once care. Each component
    // instance has its own crons (its definition's crons.js).
    const newCrons = () => new CronSet(db, (component) => new Scheduler(db, (message, fields) => log.warn(message, fields), CRON_RUNS, Math.min(3_600_000, config.jobRetentionMs), component), (message, fields) => log.warn(message, fields))
    const cronSpecs = (component: string): Record<string, CronSpec> | null => {
      const prefix = component === '' ? '' : (push.components.definition(push.components.instance(component)?.definitionPath ?? '')?.prefix ?? null)
      if (prefix === null) return null
      try {
        const exported = pool.exportOf(`${prefix}crons.js`)
        return exported === null ? null : (JSON.parse(exported) as Record<string, CronSpec>)
      } catch (e) {
        log.warn('Could not load crons.js', { component, error: (e as Error).message })
        return null
      }
    }
    // Crons must never keep the backend from starting.
    const refreshCrons = () =>
      this.#crons === null ? Promise.resolve() : this.#crons.sync(push.components.instances().map((i) => i.path), runner, cronSpecs).catch((e: unknown) => log.warn('Could not start crons', { error: (e as Error)?.message ?? String(e) }))
    const lead = async (held: boolean) => {
      if (this.#draining) return
      db.history.setPaused(!holdsLease())
      if (held) {
        if (lease !== null) log.info('Running scheduled functions and crons in this process')
        await schedulers.setActive(true)
        this.#crons ??= newCrons()
        await refreshCrons()
      } else {
        await schedulers.setActive(false)
        this.#crons?.stop()
        this.#crons = null
      }
    }
    await lead(leading())
    // One change at a time, each for the lease as it is by then (it may have flapped meanwhile).
    let leading$ = Promise.resolve()
    const relead = () => {
      leading$ = leading$.then(() => lead(leading())).catch((e: unknown) => log.warn('Could not take over background work', { error: (e as Error)?.message ?? String(e) }))
    }
    lease?.onChange(relead)
    deploymentState.onChange(relead)
    push.onPush(() => void refreshCrons())
    const subscriptions = new SubscriptionManager(db, runner, (e) => log.error('Live query bookkeeping failed', { error: (e as Error)?.message ?? String(e) }))
    const bodyBudget = new BodyBudget(Math.floor(config.requestBodyBudgetMb * 1024 * 1024))
    // Requests answered on the API and HTTP-actions ports (the dashboard's own port not counted).
    const requests = new RequestStats()
    const replicator = config.replicateFrom === undefined ? null : new Replicator(db, files, config.replicateFrom, log)
    const app = createHttpApp({
      ...(replicator === null ? {} : { replication: replicator }),
      bodyBudget,
      log,
      auth,
      files,
      env,
      deploymentState,
      canonicalUrls: canonical,
      metrics: () => {
        const memory = process.memoryUsage()
        const youngGenerationBytes = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0
        return { subscriptionRuns: subscriptions.runs, subscriptionRunsInFlight: subscriptions.runsInFlight, subscriptionRunsQueued: subscriptions.runsQueued, subscriptionRunsInFlightPeak: subscriptions.runsInFlightPeak, subscriptionEntries: subscriptions.size, requestBodyBytes: bodyBudget.used, historyRevisionsDeleted: db.history.deleted, syncSessions: this.#sync?.sessions() ?? 0, isolates: pool.live, isolatesPeak: pool.peak, heapUsedBytes: memory.heapUsed, rssBytes: memory.rss, databaseBytes: this.#databaseBytes, youngGenerationBytes, requests: requests.requests, requestMs: requests.requestMs, functionExecutions: runner.log.executions, functionFailures: runner.log.failures, functionExecutionMs: runner.log.executionMs }
      },
      instanceName: this.instanceName,
      instanceSecret: this.instanceSecret,
      version: VERSION,
      cloudUrl: () => this.cloudUrl,
      siteUrl: () => this.siteUrl,
      db,
      runner,
      push,
      restoreInto: (target, ts, opts) =>
        restoreInto({ db, blobs, credentials: `${JSON.stringify({ instanceName: this.instanceName, instanceSecret: this.instanceSecret }, null, 2)}\n` }, { databaseFile: DATABASE_FILE, credentialsFile: CREDENTIALS_FILE, storageFolder: 'storage', credentialsGlobal: CREDENTIALS_GLOBAL }, target, ts, opts),
    })
    const site = createSiteApp({
      runner,
      auth,
      adminKey: (key) => {
        const verified = verifyAdminKey(key, this.instanceName, this.instanceSecret)
        return verified.ok ? verified.kind : null
      },
      siteUrl: () => this.siteUrl, log, bodyBudget })
    push.onPush(() => subscriptions.invalidateAll())
    // A query may have read a variable (in its call or when its module loaded): after a change,
    // every subscription runs again, once the functions see the new values (listeners run in
    // order: the pool's is first).
    env.onChange(() => subscriptions.invalidateAll())
    // A push landed through another process: served here too.
    db.onForeignPush(() =>
      push.reload().catch((e: unknown) => {
        log.error('Could not load a push made through another process', { error: (e as Error)?.message ?? String(e) })
        throw e
      }),
    )
    this.#api = await listen(this.#unlessDraining(requests.counting(app.fetch)), config.port, config.interface)
    this.#sync = attachSyncServer(this.#api as Server, {
      auth,
      db,
      runner,
      subscriptions,
      mutations: new MutationLog(),
      instanceName: this.instanceName,
      instanceSecret: this.instanceSecret,
      log: (message, fields) => log.info(message, fields),
    })
    this.#site = await listen(this.#unlessDraining(requests.counting(site.fetch)), config.sitePort, config.interface)
    const dashboardPort = config.dashboardPort ?? 0
    if (dashboardPort > 0) this.#dashboard = await serveDashboard(this.#unlessDraining(createDashboardApp({ convexOrigin: () => config.convexOrigin, siteOrigin: () => config.siteOrigin, apiPort: config.port, sitePort: config.sitePort, version: VERSION }).fetch), dashboardPort, config.interface)
    // A client that asks before sending a body learns at once that it is too large (no EPIPE).
    refuseOversizedEarly(this.#api as Server, (_method, path) => apiBodyLimit(path), (declared, limit) => ({ contentType: 'application/json', body: JSON.stringify({ code: 'PayloadTooLarge', message: `Request body is too large: ${declared} bytes (limit ${limit})` }) }))
    refuseOversizedEarly(this.#site as Server, () => MAX_HTTP_ACTION_BODY, (_declared, limit) => ({ contentType: 'text/plain; charset=UTF-8', body: `Request body is too large (limit ${limit} bytes)` }))
    this.#replicator = replicator
    replicator?.start()
    log.info('Concave backend started', { instanceName: this.instanceName, cloudUrl: this.cloudUrl, siteUrl: this.siteUrl, dataDir })
  }

  /** A request that arrives while the backend shuts down is refused, and its connection closed. */
  #unlessDraining<A extends unknown[]>(fetch: (req: Request, ...rest: A) => Response | Promise<Response>): (req: Request, ...rest: A) => Response | Promise<Response> {
    // `rest` is @hono/node-server's `{ incoming, outgoing }`: handlers read the connection from it.
    return (req, ...rest) =>
      this.#draining
        ? new Response(JSON.stringify({ code: 'ServiceUnavailable', message: 'The backend is shutting down; try again.' }), { status: 503, headers: { 'content-type': 'application/json', connection: 'close', 'retry-after': '1' } })
        : fetch(req, ...rest)
  }

  /**
   * Stops accepting connections, lets requests in flight finish for up to `graceMs`, then cuts
   * the rest, disposes the sandboxes and closes the database cleanly.
   */
  async stop(graceMs = 5000): Promise<void> {
    // From here a request on an open keep-alive connection is refused (503, connection closed)
    // rather than served; requests and socket mutations already taken finish and are answered.
    this.#draining = true
    if (this.#sizeTimer !== null) clearInterval(this.#sizeTimer)
    await this.#replicator?.stop()
    this.#replicator = null
    this.#crons?.stop()
    this.#sessionRequests?.stop()
    this.#schedulers?.stop()
    const servers = [this.#api, this.#site, this.#dashboard].filter((s): s is ServerType => s !== null)
    this.#api = this.#site = this.#dashboard = null
    const closed = Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))))
    for (const s of servers) (s as import('node:http').Server).closeIdleConnections?.()
    let timer: NodeJS.Timeout | undefined
    const cut = new Promise<void>((r) => {
      timer = setTimeout(() => {
        for (const s of servers) (s as import('node:http').Server).closeAllConnections?.()
        r()
      }, graceMs)
    })
    const sync = this.#sync
    this.#sync = null
    if (sync !== null) {
      await Promise.race([sync.drain(), cut])
      sync.close()
    }
    await Promise.race([closed, cut])
    clearTimeout(timer)
    this.#pool?.close()
    if (this.#db !== null) await this.#db.close()
    else await this.#persistence?.close()
    this.#db = null
    this.#persistence = null
    this.#lock?.release()
    this.#lock = null
    this.log.info('Concave backend stopped')
  }
}

function listen(fetch: (req: Request) => Response | Promise<Response>, port: number, hostname: string): Promise<ServerType> {
  return new Promise((resolvePromise, reject) => {
    const server = serve({ fetch, port, hostname }, () => resolvePromise(server))
    server.once('error', reject)
  })
}
