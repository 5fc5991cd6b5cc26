import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { ConvexClient, ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { cleanup, convexCli, deploy, errorOf, startBackend } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'

const api = anyApi as any
let backend: TestBackend
let appDir: string | undefined
let client: ConvexHttpClient
const sockets: ConvexClient[] = []

beforeAll(async () => {
  backend = await startBackend()
  appDir = (await deploy(backend, 'search')).appDir
  client = new ConvexHttpClient(backend.url)
})

afterAll(async () => {
  await Promise.all(sockets.map((c) => c.close()))
  await backend?.stop()
  cleanup(backend?.dataDir)
  cleanup(appDir)
})

const search = (text: string, more: Record<string, unknown> = {}) => client.query(api.messages.search, { text, ...more }) as Promise<string[]>
const send = (author: string, body: string, channel?: string) => client.mutation(api.messages.send, channel === undefined ? { author, body } : { author, body, channel }) as Promise<string>

describe('search results', () => {
  beforeAll(async () => {
    // Inserted best match first: relevance must beat recency.
    await send('fruit', 'apple apple apple')
    await send('fruit', 'apple pie', 'desserts')
    await send('fruit', 'Apple banana cherry date elderberry fig grape kiwi', 'salads')
    await send('fruit', 'banana split', 'desserts')
    await send('veg', 'carrot cake', 'desserts')
  })

  test('are in relevance order (BM25: more occurrences, then shorter documents, first)', async () => {
    expect(await search('apple')).toEqual(['apple apple apple', 'apple pie', 'Apple banana cherry date elderberry fig grape kiwi'])
  })

  test('are matched case-insensitively', async () => {
    expect(await search('APPLE', { limit: 1 })).toEqual(['apple apple apple'])
    expect(await search('kIwI')).toEqual(['Apple banana cherry date elderberry fig grape kiwi'])
  })

  test('the last term matches as a prefix, earlier terms only exactly', async () => {
    expect(await search('appl')).toEqual(['apple apple apple', 'apple pie', 'Apple banana cherry date elderberry fig grape kiwi'])
    expect(await search('split ban')).toEqual(['banana split', 'Apple banana cherry date elderberry fig grape kiwi'])
    // "app" is not the last term: it matches no word, so only "pie" counts.
    expect(await search('app pie')).toEqual(['apple pie'])
    expect(await search('pie app')).toEqual(['apple pie', 'apple apple apple', 'Apple banana cherry date elderberry fig grape kiwi'])
  })

  test('documents with more of the terms rank first; documents with none are left out', async () => {
    const hits = await search('banana split')
    expect(hits).toEqual(['banana split', 'Apple banana cherry date elderberry fig grape kiwi'])
    expect(await search('durian')).toEqual([])
  })

  test('equal scores put the newest document first', async () => {
    await send('tie-old', 'identical twins')
    await send('tie-new', 'identical twins')
    const docs = (await client.query(api.messages.searchDocs, { text: 'identical twins' })) as { author: string }[]
    expect(docs.map((d) => d.author)).toEqual(['tie-new', 'tie-old'])
  })

  test('filter fields are equality filters, `undefined` included', async () => {
    expect(await search('apple', { author: 'fruit', channel: 'desserts' })).toEqual(['apple pie'])
    expect(await search('cake', { author: 'fruit' })).toEqual([])
    expect(await search('cake', { author: 'veg' })).toEqual(['carrot cake'])
    expect(await search('apple', { noChannel: true })).toEqual(['apple apple apple'])
    expect(await search('apple', { channel: null })).toEqual([])
  })

  test('take, first, collect and .filter() after the search', async () => {
    expect(await search('apple', { limit: 2 })).toEqual(['apple apple apple', 'apple pie'])
    expect(await client.query(api.messages.searchFirst, { text: 'apple' })).toBe('apple apple apple')
    expect(await client.query(api.messages.searchFirst, { text: 'nothing' })).toBeNull()
    expect(await client.query(api.messages.searchCollect, { text: 'desserts cake' })).toEqual(['carrot cake'])
    expect(await client.query(api.messages.searchFiltered, { text: 'cake pie split', notAuthor: 'veg' })).toEqual(
      expect.arrayContaining(['apple pie', 'banana split']),
    )
    expect(await client.query(api.messages.searchFiltered, { text: 'cake pie split', notAuthor: 'veg' })).toHaveLength(2)
  })

  test('paginate walks the results in relevance order', async () => {
    const first = await client.query(api.messages.searchPage, { text: 'apple', paginationOpts: { numItems: 2, cursor: null } })
    expect(first.page).toEqual(['apple apple apple', 'apple pie'])
    expect(first.isDone).toBe(false)
    const second = await client.query(api.messages.searchPage, { text: 'apple', paginationOpts: { numItems: 2, cursor: first.continueCursor } })
    expect(second.page).toEqual(['Apple banana cherry date elderberry fig grape kiwi'])
    expect(second.isDone).toBe(true)
  })

  test('a search page holding exactly the last results is not done until the next, empty page', async () => {
    const first = await client.query(api.messages.searchPage, { text: 'apple', paginationOpts: { numItems: 3, cursor: null } })
    expect([first.page.length, first.isDone]).toEqual([3, false])
    const next = await client.query(api.messages.searchPage, { text: 'apple', paginationOpts: { numItems: 3, cursor: first.continueCursor } })
    expect([next.page, next.isDone]).toEqual([[], true])
  })

  test('an empty search string, or one without any words, matches nothing', async () => {
    expect(await search('')).toEqual([])
    expect(await search('  ?! ')).toEqual([])
  })

  test('a search index of a table without documents returns []', async () => {
    expect(await client.query(api.other.searchEmpty, { text: 'anything' })).toEqual([])
  })
})

describe('the index follows writes', () => {
  test('a patched document is re-indexed, a deleted one disappears', async () => {
    const id = await send('edits', 'original walrus')
    expect(await search('walrus')).toEqual(['original walrus'])
    await client.mutation(api.messages.edit, { id, body: 'renamed narwhal' })
    expect(await search('walrus')).toEqual([])
    expect(await search('narwhal')).toEqual(['renamed narwhal'])
    await client.mutation(api.messages.remove, { id })
    expect(await search('narwhal')).toEqual([])
  })

  test('a mutation sees its own inserts, patches and deletes', async () => {
    const own = (args: Record<string, unknown>) => client.mutation(api.messages.writeThenSearch, args) as Promise<string[]>
    expect(await own({ insert: { author: 'own', body: 'pending penguin' }, text: 'penguin' })).toEqual(['pending penguin'])
    const id = await send('own', 'plain penguin parade')
    expect(await own({ patch: { id, body: 'plain puffin' }, text: 'penguin' })).toEqual(['pending penguin'])
    expect(await own({ text: 'puffin' })).toEqual(['plain puffin'])
    expect(await own({ remove: id, text: 'puffin' })).toEqual([])
    // Inserted then searched with a filter, among committed matches.
    expect(await own({ insert: { author: 'own', body: 'penguin' }, text: 'penguin', author: 'own' })).toEqual(['penguin', 'pending penguin'])
  })

  test('a failed mutation leaves nothing in the index', async () => {
    const err = await errorOf(client.mutation(api.messages.writeThenFail, { author: 'fail', body: 'ghostly gecko' }))
    expect(err.message).toContain('rolled back after seeing 1')
    expect(await search('gecko')).toEqual([])
  })

  test('a search field that is not a string is not indexed; filters still apply', async () => {
    await client.mutation(api.other.addLoose, { text: 12345, tag: 'n' })
    await client.mutation(api.other.addLoose, { text: '12345 as text', tag: 's' })
    await client.mutation(api.other.addLoose, { text: ['12345'], tag: 's' })
    expect(await client.query(api.other.searchLoose, { text: '12345' })).toEqual(['12345 as text'])
    expect(await client.query(api.other.searchLoose, { text: '12345', tag: 'n' })).toEqual([])
    expect(await client.query(api.other.searchLoose, { text: '12345', tag: 's' })).toEqual(['12345 as text'])
  })

  test('a subscribed search re-runs when a matching document is inserted or changed', async () => {
    const watcher = new ConvexClient(backend.url, { unsavedChangesWarning: false } as any)
    sockets.push(watcher)
    const values: string[][] = []
    const waiters: { pred: (v: string[]) => boolean; resolve: () => void }[] = []
    const unsubscribe = watcher.onUpdate(api.messages.search, { text: 'zebra' }, (v: string[]) => {
      values.push(v)
      for (const w of [...waiters]) if (w.pred(v)) (waiters.splice(waiters.indexOf(w), 1), w.resolve())
    })
    const next = (pred: (v: string[]) => boolean) =>
      values.some(pred)
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            const t = setTimeout(() => reject(new Error(`timed out; saw ${JSON.stringify(values)}`)), 10_000)
            waiters.push({ pred, resolve: () => (clearTimeout(t), resolve()) })
          })
    await next((v) => v.length === 0)
    const id = await send('live', 'zebra crossing')
    await next((v) => JSON.stringify(v) === JSON.stringify(['zebra crossing']))
    await send('live', 'zebra zebra')
    await next((v) => JSON.stringify(v) === JSON.stringify(['zebra zebra', 'zebra crossing']))
    await client.mutation(api.messages.edit, { id, body: 'pedestrian crossing' })
    await next((v) => JSON.stringify(v) === JSON.stringify(['zebra zebra']))
    unsubscribe()
    await watcher.close()
  })

  test('consistentQuery searches at its timestamp (a historical view) while others write', async () => {
    const keep = await send('snap', 'snapshot yak')
    const gone = await send('snap', 'snapshot yak yak')
    const reader = new ConvexHttpClient(backend.url)
    const consistent = () => (reader as any).consistentQuery(api.messages.search, { text: 'yak' }) as Promise<string[]>
    expect(await consistent()).toEqual(['snapshot yak yak', 'snapshot yak'])
    await client.mutation(api.messages.edit, { id: keep, body: 'edited yak yak yak' })
    await client.mutation(api.messages.remove, { id: gone })
    await send('snap', 'new yak')
    expect(await consistent()).toEqual(['snapshot yak yak', 'snapshot yak'])
    expect(await search('yak')).toEqual(['edited yak yak yak', 'new yak'])
  })
})

describe('bad input', () => {
  test('searching a database index fails with Convex’s message', async () => {
    const err = await errorOf(client.query(api.messages.searchByAuthorIndex, {}))
    expect(err.message).toContain('Uncaught Error: Index messages.by_author is not a search index')
  })

  test('withIndex on a search index fails', async () => {
    const err = await errorOf(client.query(api.messages.withIndexOnSearchIndex, {}))
    expect(err.message).toContain('Index messages.search_body is not a database index')
  })

  test('a search on a field other than the searchField fails', async () => {
    const err = await errorOf(client.query(api.messages.searchWrongField, {}))
    expect(err.message).toContain('Search query against messages.search_body contains a search filter against "author", which doesn\'t match the indexed `searchField` "body".')
  })

  test('an equality filter on a field not in filterFields fails', async () => {
    const err = await errorOf(client.query(api.messages.searchUnindexedFilter, {}))
    expect(err.message).toContain('Search query against messages.search_body contains an equality filter on "body" but that field isn\'t indexed for filtering in `filterFields`.')
  })

  test('a missing index fails', async () => {
    const err = await errorOf(client.query(api.messages.searchMissingIndex, {}))
    expect(err.message).toContain('Uncaught Error: Index messages.nope not found.')
    expect(err.message).not.toContain('Uncaught Error: Uncaught Error')
  })
})

describe('durability and schema changes', () => {
  test('search works the same after a restart', async () => {
    const before = await search('apple')
    expect(before).toHaveLength(3)
    await backend.stop()
    await backend.restart()
    client = new ConvexHttpClient(backend.url)
    expect(await search('apple')).toEqual(before)
    await send('after', 'restarted rhino')
    expect(await search('rhino')).toEqual(['restarted rhino'])
  })

  test('a search index added by a later push is backfilled from existing documents', async () => {
    for (const text of ['old note about otters', 'otters otters', 'nothing relevant']) await client.mutation(api.other.addNote, { text })
    const schemaPath = join(appDir!, 'convex/schema.ts')
    const original = readFileSync(schemaPath, 'utf8')
    writeFileSync(schemaPath, original.replace('notes: defineTable({ text: v.string() }),', 'notes: defineTable({ text: v.string() }).searchIndex("search_text", { searchField: "text" }),'))
    writeFileSync(
      join(appDir!, 'convex/notes.ts'),
      `import { v } from "convex/values";
import { query } from "./_generated/server";
export const find = query({ args: { text: v.string() }, handler: async (ctx, { text }) => (await ctx.db.query("notes").withSearchIndex("search_text" as any, (q: any) => q.search("text", text)).collect()).map((n: any) => n.text) });
`,
    )
    const out = await convexCli(appDir!, ['deploy', '--url', backend.url, '--admin-key', backend.adminKey, '-y'])
    expect(out.stderr).toContain('[+] notes.search_text (text)   text')
    expect(await client.query('notes:find' as any, { text: 'otters' })).toEqual(['otters otters', 'old note about otters'])
    await client.mutation(api.other.addNote, { text: 'new otters' })
    expect(await client.query('notes:find' as any, { text: 'otter' })).toEqual(['otters otters', 'new otters', 'old note about otters'])

    writeFileSync(schemaPath, original)
    const removed = await convexCli(appDir!, ['deploy', '--url', backend.url, '--admin-key', backend.adminKey, '-y'])
    expect(removed.stderr).toContain('[-] notes.search_text (text)   text')
    const err = await errorOf(client.query('notes:find' as any, { text: 'otters' }))
    expect(err.message).toContain('Index notes.search_text not found.')
  })

  test('at most 1024 results: collecting more fails as in Convex; take and paginate work', async () => {
    const bodies = Array.from({ length: 1030 }, (_, i) => `bulk item ${i}`)
    await client.mutation(api.messages.sendMany, { author: 'bulk', bodies })
    const err = await errorOf(client.query(api.messages.searchCollect, { text: 'bulk', author: 'bulk' }))
    expect(err.message).toContain('Search query scanned too many documents (fetched 1024)')
    expect(await search('bulk', { limit: 3, author: 'bulk' })).toHaveLength(3)
    const page = await client.query(api.messages.searchPage, { text: 'bulk', paginationOpts: { numItems: 500, cursor: null } })
    expect(page.page).toHaveLength(500)
    // Equal scores: newest first.
    expect(page.page[0]).toBe('bulk item 1029')
    await client.mutation(api.messages.removeAuthor, { author: 'bulk' })
    expect(await search('bulk')).toEqual([])
  })
})
