import { expect, test } from 'vitest'
import { ConvexClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { unzipSync } from 'fflate'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConvexHttpClient } from 'convex/browser'
import { cleanup, startBackend, until, useDeployedBackend } from '../helpers/test-backend.ts'
import type { DeployedBackend } from '../helpers/test-backend.ts'

// Point-in-time restore (in place, one commit) and export of the past, within the history retention.
let t: DeployedBackend
useDeployedBackend('basic', (d) => (t = d))

type Message = { _id: string; _creationTime: number; author: string; body: string }
const byId = (a: Message, b: Message) => (a._id < b._id ? -1 : 1)

async function admin(path: string, body?: unknown): Promise<Response> {
  return fetch(`${t.backend.url}${path}`, { method: 'POST', headers: { authorization: `Convex ${t.backend.adminKey}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) })
}

test('restore puts tables back as they were at a time, as one change live queries see; an export of that time agrees', async () => {
  const one = await t.client.mutation(anyApi.messages.send, { author: 'r', body: 'one' })
  const two = await t.client.mutation(anyApi.messages.send, { author: 'r', body: 'two' })
  await t.client.mutation(anyApi.counter.increment, { name: 'restore' })
  const at = Date.now()
  while (Date.now() === at) await new Promise((r) => setImmediate(r))
  const then = ((await t.client.query(anyApi.messages.list, { author: 'r' })) as Message[]).sort(byId)
  // Later: an insert, an edit, a deletion, and a write to a table not restored.
  const three = await t.client.mutation(anyApi.messages.send, { author: 'r', body: 'three' })
  await t.client.mutation(anyApi.messages.edit, { id: one, body: 'one, edited' })
  await t.client.mutation(anyApi.messages.remove, { id: two })
  await t.client.mutation(anyApi.counter.increment, { name: 'restore' })

  const live = new ConvexClient(t.backend.url, { unsavedChangesWarning: false } as never)
  try {
    const seen: Message[][] = []
    live.onUpdate(anyApi.messages.list, { author: 'r' }, (v: Message[]) => void seen.push([...v].sort(byId)))
    await until(() => seen.length, (n) => n === 1)
    expect(seen[0]!.map((m) => m.body).sort()).toEqual(['one, edited', 'three'])

    // The export of that time.
    expect((await admin(`/api/export/request/zip?timestamp=${at}`)).status).toBe(200)
    const zip = await until(() => fetch(`${t.backend.url}/api/export/zip/${BigInt(at) * 1_000_000n}`, { headers: { authorization: `Convex ${t.backend.adminKey}` } }), (r) => r.status === 200)
    const entries = unzipSync(new Uint8Array(await zip.arrayBuffer()))
    const exported = new TextDecoder().decode(entries['messages/documents.jsonl']).trim().split('\n').map((l) => JSON.parse(l) as Message).filter((m) => m.author === 'r').sort(byId)
    expect(exported).toEqual(then)

    const restored = await admin('/api/restore', { timestamp: at, tables: ['messages'] })
    expect(restored.status).toBe(200)
    const result = (await restored.json()) as { ts: string; documents: number }
    expect(result.documents).toBe(3)
    expect(BigInt(result.ts)).toBeGreaterThan(BigInt(at) * 1_000_000n)
    // Same ids and creation times as then; the counter (not restored) keeps its present.
    expect(((await t.client.query(anyApi.messages.list, { author: 'r' })) as Message[]).sort(byId)).toEqual(then)
    expect(then.map((m) => m._id)).toEqual([one, two].sort())
    expect(await t.client.query(anyApi.counter.get, { name: 'restore' })).toBe(2)
    expect(await t.client.query(anyApi.messages.get, { id: three })).toBe(null)
    // Subscribers saw one change: from the present straight to the restored state.
    await until(() => seen.length, (n) => n === 2)
    expect(seen[1]).toEqual(then)
  } finally {
    await live.close()
  }
})

test('restore refuses a time in the future, unreadable times, system tables, and callers without an admin key', async () => {
  const refused = async (body: unknown) => {
    const r = await admin('/api/restore', body)
    return { status: r.status, ...((await r.json()) as { code: string; message: string }) }
  }
  expect(await refused({ timestamp: Date.now() + 3_600_000 })).toMatchObject({ status: 400, code: 'InvalidTimestamp' })
  expect(await refused({ timestamp: 'yesterday-ish' })).toEqual({ status: 400, code: 'InvalidTimestamp', message: '"timestamp" must be milliseconds since the epoch or an ISO 8601 date, not "yesterday-ish"' })
  expect(await refused({})).toMatchObject({ status: 400, code: 'InvalidTimestamp' })
  // An export of an unreadable time is refused too, and starts nothing.
  const badExport = await admin('/api/export/request/zip?ts=soon')
  expect([badExport.status, await badExport.json()]).toEqual([400, { code: 'InvalidTimestamp', message: '"ts" must be a commit timestamp in nanoseconds, not "soon"' }])
  expect(await refused({ timestamp: Date.now() - 1000, tables: ['_storage'] })).toEqual({ status: 400, code: 'InvalidTableName', message: 'Cannot restore table "_storage": only user tables are restored' })
  const anonymous = await fetch(`${t.backend.url}/api/restore`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ timestamp: Date.now() }) })
  expect(anonymous.status).toBe(403)
  expect(((await anonymous.json()) as { code: string }).code).toBe('BadDeployKey')
  // Before the history retention (pruned a moment after the first commits): refused.
  expect(await until(() => refused({ timestamp: 1000 }), (r) => r.status === 400)).toMatchObject({ code: 'OutOfRetention' })
})

test('restore into a new data folder: a backend started on it serves the deployment as it was; the running one is untouched', async () => {
  const kept = await t.client.mutation(anyApi.messages.send, { author: 'folder', body: 'kept' })
  const at = Date.now()
  while (Date.now() === at) await new Promise((r) => setImmediate(r))
  await t.client.mutation(anyApi.messages.edit, { id: kept, body: 'kept, edited later' })
  await t.client.mutation(anyApi.messages.send, { author: 'folder', body: 'later' })
  const now = ((await t.client.query(anyApi.messages.list, { author: 'folder' })) as Message[]).map((m) => m.body).sort()
  const into = join(mkdtempSync(join(tmpdir(), 'concave-restore-')), 'restored')
  try {
    const r = await admin('/api/restore', { timestamp: new Date(at).toISOString().replace(/\.(\d+)Z$/, (_, ms) => `.${ms}Z`), into })
    // (ISO 8601 has millisecond precision here: the same instant as `at`.)
    expect(r.status).toBe(200)
    expect(((await r.json()) as { documents: number }).documents).toBeGreaterThanOrEqual(2)
    const restored = await startBackend({ dataDir: into })
    try {
      const old = ((await new ConvexHttpClient(restored.url).query(anyApi.messages.list, { author: 'folder' })) as Message[])
      expect(old.map((m) => [m._id, m.body])).toEqual([[kept, 'kept']])
    } finally {
      await restored.stop()
    }
    expect(((await t.client.query(anyApi.messages.list, { author: 'folder' })) as Message[]).map((m) => m.body).sort()).toEqual(now)
    // A folder that isn't empty is refused.
    const again = await admin('/api/restore', { timestamp: at, into })
    expect([again.status, ((await again.json()) as { code: string }).code]).toEqual([400, 'InvalidPath'])
  } finally {
    cleanup(join(into, '..'))
  }
})
