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

test('an interval cron runs every second', async () => {
  const start = Date.now()
  await until(async () => (await count('second')) >= 3)
  expect(Date.now() - start).toBeGreaterThanOrEqual(2000)
  expect(Date.now() - start).toBeLessThan(6000)
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
  expect(err.stderr).toContain('minute "61" is out of range 0-59')
})

test('a cron naming a function that does not exist fails the push', async () => {
  const path = join(appDir!, 'convex/crons.ts')
  writeFileSync(path, readFileSync(path, 'utf8').replace('"61 * * * *"', '"* * * * *"').replace('internal.ticks.tick, { name: "minute" }', 'makeFunctionReference<"mutation">("ticks:nope"), {}').replace('import { cronJobs } from "convex/server";', 'import { cronJobs, makeFunctionReference } from "convex/server";'))
  const err = (await push().catch((e: unknown) => e)) as { code?: number; stderr?: string }
  expect(err.code).toBe(1)
  expect(err.stderr).toContain('ticks:nope is not a mutation or action of this push')
})
