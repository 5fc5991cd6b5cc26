/**
 * Real Convex components from npm (@convex-dev/rate-limiter, aggregate, sharded-counter,
 * workpool, migrations, action-cache), installed in test/fixtures/components-npm as their
 * READMEs show and driven through their documented client classes from the app's functions.
 * Pushing them takes the component tree (nested: three of them `use` @convex-dev/batch-worker),
 * per-component tables, calls between app and components both ways (function handles), the
 * scheduler inside components, and component crons.
 */
import { expect, test } from 'vitest'
import { ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { ConvexError } from 'convex/values'
import { convexCli, errorOf, until, useDeployedBackend } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'

const api = anyApi as any
let backend: TestBackend
let appDir: string
let client: ConvexHttpClient

useDeployedBackend('components-npm', (t) => ({ backend, appDir, client } = t))


interface MigrationStatus {
  name: string
  isDone: boolean
  processed: number
  state: string
  latestStart: number
  latestEnd?: number
}

const HOUR = 60 * 60 * 1000
// The fixture's fixed window (convex/rateLimit.ts): two per window, 2020-01-01 plus a century.
const WINDOW_START = Date.UTC(2020, 0, 1)
const WINDOW_END = WINDOW_START + 100 * 365 * 24 * HOUR

test('rate-limiter: a fixed window allows two, then refuses until the window ends; check, getValue, reset', async () => {
  const limit = (key: string, throws?: boolean) => client.mutation(api.rateLimit.limit, { name: 'daily', key, throws })
  expect(await client.query(api.rateLimit.check, { name: 'daily', key: 'a' })).toEqual({ ok: true })
  expect(await limit('a')).toEqual({ ok: true })
  expect(await limit('a')).toEqual({ ok: true })
  // `check` doesn't consume: it answers the same as the refused `limit` after it.
  let before = Date.now()
  const checked = await client.query(api.rateLimit.check, { name: 'daily', key: 'a' })
  let after = Date.now()
  expect(checked.ok).toBe(false)
  expect(checked.retryAfter).toBeGreaterThanOrEqual(WINDOW_END - after)
  expect(checked.retryAfter).toBeLessThanOrEqual(WINDOW_END - before)
  before = Date.now()
  const refused = await limit('a')
  after = Date.now()
  expect(Object.keys(refused).sort()).toEqual(['ok', 'retryAfter'])
  expect(refused.ok).toBe(false)
  expect(refused.retryAfter).toBeGreaterThanOrEqual(WINDOW_END - after)
  expect(refused.retryAfter).toBeLessThanOrEqual(WINDOW_END - before)
  // With `throws`, a refusal is a ConvexError carrying RateLimitError data.
  before = Date.now()
  const err = await errorOf(limit('a', true))
  after = Date.now()
  expect(err).toBeInstanceOf(ConvexError)
  const data = (err as ConvexError<{ kind: string; name: string; retryAfter: number }>).data
  expect({ kind: data.kind, name: data.name }).toEqual({ kind: 'RateLimited', name: 'daily' })
  expect(data.retryAfter).toBeGreaterThanOrEqual(WINDOW_END - after)
  expect(data.retryAfter).toBeLessThanOrEqual(WINDOW_END - before)
  // Keys are separate limits.
  expect(await limit('b')).toEqual({ ok: true })
  // The stored value: nothing left in the window that began at `start`.
  expect(await client.query(api.rateLimit.value, { name: 'daily', key: 'a' })).toEqual({
    value: 0,
    ts: WINDOW_START,
    shard: 0,
    config: { kind: 'fixed window', rate: 2, period: WINDOW_END - WINDOW_START, start: WINDOW_START, capacity: 2, shards: 1 },
  })
  await client.mutation(api.rateLimit.reset, { name: 'daily', key: 'a' })
  expect(await limit('a')).toEqual({ ok: true })
  expect((await client.query(api.rateLimit.value, { name: 'daily', key: 'a' })).value).toBe(1)
  expect((await client.query(api.rateLimit.value, { name: 'daily', key: 'b' })).value).toBe(1)
})

test('rate-limiter: a token bucket of capacity 2 refills one per hour', async () => {
  const limit = () => client.mutation(api.rateLimit.limit, { name: 'burst', key: 'u' })
  const first = Date.now()
  expect(await limit()).toEqual({ ok: true })
  expect(await limit()).toEqual({ ok: true })
  const refused = await limit()
  const last = Date.now()
  expect(refused.ok).toBe(false)
  // One token is missing; it refills at one per hour, less what trickled in since the first call.
  expect(refused.retryAfter).toBeLessThanOrEqual(HOUR + 1e-6)
  expect(refused.retryAfter).toBeGreaterThanOrEqual(HOUR - (last - first) - 1e-6)
  await client.mutation(api.rateLimit.reset, { name: 'burst', key: 'u' })
  expect(await limit()).toEqual({ ok: true })
})

test('aggregate: a TableAggregate counts, sums, ranks and follows replace and delete', async () => {
  const ids: Record<string, string> = {}
  for (const [player, points] of [['cy', 30], ['al', 10], ['ed', 50], ['bo', 20], ['di', 40]] as const) ids[player] = await client.mutation(api.leaderboard.add, { player, points })
  expect(await client.query(api.leaderboard.count, {})).toBe(5)
  expect(await client.query(api.leaderboard.sum, {})).toBe(150)
  expect(await client.query(api.leaderboard.at, { offset: 0 })).toEqual({ key: 10, id: ids.al, sumValue: 10, player: 'al' })
  expect(await client.query(api.leaderboard.at, { offset: 3 })).toEqual({ key: 40, id: ids.di, sumValue: 40, player: 'di' })
  expect(await client.query(api.leaderboard.at, { offset: -1 })).toEqual({ key: 50, id: ids.ed, sumValue: 50, player: 'ed' })
  expect(await client.query(api.leaderboard.indexOf, { points: 30 })).toBe(2)
  expect(await client.query(api.leaderboard.indexOf, { points: 35 })).toBe(3)
  expect(await client.query(api.leaderboard.indexOf, { points: 30, order: 'desc' })).toBe(2)
  const above20 = { lower: { key: 20, inclusive: false } }
  const from20to40 = { lower: { key: 20, inclusive: true }, upper: { key: 40, inclusive: false } }
  expect(await client.query(api.leaderboard.count, { bounds: above20 })).toBe(3)
  expect(await client.query(api.leaderboard.sum, { bounds: above20 })).toBe(120)
  expect(await client.query(api.leaderboard.count, { bounds: from20to40 })).toBe(2)
  expect(await client.query(api.leaderboard.sum, { bounds: from20to40 })).toBe(50)
  expect(await client.query(api.leaderboard.extremes, {})).toEqual({ min: 10, max: 50 })
  await client.mutation(api.leaderboard.setPoints, { id: ids.al, points: 60 })
  expect(await client.query(api.leaderboard.at, { offset: -1 })).toEqual({ key: 60, id: ids.al, sumValue: 60, player: 'al' })
  expect(await client.query(api.leaderboard.sum, {})).toBe(200)
  await client.mutation(api.leaderboard.remove, { id: ids.ed })
  expect(await client.query(api.leaderboard.count, {})).toBe(4)
  expect(await client.query(api.leaderboard.sum, {})).toBe(150)
  expect(await client.query(api.leaderboard.extremes, {})).toEqual({ min: 20, max: 60 })
})

test('aggregate: a second instance of the same component (a DirectAggregate) has its own data', async () => {
  expect(await client.query(api.stats.summary, {})).toEqual({ count: 0, sum: 0, min: null, atLeastTwo: 0 })
  // The component's ConvexError reaches the client through the app's query.
  const err = await errorOf(client.query(api.stats.at, { offset: 0 }))
  expect(err).toBeInstanceOf(ConvexError)
  expect((err as ConvexError<string>).data).toBe('tree is empty')
})

test('aggregate: two instances stay apart when both are written', async () => {
  const scoresBefore = await client.query(api.leaderboard.count, {})
  await client.mutation(api.stats.record, { key: 3, id: 'c', sumValue: 0.5 })
  await client.mutation(api.stats.record, { key: 1, id: 'a', sumValue: 2 })
  await client.mutation(api.stats.record, { key: 2, id: 'b', sumValue: 4 })
  expect(await client.query(api.stats.summary, {})).toEqual({ count: 3, sum: 6.5, min: { key: 1, id: 'a', sumValue: 2 }, atLeastTwo: 2 })
  expect(await client.query(api.stats.at, { offset: -1 })).toEqual({ key: 3, id: 'c', sumValue: 0.5 })
  expect(await client.query(api.leaderboard.count, {})).toBe(scoresBefore)
})

test('sharded-counter: add, inc, dec, subtract and count across shards; rebalance makes the estimate exact; reset', async () => {
  await client.mutation(api.counter.add, { name: 'beans', count: 5 })
  await client.mutation(api.counter.inc, { name: 'beans' })
  await client.mutation(api.counter.inc, { name: 'beans' })
  await client.mutation(api.counter.dec, { name: 'beans' })
  await client.mutation(api.counter.subtract, { name: 'beans', count: 2 })
  expect(await client.query(api.counter.count, { name: 'beans' })).toBe(4)
  expect(await client.mutation(api.counter.incTwiceFor, { name: 'peas' })).toBe(2)
  expect(await client.query(api.counter.count, { name: 'peas' })).toBe(2)
  expect(await client.query(api.counter.count, { name: 'beans' })).toBe(4)
  // Four shards of one each: any one shard times four is the count.
  await client.mutation(api.counter.rebalance, { name: 'beans' })
  expect(await client.query(api.counter.estimate, { name: 'beans' })).toBe(4)
  expect(await client.query(api.counter.count, { name: 'beans' })).toBe(4)
  await client.mutation(api.counter.reset, { name: 'beans' })
  expect(await client.query(api.counter.count, { name: 'beans' })).toBe(0)
  expect(await client.query(api.counter.count, { name: 'peas' })).toBe(2)
})

test('workpool: enqueued mutation and actions run, and onComplete records success and failure', async () => {
  const { mutationId, actionId, failingId } = await client.mutation(api.pool.start, {})
  const rows = await until(() => client.query(api.pool.completions, {}), (r: unknown[]) => r.length >= 3)
  expect(rows).toEqual([
    { label: 'action', workId: actionId, kind: 'success', returnValue: 'hello pool' },
    { label: 'failing', workId: failingId, kind: 'failed', errorData: { code: 'refused' } },
    { label: 'mutation', workId: mutationId, kind: 'success', returnValue: 42 },
  ])
  expect(await client.query(api.pool.workLog, {})).toEqual(['double 21'])
  for (const id of [mutationId, actionId, failingId]) expect(await client.query(api.pool.status, { id })).toEqual({ state: 'finished' })
})

test('migrations: runOne walks the table in batches of two; the runner runs another from the CLI', async () => {
  await client.mutation(api.migrations.seed, { count: 5 })
  const first = await client.mutation(api.migrations.startDoubling, {})
  // The first batch ran inside the call; the rest is scheduled by the component.
  expect(first).toMatchObject({ name: 'migrations:setDoubled', processed: 2, isDone: false, state: 'inProgress' })
  // getStatus answers in the reverse of the order asked (the component reverses its list).
  const named = (s: MigrationStatus[], name: string) => s.find((m) => m.name === name)!
  const statuses = await until(() => client.query(api.migrations.status, {}), (s: MigrationStatus[]) => named(s, 'migrations:setDoubled').isDone)
  expect(statuses.map((m: MigrationStatus) => m.name)).toEqual(['migrations:tagOdd', 'migrations:setDoubled'])
  const doubled = named(statuses, 'migrations:setDoubled')
  const tagged = named(statuses, 'migrations:tagOdd')
  expect(doubled).toEqual({ name: 'migrations:setDoubled', cursor: null, processed: 5, isDone: true, state: 'success', latestStart: expect.any(Number), latestEnd: expect.any(Number) })
  expect(doubled.latestEnd).toBeGreaterThanOrEqual(doubled.latestStart)
  // Not started yet: the component reports it as unknown, at the start.
  expect(tagged).toEqual({ name: 'migrations:tagOdd', cursor: null, processed: 0, isDone: false, state: 'unknown', latestStart: 0 })
  expect(await client.query(api.migrations.items, {})).toEqual([1, 2, 3, 4, 5].map((n) => ({ n, doubled: n * 2 })))
  await convexCli(appDir, ['run', 'migrations:run', '{"fn": "migrations:tagOdd"}', '--url', backend.url, '--admin-key', backend.adminKey])
  const done = named(await until(() => client.query(api.migrations.status, {}), (s: MigrationStatus[]) => named(s, 'migrations:tagOdd').isDone), 'migrations:tagOdd')
  expect(done).toMatchObject({ name: 'migrations:tagOdd', cursor: null, processed: 5, isDone: true, state: 'success' })
  expect(await client.query(api.migrations.items, {})).toEqual([1, 2, 3, 4, 5].map((n) => ({ n, doubled: n * 2, odd: n % 2 === 1 })))
  // Starting a finished migration again changes nothing.
  expect(await client.mutation(api.migrations.startDoubling, {})).toMatchObject({ name: 'migrations:setDoubled', processed: 5, isDone: true, state: 'success' })
})

test('action-cache: the action runs once per argument until forced, removed or cleared', async () => {
  expect(await client.action(api.cache.square, { n: 3 })).toEqual({ square: 9, run: 1 })
  expect(await client.action(api.cache.square, { n: 3 })).toEqual({ square: 9, run: 1 })
  expect(await client.action(api.cache.square, { n: 4 })).toEqual({ square: 16, run: 1 })
  expect(await client.query(api.cache.runs, { n: 3 })).toBe(1)
  // `force` misses on purpose and stores the new value.
  expect(await client.action(api.cache.square, { n: 3, force: true })).toEqual({ square: 9, run: 2 })
  expect(await client.action(api.cache.square, { n: 3 })).toEqual({ square: 9, run: 2 })
  // `remove` drops one entry.
  await client.mutation(api.cache.forget, { n: 3 })
  expect(await client.action(api.cache.square, { n: 3 })).toEqual({ square: 9, run: 3 })
  expect(await client.action(api.cache.square, { n: 4 })).toEqual({ square: 16, run: 1 })
  // `removeAllForName` drops every entry of this cache.
  await client.mutation(api.cache.forgetAll, {})
  expect(await client.action(api.cache.square, { n: 3 })).toEqual({ square: 9, run: 4 })
  expect(await client.action(api.cache.square, { n: 4 })).toEqual({ square: 16, run: 2 })
  expect(await client.query(api.cache.runs, { n: 3 })).toBe(4)
  expect(await client.query(api.cache.runs, { n: 4 })).toBe(2)
})
