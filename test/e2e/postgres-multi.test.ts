import { expect, test } from 'vitest'
import { ConvexClient, ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { convexCli, until } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'
import { useTwoProcessesOnPostgres } from '../helpers/postgres.ts'

// Two backend processes on one Postgres database, each on its own ports and data folder: any of
// them serves every request. `a` starts first, so it runs scheduled functions and crons (the
// background lease) until it is killed. The app is pushed through `b`, the process that doesn't
// run the crons: the other one loads it and starts them.
let a: TestBackend
let b: TestBackend
let appDir: string
let viaA: ConvexHttpClient
let viaB: ConvexHttpClient

useTwoProcessesOnPostgres('multi', (t) => ({ a, b, appDir, viaA, viaB } = t))

test('a push and an environment variable set through one process are served by the other', async () => {
  expect(a.output()).toContain('Running scheduled functions and crons in this process')
  expect(b.output()).not.toContain('Running scheduled functions and crons in this process')
  expect(await until(() => viaA.query(anyApi.counter.get, { name: 'none' }).catch((e: Error) => e), (r) => r === 0)).toBe(0)
  await convexCli(appDir, ['env', 'set', 'GREETING', 'hello from b', '--url', b.url, '--admin-key', b.adminKey])
  expect(await until(() => viaA.query(anyApi.counter.env, { name: 'GREETING' }), (v) => v !== null)).toBe('hello from b')
})

test('a deployment paused through one process is paused on the other; resumed, both serve again', async () => {
  const paused = 'Cannot run functions while this deployment is paused.'
  const post = (backend: TestBackend, path: string) => fetch(`${backend.url}${path}`, { method: 'POST', headers: { authorization: `Convex ${backend.adminKey}` } })
  expect((await post(b, '/api/v1/pause_deployment')).status).toBe(200)
  expect(String(await until(() => viaA.query(anyApi.counter.get, { name: 'none' }).catch((e: Error) => e.message), (r) => typeof r === 'string' && r.includes(paused)))).toContain(paused)
  expect((await post(a, '/api/v1/unpause_deployment')).status).toBe(200)
  expect(await until(() => viaB.query(anyApi.counter.get, { name: 'none' }).catch((e: Error) => e.message), (r) => r === 0)).toBe(0)
})

test('a subscriber on one process sees every write made through the other, in order', async () => {
  const live = new ConvexClient(a.url, { unsavedChangesWarning: false } as never)
  try {
    const seen: number[] = []
    live.onUpdate(anyApi.counter.get, { name: 'live' }, (v: number) => void seen.push(v))
    await until(() => seen, (s) => s.includes(0))
    for (let n = 1; n <= 5; n++) {
      expect(await viaB.mutation(anyApi.counter.increment, { name: 'live' })).toBe(n)
      await until(() => seen, (s) => s.includes(n))
    }
    expect(seen).toEqual([0, 1, 2, 3, 4, 5])
  } finally {
    await live.close()
  }
})

test('40 concurrent increments spread over both processes end at exactly 40, each seeing a different count', async () => {
  const results = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? viaA : viaB).mutation(anyApi.counter.increment, { name: 'spread' })))
  expect([...results].sort((x, y) => x - y)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1))
  // Read right after on either process: both see every acknowledged write.
  expect(await viaA.query(anyApi.counter.get, { name: 'spread' })).toBe(40)
  expect(await viaB.query(anyApi.counter.get, { name: 'spread' })).toBe(40)
})

test('a mutation through one process sees a write acknowledged by the other, even one that fails on what it reads', async () => {
  for (let n = 1; n <= 20; n++) {
    // b's current snapshot is fresh from a read, then a's write is acknowledged.
    expect(await viaB.query(anyApi.counter.get, { name: 'seen' })).toBe(n - 1)
    expect(await viaA.mutation(anyApi.counter.increment, { name: 'seen' })).toBe(n)
    expect(await viaB.mutation(anyApi.counter.atLeast, { name: 'seen', atLeast: n }).catch((e: Error) => e.message)).toBe(n)
  }
})

test('a scheduled function runs once, and the cron pushed through the other process runs once', async () => {
  const id = await viaB.mutation(anyApi.jobs.schedule, { name: 'scheduled', delayMs: 0 })
  expect(await until(() => viaB.query(anyApi.jobs.job, { id }), (s) => s?.kind === 'success')).toEqual({ kind: 'success' })
  expect(await viaA.query(anyApi.jobs.count, { name: 'scheduled' })).toBe(1)
  expect(await until(() => viaA.query(anyApi.jobs.count, { name: 'daily' }), (n) => n > 0)).toBe(1)
})

test('a file uploaded through one process is served by the other', async () => {
  const upload = await viaA.mutation(anyApi.files.uploadUrl, {})
  expect(upload.startsWith(a.url)).toBe(true)
  const bytes = Buffer.from('shared between processes')
  const { storageId } = (await (await fetch(upload, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: bytes })).json()) as { storageId: string }
  const url = (await viaB.query(anyApi.files.url, { id: storageId })) as string
  expect(url.startsWith(b.url)).toBe(true)
  const served = await fetch(url)
  expect(served.status).toBe(200)
  expect(served.headers.get('content-type')).toBe('text/plain')
  expect(Buffer.from(await served.arrayBuffer())).toEqual(bytes)
})

test('kill -9 of the process running jobs: no acknowledged write lost, the other keeps serving and takes the jobs over', async () => {
  // A slow action is under way in `a` (which runs jobs) when it dies.
  const slow = await viaB.mutation(anyApi.jobs.scheduleSlow, { name: 'slow', ms: 3000 })
  await until(() => viaB.query(anyApi.jobs.count, { name: 'slow:start' }), (n) => n === 1)
  // Writes through both processes while `a` is killed.
  const acked: string[] = []
  const attempted: string[] = []
  let stop = false
  const load = (client: ConvexHttpClient, tag: string) =>
    (async () => {
      for (let i = 0; !stop; i++) {
        const name = `load:${tag}:${i}`
        attempted.push(name)
        try {
          await client.mutation(anyApi.jobs.add, { name })
          acked.push(name)
        } catch {
          if (tag === 'a') return // `a` is gone
        }
      }
    })()
  const loads = [load(viaA, 'a'), load(viaB, 'b')]
  await until(() => acked.length, (n) => n >= 20)
  await a.stop('SIGKILL')
  const ackedBefore = acked.length
  await until(() => acked.length, (n) => n >= ackedBefore + 20)
  stop = true
  await Promise.all(loads)
  const stored = await viaB.query(anyApi.jobs.names, { prefix: 'load:' })
  expect(stored.filter((n: string) => acked.includes(n))).toEqual([...acked].sort())
  // What is stored beyond the acknowledged writes is at most the one `a` had in flight.
  expect(stored.filter((n: string) => !acked.includes(n)).length).toBeLessThanOrEqual(1)
  expect(stored.every((n: string) => attempted.includes(n))).toBe(true)

  // `b` takes the jobs over within seconds: the interrupted action is failed as Convex does
  // (actions run at most once), and new jobs run there.
  expect(await until(() => viaB.query(anyApi.jobs.job, { id: slow }), (s) => s?.kind === 'failed')).toEqual({ kind: 'failed', error: 'Transient error while executing action' })
  expect(b.output()).toContain('Running scheduled functions and crons in this process')
  const after = await viaB.mutation(anyApi.jobs.schedule, { name: 'after-takeover', delayMs: 0 })
  expect(await until(() => viaB.query(anyApi.jobs.job, { id: after }), (s) => s?.kind === 'success')).toEqual({ kind: 'success' })
  expect(await viaB.query(anyApi.jobs.count, { name: 'slow:end' })).toBe(0)
  // Taking the crons over doesn't run the daily one again.
  expect(await viaB.query(anyApi.jobs.count, { name: 'daily' })).toBe(1)

  // `a` restarted catches up from the database.
  await a.restart()
  expect(await viaA.query(anyApi.jobs.names, { prefix: 'load:' })).toEqual(stored)
  expect(await viaA.query(anyApi.jobs.count, { name: 'after-takeover' })).toBe(1)
})
