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

  test('a malformed frame closes that socket with a reason; other clients are unaffected', async () => {
    const a = newClient()
    const w = watch<number>(a, api.counter.get, { name: 'bystander' })
    await w.next(() => true)
    const ws = new WebSocket(`${backend.url.replace('http', 'ws')}/api/1.48.0/sync`)
    await new Promise((r) => ws.once('open', r))
    const closed = new Promise<{ code: number; reason: string }>((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })))
    ws.send('{"type": "Connect", "sessionId": ')
    const { code, reason } = await closed
    expect(code).toBe(1008)
    expect(reason).toContain('InvalidClientMessage')
    await new ConvexHttpClient(backend.url).mutation(api.counter.increment, { name: 'bystander' })
    expect(await w.next((v) => v === 1)).toBe(1)
  })
})
