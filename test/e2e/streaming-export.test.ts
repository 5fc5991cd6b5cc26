import { expect, test } from 'vitest'
import { anyApi } from 'convex/server'
import { until, useDeployedBackend } from '../helpers/test-backend.ts'
import type { DeployedBackend } from '../helpers/test-backend.ts'
import { parseStreamingResponse } from '../../src/replicate/streaming-export.ts'

// Convex's streaming export API (list_snapshot, document_deltas) as the Fivetran and Airbyte
// connectors call it, with an admin key.
let t: DeployedBackend
useDeployedBackend('replicate', (d) => (t = d))

type Value = Record<string, unknown> & { _id: string; _table: string; _component: string; _ts: bigint }
interface SnapshotResponse {
  values: Value[]
  snapshot: bigint
  cursor: string | null
  hasMore: boolean
}
interface DeltasResponse {
  values: (Value & { _deleted: boolean })[]
  cursor: bigint
  hasMore: boolean
}

async function call(path: string, body: Record<string, unknown> | null, auth = true): Promise<{ status: number; text: string }> {
  const text = body === null ? undefined : JSON.stringify(body, (_k, v: unknown) => (typeof v === 'bigint' ? `@@${v}@@` : v)).replace(/"@@(-?\d+)@@"/g, '$1')
  const r = await fetch(`${t.backend.url}${path}`, {
    method: body === null ? 'GET' : 'POST',
    headers: { ...(auth ? { authorization: `Convex ${t.backend.adminKey}` } : {}), 'content-type': 'application/json', 'convex-client': 'streaming-export-test-0.0.0' },
    body: text,
  })
  return { status: r.status, text: await r.text() }
}

async function listAll(args: Record<string, unknown>): Promise<{ pages: SnapshotResponse[]; values: Value[] }> {
  const pages: SnapshotResponse[] = []
  let snapshot: bigint | undefined
  let cursor: string | null = null
  for (;;) {
    const r = await call('/api/list_snapshot', { ...args, ...(snapshot === undefined ? {} : { snapshot }), ...(cursor === null ? {} : { cursor }) })
    expect(r.status).toBe(200)
    const page = parseStreamingResponse<SnapshotResponse>(r.text)
    pages.push(page)
    snapshot = page.snapshot
    cursor = page.cursor
    if (!page.hasMore) break
  }
  return { pages, values: pages.flatMap((p) => p.values) }
}

const bytes = (a: number[]) => new Uint8Array(a).buffer

test('list_snapshot and document_deltas answer in Convex shapes, in each value format', async () => {
  const [id] = (await t.client.mutation(anyApi.data.insertMany, { table: 'shapes', docs: [{ s: 'x', f: 1.5, whole: 2, big: 7n, bytes: bytes([1, 2, 3]), arr: [1n, 'a'], obj: { b: true, n: null }, nan: NaN }] })) as string[]
  const [doc] = (await t.client.query(anyApi.data.all, { table: 'shapes' })) as { _creationTime: number }[]
  const sel = { selection: { _other: 'excluded', '': { _other: 'excluded', shapes: { _other: 'included' } } } }

  const clean = parseStreamingResponse<SnapshotResponse>((await call('/api/list_snapshot', sel)).text)
  expect(clean.hasMore).toBe(false)
  expect(clean.cursor).toBe(null)
  expect(typeof clean.snapshot).toBe('bigint')
  expect(clean.values).toHaveLength(1)
  const ts = clean.values[0]!._ts
  expect(ts).toBeLessThanOrEqual(clean.snapshot)
  expect(clean.values[0]).toEqual({ _component: '', _table: 'shapes', _ts: ts, _id: id, _creationTime: doc!._creationTime, s: 'x', f: 1.5, whole: 2, big: '7', bytes: 'AQID', arr: ['1', 'a'], obj: { b: true, n: null }, nan: 'NaN' })
  // The fields come in name order after the metadata, as Convex's BTreeMap gives them.
  const raw = (await call('/api/list_snapshot', sel)).text
  expect(raw.indexOf('"_component"')).toBeLessThan(raw.indexOf('"_table"'))
  expect(raw.indexOf('"_ts"')).toBeLessThan(raw.indexOf('"_creationTime"'))
  expect(raw.indexOf('"arr"')).toBeLessThan(raw.indexOf('"big"'))

  const encoded = parseStreamingResponse<SnapshotResponse>((await call('/api/list_snapshot', { ...sel, format: 'convex_encoded_json' })).text)
  expect(encoded.values[0]).toMatchObject({ big: { $integer: 'BwAAAAAAAAA=' }, bytes: { $bytes: 'AQID' }, arr: [{ $integer: 'AQAAAAAAAAA=' }, 'a'], nan: { $float: 'AAAAAAAA+H8=' }, f: 1.5, whole: 2 })
  const exported = (await call('/api/list_snapshot', { ...sel, format: 'export_json' })).text
  expect(exported).toContain('"big":7,')
  expect(exported).toContain('"whole":2.0}')
  expect(exported).toContain('"bytes":{"$bytes":"AQID"}')

  // The same listing as a GET, one table by name.
  const get = parseStreamingResponse<SnapshotResponse>((await call('/api/list_snapshot?tableName=shapes&format=convex_encoded_json', null)).text)
  expect(get.values).toEqual(encoded.values)

  // Deltas after the snapshot: an edit and a deletion, in commit order; `_deleted` on each.
  await t.client.mutation(anyApi.data.patch, { id, fields: { s: 'y' } })
  await t.client.mutation(anyApi.data.remove, { id })
  const deltas = parseStreamingResponse<DeltasResponse>((await call('/api/document_deltas', { ...sel, cursor: clean.snapshot })).text)
  expect(deltas.hasMore).toBe(false)
  expect(deltas.values).toHaveLength(2)
  const [edit, gone] = deltas.values
  expect(edit).toMatchObject({ _component: '', _table: 'shapes', _deleted: false, _id: id, s: 'y', big: '7' })
  expect(gone).toEqual({ _component: '', _table: 'shapes', _ts: gone!._ts, _deleted: true, _id: id })
  expect(edit!._ts).toBeGreaterThan(clean.snapshot)
  expect(gone!._ts).toBeGreaterThan(edit!._ts)
  expect(deltas.cursor).toBeGreaterThanOrEqual(gone!._ts)
  // From the returned cursor: nothing new.
  const after = parseStreamingResponse<DeltasResponse>((await call('/api/document_deltas', { ...sel, cursor: deltas.cursor })).text)
  expect(after.values).toEqual([])
  expect(after.hasMore).toBe(false)
})

test('a snapshot stays at its timestamp across pages while writes land; the deltas after it complete it', async () => {
  // In three mutations: one of 1,500 inserts can pass Convex's 1 s limit on a loaded machine.
  for (const from of [0, 500, 1000]) await t.client.mutation(anyApi.data.bulk, { table: 'many', n: 500, tag: 'a', from })
  const sel = { tableName: 'many', format: 'convex_encoded_json' }
  const first = parseStreamingResponse<SnapshotResponse>((await call('/api/list_snapshot', sel)).text)
  expect(first.values).toHaveLength(1024)
  expect(first.hasMore).toBe(true)
  expect(JSON.parse(first.cursor!)).toEqual({ tablet: expect.any(String), id: first.values[1023]!._id })
  const before = ((await t.client.query(anyApi.data.all, { table: 'many' })) as { _id: string }[]).map((d) => d._id).sort()
  const later = before.filter((id) => id > first.values[1023]!._id)
  expect(later).toHaveLength(476)
  // Writes after the snapshot, on both sides of the cursor.
  await t.client.mutation(anyApi.data.remove, { id: later[10]! })
  await t.client.mutation(anyApi.data.patch, { id: later[20]!, fields: { tag: 'changed' } })
  await t.client.mutation(anyApi.data.patch, { id: before[0]!, fields: { tag: 'changed' } })
  await t.client.mutation(anyApi.data.bulk, { table: 'many', n: 5, tag: 'new' })
  const rest = parseStreamingResponse<SnapshotResponse>((await call('/api/list_snapshot', { ...sel, snapshot: first.snapshot, cursor: first.cursor })).text)
  expect(rest.hasMore).toBe(false)
  expect(rest.snapshot).toBe(first.snapshot)
  const listed = [...first.values, ...rest.values]
  // Exactly the 1500 documents as they were: in id order, none changed, none new, none missing.
  expect(listed.map((v) => v._id)).toEqual(before)
  expect(listed.every((v) => v.tag === 'a' && v._ts <= first.snapshot)).toBe(true)

  // The deltas after the snapshot, applied to it, give what a query gives now.
  const state = new Map(listed.map((v) => [v._id, v]))
  let cursor = first.snapshot
  for (;;) {
    const page = parseStreamingResponse<DeltasResponse>((await call('/api/document_deltas', { ...sel, cursor })).text)
    for (const v of page.values) {
      if (v._deleted) state.delete(v._id)
      else state.set(v._id, v)
    }
    cursor = page.cursor
    if (!page.hasMore) break
  }
  const now = (await t.client.query(anyApi.data.all, { table: 'many' })) as { _id: string; tag: string }[]
  expect([...state.keys()].sort()).toEqual(now.map((d) => d._id).sort())
  expect(now.filter((d) => d.tag === 'changed').map((d) => d._id).sort()).toEqual([later[20]!, before[0]!].sort())
  expect([...state.values()].filter((v) => v.tag === 'changed').map((v) => v._id).sort()).toEqual([later[20]!, before[0]!].sort())
})

test('document_deltas pages end on a commit boundary: a commit larger than a page comes whole', async () => {
  const start = parseStreamingResponse<SnapshotResponse>((await call('/api/list_snapshot', { tableName: 'nothing' })).text).snapshot
  await t.client.mutation(anyApi.data.bulk, { table: 'paged', n: 200, tag: 'one' })
  await t.client.mutation(anyApi.data.bulk, { table: 'paged', n: 3, tag: 'two' })
  const first = parseStreamingResponse<DeltasResponse>((await call('/api/document_deltas', { tableName: 'paged', cursor: start })).text)
  expect(first.values).toHaveLength(200)
  expect(new Set(first.values.map((v) => v._ts)).size).toBe(1)
  expect(first.cursor).toBe(first.values[0]!._ts)
  expect(first.hasMore).toBe(true)
  const second = parseStreamingResponse<DeltasResponse>((await call('/api/document_deltas', { tableName: 'paged', cursor: first.cursor })).text)
  expect(second.values.map((v) => v.tag)).toEqual(['two', 'two', 'two'])
  expect(second.hasMore).toBe(false)
})

test('selections pick components, tables and columns; stored files are never listed, whatever the arguments (as Convex)', async () => {
  const before = parseStreamingResponse<SnapshotResponse>((await call('/api/list_snapshot', { tableName: 'nothing' })).text).snapshot
  await t.client.mutation(anyApi.data.insertMany, { table: 'cols', docs: [{ keep: 1, drop: 2 }] })
  await t.client.action(anyApi.data.storeText, { text: 'hello' })
  const { values } = await listAll({ selection: { _other: 'excluded', '': { _other: 'excluded', cols: { _other: 'included', drop: 'excluded' } } } })
  expect(values).toHaveLength(1)
  expect(Object.keys(values[0]!).sort()).toEqual(['_component', '_creationTime', '_id', '_table', '_ts', 'keep'])
  // Everything: user tables only, as Convex (no _storage, no _scheduled_functions).
  const everything = await listAll({})
  // (`shapes` has no documents left; `ticks`, the fixture's deploy-time cron run, may be there yet or not.)
  expect([...new Set(everything.values.map((v) => v._table))].filter((t) => t !== 'ticks').sort()).toEqual(['cols', 'many', 'paged'])
  // `includeStorage` (Concave once listed `_storage` with it) is an argument Convex doesn't have: ignored.
  const withFiles = await listAll({ includeStorage: true, format: 'convex_encoded_json' })
  expect(withFiles.values.map((v) => v._id).sort()).toEqual(everything.values.map((v) => v._id).sort())
  const deltas = parseStreamingResponse<DeltasResponse>((await call('/api/document_deltas', { includeStorage: true, cursor: before })).text)
  expect(deltas.values.map((v) => v._table).filter((tb) => tb !== 'ticks')).toEqual(['cols'])
})

test('bad requests get Convex codes; no admin key, no export', async () => {
  const anonymous = await call('/api/list_snapshot', {}, false)
  expect(anonymous.status).toBe(403)
  expect(JSON.parse(anonymous.text)).toMatchObject({ code: 'BadDeployKey' })
  expect(await call('/api/document_deltas', {})).toEqual({ status: 400, text: JSON.stringify({ code: 'DocumentDeltasCursorRequired', message: '/api/document_deltas requires a cursor' }) })
  expect(JSON.parse((await call('/api/list_snapshot', { cursor: 'nope' })).text)).toEqual({
    code: 'InvalidListSnapshotCursor',
    message: 'Invalid value for the `cursor` argument of list_snapshot. Use a `cursor` returned by a previous list_snapshot call, and treat it as an opaque value.',
  })
  expect(JSON.parse((await call('/api/list_snapshot', { format: 'xml' })).text)).toEqual({ code: 'BadFormat', message: 'format param must be one of [`json`]. Got xml' })
  const future = BigInt(Date.now() + 3_600_000) * 1_000_000n
  const tooNew = await call('/api/list_snapshot', { snapshot: future })
  expect(tooNew.status).toBe(400)
  expect(JSON.parse(tooNew.text)).toEqual({ code: 'SnapshotTooNew', message: `Snapshot value ${future} is in the future.` })
  // Before the history retention (pruned a moment after the first commits): out of the window.
  const old = await until(() => call('/api/document_deltas', { cursor: 1 }), (r) => r.status === 400)
  expect(JSON.parse(old.text)).toMatchObject({ code: 'InvalidWindowToReadDocuments' })
  expect(await call('/api/test_streaming_export_connection', null)).toEqual({ status: 200, text: 'null' })
  const columns = JSON.parse((await call('/api/get_table_column_names', null)).text) as { byComponent: Record<string, { name: string; columns: string[] }[]> }
  expect(columns.byComponent['']!.find((tb) => tb.name === 'cols')).toEqual({ name: 'cols', columns: ['_creationTime', '_id', 'drop', 'keep'] })
})
