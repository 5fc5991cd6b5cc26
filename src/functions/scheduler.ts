/**
 * @module Scheduler: `ctx.scheduler.runAfter/runAt/cancel` and the service that runs due jobs.
 *
 * A job is a document in the `_scheduled_functions` system table, written in the scheduling
 * transaction (so a mutation that fails schedules nothing) and therefore durable. The service
 * watches pending jobs through an index on (`state.kind`, `scheduledTime`) and runs those due:
 *
 *   mutation job:  one transaction runs the mutation AND marks the job success → exactly once;
 *                  if the mutation throws, its writes are dropped and the job is marked failed.
 *   action job:    mark inProgress (commit) → run → mark success/failed (commit): at most once;
 *                  an action still inProgress at start-up was cut off and is marked failed.
 */
import type { Database } from '../database/database.ts'
import type { TableInfo } from '../database/catalog.ts'
import type { Transaction } from '../database/transaction.ts'
import type { JSONValue } from '../values/index.ts'
import { decodeId, encodeIndexKey, prefixSuccessor } from '../values/index.ts'
import { jsonValueSize } from '../values/size.ts'
import { OccConflictError } from '../database/errors.ts'
import { Backoff } from '../util/backoff.ts'
import { canonicalPath, functionPathError, parseFunctionPath } from './registry.ts'
import { rustDuration } from './warnings.ts'

export const SCHEDULED_FUNCTIONS = '_scheduled_functions'
const BY_STATE = 'by_state_and_time'

/** The longest delay setTimeout accepts. */
export const MAX_TIMER_MS = 2 ** 31 - 1
/**
 * A job whose run threw (not the function: the machinery) is tried again after a backoff, as in
 * Convex: from 100 ms up to a minute while its mutation keeps conflicting (SCHEDULER_OCC_*), from
 * 500 ms up to two hours on other failures, e.g. an unreachable store (SCHEDULED_JOB_*).
 */
export const JOB_OCC_BACKOFF = { initialMs: 100, maxMs: 60_000 }
export const JOB_SYSTEM_BACKOFF = { initialMs: 500, maxMs: 2 * 60 * 60_000 }

/** Jobs read per scan (the earliest due). */
const SCAN_LIMIT = 1000

/** Jobs run at once at most; the rest wait for a free slot. */
const MAX_CONCURRENT_JOBS = 10

export interface ScheduledJob {
  readonly id: string
  /** The component instance the function runs in ('' for the app). */
  readonly component: string
  readonly name: string
  readonly args: JSONValue[]
  readonly scheduledTime: number
}

/** What the scheduler needs from the function runner. */
export interface JobRunner {
  /** Why a function can't be scheduled (it doesn't exist), or null if it can (./schedule-checks.ts). */
  schedulingError(component: string, name: string): string | null
  /** What a due job runs as: 'mutation', 'action', or the message its job fails with. */
  jobKind(component: string, name: string): 'mutation' | 'action' | string
  /** Whether the function is public (a child component's may be scheduled only then). */
  isPublic(component: string, name: string): boolean
  /** `scheduledFunctionId`: the job's id if it is a `_scheduled_functions` job (not a cron run). */
  runMutationJob(job: ScheduledJob, scheduledFunctionId: string | null): Promise<void>
  runActionJob(job: ScheduledJob, scheduledFunctionId: string | null): Promise<void>
}

export class Scheduler {
  #table: TableInfo | null = null
  #timer: NodeJS.Timeout | null = null
  #running = new Set<string>()
  /** Jobs whose last attempt failed in the machinery (a conflict, storage), and when to try again. */
  readonly #retries = new Map<string, { occ: Backoff; system: Backoff; at: number }>()

  /** Jobs waiting out a backoff. */
  get retrying(): number {
    return this.#retries.size
  }
  #rescanning = false
  #again = false
  #stopped = false
  runner: JobRunner | null = null

  constructor(
    readonly db: Database,
    readonly log: (message: string, fields?: Record<string, unknown>) => void,
    /** The system table of its jobs: `_scheduled_functions`, or `_cron_runs` for the crons' runs. */
    readonly tableName: string,
    /** How long a finished job's record is kept (Convex keeps scheduled functions' for 7 days). */
    readonly retentionMs: number,
    /** The component instance whose table it is ('' for the app's). */
    readonly component = '',
    /** The jitter of retry backoffs (injectable for tests). */
    readonly random: () => number = Math.random,
  ) {}
  #sweepTimer: NodeJS.Timeout | null = null

  #active = false
  #watching = false

  /**
   * Creates the system table and its index; then, if `active`, runs jobs (see `activate`). Every
   * process schedules and cancels jobs; one runs them (on a shared store, the one holding the
   * background lease).
   */
  async start(runner: JobRunner, active = true): Promise<void> {
    this.runner = runner
    await this.db.exclusive(async () => {
      const table = await this.db.catalog.ensureTable(this.tableName, this.component)
      if (!table.indexes.has(BY_STATE)) await this.db.catalog.addIndex(table, BY_STATE, ['state.kind', 'scheduledTime'])
      this.#table = table
    })
    if (active) await this.activate()
  }

  /** Starts running jobs: fails actions cut off when the last runner went away, then watches the due ones. */
  async activate(): Promise<void> {
    if (this.#active || this.#stopped || this.#table === null) return
    this.#active = true
    await this.#failInterrupted()
    // Finished jobs' records go once they are older than the retention (checked hourly at most).
    this.#sweepTimer = setInterval(() => void this.#sweep(), Math.max(1000, Math.min(3_600_000, this.retentionMs)))
    this.#sweepTimer.unref()
    void this.#sweep()
    if (!this.#watching) {
      this.#watching = true
      const ids = new Set([...this.#table.indexes.values()].map((i) => i.indexId))
      this.db.committer.onCommit((batch) => {
        if (this.#active && !this.#stopped && batch.some((c) => c.indexes.some((w) => ids.has(w.indexId)))) this.#kick()
      })
    }
    this.#kick()
  }

  /** Stops starting jobs (those running finish); another process runs them from now. */
  deactivate(): void {
    this.#active = false
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    if (this.#sweepTimer !== null) clearInterval(this.#sweepTimer)
    this.#sweepTimer = null
  }

  stop(): void {
    this.#stopped = true
    this.deactivate()
  }

  /** Deletes finished jobs that completed more than `retentionMs` ago, 1,000 per transaction. */
  async #sweep(): Promise<void> {
    const cutoff = Date.now() - this.retentionMs
    try {
      for (const state of ['success', 'failed', 'canceled']) {
        for (let more = true; more && !this.#stopped; ) {
          more = await this.db.mutate(async (txn) => {
            // A job completes after it was due, so only jobs due before the cutoff can qualify.
            const jobs = await this.#scan(txn, state, cutoff)
            const old = jobs.filter((j) => (j.completedTime ?? 0) < cutoff)
            for (const job of old) await txn.removeSystem(job.id, this.component)
            return jobs.length === 1000 && old.length > 0
          })
        }
      }
    } catch (e) {
      this.log('Removing finished scheduled jobs failed; trying again later', { table: this.tableName, error: (e as Error)?.message ?? String(e) })
    }
  }

  /**
   * `1.0/schedule` inside a transaction: validates the target and writes the pending job. When
   * called by a scheduled function (`parentJobId`) whose job has been canceled, the new job is
   * written already canceled, as Convex does, so a canceled job's work doesn't carry on.
   */
  async schedule(txn: Transaction, target: string | { component: string; path: string; publicOnly?: boolean }, tsSeconds: number, args: JSONValue, parentJobId: string | null = null): Promise<string> {
    const { component, path: name, publicOnly } = typeof target === 'string' ? { component: this.component, path: target, publicOnly: false } : target
    if (typeof tsSeconds !== 'number' || !Number.isFinite(tsSeconds)) throw new Error('The scheduled time must be a finite number')
    // As Convex: a path it can read, a time within five years (of 366 days) of now, then a
    // function that exists; a query is scheduled, and its job fails when due.
    const badPath = functionPathError(name)
    if (badPath !== null) throw new Error(badPath)
    const delta = tsSeconds - Date.now() / 1000
    const fiveYears = 5 * 366 * 24 * 3600
    if (delta > fiveYears) throw new Error(`UnixTimestamp(${rustDuration(tsSeconds * 1000)}) is more than 5 years in the future`)
    if (delta < -fiveYears) throw new Error(`UnixTimestamp(${rustDuration(Math.max(0, tsSeconds) * 1000)}) is more than 5 years in the past`)
    const refused = this.runner!.schedulingError(component, name)
    if (refused !== null) throw new Error(refused)
    if (publicOnly === true && !this.runner!.isPublic(component, name)) throw new Error(`Attempted to schedule function at nonexistent path: ${name.replace(/\.js(?=:|$)/, '')}`)
    // The job's `name` is the function's canonical path, as Convex's (`messages.js:send`).
    const { modulePath, exportName } = parseFunctionPath(name)
    const jobName = canonicalPath(modulePath, exportName)
    // A job that runs a function of another component names it (the table is the scheduler's own).
    const elsewhere: Record<string, string> = component === this.component ? {} : { component }
    // Convex's per-transaction limits (functionsScheduled, scheduledFunctionArgsBytes), charged
    // the size of the arguments array.
    txn.recordScheduled(jsonValueSize([args ?? {}]))
    if (parentJobId !== null && ((await txn.read(parentJobId))?.state as { kind?: string } | undefined)?.kind === 'canceled') {
      const now = Date.now()
      return txn.insertSystem(this.tableName, { name: jobName, args: [args], scheduledTime: now, state: { kind: 'canceled' }, completedTime: now, ...elsewhere }, undefined, this.component)
    }
    return txn.insertSystem(
      this.tableName,
      {
        name: jobName,
        args: [args],
        scheduledTime: tsSeconds * 1000,
        state: { kind: 'pending' },
        ...elsewhere,
      },
      undefined,
      this.component,
    )
  }

  /**
   * `1.0/cancel_job`: a pending or running job is canceled; a finished one, or an id of no job, is
   * left alone (as in Convex). An id of another table is refused.
   */
  async cancel(txn: Transaction, id: string): Promise<void> {
    const decoded = typeof id === 'string' ? decodeId(id) : null
    if (decoded === null || decoded.tableNumber !== this.#table?.idNumber) {
      throw new Error("InvalidArgument: Invalid scheduled function ID. The ID must be an ID on the '_scheduled_functions' table.")
    }
    const doc = await txn.read(id, this.component)
    if (doc === null) return
    const state = doc.state as { kind: string }
    if (state.kind === 'pending' || state.kind === 'inProgress') await txn.patchSystem(id, { state: { kind: 'canceled' }, completedTime: Date.now() }, this.component)
  }

  async #failInterrupted(): Promise<void> {
    await this.db.mutate(async (txn) => {
      for (const job of await this.#scan(txn, 'inProgress', Infinity)) {
        await txn.patchSystem(job.id, { state: { kind: 'failed', error: 'Transient error while executing action' }, completedTime: Date.now() }, this.component)
      }
    })
  }

  /** Jobs in `state` scheduled at or before `upTo` (ms), earliest first. */
  async #scan(txn: Transaction, state: string, upTo: number): Promise<(ScheduledJob & { state: string; completedTime?: number })[]> {
    const index = this.#table!.indexes.get(BY_STATE)!
    const lo = encodeIndexKey([state])
    const hi = upTo === Infinity ? prefixSuccessor(lo) : prefixSuccessor(encodeIndexKey([state, upTo]))
    const rows = await txn.snapshot.scan(index.indexId, { lo, hi }, 'asc', SCAN_LIMIT)
    return rows.map((r) => {
      const d = JSON.parse(r.doc.json) as { _id: string; name: string; args: JSONValue[]; scheduledTime: number; state: { kind: string }; completedTime?: number; component?: string }
      return { id: d._id, component: d.component ?? this.component, name: d.name, args: d.args, scheduledTime: d.scheduledTime, state: d.state.kind, completedTime: d.completedTime }
    })
  }

  #kick(): void {
    if (this.#stopped || !this.#active) return
    if (this.#rescanning) {
      this.#again = true
      return
    }
    this.#rescanning = true
    void this.#rescan()
      .catch((e: unknown) => this.log('Scheduler scan failed', { error: (e as Error)?.message ?? String(e) }))
      .finally(() => {
      this.#rescanning = false
        if (this.#again) {
          this.#again = false
          this.#kick()
        }
      })
  }

  /** Starts due jobs (up to the concurrency limit) and sets a timer for the next one. */
  async #rescan(): Promise<void> {
    const txn = await this.db.begin(false)
    txn.system = true
    let pending: ScheduledJob[]
    try {
      pending = await this.#scan(txn, 'pending', Infinity)
    } finally {
      this.db.end(txn)
    }
    // A job that is no longer pending (canceled, or done by another process) won't be retried.
    if (pending.length < SCAN_LIMIT && this.#retries.size > 0) {
      const ids = new Set(pending.map((j) => j.id))
      for (const id of this.#retries.keys()) if (!ids.has(id)) this.#retries.delete(id)
    }
    const now = Date.now()
    let next = Infinity
    for (const job of pending) {
      if (job.scheduledTime > now) {
        next = Math.min(next, job.scheduledTime)
        continue
      }
      const retryAt = this.#retries.get(job.id)?.at
      if (retryAt !== undefined && retryAt > now) {
        next = Math.min(next, retryAt)
        continue
      }
      if (!this.#active || this.#running.has(job.id) || this.#running.size >= MAX_CONCURRENT_JOBS) continue
      this.#running.add(job.id)
      void this.#run(job).finally(() => {
        this.#running.delete(job.id)
        this.#kick()
      })
    }
    if (this.#timer !== null) clearTimeout(this.#timer)
    // setTimeout can't wait longer than 2^31-1 ms; a later job is simply re-checked then.
    this.#timer = next === Infinity ? null : setTimeout(() => this.#kick(), Math.min(MAX_TIMER_MS, Math.max(0, next - Date.now())))
    this.#timer?.unref()
  }

  async #run(job: ScheduledJob): Promise<void> {
    try {
      // A job that can't run (gone, or a query) is failed by the mutation job's transaction.
      const kind = this.runner!.jobKind(job.component, job.name)
      const scheduledFunctionId = this.tableName === SCHEDULED_FUNCTIONS ? job.id : null
      if (kind === 'action') await this.runner!.runActionJob(job, scheduledFunctionId)
      else await this.runner!.runMutationJob(job, scheduledFunctionId)
      this.#retries.delete(job.id)
    } catch (e) {
      let retry = this.#retries.get(job.id)
      if (retry === undefined) {
        retry = { occ: new Backoff(JOB_OCC_BACKOFF.initialMs, JOB_OCC_BACKOFF.maxMs, this.random), system: new Backoff(JOB_SYSTEM_BACKOFF.initialMs, JOB_SYSTEM_BACKOFF.maxMs, this.random), at: 0 }
        this.#retries.set(job.id, retry)
      }
      const delay = (e instanceof OccConflictError ? retry.occ : retry.system).fail()
      retry.at = Date.now() + delay
      this.log('Scheduled function failed to run', { job: job.id, name: job.name, error: (e as Error)?.message ?? String(e), retryInMs: Math.round(delay) })
    }
  }
}

/**
 * The schedulers of every component instance: each has its own `_scheduled_functions` (a
 * component's `ctx.scheduler` and `db.system` see only its own jobs). Kept in step with the
 * mounted components after each push.
 */
export class SchedulerSet {
  readonly #schedulers = new Map<string, Scheduler>()
  #stopped = false
  #active: boolean

  constructor(
    readonly create: (component: string) => Scheduler,
    /** Whether this process runs the jobs (see `setActive`). */
    active = true,
  ) {
    this.#active = active
  }

  /** Runs the jobs of every instance from now (true), or leaves them to another process (false). */
  async setActive(active: boolean): Promise<void> {
    this.#active = active
    for (const s of this.#schedulers.values()) {
      if (active) await s.activate()
      else s.deactivate()
    }
  }

  get(component: string): Scheduler | undefined {
    return this.#schedulers.get(component)
  }

  #syncing: Promise<void> = Promise.resolve()

  /**
   * The instance's scheduler once the syncs asked for so far have started it (undefined: not
   * mounted). A push makes its components callable at once and syncs right after; a function of a
   * new component that schedules in between waits here rather than find no scheduler.
   */
  async ready(component: string): Promise<Scheduler | undefined> {
    await this.#syncing
    return this.#schedulers.get(component)
  }

  /** Starts a scheduler for each new instance and stops those of instances no longer mounted (one sync at a time). */
  sync(components: readonly string[], runner: JobRunner): Promise<void> {
    const run = this.#syncing.then(() => this.#sync(components, runner))
    this.#syncing = run.catch(() => {})
    return run
  }

  async #sync(components: readonly string[], runner: JobRunner): Promise<void> {
    if (this.#stopped) return
    const wanted = new Set(components)
    for (const [path, s] of this.#schedulers) {
      if (wanted.has(path)) continue
      s.stop()
      this.#schedulers.delete(path)
    }
    for (const path of wanted) {
      if (this.#schedulers.has(path)) continue
      const s = this.create(path)
      this.#schedulers.set(path, s)
      await s.start(runner, this.#active)
    }
  }

  stop(): void {
    this.#stopped = true
    for (const s of this.#schedulers.values()) s.stop()
  }
}
