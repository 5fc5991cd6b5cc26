import { afterAll, expect, test } from 'vitest'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { cleanup, deploy, freePort, ROOT, startBackend, startCommand, TEST_INSTANCE, TEST_SECRET, until } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'

// A live replica (`--replicate-from`): two backends, mutations running on the source while the
// replica copies it; the replica is killed (-9) and the source restarted mid-way. The source's
// stored files are copied as from a Convex deployment: its streaming export doesn't list them (as
// Convex's doesn't), so they come through the file listing Convex's dashboard uses.
const backends: TestBackend[] = []
const apps: string[] = []
afterAll(async () => {
  for (const b of backends) {
    await b.stop('SIGKILL')
    cleanup(b.dataDir)
  }
  for (const a of apps) cleanup(a)
})

interface Status {
  replicating: boolean
  phase: string
  applied: number
  error: string | null
  caughtUp?: boolean
  lag: { documents: number; complete: boolean; seconds: number } | null
  files: { replica: number; source: number | null; inSync: boolean }
}

async function status(target: TestBackend): Promise<Status> {
  const r = await fetch(`${target.url}/api/concave/replication`, { headers: { authorization: `Convex ${target.adminKey}` } })
  // (A failure says why: the backend's log of the request.)
  expect(r.status, r.status === 200 ? '' : `${await r.text()}\n${target.output().slice(-3000)}`).toBe(200)
  return (await r.json()) as Status
}

type Doc = Record<string, unknown> & { _id: string }
const byId = (a: Doc, b: Doc) => (a._id < b._id ? -1 : 1)

test('a replica copies the snapshot, then follows the changes; after a kill -9 and a source restart it ends identical', async () => {
  const source = await startBackend()
  backends.push(source)
  apps.push((await deploy(source, 'replicate')).appDir)
  const src = new ConvexHttpClient(source.url)
  const srcAdmin = new ConvexHttpClient(source.url)
  ;(srcAdmin as any).setAdminAuth(source.adminKey)
  // Before replication starts: two snapshot pages of one table, every kind of value, files.
  // In three mutations: one of 1,500 inserts can pass Convex's 1 s limit on a loaded machine.
  for (const from of [0, 500, 1000]) await src.mutation(anyApi.data.bulk, { table: 'items', n: 500, tag: 'before', from })
  await src.mutation(anyApi.data.insertMany, { table: 'shapes', docs: [{ s: 'x', f: -0, big: 2n ** 62n, bytes: new Uint8Array([0, 255]).buffer, arr: [1, [2n]], obj: { nested: { deep: null } }, inf: -Infinity }] })
  const files: string[] = []
  for (let i = 0; i < 3; i++) files.push((await src.action(anyApi.data.storeText, { text: `file ${i}` })) as string)
  // Uploaded through an upload URL: binary, with a content type and without one.
  const upload = async (body: Uint8Array, contentType?: string) => {
    const url = (await src.mutation(anyApi.data.uploadUrl, {})) as string
    const r = await fetch(url, { method: 'POST', body, headers: contentType === undefined ? {} : { 'content-type': contentType } })
    expect(r.status).toBe(200)
    return ((await r.json()) as { storageId: string }).storageId
  }
  const binary = new Uint8Array(300_000).map((_, i) => (i * 7919) % 256)
  // (These two are kept: the writer below deletes the oldest of `files`.)
  const kept = [await upload(binary, 'image/png'), await upload(new Uint8Array([0, 1, 2, 3]))]

  const target = await startBackend({ env: { CONCAVE_REPLICATE_FROM: source.url, CONCAVE_REPLICATE_ADMIN_KEY: source.adminKey } })
  backends.push(target)
  apps.push((await deploy(target, 'replicate')).appDir)
  const dst = new ConvexHttpClient(target.url)

  // Writes on the source all along: inserts, updates, deletes, files stored and deleted.
  let writing = true
  let step = 0
  const writer = (async () => {
    while (writing) {
      step++
      try {
        await src.mutation(anyApi.data.churn, { table: 'events', step })
        if (step % 10 === 0) files.push((await src.action(anyApi.data.storeText, { text: `file at ${step}` })) as string)
        if (step % 15 === 0) files.push(await upload(binary.subarray(step), 'application/octet-stream'))
        if (step % 25 === 0) await src.mutation(anyApi.data.deleteFile, { id: files.shift()! })
      } catch {
        // The source is restarting: the next step tries again.
        await new Promise((r) => setTimeout(r, 50))
      }
    }
  })()
  try {
    // The snapshot is copied, then changes follow.
    const following = await until(() => status(target), (s) => s.phase === 'deltas' && s.applied > 1510, 60_000)
    expect(following.replicating).toBe(true)
    expect(((await dst.query(anyApi.data.all, { table: 'items' })) as Doc[]).length).toBe(1500)

    // Killed mid-way: it resumes from its last commit when started again.
    const appliedBefore = (await status(target)).applied
    await target.stop('SIGKILL')
    const stepAtKill = step
    await until(() => step, (s) => s >= stepAtKill + 20, 30_000)
    await target.restart()
    await until(() => status(target), (s) => s.applied > appliedBefore + 20, 30_000)

    // The source restarts: the replica waits and goes on.
    await source.stop()
    await source.restart()
    const stepAtRestart = step
    await until(() => step, (s) => s >= stepAtRestart + 20, 30_000)
  } finally {
    writing = false
    await writer
  }

  // Caught up: nothing left to apply, the files listed the same on both sides.
  const done = await until(() => status(target), (s) => s.lag !== null && s.lag.documents === 0 && s.caughtUp === true, 60_000)
  expect(done.lag).toEqual({ documents: 0, complete: true, seconds: 0 })
  expect(done.error).toBe(null)
  const fileCount = (await srcAdmin.query('_system/frontend/fileStorageV2:numFiles' as any, {})) as number
  expect(done.files).toEqual({ replica: fileCount, source: fileCount, inSync: true })

  // Every table and file is identical: same ids, creation times and values.
  for (const table of ['items', 'shapes', 'events']) {
    const want = ((await src.query(anyApi.data.all, { table })) as Doc[]).sort(byId)
    const got = ((await dst.query(anyApi.data.all, { table })) as Doc[]).sort(byId)
    expect(got.length).toBe(want.length)
    expect(got).toEqual(want)
  }
  expect(((await dst.query(anyApi.data.all, { table: 'events' })) as Doc[]).length).toBeGreaterThan(20)
  // The cron ran once, on the source, when it was deployed; the replica (deployed too) runs none
  // of its own: it holds the source's one tick.
  const ticks = ((await src.query(anyApi.data.all, { table: 'ticks' })) as Doc[]).sort(byId)
  expect(ticks).toHaveLength(1)
  expect(((await dst.query(anyApi.data.all, { table: 'ticks' })) as Doc[]).sort(byId)).toEqual(ticks)
  // The files: the same records (ids, creation times, sha256, size, content type), each once.
  // (Files are polled: a listing that raced the source's last writes is corrected by the next.)
  const srcFiles = ((await src.query(anyApi.data.files, {})) as Doc[]).sort(byId)
  const dstFiles = await until(async () => ((await dst.query(anyApi.data.files, {})) as Doc[]).sort(byId), (d) => JSON.stringify(d) === JSON.stringify(srcFiles), 30_000)
  expect(dstFiles).toEqual(srcFiles)
  // (The source has every file the writer stored, and may have more: a call the source's restart cut
  // off may have stored a file, or not deleted one, without the writer hearing of it.)
  expect(srcFiles.length).toBe(fileCount)
  expect(srcFiles.map((f) => f._id)).toEqual(expect.arrayContaining([...files, ...kept]))
  expect(srcFiles.filter((f) => f.contentType === 'image/png')).toHaveLength(1)
  expect(srcFiles.filter((f) => f.contentType === undefined)).toHaveLength(1)
  expect(srcFiles.filter((f) => f.contentType === 'application/octet-stream').length).toBeGreaterThan(0)
  // The same bytes, served by the replica's own URLs; and no other bytes kept (deleted files' went).
  for (const f of srcFiles) {
    const url = (await dst.query(anyApi.data.fileUrl, { id: f._id })) as string
    expect(url).toBe(`${target.url}/api/storage/${f._id}`)
    const want = Buffer.from(await (await fetch(`${source.url}/api/storage/${f._id}`)).arrayBuffer())
    const got = Buffer.from(await (await fetch(url)).arrayBuffer())
    expect(got.equals(want)).toBe(true)
    expect(createHash('sha256').update(got).digest('base64')).toBe(f.sha256)
    expect(got.length).toBe(f.size)
  }
  expect(readdirSync(join(target.dataDir, 'storage')).sort()).toEqual(srcFiles.map((f) => f._id).sort())

  // `replicate status` says the same, and exits 0 (caught up).
  const { stdout } = await promisify(execFile)(process.execPath, [join(ROOT, 'dist/backend.js'), 'replicate', 'status', '--url', target.url, '--admin-key', target.adminKey])
  expect(stdout).toContain(`Replicating ${source.url}`)
  expect(stdout).toContain('Lag:     0 documents, 0.000 s behind')
  expect(stdout).toContain(`Files:   ${fileCount} (${fileCount} at the source)`)
}, 240_000)

test('`replicate --from URL --admin-key KEY` runs the backend as a replica; a second source is refused', async () => {
  const source = backends[0]!
  const port = await freePort()
  const dataDir = mkdtempSync(join(tmpdir(), 'concave-replica-'))
  const replica = await startCommand(process.execPath, [join(ROOT, 'dist/backend.js'), 'replicate', '--from', source.url, '--admin-key', source.adminKey, '--port', String(port), '--site-proxy-port', String(await freePort()), '--interface', '127.0.0.1', '--local-storage', dataDir, '--instance-name', TEST_INSTANCE, '--instance-secret', TEST_SECRET], { port, cwd: dataDir, env: { ...process.env, DASHBOARD_PORT: '0' } })
  try {
    const replicaBackend = { url: replica.url, adminKey: source.adminKey } as TestBackend
    const s = await until(() => status(replicaBackend), (x) => x.phase === 'deltas' && x.lag?.documents === 0, 60_000)
    expect(s).toMatchObject({ replicating: true, source: source.url, error: null })
    // The source key is not logged.
    expect(replica.output()).not.toContain(source.adminKey)
  } finally {
    await replica.stop()
  }
  // The same data folder, another source: refused (the two would mix), and said so.
  const other = await startCommand(process.execPath, [join(ROOT, 'dist/backend.js'), '--port', String(port), '--site-proxy-port', String(await freePort()), '--interface', '127.0.0.1', '--local-storage', dataDir, '--instance-name', TEST_INSTANCE, '--instance-secret', TEST_SECRET, '--replicate-from', 'http://127.0.0.1:9'], { port, cwd: dataDir, env: { ...process.env, DASHBOARD_PORT: '0', CONCAVE_REPLICATE_ADMIN_KEY: 'x' } })
  try {
    const s = await until(() => status({ url: other.url, adminKey: source.adminKey } as TestBackend), (x) => x.error !== null)
    expect(s.error).toBe(`This deployment already replicates ${source.url}; replicating another source (http://127.0.0.1:9) into it would mix the two`)
  } finally {
    await other.stop()
    cleanup(dataDir)
  }
  // Without the source's admin key the backend doesn't start.
  const refused = await promisify(execFile)(process.execPath, [join(ROOT, 'dist/backend.js'), '--replicate-from', source.url, '--local-storage', dataDir]).catch((e: { code: number; stdout: string }) => e)
  expect((refused as { code: number }).code).toBe(1)
  expect((refused as { stdout: string }).stdout).toContain('--replicate-from needs an admin key of the source in CONCAVE_REPLICATE_ADMIN_KEY')
}, 120_000)

test("each component's stored files come along into that component, a file deleted at the source goes", async () => {
  const source = await startBackend()
  backends.push(source)
  apps.push((await deploy(source, 'components')).appDir)
  const src = new ConvexHttpClient(source.url)
  const srcAdmin = new ConvexHttpClient(source.url)
  ;(srcAdmin as any).setAdminAuth(source.adminKey)
  const post = async (url: string, text: string) => ((await (await fetch(url, { method: 'POST', body: text, headers: { 'content-type': 'text/plain' } })).json()) as { storageId: string }).storageId
  const inCounter = [(await src.action(anyApi.app.storeInComponent, { text: 'counter one' })) as string, (await src.action(anyApi.app.storeInComponent, { text: 'counter two' })) as string]
  const inCounter2 = await post((await src.mutation(anyApi.app.componentUploadUrl, {})) as string, 'counter2 file')
  const inApp = await post((await srcAdmin.mutation('_system/frontend/fileStorageV2:generateUploadUrl' as any, {})) as string, 'app file')

  const target = await startBackend({ env: { CONCAVE_REPLICATE_FROM: source.url, CONCAVE_REPLICATE_ADMIN_KEY: source.adminKey } })
  backends.push(target)
  apps.push((await deploy(target, 'components')).appDir)
  const dstAdmin = new ConvexHttpClient(target.url)
  ;(dstAdmin as any).setAdminAuth(target.adminKey)
  await until(() => status(target), (s) => s.caughtUp === true, 60_000)

  // Following: a file deleted in a component and one stored there go and come.
  const counter = (await srcAdmin.query('_system/frontend/components:list' as any, {})).find((c: { path: string }) => c.path === 'counter')
  await srcAdmin.mutation('_system/frontend/fileStorageV2:deleteFile' as any, { storageId: inCounter[0], componentId: counter.id })
  const later = (await src.action(anyApi.app.storeInComponent, { text: 'counter three' })) as string

  /** Each component's files as the dashboard lists them (without their URLs, which name each deployment). */
  const listing = async (admin: ConvexHttpClient) => {
    const out: Record<string, { files: Record<string, unknown>[]; urls: string[] }> = {}
    for (const c of (await admin.query('_system/frontend/components:list' as any, {})) as { id: string; path: string }[]) {
      const page = (await admin.query('_system/frontend/fileStorageV2:fileMetadata' as any, { paginationOpts: { cursor: null, numItems: 100 }, componentId: c.path === '' ? null : c.id })).page as { url: string }[]
      out[c.path] = { files: page.map(({ url, ...f }) => f), urls: page.map((f) => f.url) }
    }
    return out
  }
  const want = await listing(srcAdmin)
  expect(Object.fromEntries(Object.entries(want).map(([path, l]) => [path, l.files.map((f) => f._id).sort()]))).toEqual({
    '': [inApp],
    counter: [inCounter[1], later].sort(),
    'counter/audit': [],
    counter2: [inCounter2],
    'counter2/audit': [],
  })
  const got = await until(() => listing(dstAdmin), (l) => JSON.stringify(Object.fromEntries(Object.entries(l).map(([p, x]) => [p, x.files]))) === JSON.stringify(Object.fromEntries(Object.entries(want).map(([p, x]) => [p, x.files]))), 30_000)
  // The replica serves each file's bytes at its own URL.
  const texts = async (l: Awaited<ReturnType<typeof listing>>) => Object.fromEntries(await Promise.all(Object.entries(l).map(async ([p, x]) => [p, await Promise.all(x.urls.map(async (u) => await (await fetch(u)).text()))])))
  for (const [path, x] of Object.entries(got)) for (const u of x.urls) expect(u.startsWith(`${target.url}/api/storage/`), path).toBe(true)
  expect(await texts(got)).toEqual({ '': ['app file'], counter: ['counter three', 'counter two'], 'counter/audit': [], counter2: ['counter2 file'], 'counter2/audit': [] })
  expect(await texts(want)).toEqual(await texts(got))
}, 120_000)

test('a replica killed (-9) while it copies files resumes: every file once, none lost, no stray bytes kept', async () => {
  const source = await startBackend()
  backends.push(source)
  apps.push((await deploy(source, 'replicate')).appDir)
  const src = new ConvexHttpClient(source.url)
  const srcAdmin = new ConvexHttpClient(source.url)
  ;(srcAdmin as any).setAdminAuth(source.adminKey)
  for (let i = 0; i < 8; i++) await src.action(anyApi.data.storeMany, { n: 80, size: 20_000, tag: `batch ${i}` })
  const total = (await srcAdmin.query('_system/frontend/fileStorageV2:numFiles' as any, {})) as number
  expect(total).toBe(640)

  const target = await startBackend({ env: { CONCAVE_REPLICATE_FROM: source.url, CONCAVE_REPLICATE_ADMIN_KEY: source.adminKey } })
  backends.push(target)
  // Killed with some files copied and others not yet.
  const partway = await until(() => status(target), (s) => s.files.replica > 0, 60_000)
  expect(partway.files.replica).toBeLessThan(total)
  await target.stop('SIGKILL')
  await target.restart()
  const done = await until(() => status(target), (s) => s.caughtUp === true, 60_000)
  expect(done.files).toEqual({ replica: total, source: total, inSync: true })

  const dstAdmin = new ConvexHttpClient(target.url)
  ;(dstAdmin as any).setAdminAuth(target.adminKey)
  const all = async (admin: ConvexHttpClient) => {
    const out: Record<string, unknown>[] = []
    let cursor: string | null = null
    for (;;) {
      const page: any = await admin.query('_system/frontend/fileStorageV2:fileMetadata' as any, { paginationOpts: { cursor, numItems: 200 }, filters: { order: 'asc' } })
      out.push(...page.page)
      if (page.isDone) return out
      cursor = page.continueCursor
    }
  }
  const want = await all(srcAdmin)
  const got = await all(dstAdmin)
  expect(got.map(({ url, ...f }) => f)).toEqual(want.map(({ url, ...f }) => f))
  for (const f of got.slice(-3)) expect(await (await fetch(f.url as string)).text()).toBe(await (await fetch(`${source.url}/api/storage/${f._id as string}`)).text())
  expect(readdirSync(join(target.dataDir, 'storage')).sort()).toEqual(got.map((f) => f._id as string).sort())
}, 180_000)
