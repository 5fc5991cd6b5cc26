import { describe, expect, test } from 'vitest'
import { CronExpression, nextRun, splayMs } from './cron-schedule.ts'

const t = (iso: string) => Date.parse(iso)
const iso = (ms: number) => new Date(ms).toISOString()

describe('functions/cron-schedule', () => {
  test('cron expressions, UTC', () => {
    expect(iso(new CronExpression('*/15 * * * *').next(t('2026-11-23T20:07:30Z')))).toBe('2026-11-23T20:15:00.000Z')
    expect(iso(new CronExpression('0 3 * * *').next(t('2026-11-23T20:07:00Z')))).toBe('2026-11-24T03:00:00.000Z')
    expect(iso(new CronExpression('30 9 1 * *').next(t('2026-11-23T00:00:00Z')))).toBe('2026-12-01T09:30:00.000Z')
    expect(iso(new CronExpression('0 12 * * mon-fri').next(t('2026-11-28T13:00:00Z')))).toBe('2026-11-30T12:00:00.000Z')
    expect(iso(new CronExpression('0 0 29 feb *').next(t('2026-03-01T00:00:00Z')))).toBe('2028-02-29T00:00:00.000Z')
    // Both day fields restricted: either matches (13th, or any Friday).
    expect(iso(new CronExpression('0 0 13 * 5').next(t('2026-11-23T00:00:00Z')))).toBe('2026-11-27T00:00:00.000Z')
    // Strictly after: a time exactly on a match moves to the next one.
    expect(iso(new CronExpression('0 * * * *').next(t('2026-11-23T20:00:00Z')))).toBe('2026-11-23T21:00:00.000Z')
  })

  test('malformed expressions say what is wrong', () => {
    expect(() => new CronExpression('61 * * * *')).toThrow('Invalid cron expression "61 * * * *": Invalid value for minute: 61')
    expect(() => new CronExpression('* * *')).toThrow('expected 5 fields')
    expect(() => new CronExpression('*/0 * * * *')).toThrow('Invalid cron expression "*/0 * * * *": Syntax error, illegal stepping: 0')
    expect(() => new CronExpression('5-1 * * * *')).toThrow('Invalid cron expression "5-1 * * * *": From value is larger than to value: \'5-1\'')
  })

  test('day-of-week ranges and steps that reach 7 (Sunday again)', () => {
    // 1-7 is every day; */7 and 7 are Sunday only.
    const from = t('2026-11-23T00:00:00Z') // a Monday
    const runs = (expr: string, n: number) => {
      const c = new CronExpression(expr)
      const out: string[] = []
      for (let at = from, i = 0; i < n; i++) out.push(iso((at = c.next(at))).slice(0, 10))
      return out
    }
    expect(runs('0 0 * * 1-7', 7)).toEqual(['2026-11-24', '2026-11-25', '2026-11-26', '2026-11-27', '2026-11-28', '2026-11-29', '2026-11-30'])
    expect(runs('0 0 * * 7', 2)).toEqual(['2026-11-29', '2026-12-06'])
    expect(runs('0 0 * * */7', 2)).toEqual(['2026-11-29', '2026-12-06'])
    expect(runs('0 0 * * 5-7', 3)).toEqual(['2026-11-27', '2026-11-28', '2026-11-29'])
  })

  test('the schedules cronJobs() exports', () => {
    const from = t('2026-11-23T20:07:30Z')
    expect(nextRun({ type: 'interval', seconds: 90 }, from) - from).toBe(90_000)
    expect(nextRun({ type: 'interval', hours: 2 }, from) - from).toBe(7_200_000)
    expect(iso(nextRun({ type: 'hourly', minuteUTC: 5 }, from))).toBe('2026-11-23T21:05:00.000Z')
    expect(iso(nextRun({ type: 'daily', hourUTC: 20, minuteUTC: 30 }, from))).toBe('2026-11-23T20:30:00.000Z')
    expect(iso(nextRun({ type: 'weekly', dayOfWeek: 'sunday', hourUTC: 8, minuteUTC: 0 }, from))).toBe('2026-11-29T08:00:00.000Z')
    expect(iso(nextRun({ type: 'monthly', day: 31, hourUTC: 0, minuteUTC: 0 }, from))).toBe('2026-12-31T00:00:00.000Z')
    expect(() => nextRun({ type: 'interval' }, from)).toThrow('at least every second')
  })
})

test('a schedule without its minute runs at minute 0 plus a delay of under an hour drawn from the name, keeping its cadence', () => {
  const from = Date.parse('2026-11-23T20:10:00.000Z')
  const delay = splayMs('job')
  expect(splayMs('job')).toBe(delay)
  expect(splayMs('other job')).not.toBe(delay)
  expect(delay % 1000).toBe(0)
  const first = nextRun({ type: 'hourly' }, from, 'job')
  expect(first - delay).toBe(first - delay - ((first - delay) % 3_600_000))
  expect(first).toBeGreaterThan(from)
  expect(first - 3_600_000).toBeLessThanOrEqual(from)
  expect(nextRun({ type: 'hourly' }, first, 'job')).toBe(first + 3_600_000)
  expect(iso(nextRun({ type: 'daily', hourUTC: 7 }, from, 'job') - delay)).toBe('2026-11-24T07:00:00.000Z')
  expect(iso(nextRun({ type: 'weekly', dayOfWeek: 'monday', hourUTC: 7 }, from, 'job') - delay)).toBe('2026-11-30T07:00:00.000Z')
  expect(iso(nextRun({ type: 'monthly', day: 1, hourUTC: 0 }, from, 'job') - delay)).toBe('2026-12-01T00:00:00.000Z')
  // A pinned minute has no delay.
  expect(iso(nextRun({ type: 'hourly', minuteUTC: 5 }, from, 'job'))).toBe('2026-11-23T21:05:00.000Z')
})
