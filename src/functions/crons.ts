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
            next = spec.schedule.type === 'interval' ? now : nextRun(spec.schedule, now)
          } catch (e) {
            this.log('Skipping an invalid cron job', { name, error: (e as Error).message })
            continue
          }
          if (old === undefined) await txn.insertSystem(CRON_JOBS, { name, spec: text, nextRun: next })
          else await txn.patchSystem(old._id, { spec: text, nextRun: next })
        }
        for (const removed of byName.values()) await txn.removeSystem(removed._id)
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
    const table = this.db.catalog.byName.get(CRON_JOBS)
    if (table === undefined) return []
    const stream = txn.openStream(`cron:${Date.now()}:${Math.random()}`, { source: { type: 'FullTableScan', tableName: CRON_JOBS, order: null }, operators: [] })
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
            next = nextRun(spec.schedule, Math.max(now, state.nextRun))
            while (next <= now) next = nextRun(spec.schedule, next)
            await txn.patchSystem(state._id, { nextRun: next, lastRun: now, ...(job === undefined ? {} : { lastJob: job }) })
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
