/**
 * @module When crons run next: the schedules `cronJobs()` exports (interval, hourly, daily,
 * weekly, monthly, and 5-field cron expressions), all in UTC.
 */

export type CronSchedule =
  | { type: 'interval'; seconds?: number; minutes?: number; hours?: number }
  | { type: 'hourly'; minuteUTC: number }
  | { type: 'daily'; hourUTC: number; minuteUTC: number }
  | { type: 'weekly'; dayOfWeek: string; hourUTC: number; minuteUTC: number }
  | { type: 'monthly'; day: number; hourUTC: number; minuteUTC: number }
  | { type: 'cron'; cron: string }

import { Cron } from 'croner'

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

/** The next run of `s` after `afterMs` (for intervals: `afterMs` plus the interval). */
export function nextRun(s: CronSchedule, afterMs: number): number {
  switch (s.type) {
    case 'interval': {
      const ms = ((s.seconds ?? 0) + (s.minutes ?? 0) * 60 + (s.hours ?? 0) * 3600) * 1000
      if (!(ms > 0)) throw new Error('An interval cron must run at least every second')
      return afterMs + ms
    }
    case 'hourly':
      return new CronExpression(`${s.minuteUTC} * * * *`).next(afterMs)
    case 'daily':
      return new CronExpression(`${s.minuteUTC} ${s.hourUTC} * * *`).next(afterMs)
    case 'weekly': {
      const day = DAYS.indexOf(String(s.dayOfWeek).toLowerCase())
      if (day < 0) throw new Error(`Invalid day of week "${s.dayOfWeek}"`)
      return new CronExpression(`${s.minuteUTC} ${s.hourUTC} * * ${day}`).next(afterMs)
    }
    case 'monthly':
      return new CronExpression(`${s.minuteUTC} ${s.hourUTC} ${s.day} * *`).next(afterMs)
    case 'cron':
      return new CronExpression(s.cron).next(afterMs)
  }
  throw new Error(`Unknown cron schedule type ${JSON.stringify((s as { type?: unknown }).type)}`)
}
