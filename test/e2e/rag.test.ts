/**
 * @convex-dev/rag 0.7.9, installed in test/fixtures/rag as its README shows, with a deterministic
 * bag-of-words embedding model (the AI SDK's MockEmbeddingModelV4; no network). It stores chunks
 * in vector-indexed tables with filter fields inside a component, and searches them with
 * `ctx.vectorSearch`, namespaces and filters; its own copy of @convex-dev/workpool 0.4 runs
 * beside nothing else here.
 */
import { expect, test } from 'vitest'
import type { ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { useDeployedBackend } from '../helpers/test-backend.ts'

const api = anyApi as any
let client: ConvexHttpClient

// Not a test of time limits: actions get a minute, not the test backends' 2 s, on a busy machine.
useDeployedBackend('rag', (t) => ({ client } = t), { env: { CONCAVE_ACTION_TIMEOUT_MS: '60000' } })

test('entries are added, searched by meaning within a namespace and a filter, and replaced by key', async () => {
  const add = (namespace: string, key: string, title: string, chunks: string[], topic: string) => client.action(api.docs.add, { namespace, key, title, chunks, topic })
  expect(await add('kb', 'cats', 'Cats', ['cats purr and sleep all day', 'a cat chases mice'], 'animals')).toEqual({ status: 'ready', created: true, replaced: false })
  expect(await add('kb', 'dogs', 'Dogs', ['dogs bark at the mail carrier', 'a dog fetches sticks'], 'animals')).toEqual({ status: 'ready', created: true, replaced: false })
  expect(await add('kb', 'rust', 'Rust', ['rust is a systems programming language', 'the borrow checker prevents data races'], 'code')).toEqual({ status: 'ready', created: true, replaced: false })
  expect(await add('other', 'cats', 'Other cats', ['cats purr loudly'], 'animals')).toEqual({ status: 'ready', created: true, replaced: false })

  const found = await client.action(api.docs.search, { namespace: 'kb', query: 'why do cats purr', limit: 2 })
  expect(found.hits[0]).toEqual({ title: 'Cats', order: 0, text: 'cats purr and sleep all day' })
  expect(found.scoresDescending).toBe(true)
  // A filter keeps to its topic; a namespace keeps to itself.
  const code = await client.action(api.docs.search, { namespace: 'kb', query: 'cats purr', topic: 'code' })
  expect(code.hits.map((h: { title: string }) => h.title)).toEqual(['Rust', 'Rust'])
  const other = await client.action(api.docs.search, { namespace: 'other', query: 'cats purr' })
  expect(other.hits).toEqual([{ title: 'Other cats', order: 0, text: 'cats purr loudly' }])

  // Adding under an existing key replaces that entry.
  expect(await add('kb', 'cats', 'Cats, revised', ['cats nap in the sun'], 'animals')).toEqual({ status: 'ready', created: true, replaced: true })
  expect(await client.query(api.docs.entries, { namespace: 'kb' })).toEqual([
    { key: 'cats', title: 'Cats, revised', status: 'ready' },
    { key: 'dogs', title: 'Dogs', status: 'ready' },
    { key: 'rust', title: 'Rust', status: 'ready' },
  ])
  const revised = await client.action(api.docs.search, { namespace: 'kb', query: 'cats', topic: 'animals' })
  expect(revised.hits.map((h: { title: string }) => h.title)).not.toContain('Cats')
  expect(revised.hits[0]).toEqual({ title: 'Cats, revised', order: 0, text: 'cats nap in the sun' })
})
