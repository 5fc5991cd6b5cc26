/**
 * @module When crons run next: the schedules `cronJobs()` exports (interval, hourly, daily,
 * weekly, monthly, and 5-field cron expressions), all in UTC.
 */

export type CronSchedule =
  | { type: 'interval'; seconds?: number; minutes?: number; hours?: number }
  | { type: 'hourly'; minuteUTC?: number }
  | { type: 'daily'; hourUTC: number; minuteUTC?: number }
  | { type: 'weekly'; dayOfWeek: string; hourUTC: number; minuteUTC?: number }
  | { type: 'monthly'; day: number; hourUTC: number; minuteUTC?: number }
  | { type: 'cron'; cron: string }

import { createHash } from 'node:crypto'
import { Cron } from 'croner'

const HOUR_MS = 60 * 60 * 1000

/**
 * A schedule that leaves out its minute (convex ≥ 1.43: `crons.hourly("x", ref)`) runs at minute 0
 * pushed back by a delay of up to an hour, as Convex spreads such crons over the hour. Convex draws
 * the delay at random and keeps it from run to run; here it is drawn from the cron's name, so it
 * is the same in every process and after every restart.
 */
export function splayMs(key: string): number {
  return createHash('sha256').update(key).digest().readUInt32BE(0) % (HOUR_MS / 1000) * 1000
}

const DAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday']

/**
 * A 5-field cron expression (minute hour day-of-month month day-of-week), UTC. Parsing and
 * matching are croner's (names, ranges such as `1-7` or `mon-fri`, steps, `L`, `#`, and the usual
 * rule that when both day fields are restricted either may match).
 */
export class CronExpression {
  readonly #cron: Cron

  constructor(readonly text: string) {
    const fields = text.trim().split(/\s+/)
    if (fields.length !== 5) throw new Error(`Invalid cron expression "${text}": expected 5 fields (minute hour day-of-month month day-of-week), got ${fields.length}`)
    try {
      this.#cron = new Cron(fields.join(' '), { timezone: 'UTC', paused: true, domAndDow: false })
    } catch (e) {
      throw new Error(`Invalid cron expression "${text}": ${(e as Error).message.replace(/^CronPattern: /, '')}`)
    }
  }

  /** The first matching minute strictly after `afterMs`. */
  next(afterMs: number): number {
    const next = this.#cron.nextRun(new Date(afterMs))
    if (next === null) throw new Error(`Cron expression "${this.text}" never matches`)
    return next.getTime()
  }
}

/** Checks a schedule; throws with a clear message if it can never run. */
export function validateSchedule(s: CronSchedule): void {
  nextRun(s, Date.now())
}

/**
 * The next run of `s` after `afterMs` (for intervals: `afterMs` plus the interval). `name` (the
 * cron's) picks the delay of a schedule without its minute (see `splayMs`).
 */
export function nextRun(s: CronSchedule, afterMs: number, name = ''): number {
  if (s.type === 'interval') {
    const ms = ((s.seconds ?? 0) + (s.minutes ?? 0) * 60 + (s.hours ?? 0) * 3600) * 1000
    if (!(ms > 0)) throw new Error('An interval cron must run at least every second')
    return afterMs + ms
  }
  if (s.type === 'cron') return new CronExpression(s.cron).next(afterMs)
  const pinned = s.minuteUTC !== undefined
  const minute = s.minuteUTC ?? 0
  let expression: string
  switch (s.type) {
    case 'hourly':
      expression = `${minute} * * * *`
      break
    case 'daily':
      expression = `${minute} ${s.hourUTC} * * *`
      break
    case 'weekly': {
      const day = DAYS.indexOf(String(s.dayOfWeek).toLowerCase())
      if (day < 0) throw new Error(`Invalid day of week "${s.dayOfWeek}"`)
      expression = `${minute} ${s.hourUTC} * * ${day}`
      break
    }
    case 'monthly':
      expression = `${minute} ${s.hourUTC} ${s.day} * *`
      break
    default:
      throw new Error(`Unknown cron schedule type ${JSON.stringify((s as { type?: unknown }).type)}`)
  }
  const delay = pinned ? 0 : splayMs(name)
  // The occurrence after `afterMs` on the undelayed clock, searched from `afterMs` less the delay
  // (as Convex searches), so a delayed run never skips the occurrence its delay pushed past.
  return new CronExpression(expression).next(afterMs - delay) + delay
}
