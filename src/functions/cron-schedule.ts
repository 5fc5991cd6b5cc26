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

const DAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday']
const MINUTE = 60_000

interface Field {
  readonly values: ReadonlySet<number>
  readonly any: boolean
}

function parseField(text: string, min: number, max: number, what: string, names: string[] = []): Field {
  const values = new Set<number>()
  const value = (s: string): number => {
    const named = names.indexOf(s.toLowerCase().slice(0, 3))
    const n = named >= 0 ? named + min : /^\d+$/.test(s) ? Number(s) : NaN
    if (!(n >= min && n <= max)) throw new Error(`${what} "${s}" is out of range ${min}-${max}`)
    return n
  }
  for (const part of text.split(',')) {
    const [range, stepText] = part.split('/') as [string, string | undefined]
    const step = stepText === undefined ? 1 : Number(stepText)
    if (!Number.isInteger(step) || step < 1) throw new Error(`Invalid step "${stepText}" in ${what}`)
    let lo: number
    let hi: number
    if (range === '*') [lo, hi] = [min, max]
    else if (range.includes('-')) {
      const [a, b] = range.split('-') as [string, string]
      ;[lo, hi] = [value(a), value(b)]
      if (lo > hi) throw new Error(`Invalid range "${range}" in ${what}`)
    } else {
      lo = value(range)
      hi = stepText === undefined ? lo : max
    }
    for (let n = lo; n <= hi; n += step) values.add(n)
  }
  return { values, any: text === '*' }
}

/** A parsed 5-field cron expression (minute hour day-of-month month day-of-week), UTC. */
export class CronExpression {
  readonly minute: Field
  readonly hour: Field
  readonly dayOfMonth: Field
  readonly month: Field
  readonly dayOfWeek: Field

  constructor(readonly text: string) {
    const fields = text.trim().split(/\s+/)
    if (fields.length !== 5) throw new Error(`Invalid cron expression "${text}": expected 5 fields (minute hour day-of-month month day-of-week), got ${fields.length}`)
    try {
      this.minute = parseField(fields[0]!, 0, 59, 'minute')
      this.hour = parseField(fields[1]!, 0, 23, 'hour')
      this.dayOfMonth = parseField(fields[2]!, 1, 31, 'day of month')
      this.month = parseField(fields[3]!, 1, 12, 'month', ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'])
      const dow = parseField(fields[4]!.replace(/\b7\b/g, '0'), 0, 6, 'day of week', DAYS.map((d) => d.slice(0, 3)))
      this.dayOfWeek = dow
    } catch (e) {
      throw new Error(`Invalid cron expression "${text}": ${(e as Error).message}`)
    }
  }

  #dayMatches(d: Date): boolean {
    const dom = this.dayOfMonth.values.has(d.getUTCDate())
    const dow = this.dayOfWeek.values.has(d.getUTCDay())
    // Standard cron: when both day fields are restricted, either may match.
    if (!this.dayOfMonth.any && !this.dayOfWeek.any) return dom || dow
    return dom && dow
  }

  /** The first matching minute strictly after `afterMs`. */
  next(afterMs: number): number {
    const d = new Date(Math.floor(afterMs / MINUTE) * MINUTE + MINUTE)
    for (let guard = 0; guard < 600_000; guard++) {
      if (!this.month.values.has(d.getUTCMonth() + 1)) {
        d.setUTCMonth(d.getUTCMonth() + 1, 1)
        d.setUTCHours(0, 0, 0, 0)
      } else if (!this.#dayMatches(d)) {
        d.setUTCDate(d.getUTCDate() + 1)
        d.setUTCHours(0, 0, 0, 0)
      } else if (!this.hour.values.has(d.getUTCHours())) {
        d.setUTCHours(d.getUTCHours() + 1, 0, 0, 0)
      } else if (!this.minute.values.has(d.getUTCMinutes())) {
        d.setUTCMinutes(d.getUTCMinutes() + 1, 0, 0)
      } else return d.getTime()
    }
    throw new Error(`Cron expression "${this.text}" never matches`)
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
