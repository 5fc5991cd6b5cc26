import { expect, test } from 'vitest'
import { ConvexHttpClient } from 'convex/browser'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { convexCli, useDeployedBackend } from '../helpers/test-backend.ts'
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
