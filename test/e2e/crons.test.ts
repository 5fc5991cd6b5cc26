import { expect, test } from 'vitest'
import { ConvexHttpClient } from 'convex/browser'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { convexCli, useDeployedBackend } from '../helpers/test-backend.ts'
import { splayMs } from '../../src/functions/cron-schedule.ts'
import type { TestBackend } from '../helpers/test-backend.ts'

let backend: TestBackend
let appDir: string | undefined
const count = (name: string) => new ConvexHttpClient(backend.url).query('ticks:count' as any, { name }) as Promise<number>
const push = () => convexCli(appDir!, ['deploy', '--url', backend.url, '--admin-key', backend.adminKey, '-y'])

useDeployedBackend('crons', (t) => ({ backend, appDir } = t))

async function until(pred: () => Promise<boolean>, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error('timed out')
    await new Promise((r) => setTimeout(r, 100))
  }
}

const times = (name: string) => new ConvexHttpClient(backend.url).query('ticks:times' as any, { name }) as Promise<number[]>

test('an interval cron runs every second, the first time at deploy', async () => {
  await until(async () => (await count('second')) >= 4)
  const at = await times('second')
  // Runs are due a second apart. (The first, at deploy, may start late on a busy machine, so the
  // spacing is read from the runs after it, over two intervals.)
  expect(at[3]! - at[1]!).toBeGreaterThanOrEqual(1500)
  // A 24-hour interval cron has run once, at deploy.
  expect(await count('daily')).toBe(1)
  // Cron runs don't show among the app's scheduled functions, and the crons' own tables are internal.
  expect(await new ConvexHttpClient(backend.url).query('ticks:scheduledCount' as any, {})).toBe(0)
  expect(await new ConvexHttpClient(backend.url).query('ticks:internalTables' as any, {})).toEqual({ cronJobs: 0, cronRuns: 0 })
})

test('a cron never overlaps itself: runs due while the last is still going are skipped', async () => {
  await until(async () => (await count('slow-end')) >= 2, 15_000)
  const starts = await times('slow-start')
  const ends = await times('slow-end')
  // Each run starts after the one before it ended, although one falls due every second.
  for (let i = 1; i < starts.length && i <= ends.length; i++) expect(starts[i]!).toBeGreaterThanOrEqual(ends[i - 1]!)
  expect(starts.length).toBeGreaterThanOrEqual(2)
})

test('a restart neither doubles nor replays missed runs', async () => {
  const before = await count('second')
  await backend.stop()
  await new Promise((r) => setTimeout(r, 3000))
  await backend.restart()
  await new Promise((r) => setTimeout(r, 400))
  // About three runs were missed while down: they collapse into one run at start-up.
  const justAfter = await count('second')
  expect(justAfter - before).toBeGreaterThanOrEqual(1)
  expect(justAfter - before).toBeLessThanOrEqual(2)
  await until(async () => (await count('second')) >= justAfter + 2)
})

test('a push updates the crons: a removed job stops', async () => {
  const path = join(appDir!, 'convex/crons.ts')
  writeFileSync(path, readFileSync(path, 'utf8').replace(/crons\.interval\([^\n]*\n/, ''))
  await push()
  await new Promise((r) => setTimeout(r, 1200))
  const settled = await count('second')
  await new Promise((r) => setTimeout(r, 1500))
  expect(await count('second')).toBe(settled)
})

test('a malformed cron expression fails the push and keeps the old crons', async () => {
  const path = join(appDir!, 'convex/crons.ts')
  writeFileSync(path, readFileSync(path, 'utf8').replace('"* * * * *"', '"61 * * * *"'))
  const err = (await push().catch((e: unknown) => e)) as { code?: number; stderr?: string }
  expect(err.code).toBe(1)
  expect(err.stderr).toContain('InvalidCronSpec')
  expect(err.stderr).toContain('Cron job "every minute"')
  expect(err.stderr).toContain('Invalid cron expression "61 * * * *": Invalid value for minute: 61')
})

test('a cron naming a function that does not exist fails the push', async () => {
  const path = join(appDir!, 'convex/crons.ts')
  writeFileSync(path, readFileSync(path, 'utf8').replace('"61 * * * *"', '"* * * * *"').replace('internal.ticks.tick, { name: "minute" }', 'makeFunctionReference<"mutation">("ticks:nope"), {}').replace('import { cronJobs } from "convex/server";', 'import { cronJobs, makeFunctionReference } from "convex/server";'))
  const err = (await push().catch((e: unknown) => e)) as { code?: number; stderr?: string }
  expect(err.code).toBe(1)
  expect(err.stderr).toContain('ticks:nope is not a mutation or action of this push')
})

test('a schedule without its minute (convex ≥ 1.43) deploys, and runs at minute 0 pushed back by a delay drawn from its name', async () => {
  const path = join(appDir!, 'convex/crons.ts')
  writeFileSync(
    path,
    [
      'import { cronJobs } from "convex/server";',
      'import { internal } from "./_generated/api";',
      'const crons = cronJobs();',
      'crons.hourly("spread over the hour", internal.ticks.tick, { name: "hourly" });',
      'crons.daily("daily, minute left out", { hourUTC: 3 }, internal.ticks.tick, { name: "daily" });',
      'crons.hourly("pinned", { minuteUTC: 15 }, internal.ticks.tick, { name: "pinned" });',
      'export default crons;',
      '',
    ].join('\n'),
  )
  const before = Date.now()
  await push()
  const admin = new ConvexHttpClient(backend.url)
  ;(admin as unknown as { setAdminAuth(key: string): void }).setAdminAuth(backend.adminKey)
  const jobs = (await admin.query('_system/frontend/listCronJobs' as any, {})) as { name: string; cronSpec: { cronSchedule: Record<string, unknown> }; nextRun: { nextTs: bigint } }[]
  const byName = new Map(jobs.map((j) => [j.name, j]))
  expect([...byName.keys()].sort()).toEqual(['daily, minute left out', 'pinned', 'spread over the hour'])
  expect(byName.get('spread over the hour')!.cronSpec.cronSchedule).toEqual({ type: 'hourly', minuteUTC: null })
  expect(byName.get('daily, minute left out')!.cronSpec.cronSchedule).toEqual({ type: 'daily', hourUTC: 3n, minuteUTC: null })
  expect(byName.get('pinned')!.cronSpec.cronSchedule).toEqual({ type: 'hourly', minuteUTC: 15n })
  const next = (name: string) => Number(byName.get(name)!.nextRun.nextTs / 1_000_000n)
  const delay = splayMs('spread over the hour')
  expect(delay).toBeGreaterThanOrEqual(0)
  expect(delay).toBeLessThan(3_600_000)
  // The hourly one: the first top of the hour plus its delay that is after the push.
  const hourly = next('spread over the hour')
  expect((hourly - delay) % 3_600_000).toBe(0)
  expect(hourly).toBeGreaterThan(before)
  expect(hourly - 3_600_000).toBeLessThanOrEqual(before + 5_000)
  // The daily one: 03:00 UTC plus its delay; the pinned one exactly at minute 15.
  expect(new Date(next('daily, minute left out') - splayMs('daily, minute left out')).toISOString()).toMatch(/T03:00:00\.000Z$/)
  expect(new Date(next('pinned')).toISOString()).toMatch(/:15:00\.000Z$/)
})
