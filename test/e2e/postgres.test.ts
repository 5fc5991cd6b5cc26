import { afterAll, beforeAll, expect, test } from 'vitest'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ConvexClient, ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { cleanup, convexCli, errorOf, prepareFixture, startBackend, until } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'
import { startPostgres } from '../helpers/postgres.ts'
import type { PostgresCluster } from '../helpers/postgres.ts'

// One backend keeping its data in a real Postgres (`--db-url`), driven by the real CLI and clients.
let cluster: PostgresCluster
let dbUrl: string
let backend: TestBackend
let appDir: string
let client: ConvexHttpClient

beforeAll(async () => {
  cluster = await startPostgres()
  dbUrl = await cluster.newDatabase()
  backend = await startBackend({ args: ['--db-url', dbUrl] })
  appDir = prepareFixture('basic')
  await convexCli(appDir, ['deploy', '--url', backend.url, '--admin-key', backend.adminKey, '-y'])
  client = new ConvexHttpClient(backend.url)
}, 120_000)

afterAll(async () => {
  await backend?.stop()
  cleanup(backend?.dataDir)
  cleanup(appDir)
  await cluster?.stop()
})

test('mutations, queries, indexes and concurrent increments on Postgres', async () => {
  const id = await client.mutation(anyApi.messages.send, { author: 'ada', body: 'hello' })
  await client.mutation(anyApi.messages.send, { author: 'bob', body: 'hi' })
  expect((await client.query(anyApi.messages.get, { id }))?.body).toBe('hello')
  expect((await client.query(anyApi.messages.list, { author: 'ada' })).map((m: { body: string }) => m.body)).toEqual(['hello'])
  // Conflicting read-modify-writes are serialized: every increment lands exactly once.
  await Promise.all(Array.from({ length: 40 }, () => client.mutation(anyApi.counter.increment, { name: 'pg' })))
  expect(await client.query(anyApi.counter.get, { name: 'pg' })).toBe(40)
  // Every new pooled connection asked its server pid before it was handed out: no connection ran
  // two queries at once (pg warns of it, and its next major version refuses it).
  expect(backend.output()).not.toContain('DeprecationWarning')
})

test('a subscriber sees writes live, and a scheduled function runs once', async () => {
  const live = new ConvexClient(backend.url, { unsavedChangesWarning: false } as never)
  try {
    const seen: number[] = []
    let wake: () => void = () => {}
    live.onUpdate(anyApi.counter.get, { name: 'live' }, (v: number) => {
      seen.push(v)
      wake()
    })
    const until = async (n: number) => {
      const deadline = Date.now() + 10_000
      while (!seen.includes(n) && Date.now() < deadline) await new Promise<void>((r) => ((wake = r), setTimeout(r, 200)))
    }
    await until(0)
    await client.mutation(anyApi.counter.increment, { name: 'live' })
    await until(1)
    await client.mutation(anyApi.scheduling.runAfter, { name: 'live', delayMs: 0 })
    await until(2)
    expect(seen).toEqual([0, 1, 2])
  } finally {
    await live.close()
  }
})

test('a kill -9 loses no acknowledged write; the restarted backend reads it back from Postgres', async () => {
  const acked: string[] = []
  await Promise.all(Array.from({ length: 20 }, async (_, i) => acked.push(await client.mutation(anyApi.messages.send, { author: 'crash', body: `m${i}` }))))
  await backend.stop('SIGKILL')
  await backend.restart()
  const after = await client.query(anyApi.messages.list, { author: 'crash' })
  expect(after.map((m: { _id: string }) => m._id).sort()).toEqual([...acked].sort())
  expect(await client.query(anyApi.counter.get, { name: 'pg' })).toBe(40)
})

test('the data lives in Postgres: another data folder on the same database serves it, beside the first', async () => {
  const other = await startBackend({ args: ['--db-url', dbUrl] })
  try {
    expect(await new ConvexHttpClient(other.url).query(anyApi.counter.get, { name: 'pg' })).toBe(40)
    await backend.stop()
    expect(await new ConvexHttpClient(other.url).query(anyApi.counter.get, { name: 'pg' })).toBe(40)
  } finally {
    await other.stop()
    cleanup(other.dataDir)
    await backend.restart()
  }
})

test('an unreachable database fails start-up with a clear message', async () => {
  const bad = await startBackend({ args: ['--db-url', 'postgres://nobody@127.0.0.1:1/none'] }).catch((e: Error) => e)
  expect(bad).toBeInstanceOf(Error)
  expect((bad as Error).message).toContain('Cannot connect to the Postgres database at postgres://nobody@127.0.0.1:1/none')
})

test('without a secret, the embedded default keeps its credentials in the database: every data folder on it takes the same admin key', async () => {
  const db = await cluster.newDatabase()
  // Two processes starting at once on the new database agree on one secret.
  const [first, beside] = await Promise.all([startBackend({ args: ['--db-url', db], withSecret: false }), startBackend({ args: ['--db-url', db], withSecret: false })])
  const firstKey = /Admin key:\s+(\S+)/.exec(first.output())?.[1]
  const besideKey = /Admin key:\s+(\S+)/.exec(beside.output())?.[1]
  for (const [backend, key] of [[first, besideKey], [beside, firstKey]] as const) {
    expect((await fetch(`${backend.url}/api/check_admin_key`, { headers: { authorization: `Convex ${key}` } })).status).toBe(200)
  }
  await Promise.all([first.stop(), beside.stop()])
  cleanup(beside.dataDir)
  const second = await startBackend({ args: ['--db-url', db], withSecret: false })
  try {
    expect(firstKey).toMatch(/^convex-self-hosted\|/)
    // A copy beside the data, for tools that read it (the Docker image's generate_admin_key.sh).
    expect(JSON.parse(readFileSync(join(second.dataDir, 'concave_credentials.json'), 'utf8')).instanceName).toBe('convex-self-hosted')
    // The key the first process printed is good for the second (one secret, kept in the database).
    const check = await fetch(`${second.url}/api/check_admin_key`, { headers: { authorization: `Convex ${firstKey}` } })
    expect(check.status).toBe(200)
  } finally {
    await second.stop()
    cleanup(first.dataDir)
    cleanup(second.dataDir)
  }
})

test('a database that goes away fails requests with a clear error; the backend recovers when it returns, with nothing acknowledged lost', async () => {
  const before = await client.mutation(anyApi.messages.send, { author: 'outage', body: 'before' })
  await cluster.pause()
  try {
    // Clients get Convex's answer to an internal failure; /health and the log say what it is.
    // (Convex's internal-error answer: no cause of ours in it.)
    expect((await errorOf(client.mutation(anyApi.messages.send, { author: 'outage', body: 'during' }))).message).toBe('{"code":"InternalServerError","message":"Your request couldn\'t be completed. Try again later."}')
    expect((await errorOf(client.query(anyApi.messages.list, { author: 'outage' }))).message).toBe('{"code":"InternalServerError","message":"Your request couldn\'t be completed. Try again later."}')
    const health = await fetch(`${backend.url}/health`)
    expect(health.status).toBe(503)
    expect(await health.text()).toMatch(/^Unhealthy: The database can't be read: /)
    expect(backend.output()).toContain("The database can't be read")
  } finally {
    await cluster.resume()
  }
  // Back: requests succeed again (the pool reconnects) and /health says so.
  const after = await until(() => client.mutation(anyApi.messages.send, { author: 'outage', body: 'after' }).catch((e: Error) => e), (r) => !(r instanceof Error))
  expect((await client.query(anyApi.messages.list, { author: 'outage' })).map((m: { _id: string; body: string }) => [m._id, m.body])).toEqual([
    [before, 'before'],
    [after, 'after'],
  ])
  expect((await fetch(`${backend.url}/health`)).status).toBe(200)
  expect(backend.output()).toContain('The database can be read again')
})
