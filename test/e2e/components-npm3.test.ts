/**
 * Three more real Convex components from npm, installed in test/fixtures/components-npm3 as their
 * READMEs show: @convex-dev/action-retrier (retries an action from the scheduler with backoff),
 * @convex-dev/geospatial (an S2-cell index in the component's tables, queried by shape, filter
 * and distance) and @convex-dev/persistent-text-streaming (an HTTP action that streams its
 * response while saving it in the component, read back by a query).
 */
import { expect, test } from 'vitest'
import type { ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { until, useDeployedBackend } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'

const api = anyApi as any
let client: ConvexHttpClient
let backend: TestBackend

// Not a test of time limits: actions get a minute, not the test backends' 2 s, on a busy machine.
useDeployedBackend('components-npm3', (t) => ({ client, backend } = t), { env: { CONCAVE_ACTION_TIMEOUT_MS: '60000' } })

test('action-retrier: an action that fails twice succeeds on its third attempt; one that keeps failing gives up after its limit', async () => {
  const ok: string = await client.mutation(api.retry.start, { key: 'ok', succeedOn: 3 })
  expect(await until(() => client.query(api.retry.outcome, { runId: ok, key: 'ok' }), (o) => o !== null)).toEqual({
    result: { type: 'success', returnValue: 'ok done on attempt 3' },
    attempts: 3,
  })
  const never: string = await client.mutation(api.retry.start, { key: 'never', succeedOn: 100 })
  const failed = await until(() => client.query(api.retry.outcome, { runId: never, key: 'never' }), (o) => o !== null)
  expect(failed).toEqual({ result: { type: 'failed', error: expect.any(String) }, attempts: 4 })
  expect(failed.result.error).toContain('attempt 4 failed')
})

test('geospatial: points found by rectangle, by category and price, and nearest first', async () => {
  const places = [
    { key: 'museum', latitude: 40.7813, longitude: -73.9737, category: 'museum', price: 28 },
    { key: 'cafe', latitude: 40.7794, longitude: -73.9632, category: 'coffee', price: 5 },
    { key: 'gallery', latitude: 40.7614, longitude: -73.9776, category: 'museum', price: 12 },
    { key: 'louvre', latitude: 48.8606, longitude: 2.3376, category: 'museum', price: 22 },
  ]
  for (const p of places) await client.mutation(api.places.add, p)
  const manhattan = { west: -74.05, south: 40.7, east: -73.9, north: 40.85 }
  expect((await client.query(api.places.inRectangle, manhattan)).sort()).toEqual(['cafe', 'gallery', 'museum'])
  expect((await client.query(api.places.inRectangle, { ...manhattan, category: 'museum' })).sort()).toEqual(['gallery', 'museum'])
  // Results come in ascending sort key (the price) order.
  expect(await client.query(api.places.inRectangle, { ...manhattan, category: 'museum', minPrice: 20 })).toEqual(['museum'])
  expect(await client.query(api.places.inRectangle, { ...manhattan, minPrice: 0 })).toEqual(['cafe', 'gallery', 'museum'])
  expect(await client.query(api.places.nearest, { latitude: 40.78, longitude: -73.97, limit: 2 })).toEqual([
    { key: 'museum', km: 0 },
    { key: 'cafe', km: 1 },
  ])
  expect((await client.query(api.places.nearest, { latitude: 48.85, longitude: 2.35, limit: 10, maxDistance: 50_000 })).map((r: { key: string }) => r.key)).toEqual(['louvre'])
  await client.mutation(api.places.remove, { key: 'cafe' })
  expect((await client.query(api.places.inRectangle, manhattan)).sort()).toEqual(['gallery', 'museum'])
})

test('persistent-text-streaming: an HTTP action streams the text and saves it; a query reads it back', async () => {
  const streamId: string = await client.mutation(api.chat.createChat, { prompt: 'hello' })
  expect(await client.query(api.chat.body, { streamId })).toEqual({ text: '', status: 'pending' })
  const res = await fetch(`${backend.siteUrl}/chat-stream`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ streamId }) })
  expect(res.status).toBe(200)
  expect(res.headers.get('access-control-allow-origin')).toBe('*')
  expect(await res.text()).toBe("Hi there! How are you? Pretend I'm an AI.")
  expect(await client.query(api.chat.body, { streamId })).toEqual({ text: "Hi there! How are you? Pretend I'm an AI.", status: 'done' })
  // A second request for a stream that has run already gets the component's 205 and no body.
  const again = await fetch(`${backend.siteUrl}/chat-stream`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ streamId }) })
  expect([again.status, await again.text()]).toEqual([205, ''])
})
