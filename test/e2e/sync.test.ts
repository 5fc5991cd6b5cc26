import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { ConvexClient, ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import WebSocket from 'ws'
import { cleanup, deploy, startBackend } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'

const api = anyApi as any
let backend: TestBackend
let appDir: string | undefined
const clients: ConvexClient[] = []

beforeAll(async () => {
  backend = await startBackend()
  appDir = (await deploy(backend, 'basic')).appDir
})

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()))
  await backend?.stop()
  cleanup(backend?.dataDir)
  cleanup(appDir)
})

function newClient(): ConvexClient {
  const c = new ConvexClient(backend.url, { unsavedChangesWarning: false } as any)
  clients.push(c)
  return c
}

/** Collects every value a subscription delivers; `next(pred)` waits for one matching `pred`. */
function watch<T>(client: ConvexClient, fn: any, args: any) {
  const values: T[] = []
  const waiters: { pred: (v: T) => boolean; resolve: (v: T) => void }[] = []
  const unsubscribe = client.onUpdate(fn, args, (v: T) => {
    values.push(v)
    for (const w of [...waiters]) if (w.pred(v)) {
      waiters.splice(waiters.indexOf(w), 1)
      w.resolve(v)
    }
  })
  return {
    values,
    unsubscribe,
    next(pred: (v: T) => boolean, timeoutMs = 10_000): Promise<T> {
      const hit = values.find(pred)
      if (hit !== undefined) return Promise.resolve(hit)
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`timed out; saw ${JSON.stringify(values)}`)), timeoutMs)
        waiters.push({ pred, resolve: (v) => (clearTimeout(t), resolve(v)) })
      })
    },
  }
}

describe('ConvexClient over the sync socket', () => {
  test('initial value, then updates from another client’s mutation', async () => {
    const a = newClient()
    const b = newClient()
    const w = watch<any[]>(a, api.messages.list, { author: 'live' })
    expect(await w.next((v) => Array.isArray(v))).toEqual([])
    await b.mutation(api.messages.send, { author: 'live', body: 'one' })
    const after = await w.next((v) => v.length === 1)
    expect(after.map((m) => m.body)).toEqual(['one'])
    await b.mutation(api.messages.send, { author: 'live', body: 'two' })
    expect((await w.next((v) => v.length === 2)).map((m) => m.body)).toEqual(['one', 'two'])
    w.unsubscribe()
  })

  test('a mutation that writes nothing settles, and the next mutation after it runs', async () => {
    // A fresh client with no subscriptions: nothing else would send it a Transition.
    const a = newClient()
    // counter.increment of an existing row writes; counter.get-like reads alone write nothing.
    expect(await a.mutation(api.counter.readOnly, { name: 'nowrite' })).toBe(0)
    expect(typeof (await a.mutation(api.files.generateUploadUrl, {}))).toBe('string')
    expect(await a.mutation(api.counter.increment, { name: 'nowrite' })).toBe(1)
    expect(await a.mutation(api.counter.readOnly, { name: 'nowrite' })).toBe(1)
  })

  test('a mutation’s own write is visible when its promise resolves', async () => {
    const a = newClient()
    const w = watch<number>(a, api.counter.get, { name: 'own' })
    expect(await w.next(() => true)).toBe(0)
    for (let i = 1; i <= 3; i++) {
      expect(await a.mutation(api.counter.increment, { name: 'own' })).toBe(i)
      expect(a.client.localQueryResult('counter:get', { name: 'own' })).toBe(i)
    }
    w.unsubscribe()
  })

  test('writes outside a query’s read set re-run nothing and send no update', async () => {
    const a = newClient()
    const http = new ConvexHttpClient(backend.url)
    const w = watch<any[]>(a, api.messages.list, { author: 'quiet' })
    await w.next(() => true)
    const seen = w.values.length
    for (let i = 0; i < 5; i++) await http.mutation(api.messages.send, { author: 'noisy', body: `x${i}` })
    await http.mutation(api.counter.increment, { name: 'unrelated' })
    // A later relevant write proves the subscription is still live, and nothing came in between.
    await http.mutation(api.messages.send, { author: 'quiet', body: 'now' })
    const v = await w.next((x) => x.length === 1)
    expect(v.map((m) => m.body)).toEqual(['now'])
    expect(w.values.length).toBe(seen + 1)
    w.unsubscribe()
  })

  test('actions and failing mutations over the socket', async () => {
    const a = newClient()
    const r = await a.action(api.messages.sendViaAction, { body: 'via ws action' })
    expect(r.secret).toBe('internal only')
    const err = await a.mutation(api.messages.fail, {}).catch((e: Error) => e)
    expect((err as Error).message).toContain('Uncaught Error: boom')
  })

  test('query errors arrive as errors', async () => {
    const a = newClient()
    const err = await new Promise<Error>((resolve) => {
      a.onUpdate(api.messages.get, { id: 'nope' } as any, () => {}, (e: Error) => resolve(e))
    })
    expect(err.message).toContain('ArgumentValidationError')
  })

  test("a malformed frame gets Convex's FatalError and a close without a code (the client doesn't connect again); other clients are unaffected", async () => {
    const a = newClient()
    const w = watch<number>(a, api.counter.get, { name: 'bystander' })
    await w.next(() => true)
    const ws = new WebSocket(`${backend.url.replace('http', 'ws')}/api/1.48.0/sync`)
    await new Promise((r) => ws.once('open', r))
    const frames: unknown[] = []
    ws.on('message', (d) => frames.push(JSON.parse(d.toString())))
    const closed = new Promise<{ code: number; reason: string }>((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })))
    ws.send('{"type": "Connect", "sessionId": ')
    expect(await closed).toEqual({ code: 1005, reason: '' })
    expect(frames).toEqual([{ type: 'FatalError', error: 'Received Invalid JSON on websocket: Message is not valid JSON' }])
    await new ConvexHttpClient(backend.url).mutation(api.counter.increment, { name: 'bystander' })
    expect(await w.next((v) => v === 1)).toBe(1)
  })
})

describe('the sync protocol on the wire', () => {
  const metrics = async () => (await (await fetch(`${backend.url}/api/concave/metrics`, { headers: { authorization: `Convex ${backend.adminKey}` } })).json()) as Record<string, number>

  /** A raw protocol client that records every frame. */
  async function raw() {
    const ws = new WebSocket(`${backend.url.replace('http', 'ws')}/api/1.48.0/sync`)
    const frames: any[] = []
    const waiters: (() => void)[] = []
    ws.on('message', (d) => {
      frames.push(JSON.parse(d.toString()))
      for (const w of waiters.splice(0)) w()
    })
    await new Promise((r) => ws.once('open', r))
    const next = async (pred: (f: any) => boolean, timeoutMs = 5000) => {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const f = frames.find(pred)
        if (f !== undefined) return f
        if (Date.now() > deadline) throw new Error(`no matching frame in ${JSON.stringify(frames)}`)
        await new Promise<void>((r) => {
          waiters.push(r)
          setTimeout(r, 50)
        })
      }
    }
    return { ws, frames, next, send: (m: unknown) => ws.send(JSON.stringify(m)) }
  }

  test('transitions chain exactly, and unrelated writes re-run nothing', async () => {
    const c = await raw()
    c.send({ type: 'Connect', sessionId: '7e0f3b8e-1a2b-4c3d-9e8f-0123456789ab', connectionCount: 0, lastCloseReason: 'InitialConnect', clientTs: Date.now() })
    c.send({ type: 'ModifyQuerySet', baseVersion: 0, newVersion: 1, modifications: [{ type: 'Add', queryId: 0, udfPath: 'messages:list', args: [{ author: 'wire' }] }] })
    const first = await c.next((f) => f.type === 'Transition')
    expect(first.startVersion).toEqual({ querySet: 0, identity: 0, ts: 'AAAAAAAAAAA=' })
    expect(first.endVersion.querySet).toBe(1)
    expect(first.endVersion.identity).toBe(0)
    expect(first.modifications).toEqual([{ type: 'QueryUpdated', queryId: 0, value: [], logLines: [], journal: null }])

    const http = new ConvexHttpClient(backend.url)
    const runsBefore = (await metrics()).subscriptionRuns
    for (let i = 0; i < 5; i++) await http.mutation(api.messages.send, { author: 'elsewhere', body: `e${i}` })
    await http.mutation(api.counter.increment, { name: 'wire-unrelated' })
    await new Promise((r) => setTimeout(r, 200))
    expect((await metrics()).subscriptionRuns).toBe(runsBefore)
    expect(c.frames.filter((f) => f.type === 'Transition')).toHaveLength(1)

    await http.mutation(api.messages.send, { author: 'wire', body: 'hit' })
    const second = await c.next((f) => f.type === 'Transition' && f !== first)
    expect(second.startVersion).toEqual(first.endVersion)
    expect(second.modifications).toHaveLength(1)
    expect(second.modifications[0].value.map((m: any) => m.body)).toEqual(['hit'])
    expect((await metrics()).subscriptionRuns).toBe(runsBefore + 1)

    // A mutation over the socket: response with its ts, then a transition at or past it.
    c.send({ type: 'Mutation', requestId: 0, udfPath: 'messages:send', args: [{ author: 'wire', body: 'mine' }] })
    const response = await c.next((f) => f.type === 'MutationResponse')
    expect(response.success).toBe(true)
    expect(typeof response.result).toBe('string')
    const third = await c.next((f) => f.type === 'Transition' && f !== first && f !== second)
    expect(third.startVersion).toEqual(second.endVersion)
    const u64 = (s: string) => Buffer.from(s, 'base64').readBigUInt64LE()
    expect(u64(third.endVersion.ts) >= u64(response.ts)).toBe(true)
    expect(third.modifications[0].value.map((m: any) => m.body)).toEqual(['hit', 'mine'])

    // Removing the query is acknowledged.
    c.send({ type: 'ModifyQuerySet', baseVersion: 1, newVersion: 2, modifications: [{ type: 'Remove', queryId: 0 }] })
    const fourth = await c.next((f) => f.type === 'Transition' && f.endVersion.querySet === 2)
    expect(fourth.startVersion).toEqual(third.endVersion)
    expect(fourth.modifications).toEqual([{ type: 'QueryRemoved', queryId: 0 }])
    c.ws.close()
  })

  test('removing one of several queries leaves the others live, in order; a duplicate id is refused', async () => {
    const c = await raw()
    c.send({ type: 'Connect', sessionId: '7e0f3b8e-1a2b-4c3d-9e8f-0123456789ac', connectionCount: 0, lastCloseReason: 'InitialConnect', clientTs: Date.now() })
    const add = (queryId: number, author: string) => ({ type: 'Add', queryId, udfPath: 'messages:list', args: [{ author }] })
    c.send({ type: 'ModifyQuerySet', baseVersion: 0, newVersion: 1, modifications: [add(0, 'q-a'), add(1, 'q-b'), add(2, 'q-c')] })
    const first = await c.next((f) => f.type === 'Transition' && f.endVersion.querySet === 1)
    expect(first.modifications.map((m: any) => [m.type, m.queryId, m.value])).toEqual([
      ['QueryUpdated', 0, []],
      ['QueryUpdated', 1, []],
      ['QueryUpdated', 2, []],
    ])
    c.send({ type: 'ModifyQuerySet', baseVersion: 1, newVersion: 2, modifications: [{ type: 'Remove', queryId: 1 }, add(3, 'q-d')] })
    const second = await c.next((f) => f.type === 'Transition' && f.endVersion.querySet === 2)
    expect(second.modifications.map((m: any) => [m.type, m.queryId])).toEqual([
      ['QueryRemoved', 1],
      ['QueryUpdated', 3],
    ])
    const http = new ConvexHttpClient(backend.url)
    await http.mutation(api.messages.send, { author: 'q-b', body: 'unwatched now' })
    await http.mutation(api.messages.send, { author: 'q-c', body: 'to c' })
    await http.mutation(api.messages.send, { author: 'q-d', body: 'to d' })
    const d = await c.next((f) => f.type === 'Transition' && f.modifications.some((m: any) => m.queryId === 3 && m.value.length === 1))
    const updated = c.frames.filter((f) => f.type === 'Transition' && f !== first && f !== second).flatMap((f) => f.modifications)
    expect(updated.some((m: any) => m.queryId === 1)).toBe(false)
    expect(updated.filter((m: any) => m.queryId === 2).at(-1).value.map((m: any) => m.body)).toEqual(['to c'])
    expect(d.modifications.find((m: any) => m.queryId === 3).value.map((m: any) => m.body)).toEqual(['to d'])
    const closed = new Promise<[number, string]>((r) => c.ws.once('close', (code, reason) => r([code, reason.toString()])))
    c.send({ type: 'ModifyQuerySet', baseVersion: 2, newVersion: 3, modifications: [add(2, 'q-e')] })
    // Convex's internal error: nothing said but that.
    expect(await closed).toEqual([1011, 'InternalServerError'])
  })

  test('two hundred new queries at once all arrive, with at most 8 runs in flight for one session', async () => {
    const c = await raw()
    c.send({ type: 'Connect', sessionId: '7e0f3b8e-1a2b-4c3d-9e8f-0123456789ae', connectionCount: 0, lastCloseReason: 'InitialConnect', clientTs: Date.now() })
    const modifications = Array.from({ length: 200 }, (_, i) => ({ type: 'Add', queryId: i, udfPath: 'messages:list', args: [{ author: `many-${i}` }] }))
    c.send({ type: 'ModifyQuerySet', baseVersion: 0, newVersion: 1, modifications })
    const first = await c.next((f) => f.type === 'Transition' && f.endVersion.querySet === 1, 20_000)
    expect(first.modifications.map((m: any) => [m.type, m.queryId, m.value])).toEqual(Array.from({ length: 200 }, (_, i) => ['QueryUpdated', i, []]))
    // One ModifyQuerySet dirties 200 entries at once: one session's queue runs at most 8 at a time.
    expect((await metrics()).subscriptionRunsInFlightPeak).toBeLessThanOrEqual(8)
    c.ws.close()
  })

  test("a socket asking for 5,000 distinct queries stalls no one else, and its runs stop when it closes", async () => {
    const entriesBefore = (await metrics()).subscriptionEntries
    const flood = await raw()
    flood.send({ type: 'Connect', sessionId: '7e0f3b8e-1a2b-4c3d-9e8f-0123456789f0', connectionCount: 0, lastCloseReason: 'InitialConnect', clientTs: Date.now() })
    const modifications = Array.from({ length: 5000 }, (_, i) => ({ type: 'Add', queryId: i, udfPath: 'counter:get', args: [{ name: `flood-${i}` }] }))
    flood.send({ type: 'ModifyQuerySet', baseVersion: 0, newVersion: 1, modifications })
    // The flood is under way: its first runs are done.
    const runsBefore = (await metrics()).subscriptionRuns
    for (const deadline = Date.now() + 30_000; (await metrics()).subscriptionRuns < runsBefore + 16; ) {
      if (Date.now() > deadline) throw new Error('the flood never started')
      await new Promise((r) => setTimeout(r, 20))
    }
    // Another client's live query and HTTP query are both answered while the flood still runs:
    // before the flooding socket has its 5,000 results.
    const other = newClient()
    const w = watch<number>(other, api.counter.get, { name: 'not-flooding' })
    expect(await w.next(() => true, 60_000)).toBe(0)
    expect(await new ConvexHttpClient(backend.url).query(api.counter.get, { name: 'not-flooding' })).toBe(0)
    expect(flood.frames.filter((f) => f.type === 'Transition')).toEqual([])
    // The flooding socket goes away: what it left queued never runs.
    flood.ws.terminate()
    let m = await metrics()
    for (const deadline = Date.now() + 30_000; m.subscriptionRunsQueued > 0 || m.subscriptionRunsInFlight > 0; m = await metrics()) {
      if (Date.now() > deadline) throw new Error(`the flood's runs go on: ${JSON.stringify(m)}`)
      await new Promise((r) => setTimeout(r, 20))
    }
    expect(m.subscriptionRuns - runsBefore).toBeLessThan(5000)
    const runsAfter = m.subscriptionRuns
    // The other client is still live (its query re-runs on a write), and nothing else runs.
    await new ConvexHttpClient(backend.url).mutation(api.counter.increment, { name: 'not-flooding' })
    expect(await w.next((v) => v === 1)).toBe(1)
    m = await metrics()
    expect(m.subscriptionRuns).toBe(runsAfter + 1)
    // None of the flood's entries is left (sockets of earlier tests may still be closing).
    expect(m.subscriptionEntries).toBeLessThanOrEqual(entriesBefore + 1)
    w.unsubscribe()
  }, 120_000)

  test('two query ids with the same function and arguments: removing one leaves the other live', async () => {
    const c = await raw()
    c.send({ type: 'Connect', sessionId: '7e0f3b8e-1a2b-4c3d-9e8f-0123456789ad', connectionCount: 0, lastCloseReason: 'InitialConnect', clientTs: Date.now() })
    const add = (queryId: number) => ({ type: 'Add', queryId, udfPath: 'messages:list', args: [{ author: 'twin' }] })
    c.send({ type: 'ModifyQuerySet', baseVersion: 0, newVersion: 1, modifications: [add(0), add(1)] })
    await c.next((f) => f.type === 'Transition' && f.endVersion.querySet === 1)
    c.send({ type: 'ModifyQuerySet', baseVersion: 1, newVersion: 2, modifications: [{ type: 'Remove', queryId: 0 }] })
    await c.next((f) => f.type === 'Transition' && f.endVersion.querySet === 2)
    await new ConvexHttpClient(backend.url).mutation(api.messages.send, { author: 'twin', body: 'still watched' })
    const update = await c.next((f) => f.type === 'Transition' && f.endVersion.querySet === 2 && f.modifications.some((m: any) => m.queryId === 1))
    expect(update.modifications.map((m: any) => [m.type, m.queryId, m.value.map((v: any) => v.body)])).toEqual([['QueryUpdated', 1, ['still watched']]])
    c.ws.close()
  })

  test('a re-sent mutation (same session and request id) runs once', async () => {
    const sessionId = '11111111-2222-4333-8444-555555555555'
    const send = async (connectionCount: number) => {
      const c = await raw()
      c.send({ type: 'Connect', sessionId, connectionCount, lastCloseReason: connectionCount === 0 ? 'InitialConnect' : 'closed', clientTs: Date.now() })
      c.send({ type: 'Mutation', requestId: 7, udfPath: 'counter:increment', args: [{ name: 'dedup' }] })
      const r = await c.next((f) => f.type === 'MutationResponse')
      c.ws.close()
      return r
    }
    const a = await send(0)
    const b = await send(1)
    expect(a.result).toBe(1)
    expect(b.result).toBe(1)
    expect(b.ts).toBe(a.ts)
    expect(await new ConvexHttpClient(backend.url).query(api.counter.get, { name: 'dedup' })).toBe(1)
  })

  test("a client's mistakes get Convex's FatalError: a query set version it doesn't have, a path that names no function", async () => {
    const fatal = async (message: unknown) => {
      const c = await raw()
      const closed = new Promise<number>((r) => c.ws.once('close', (code) => r(code)))
      c.send({ type: 'Connect', sessionId: 's', connectionCount: 0, lastCloseReason: null })
      c.send(message)
      expect(await closed).toBe(1005)
      return c.frames.filter((f) => f.type === 'FatalError').map((f) => f.error)
    }
    expect(await fatal({ type: 'ModifyQuerySet', baseVersion: 5, newVersion: 6, modifications: [] })).toEqual(["Base version 5 passed up doesn't match the current version 0"])
    expect(await fatal({ type: 'Mutation', requestId: 0, udfPath: 'counter.ts:increment', args: [{}] })).toEqual(["Received Invalid JSON on websocket: Module path (counter.ts) has an extension that isn't 'js'."])
    expect(await fatal({ type: 'ModifyQuerySet', baseVersion: 0, newVersion: 1, modifications: [{ type: 'Add', queryId: 0, udfPath: '/abs/path:get', args: [{}] }] })).toEqual(['Received Invalid JSON on websocket: Module paths must be relative (/abs/path is absolute).'])
  })

  test('an admin Authenticate bumps the identity; a forged one gets AuthError', async () => {
    const c = await raw()
    c.send({ type: 'Connect', sessionId: 'a', connectionCount: 0, lastCloseReason: null })
    c.send({ type: 'Authenticate', baseVersion: 0, tokenType: 'Admin', value: backend.adminKey })
    c.send({ type: 'ModifyQuerySet', baseVersion: 0, newVersion: 1, modifications: [{ type: 'Add', queryId: 0, udfPath: 'messages:secret', args: [{}] }] })
    const t = await c.next((f) => f.type === 'Transition' && f.endVersion.querySet === 1)
    expect(t.endVersion.identity).toBe(1)
    expect(t.modifications).toEqual([{ type: 'QueryUpdated', queryId: 0, value: 'internal only', logLines: [], journal: null }])
    c.ws.close()
    const bad = await raw()
    bad.send({ type: 'Connect', sessionId: 'b', connectionCount: 0, lastCloseReason: null })
    bad.send({ type: 'Authenticate', baseVersion: 0, tokenType: 'Admin', value: 'concave-test|00' })
    const err = await bad.next((f) => f.type === 'AuthError')
    expect(err).toEqual({ type: 'AuthError', error: 'The provided admin key was invalid for this instance', baseVersion: 0, authUpdateAttempted: true })
  })
})

describe('reconnects', () => {
  test('a client whose server goes away reconnects, resubscribes and delivers a queued mutation once', async () => {
    const a = newClient()
    const w = watch<number>(a, api.counter.get, { name: 'reconnect' })
    expect(await w.next(() => true)).toBe(0)
    const bystander = new WebSocket(`${backend.url.replace('http', 'ws')}/api/1.48.0/sync`)
    await new Promise((r) => bystander.once('open', r))
    const closed = new Promise<[number, string]>((r) => bystander.once('close', (code, reason) => r([code, reason.toString()])))
    await backend.stop()
    expect(await closed).toEqual([1001, 'Server shutting down'])
    const pending = a.mutation(api.counter.increment, { name: 'reconnect' })
    await new Promise((r) => setTimeout(r, 300))
    await backend.restart()
    expect(await pending).toBe(1)
    expect(await w.next((v) => v === 1)).toBe(1)
    await new ConvexHttpClient(backend.url).mutation(api.counter.increment, { name: 'reconnect' })
    expect(await w.next((v) => v === 2, 15_000)).toBe(2)
    expect(await new ConvexHttpClient(backend.url).query(api.counter.get, { name: 'reconnect' })).toBe(2)
  }, 60_000)
})

describe('paginated subscriptions', () => {
  test('pages stay gapless and duplicate-free while rows are inserted and deleted around their boundaries', async () => {
    const http = new ConvexHttpClient(backend.url)
    const ids = new Map<number, string>()
    for (const n of [10, 20, 30, 40, 50, 60, 70, 80, 90]) ids.set(n, await http.mutation(api.messages.send, { author: 'pager', body: `b${n}`, n }))
    const a = newClient()
    const results: any[] = []
    let latest: any
    const changed: (() => void)[] = []
    a.onPaginatedUpdate_experimental(api.messages.paged, { author: 'pager' }, { initialNumItems: 3 }, (r: any) => {
      latest = r
      results.push(r)
      for (const f of changed.splice(0)) f()
    })
    const until = async (pred: (r: any) => boolean) => {
      const deadline = Date.now() + 10_000
      while (latest === undefined || !pred(latest)) {
        if (Date.now() > deadline) throw new Error(`timed out; latest ${JSON.stringify(latest?.results?.map((m: any) => m.n))} ${latest?.status}`)
        await new Promise<void>((r) => {
          changed.push(r)
          setTimeout(r, 100)
        })
      }
      return latest
    }
    const ns = (r: any) => r.results.map((m: any) => m.n)
    expect(ns(await until((r) => r.status === 'CanLoadMore'))).toEqual([10, 20, 30])
    latest.loadMore(3)
    expect(ns(await until((r) => r.results.length === 6))).toEqual([10, 20, 30, 40, 50, 60])

    // An insert inside the first page grows it (its end stays pinned at 30), so 30 is not lost.
    await http.mutation(api.messages.send, { author: 'pager', body: 'b25', n: 25 })
    expect(ns(await until((r) => r.results.length === 7))).toEqual([10, 20, 25, 30, 40, 50, 60])
    // Around the first boundary (30 | 40): insert on its far side, delete the boundary rows.
    await http.mutation(api.messages.send, { author: 'pager', body: 'b35', n: 35 })
    await http.mutation(api.messages.remove, { id: ids.get(30)! })
    await http.mutation(api.messages.remove, { id: ids.get(40)! })
    expect(ns(await until((r) => r.results.length === 6 && !r.results.some((m: any) => m.n === 30)))).toEqual([10, 20, 25, 35, 50, 60])

    // The rest loads after the last boundary without gaps, and inserts at the end show up.
    latest.loadMore(10)
    expect(ns(await until((r) => r.status === 'Exhausted'))).toEqual([10, 20, 25, 35, 50, 60, 70, 80, 90])
    await http.mutation(api.messages.send, { author: 'pager', body: 'b95', n: 95 })
    await http.mutation(api.messages.send, { author: 'pager', body: 'b65', n: 65 })
    expect(ns(await until((r) => r.results.length === 11))).toEqual([10, 20, 25, 35, 50, 60, 65, 70, 80, 90, 95])
  })
})

describe('backpressure', () => {
  test('a subscriber that stops reading neither delays others nor queues every update', async () => {
    const ws = new WebSocket(`${backend.url.replace('http', 'ws')}/api/1.48.0/sync`)
    await new Promise((r) => ws.once('open', r))
    const transitions: any[] = []
    ws.on('message', (d) => {
      const m = JSON.parse(d.toString())
      if (m.type === 'Transition') transitions.push(m)
    })
    ws.send(JSON.stringify({ type: 'Connect', sessionId: 'slow', connectionCount: 0, lastCloseReason: null }))
    ws.send(JSON.stringify({ type: 'ModifyQuerySet', baseVersion: 0, newVersion: 1, modifications: [{ type: 'Add', queryId: 0, udfPath: 'values:bigPayload', args: [{ name: 'bp' }] }] }))
    await new Promise<void>((resolve) => {
      const t = setInterval(() => transitions.length > 0 && (clearInterval(t), resolve()), 20)
    })
    ;(ws as any)._socket.pause()

    const fast = newClient()
    const w = watch<number>(fast, api.counter.get, { name: 'bp' })
    expect(await w.next(() => true)).toBe(0)
    const http = new ConvexHttpClient(backend.url)
    const rounds = 40
    for (let i = 1; i <= rounds; i++) {
      await http.mutation(api.counter.increment, { name: 'bp' })
      expect(await w.next((v) => v === i, 3000)).toBe(i)
    }
    ;(ws as any)._socket.resume()
    const deadline = Date.now() + 15_000
    while (transitions[transitions.length - 1]?.modifications[0]?.value?.value !== rounds) {
      if (Date.now() > deadline) throw new Error(`slow client ended at ${transitions[transitions.length - 1]?.modifications[0]?.value?.value}`)
      await new Promise((r) => setTimeout(r, 50))
    }
    // Coalesced: the paused client got far fewer than one transition per write, the last one current.
    expect(transitions.length).toBeLessThan(rounds)
    for (let i = 1; i < transitions.length; i++) expect(transitions[i].startVersion).toEqual(transitions[i - 1].endVersion)
    ws.close()
  }, 60_000)
})

describe('ConvexReactClient', () => {
  test('watchQuery delivers live results and mutations resolve after their write is visible', async () => {
    const { ConvexReactClient } = await import('convex/react')
    const react = new ConvexReactClient(backend.url, { unsavedChangesWarning: false } as any)
    try {
      const watch = react.watchQuery(api.counter.get, { name: 'react' })
      const values: unknown[] = []
      const changed = new Promise<void>((resolve) => {
        watch.onUpdate(() => {
          values.push(watch.localQueryResult())
          if (values.includes(2)) resolve()
        })
      })
      expect(await react.mutation(api.counter.increment, { name: 'react' })).toBe(1)
      expect(watch.localQueryResult()).toBe(1)
      await new ConvexHttpClient(backend.url).mutation(api.counter.increment, { name: 'react' })
      await changed
      expect(values[values.length - 1]).toBe(2)
    } finally {
      await react.close()
    }
  })
})
