import { expect, test } from 'vitest'
import { ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { cleanup, deploy, errorOf, startBackend, until, useDeployedBackend } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'

const api = anyApi as any
let backend: TestBackend
let appDir: string | undefined
let client: ConvexHttpClient

// The limit tests schedule 1,000 functions (16 MiB of arguments) in one mutation: on a busy machine
// that can take more than the 1 s limit, which these tests are not about.
useDeployedBackend('basic', (t) => ({ backend, appDir, client } = t), { env: { CONCAVE_FUNCTION_TIMEOUT_MS: '20000' } })


const counter = (name: string) => client.query(api.counter.get, { name })
const job = (id: string) => client.query(api.scheduling.job, { id })

test('runAfter(0) runs the mutation once and records success', async () => {
  const id = await client.mutation(api.scheduling.runAfter, { name: 's-now', delayMs: 0 })
  expect(await until(() => job(id), (j) => j.state.kind === 'success')).toEqual({ name: 'scheduling.js:bump', args: [{ name: 's-now' }], state: { kind: 'success' }, done: true })
  expect(await counter('s-now')).toBe(1)
})

test('runAt in the past runs at once; in the future, not before its time', async () => {
  const past = await client.mutation(api.scheduling.runAt, { name: 's-past', at: Date.now() - 60_000 })
  await until(() => job(past), (j) => j.state.kind === 'success')
  const at = Date.now() + 1200
  const future = await client.mutation(api.scheduling.runAt, { name: 's-future', at })
  expect((await job(future)).state).toEqual({ kind: 'pending' })
  await new Promise((r) => setTimeout(r, 500))
  expect(await counter('s-future')).toBe(0)
  await until(() => counter('s-future'), (n) => n === 1)
  expect(Date.now()).toBeGreaterThanOrEqual(at)
})

test('cancel stops a pending job', async () => {
  const id = await client.mutation(api.scheduling.runAfter, { name: 's-cancel', delayMs: 1000 })
  await client.mutation(api.scheduling.cancel, { id })
  expect((await job(id)).state).toEqual({ kind: 'canceled' })
  await new Promise((r) => setTimeout(r, 1400))
  expect(await counter('s-cancel')).toBe(0)
  // Canceling again (or a finished job) changes nothing and is no error, as in Convex.
  await client.mutation(api.scheduling.cancel, { id })
  expect((await job(id)).state).toEqual({ kind: 'canceled' })
  // An id of another table is refused.
  const err = await client.mutation(api.scheduling.cancelLoose, { id: 'notanid' }).catch((e: Error) => e)
  expect((err as Error).message).toContain("Invalid scheduled function ID. The ID must be an ID on the '_scheduled_functions' table.")
})

test('scheduling checks only that the function exists (as Convex): a query is scheduled, and its job fails when it runs', async () => {
  // Convex's text, a raw string literal spanning two source lines (quotes, newline and indent included).
  const unsupported = 'Unsupported function type. FunctionName("peek") in module "scheduling.js" is defined as a Query. "\n                            "Only Mutation and Action can be scheduled.'
  for (const id of [await client.mutation(api.scheduling.scheduleQueryHandle, {}), await client.mutation(api.scheduling.scheduleByName, { name: 'scheduling.js:peek' })]) {
    expect(await until(() => job(id), (j) => j.state.kind !== 'pending' && j.state.kind !== 'inProgress')).toEqual({ name: 'scheduling.js:peek', args: [{}], state: { kind: 'failed', error: unsupported }, done: true })
  }
  // A module that doesn't exist is named alone; a missing export has a message of its own.
  const refused = async (name: string) => (await errorOf(client.mutation(api.scheduling.scheduleByName, { name }))).message
  expect(await refused('nowhere:fn')).toMatch(/^\[Request ID: [0-9a-f]{16}\] Server Error\nUncaught Error: Attempted to schedule function at nonexistent path: nowhere\.js\n/)
  // A path Convex can't read, and a time more than five years away, are refused first.
  expect(await refused('@#@!invalid@#file$$path')).toMatch(/^\[Request ID: [0-9a-f]{16}\] Server Error\nUncaught Error: Path component @#@!invalid@#file\$\$path\.js can only contain alphanumeric characters, underscores, or periods\.\n/)
  const far = (await errorOf(client.mutation(api.scheduling.runAt, { name: 'far', at: Date.now() + 6 * 365 * 24 * 3600 * 1000 }))).message
  expect(far).toMatch(/^\[Request ID: [0-9a-f]{16}\] Server Error\nUncaught Error: UnixTimestamp\(\d+(\.\d+)?s\) is more than 5 years in the future\n/)
  const past = (await errorOf(client.mutation(api.scheduling.runAt, { name: 'far', at: Date.now() - 6 * 365 * 24 * 3600 * 1000 }))).message
  expect(past).toMatch(/UnixTimestamp\(\d+(\.\d+)?s\) is more than 5 years in the past\n/)
  expect(await refused('scheduling:missing')).toMatch(
    /^\[Request ID: [0-9a-f]{16}\] Server Error\nUncaught Error: Attempted to schedule function, but no exported function missing found in the file: scheduling\.js\. Did you forget to export it\?\n/,
  )
})

test('a mutation that fails schedules nothing', async () => {
  const err = await client.mutation(api.scheduling.scheduleThenThrow, { name: 's-rollback' }).catch((e: Error) => e)
  expect((err as Error).message).toContain('rolled back')
  await new Promise((r) => setTimeout(r, 300))
  expect(await client.query(api.scheduling.jobsNamed, { name: 's-rollback' })).toBe(0)
  expect(await counter('s-rollback')).toBe(0)
})

test('a failing scheduled mutation is marked failed and its writes are dropped', async () => {
  const id = await client.mutation(api.scheduling.scheduleExplode, {})
  const j = await until(() => job(id), (x) => x.state.kind === 'failed')
  expect(j.state.error).toContain('Uncaught Error: scheduled boom')
  expect(await counter('exploded')).toBe(0)
})

test('scheduled actions, and scheduling from an action', async () => {
  const id = await client.mutation(api.scheduling.scheduleAction, { name: 's-action' })
  await until(() => job(id), (j) => j.state.kind === 'success')
  expect(await counter('s-action')).toBe(1)
  const fromAction = await client.action(api.scheduling.scheduleFromAction, { name: 's-from-action' })
  await until(() => job(fromAction), (j) => j.state.kind === 'success')
  expect(await counter('s-from-action')).toBe(1)
})

test('a mutation may schedule at most 1,000 functions; past that it fails and schedules nothing', async () => {
  const before = await client.query(api.scheduling.jobCount, {})
  const err = await client.mutation(api.scheduling.scheduleMany, { n: 1001 }).catch((e: Error) => e)
  expect((err as Error).message).toContain('Too many functions scheduled by this mutation (limit: 1000)')
  expect(await client.query(api.scheduling.jobCount, {})).toBe(before)
})

test('the arguments a mutation schedules may total 16 MiB, counted in UTF-8 bytes', async () => {
  const before = await client.query(api.scheduling.jobCount, {})
  // Three arguments of 2,000,000 euro signs: 6M characters, but 18 MB of UTF-8.
  const err = await client.mutation(api.scheduling.scheduleWide, { copies: 3, chars: 2_000_000 }).catch((e: Error) => e)
  expect((err as Error).message).toContain('Too large total size of the arguments of scheduled functions from this mutation (limit: 16777216 bytes)')
  expect(await client.query(api.scheduling.jobCount, {})).toBe(before)
  // Two of them (12 MB) fit.
  await client.mutation(api.scheduling.scheduleWide, { copies: 2, chars: 2_000_000 })
  expect(await client.query(api.scheduling.jobCount, {})).toBe(before + 2)
})

test('a job a month away neither runs nor makes the scheduler spin', async () => {
  const id = await client.mutation(api.scheduling.runAfter, { name: 's-month', delayMs: 30 * 24 * 3600 * 1000 })
  await new Promise((r) => setTimeout(r, 500))
  expect((await job(id)).state).toEqual({ kind: 'pending' })
  expect(backend.output()).not.toContain('TimeoutOverflowWarning')
  await client.mutation(api.scheduling.cancel, { id })
})

test('a running action shows inProgress; one cut off by kill -9 is marked failed after the restart', async () => {
  const id = await client.mutation(api.scheduling.scheduleSlowAction, { ms: 1500 })
  await until(() => job(id), (j) => j.state.kind === 'inProgress')
  await backend.stop('SIGKILL')
  await backend.restart()
  const after = new ConvexHttpClient(backend.url)
  const failed = await until(() => after.query(api.scheduling.job, { id }), (j) => j.state.kind !== 'inProgress')
  // At most once: the action is not run again.
  expect(failed.state).toEqual({ kind: 'failed', error: 'Transient error while executing action' })
  client = after
})

test('pending jobs survive kill -9 and run after the restart', async () => {
  const id = await client.mutation(api.scheduling.runAt, { name: 's-restart', at: Date.now() + 1000 })
  await backend.stop('SIGKILL')
  await backend.restart()
  const after = new ConvexHttpClient(backend.url)
  await until(() => after.query(api.scheduling.job, { id }), (j) => j.state.kind === 'success')
  expect(await after.query(api.counter.get, { name: 's-restart' })).toBe(1)
})

test('finished jobs are removed once older than the retention; pending ones stay', async () => {
  // A backend of its own that keeps finished jobs for 1.5 s instead of 7 days.
  const short = await startBackend({ env: { CONCAVE_JOB_RETENTION_MS: '1500' } })
  const dir = (await deploy(short, 'basic')).appDir
  try {
    const c = new ConvexHttpClient(short.url)
    const done = await c.mutation(api.scheduling.runAfter, { name: 's-retained', delayMs: 0 })
    const later = await c.mutation(api.scheduling.runAfter, { name: 's-later', delayMs: 3_600_000 })
    await until(() => c.query(api.scheduling.job, { id: done }), (j) => j?.state.kind === 'success')
    await until(() => c.query(api.scheduling.job, { id: done }), (j) => j === null)
    expect((await c.query(api.scheduling.job, { id: later })).state).toEqual({ kind: 'pending' })
    expect(await c.query(api.counter.get, { name: 's-retained' })).toBe(1)
  } finally {
    await short.stop()
    cleanup(short.dataDir)
    cleanup(dir)
  }
})
