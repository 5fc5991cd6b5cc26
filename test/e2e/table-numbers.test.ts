import { afterAll, expect, test } from 'vitest'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { strToU8, zipSync } from 'fflate'
import { ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { decodeId, encodeId } from '../../src/values/index.ts'
import { cleanup, convexCli, deploy, startBackend, until } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'

// Table numbers as Convex gives them: per component (the app and each component instance number
// their own tables, from 10001), system tables at Convex's numbers (`_storage` 540,
// `_scheduled_functions` 539). So a Convex deployment's ids keep working here, and a source whose
// app and component both have a table 10001 replicates.
const backends: TestBackend[] = []
const apps: string[] = []
afterAll(async () => {
  for (const b of backends) {
    await b.stop('SIGKILL')
    cleanup(b.dataDir)
  }
  for (const a of apps) cleanup(a)
})

type Doc = Record<string, unknown> & { _id: string }
const byId = (a: Doc, b: Doc) => (a._id < b._id ? -1 : 1)
const numberOf = (id: string) => decodeId(id)?.tableNumber

let source: TestBackend
let src: ConvexHttpClient
let note: string
let book: string

test("the app's first table and a component's first table are both 10001; each resolves its own ids", async () => {
  source = await startBackend()
  backends.push(source)
  apps.push((await deploy(source, 'numbers')).appDir)
  src = new ConvexHttpClient(source.url)
  note = (await src.mutation(anyApi.app.add, { text: 'a note' })) as string
  book = (await src.mutation(anyApi.app.addBook, { title: 'a book' })) as string
  expect(numberOf(note)).toBe(10001)
  expect(numberOf(book)).toBe(10001)
  expect(note).not.toBe(book)
  // Each finds its own document.
  expect(await src.query(anyApi.app.probe, { id: note })).toMatchObject({ normalized: note, doc: { _id: note, text: 'a note' } })
  expect(await src.query(anyApi.app.probeBook, { id: book })).toMatchObject({ normalized: book, doc: { _id: book, title: 'a book' } })
  // The other's id names the table of the same number here (as in Convex): a valid id of it,
  // of no document.
  expect(await src.query(anyApi.app.probe, { id: book })).toEqual({ normalized: book, doc: null })
  expect(await src.query(anyApi.app.probeBook, { id: note })).toEqual({ normalized: note, doc: null })
  // The next tables go on from there, in each on its own.
  expect(numberOf((await src.mutation(anyApi.app.addBook, { title: 'another' })) as string)).toBe(10001)
}, 120_000)

test('stored files are _storage ids (540) and scheduled functions _scheduled_functions ids (539), in the app and in a component', async () => {
  const appFile = (await src.action(anyApi.app.storeText, { text: 'app file' })) as string
  const bookFile = (await src.action(anyApi.app.storeBookText, { text: 'book file' })) as string
  expect(numberOf(appFile)).toBe(540)
  expect(numberOf(bookFile)).toBe(540)
  expect(numberOf((await src.mutation(anyApi.app.schedule, {})) as string)).toBe(539)
  expect(numberOf((await src.mutation(anyApi.app.scheduleBook, {})) as string)).toBe(539)
  // Each file is its own component's: found there, not in the other.
  expect(((await src.query(anyApi.app.files, {})) as Doc[]).map((f) => f._id)).toEqual([appFile])
  expect(((await src.query(anyApi.app.bookFiles, {})) as Doc[]).map((f) => f._id)).toEqual([bookFile])
  const url = (await src.query(anyApi.app.fileUrl, { id: appFile })) as string
  expect(await (await fetch(url)).text()).toBe('app file')
  expect(await src.query(anyApi.app.fileUrl, { id: bookFile })).toBe(null)
}, 60_000)

test('a source whose app and component share table numbers replicates into a fresh backend, identical', async () => {
  // The source's app table and component table carry the same number.
  expect([numberOf(note), numberOf(book)]).toEqual([10001, 10001])
  const target = await startBackend({ env: { CONCAVE_REPLICATE_FROM: source.url, CONCAVE_REPLICATE_ADMIN_KEY: source.adminKey } })
  backends.push(target)
  apps.push((await deploy(target, 'numbers')).appDir)
  const dst = new ConvexHttpClient(target.url)
  const status = async () => (await (await fetch(`${target.url}/api/concave/replication`, { headers: { authorization: `Convex ${target.adminKey}` } })).json()) as { caughtUp?: boolean; error: string | null; lag: { documents: number } | null }
  const done = await until(status, (s) => s.error !== null || (s.lag?.documents === 0 && s.caughtUp === true), 60_000)
  expect(done.error).toBe(null)
  for (const q of [anyApi.app.notes, anyApi.app.books, anyApi.app.files, anyApi.app.bookFiles]) {
    const want = ((await src.query(q, {})) as Doc[]).sort(byId)
    expect(want.length).toBeGreaterThan(0)
    expect(((await dst.query(q, {})) as Doc[]).sort(byId)).toEqual(want)
  }
  // The ids resolve in the replica as in the source, each in its own component.
  expect(await dst.query(anyApi.app.probe, { id: note })).toMatchObject({ normalized: note, doc: { _id: note, text: 'a note' } })
  expect(await dst.query(anyApi.app.probeBook, { id: book })).toMatchObject({ normalized: book, doc: { _id: book, title: 'a book' } })
  expect(await dst.query(anyApi.app.probe, { id: book })).toEqual({ normalized: book, doc: null })
  // And the files' bytes came along.
  for (const f of (await dst.query(anyApi.app.files, {})) as Doc[]) {
    const url = (await dst.query(anyApi.app.fileUrl, { id: f._id })) as string
    expect(await (await fetch(url)).text()).toBe('app file')
  }
}, 120_000)

test("an import of a Convex export whose app and component both have table 10001 keeps every id", async () => {
  const target = await startBackend()
  backends.push(target)
  const { appDir } = await deploy(target, 'numbers')
  apps.push(appDir)
  const work = mkdtempSync(join(tmpdir(), 'concave-numbers-'))
  apps.push(work)
  const noteId = encodeId(10001, new Uint8Array(16).fill(7))
  const bookId = encodeId(10001, new Uint8Array(16).fill(9))
  const line = (o: unknown) => `${JSON.stringify(o)}\n`
  const zip = join(work, 'convex-export.zip')
  writeFileSync(
    zip,
    zipSync({
      '_tables/documents.jsonl': strToU8(line({ name: 'notes', id: 10001 })),
      'notes/documents.jsonl': strToU8(line({ _id: noteId, _creationTime: 1700000000000, text: 'imported note' })),
      '_components/shelf/_tables/documents.jsonl': strToU8(line({ name: 'books', id: 10001 })),
      '_components/shelf/books/documents.jsonl': strToU8(line({ _id: bookId, _creationTime: 1700000000001, title: 'imported book' })),
    }),
  )
  await convexCli(appDir, ['import', zip, '-y'], { CONVEX_SELF_HOSTED_URL: target.url, CONVEX_SELF_HOSTED_ADMIN_KEY: target.adminKey })
  const dst = new ConvexHttpClient(target.url)
  expect(await dst.query(anyApi.app.notes, {})).toEqual([{ _id: noteId, _creationTime: 1700000000000, text: 'imported note' }])
  expect(await dst.query(anyApi.app.books, {})).toEqual([{ _id: bookId, _creationTime: 1700000000001, title: 'imported book' }])
  expect(await dst.query(anyApi.app.probeBook, { id: bookId })).toMatchObject({ normalized: bookId, doc: { title: 'imported book' } })
  // New documents go on in the same tables.
  expect(numberOf((await dst.mutation(anyApi.app.addBook, { title: 'after' })) as string)).toBe(10001)
}, 120_000)

test('a replica whose own table holds a number of the source, in the same component, stops with a clear error', async () => {
  const source = await startBackend()
  backends.push(source)
  apps.push((await deploy(source, 'replicate')).appDir)
  // The app's cron ticks once at deploy, creating `ticks`: after it, both backends number alike.
  const ticked = (b: TestBackend) => until(() => new ConvexHttpClient(b.url).query(anyApi.data.all, { table: 'ticks' }) as Promise<unknown[]>, (t) => t.length === 1)
  await ticked(source)
  const [theirs] = (await new ConvexHttpClient(source.url).mutation(anyApi.data.insertMany, { table: 'fromSource', docs: [{ n: 1 }] })) as string[]
  // Not fresh: a table of its own took that number in the app.
  const local = await startBackend()
  backends.push(local)
  apps.push((await deploy(local, 'replicate')).appDir)
  await ticked(local)
  const [own] = (await new ConvexHttpClient(local.url).mutation(anyApi.data.insertMany, { table: 'ownTable', docs: [{ n: 2 }] })) as string[]
  expect(numberOf(own!)).toBe(numberOf(theirs!))
  await local.stop()
  const replica = await startBackend({ dataDir: local.dataDir, env: { CONCAVE_REPLICATE_FROM: source.url, CONCAVE_REPLICATE_ADMIN_KEY: source.adminKey } })
  backends.push(replica)
  const status = async () => (await (await fetch(`${replica.url}/api/concave/replication`, { headers: { authorization: `Convex ${replica.adminKey}` } })).json()) as { error: string | null }
  const failed = await until(status, (s) => s.error !== null, 30_000)
  expect(failed.error).toBe(`Table "fromSource" is number ${numberOf(theirs!)} in the source, but that number is taken here by "ownTable": replicate into a new deployment`)
}, 120_000)
