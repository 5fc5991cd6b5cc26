/**
 * convex-helpers on Concave, unmodified: a Hono app as the HTTP router (HttpRouterWithHono, with
 * Hono's CORS middleware and a plain Convex route beside it), triggers through a custom mutation,
 * and getPage's index-key pagination.
 */
import { expect, test } from 'vitest'
import { ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { errorOf, useDeployedBackend } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'

const api = anyApi as any
let backend: TestBackend
let client: ConvexHttpClient

useDeployedBackend('helpers', (t) => ({ backend, client } = t))

test('a Hono app serves the HTTP actions: params, query, JSON bodies, CORS, its 404, a Convex route beside it', async () => {
  const hello = await fetch(`${backend.siteUrl}/api/hello/ada?q=1`, { headers: { origin: 'https://app.example' } })
  expect(hello.status).toBe(200)
  expect(hello.headers.get('access-control-allow-origin')).toBe('https://app.example')
  expect(await hello.json()).toEqual({ hello: 'ada', q: '1' })

  const preflight = await fetch(`${backend.siteUrl}/api/items`, { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' } })
  expect(preflight.status).toBe(204)
  expect(preflight.headers.get('access-control-allow-methods')).toBe('GET,POST')

  const posted = await fetch(`${backend.siteUrl}/api/items`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'from hono', rank: 100 }) })
  expect(posted.status).toBe(201)
  const { id, count } = (await posted.json()) as { id: string; count: number }
  expect(typeof id).toBe('string')
  expect(count).toBe(1)

  const missing = await fetch(`${backend.siteUrl}/nowhere/at/all`, { method: 'DELETE' })
  expect(missing.status).toBe(404)
  expect(await missing.text()).toBe('no route for DELETE /nowhere/at/all')

  const plain = await fetch(`${backend.siteUrl}/plain`)
  expect(await plain.text()).toBe('plain route')
  await client.mutation(api.items.remove, { id })
})

test('a trigger keeps a count through a custom mutation; getPage walks an index by its keys', async () => {
  const ids: string[] = []
  for (const [name, rank] of [['c', 3], ['a', 1], ['d', 4], ['b', 2], ['e', 5]] as const) ids.push(await client.mutation(api.items.add, { name, rank }))
  expect(await client.query(api.items.count, {})).toBe(5)
  await client.mutation(api.items.remove, { id: ids[0] })
  expect(await client.query(api.items.count, {})).toBe(4)

  const names: string[] = []
  let startIndexKey: unknown[] | undefined
  for (;;) {
    const page = (await client.query(api.items.page, startIndexKey === undefined ? {} : { startIndexKey })) as { names: string[]; hasMore: boolean; lastKey: unknown[] | null }
    names.push(...page.names)
    if (!page.hasMore) break
    startIndexKey = page.lastKey!
  }
  expect(names).toEqual(['a', 'b', 'd', 'e'])
  const desc = (await client.query(api.items.page, { order: 'desc' })) as { names: string[] }
  expect(desc.names).toEqual(['e', 'd'])
})

test('zod 4 arguments through zCustomQuery/zCustomMutation; row-level security; relationship helpers', async () => {
  const id: string = await client.mutation(api.zodded.addItem, { name: '  widget  ', rank: 7 })
  // zod trimmed the name before it was stored; a default filled in `shout`.
  expect(await client.query(api.zodded.describeItem, { id })).toBe('widget')
  expect(await client.query(api.zodded.describeItem, { id, shout: true })).toBe('WIDGET')
  const bad = await errorOf(client.mutation(api.zodded.addItem, { name: 'x', rank: -1 }))
  expect(bad.message).toContain('ZodError')
  expect(bad.message).toContain('Too small: expected string to have >=2 characters')
  expect(bad.message).toContain('Too small: expected number to be >=0')
  // A zid of another table's id is refused by the Convex validator zod was turned into.
  expect((await errorOf(client.query(api.zodded.describeItem, { id: 'not-an-id' }))).message).toContain('ArgumentValidationError')

  const secret: string = await client.mutation(api.zodded.addItem, { name: 'hidden', rank: 500 })
  const names: string[] = await client.query(api.zodded.visibleNames, {})
  expect(names).toContain('widget')
  expect(names).not.toContain('hidden')
  expect(await client.mutation(api.zodded.insertGuarded, { name: 'root', rank: 1 })).toBe('insert access not allowed')
  expect(await client.mutation(api.zodded.insertGuarded, { name: 'leaf', rank: 1 })).toBe('inserted')
  expect(await client.mutation(api.zodded.renameGuarded, { id: secret, name: 'renamed' })).toBe('no read access or doc does not exist')
  expect(await client.mutation(api.zodded.renameGuarded, { id, name: 'gadget' })).toBe('renamed')

  expect(await client.query(api.zodded.byRankAndIds, { rank: 7, ids: [id, secret] })).toEqual({ atRank: ['gadget'], byIds: ['gadget', 'hidden'] })
})
