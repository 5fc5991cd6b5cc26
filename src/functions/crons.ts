/**
 * @module Crons: the jobs `convex/crons.ts` declares, run on schedule.
 *
 * Each cron's state is a document in the `_cron_jobs` system table ({name, spec, nextRun,
 * lastRun, lastJob}). When one is due, a single transaction schedules its function (through the
 * scheduler, so it runs like any scheduled function) and advances `nextRun` — so a restart can
 * neither skip nor double a run; a run due while the last one is still pending or running is
 * skipped. A push replaces the set: unchanged crons keep their timing, new or changed ones start
 * from the push (an interval cron runs right away), removed ones are deleted.
 */
import type { Database } from '../database/database.ts'
import type { Transaction } from '../database/transaction.ts'
import type { JSONValue } from '../values/index.ts'
import type { CronSchedule } from './cron-schedule.ts'
import { nextRun, validateSchedule } from './cron-schedule.ts'
import { MAX_TIMER_MS } from './scheduler.ts'
import type { Scheduler } from './scheduler.ts'

export const CRON_JOBS = '_cron_jobs'
/** The crons' runs: scheduled-function records of their own, not in `_scheduled_functions`. */
export const CRON_RUNS = '_cron_runs'

export interface CronSpec {
  name: string
  args: JSONValue[]
  schedule: CronSchedule
}

interface CronState {
  _id: string
  name: string
  spec: string
  nextRun: number
  lastRun?: number
  /** The `_cron_runs` job of the latest run. */
  lastJob?: string
}

/** Validates `crons.js`'s export: every schedule must be able to run. Throws with the cron named. */
export function validateCrons(specs: Record<string, CronSpec>): void {
  for (const [name, spec] of Object.entries(specs)) {
    try {
      validateSchedule(spec.schedule)
    } catch (e) {
      throw new Error(`Cron job "${name}": ${(e as Error).message}`)
    }
  }
}

export class CronService {
  #timer: NodeJS.Timeout | null = null
  #stopped = false
  #busy: Promise<void> = Promise.resolve()

  constructor(
    readonly db: Database,
    readonly scheduler: Scheduler,
    readonly log: (message: string, fields?: Record<string, unknown>) => void,
    /** The component instance whose crons these are ('' for the app's). */
    readonly component = '',
  ) {}

  /** Replaces the declared crons (at start-up and after every push). */
  setCrons(specs: Record<string, CronSpec>): Promise<void> {
    return this.#serial(async () => {
      const now = Date.now()
      await this.#mutate(async (txn) => {
        const existing = await this.#states(txn)
        const byName = new Map(existing.map((s) => [s.name, s]))
        for (const [name, spec] of Object.entries(specs)) {
          const text = JSON.stringify(spec)
          const old = byName.get(name)
          byName.delete(name)
          if (old !== undefined && old.spec === text) continue
          let next: number
          try {
            // An interval cron first runs when it is deployed (as in Convex); others at their next time.
            next = spec.schedule.type === 'interval' ? now : nextRun(spec.schedule, now, name)
          } catch (e) {
            this.log('Skipping an invalid cron job', { name, error: (e as Error).message })
            continue
          }
          if (old === undefined) await txn.insertSystem(CRON_JOBS, { name, spec: text, nextRun: next }, undefined, this.component)
          else await txn.patchSystem(old._id, { spec: text, nextRun: next }, this.component)
        }
        for (const removed of byName.values()) await txn.removeSystem(removed._id, this.component)
      })
    }).then(() => this.#tick())
  }

  stop(): void {
    this.#stopped = true
    if (this.#timer !== null) clearTimeout(this.#timer)
  }

  #serial(fn: () => Promise<void>): Promise<void> {
    const run = this.#busy.then(fn)
    this.#busy = run.catch((e: unknown) => this.log('Cron update failed', { error: (e as Error)?.message ?? String(e) }))
    return run
  }

  /** A system mutation (Database.mutate): conflicts past its attempts are thrown, and reported by the caller. */
  async #mutate(body: (txn: Transaction) => Promise<void>): Promise<void> {
    await this.db.mutate(body)
  }

  async #states(txn: Transaction): Promise<CronState[]> {
    const table = this.db.catalog.table(this.component, CRON_JOBS)
    if (table === undefined) return []
    const stream = txn.openStream(`cron:${Date.now()}:${Math.random()}`, { source: { type: 'FullTableScan', tableName: CRON_JOBS, order: null }, operators: [] }, this.component)
    const out: CronState[] = []
    for (;;) {
      const row = await stream.nextRow()
      if (row === null) break
      out.push(JSON.parse(row.json) as CronState)
    }
    return out
  }

  /** Schedules every due cron (advancing it) and sleeps until the next one. */
  #tick(): Promise<void> {
    return this.#serial(async () => {
      if (this.#stopped) return
      const now = Date.now()
      let soonest = Infinity
      await this.#mutate(async (txn) => {
        soonest = Infinity
        for (const state of await this.#states(txn)) {
          const spec = JSON.parse(state.spec) as CronSpec
          let next = state.nextRun
          if (next <= now) {
            // A cron never overlaps itself: a run that falls due while the last one is still
            // pending or running is skipped, as Convex does.
            let job = state.lastJob
            if (!(await this.#stillRunning(txn, job))) {
              try {
                job = await this.scheduler.schedule(txn, spec.name, now / 1000, spec.args[0] ?? {})
              } catch (e) {
                // One cron that can't run (its function is gone) must not stop the others.
                this.log('Cron job could not be scheduled', { cron: state.name, error: (e as Error)?.message ?? String(e) })
              }
            }
            // Missed runs (the backend was down) collapse into this one.
            next = nextRun(spec.schedule, Math.max(now, state.nextRun), state.name)
            while (next <= now) next = nextRun(spec.schedule, next, state.name)
            await txn.patchSystem(state._id, { nextRun: next, lastRun: now, ...(job === undefined ? {} : { lastJob: job }) }, this.component)
          }
          soonest = Math.min(soonest, next)
        }
      })
      this.#arm(soonest)
    }).catch((e: unknown) => {
      // Whatever went wrong, keep ticking: try again in a minute.
      this.log('Cron tick failed', { error: (e as Error)?.message ?? String(e) })
      this.#arm(Date.now() + 60_000)
    })
  }

  async #stillRunning(txn: Transaction, jobId: string | undefined): Promise<boolean> {
    if (jobId === undefined) return false
    const job = await txn.read(jobId)
    const kind = (job?.state as { kind?: string } | undefined)?.kind
    return kind === 'pending' || kind === 'inProgress'
  }

  #arm(at: number): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    if (at === Infinity || this.#stopped) return
    this.#timer = setTimeout(() => void this.#tick(), Math.min(MAX_TIMER_MS, Math.max(0, at - Date.now())))
    this.#timer.unref()
  }
}

/**
 * The crons of every component instance: each has its own `_cron_jobs` and its own scheduler of
 * runs (`_cron_runs`), so a component's crons run its own functions. Kept in step with the
 * mounted components and their `crons.js` after each push; an unmounted component's crons stop.
 */
export class CronSet {
  readonly #crons = new Map<string, { runs: Scheduler; crons: CronService }>()
  #stopped = false

  constructor(
    readonly db: Database,
    readonly makeRuns: (component: string) => Scheduler,
    readonly log: (message: string, fields?: Record<string, unknown>) => void,
  ) {}

  /**
   * `crons(component)`: the specs of an instance's `crons.js` (null: none). Each instance gets its
   * crons set; instances no longer mounted are stopped.
   */
  async sync(components: readonly string[], runner: import('./scheduler.ts').JobRunner, crons: (component: string) => Record<string, CronSpec> | null): Promise<void> {
    if (this.#stopped) return
    const wanted = new Set(components)
    for (const [path, c] of this.#crons) {
      if (wanted.has(path)) continue
      c.crons.stop()
      c.runs.stop()
      this.#crons.delete(path)
    }
    for (const path of wanted) {
      const specs = crons(path)
      let entry = this.#crons.get(path)
      // An instance that never had crons needs no tables or timers.
      if (entry === undefined && specs === null && this.db.catalog.table(path, CRON_JOBS) === undefined) continue
      if (entry === undefined) {
        const runs = this.makeRuns(path)
        await runs.start(runner)
        entry = { runs, crons: new CronService(this.db, runs, this.log, path) }
        this.#crons.set(path, entry)
      }
      await entry.crons.setCrons(specs ?? {})
    }
  }

  stop(): void {
    this.#stopped = true
    for (const c of this.#crons.values()) {
      c.crons.stop()
      c.runs.stop()
    }
  }
}
