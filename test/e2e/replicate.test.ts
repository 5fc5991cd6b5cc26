import { afterAll, expect, test } from 'vitest'
import { execFile } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { cleanup, deploy, freePort, ROOT, startBackend, startCommand, TEST_INSTANCE, TEST_SECRET, until } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'

// A live replica (`--replicate-from`): two backends, mutations running on the source while the
// replica copies it; the replica is killed (-9) and the source restarted mid-way.
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
}

async function status(target: TestBackend): Promise<Status> {
  const r = await fetch(`${target.url}/api/concave/replication`, { headers: { authorization: `Convex ${target.adminKey}` } })
  expect(r.status).toBe(200)
  return (await r.json()) as Status
}

type Doc = Record<string, unknown> & { _id: string }
const byId = (a: Doc, b: Doc) => (a._id < b._id ? -1 : 1)

test('a replica copies the snapshot, then follows the changes; after a kill -9 and a source restart it ends identical', async () => {
  const source = await startBackend()
  backends.push(source)
  apps.push((await deploy(source, 'replicate')).appDir)
  const src = new ConvexHttpClient(source.url)
  // Before replication starts: two snapshot pages of one table, every kind of value, files.
  await src.mutation(anyApi.data.bulk, { table: 'items', n: 1500, tag: 'before' })
  await src.mutation(anyApi.data.insertMany, { table: 'shapes', docs: [{ s: 'x', f: -0, big: 2n ** 62n, bytes: new Uint8Array([0, 255]).buffer, arr: [1, [2n]], obj: { nested: { deep: null } }, inf: -Infinity }] })
  const files: string[] = []
  for (let i = 0; i < 3; i++) files.push((await src.action(anyApi.data.storeText, { text: `file ${i}` })) as string)

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

  // Caught up: nothing left to apply.
  const done = await until(() => status(target), (s) => s.lag !== null && s.lag.documents === 0 && s.caughtUp === true, 60_000)
  expect(done.lag).toEqual({ documents: 0, complete: true, seconds: 0 })
  expect(done.error).toBe(null)

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
  const srcFiles = ((await src.query(anyApi.data.files, {})) as Doc[]).sort(byId)
  const dstFiles = ((await dst.query(anyApi.data.files, {})) as Doc[]).sort(byId)
  expect(dstFiles).toEqual(srcFiles)
  expect(srcFiles.map((f) => f._id).sort()).toEqual([...files].sort())
  for (const f of srcFiles) {
    const url = (await dst.query(anyApi.data.fileUrl, { id: f._id })) as string
    expect(url.startsWith(target.url)).toBe(true)
    const want = await (await fetch(`${source.url}/api/storage/${f._id}`)).text()
    expect(await (await fetch(url)).text()).toBe(want)
  }

  // `replicate status` says the same, and exits 0 (caught up).
  const { stdout } = await promisify(execFile)(process.execPath, [join(ROOT, 'dist/backend.js'), 'replicate', 'status', '--url', target.url, '--admin-key', target.adminKey])
  expect(stdout).toContain(`Replicating ${source.url}`)
  expect(stdout).toContain('Lag:     0 documents, 0.000 s behind')
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
