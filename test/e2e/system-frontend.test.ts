/**
 * The `_system/frontend/*` functions Convex's dashboard calls, from the real clients with an admin
 * key: their names, arguments and result shapes, live subscriptions, schema checks on edits, and
 * refusal without an admin key.
 */
import { afterAll, beforeAll, expect, test } from 'vitest'
import { ConvexClient, ConvexHttpClient } from 'convex/browser'
import { ConvexError } from 'convex/values'
import { anyApi } from 'convex/server'
import { errorOf, until, useDeployedBackend } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'

const api = anyApi as any
const CLOUD = 'https://cloud.concave.test'
const SITE = 'https://site.concave.test'
let backend: TestBackend
let client: ConvexHttpClient
let admin: ConvexHttpClient
useDeployedBackend(
  'dashboard',
  (t) => {
    backend = t.backend
    client = t.client
    admin = new ConvexHttpClient(backend.url)
    ;(admin as any).setAdminAuth(backend.adminKey)
  },
  { args: ['--convex-origin', CLOUD, '--convex-site', SITE] },
)

const fn = (name: string) => `_system/frontend/${name}` as any
const page = { cursor: null, numItems: 100 }
/** The user fields of documents (ids and creation times vary). */
const fields = (docs: any[]) => docs.map(({ _id, _creationTime, ...rest }) => rest)


let notesTable = ''
beforeAll(async () => {
  await client.mutation(api.notes.add, { title: 'first', stars: 1 })
  await client.mutation(api.notes.add, { title: 'second', stars: 2 })
})

test('without an admin key every dashboard function is refused, as any system function', async () => {
  for (const [kind, name, args] of [
    ['query', 'paginatedTableDocuments', { table: 'notes', filters: null, paginationOpts: page }],
    ['query', 'listEnvironmentVariables', {}],
    ['mutation', 'addDocument', { table: 'notes', documents: [{ title: 'x', stars: 0 }] }],
    ['mutation', 'clearTablePage', { tableName: 'notes', cursor: null }],
  ] as const) {
    const path = `_system/frontend/${name}:default`
    const e = await errorOf(kind === 'query' ? client.query(path as any, args) : client.mutation(path as any, args))
    expect(e.message).toContain(`Could not find public function for '_system/frontend/${name}:default'. Did you forget to run \`npx convex dev\` or \`npx convex deploy\`?`)
  }
  // Nothing was written.
  expect(fields(await client.query(api.notes.list, {}))).toEqual([
    { title: 'first', stars: 1 },
    { title: 'second', stars: 2 },
  ])
})

test('the Data page: documents paginated newest first, filtered by field, counted, by index and table mapping', async () => {
  const all = await admin.query(fn('paginatedTableDocuments'), { table: 'notes', filters: null, paginationOpts: page })
  expect(fields(all.page)).toEqual([
    { title: 'second', stars: 2 },
    { title: 'first', stars: 1 },
  ])
  expect(all.isDone).toBe(true)
  // One per page, oldest first (the filter's `order`), following the cursor.
  const asc = Buffer.from(JSON.stringify({ clauses: [], order: 'asc' })).toString('base64')
  const first = await admin.query(fn('paginatedTableDocuments'), { table: 'notes', filters: asc, paginationOpts: { cursor: null, numItems: 1 } })
  expect([fields(first.page), first.isDone]).toEqual([[{ title: 'first', stars: 1 }], false])
  const second = await admin.query(fn('paginatedTableDocuments'), { table: 'notes', filters: asc, paginationOpts: { cursor: first.continueCursor, numItems: 1 } })
  expect(fields(second.page)).toEqual([{ title: 'second', stars: 2 }])
  // The dashboard's field filter (base64 JSON of its FilterExpression).
  const gt1 = Buffer.from(JSON.stringify({ clauses: [{ op: 'gt', field: 'stars', value: 1, id: 'a', enabled: true }] })).toString('base64')
  expect(fields((await admin.query(fn('paginatedTableDocuments'), { table: 'notes', filters: gt1, paginationOpts: page })).page)).toEqual([{ title: 'second', stars: 2 }])
  const byId = Buffer.from(JSON.stringify({ clauses: [{ op: 'eq', field: '_id', value: first.page[0]._id, id: 'b', enabled: true }] })).toString('base64')
  expect((await admin.query(fn('paginatedTableDocuments'), { table: 'notes', filters: byId, paginationOpts: page })).page).toEqual(first.page)
  expect(fields(await admin.query(fn('listTableScan'), { table: 'notes', limit: 1 }))).toEqual([{ title: 'second', stars: 2 }])
  expect(await admin.query(fn('tableSize'), { tableName: 'notes' })).toBe(2)
  expect(await admin.query(fn('tableSize:sizeOfAllTables'), {})).toBe(2)
  expect(await admin.query(fn('indexes'), { tableName: 'notes', tableNamespace: null })).toEqual([{ name: 'by_stars', staged: false, fields: ['stars'], backfill: { state: 'done' } }])
  const mapping = await admin.query(fn('getTableMapping'), {})
  notesTable = Object.keys(mapping).find((n) => mapping[n] === 'notes')!
  expect(Object.values(mapping).filter((n) => !(n as string).startsWith('_'))).toEqual(['notes'])
  expect(await admin.query(fn('getById'), { id: first.page[0]._id })).toEqual(first.page[0])
  expect(await admin.query(fn('listById'), { ids: [{ id: first.page[0]._id, tableName: 'notes' }, { id: first.page[0]._id, tableName: 'other' }] })).toEqual([first.page[0], null])
  const schemas = await admin.query(fn('getSchemas'), {})
  expect(Object.keys(schemas)).toEqual(['active'])
  expect(JSON.parse(schemas.active).tables.map((t: any) => t.tableName)).toEqual(['notes'])
  // The root component by its id is the app.
  const [root] = await admin.query(fn('components:list'), {})
  expect(await admin.query(fn('tableSize'), { tableName: 'notes', componentId: root.id })).toBe(2)
})

test('the Data page by index: sorted in its order, its equality and range clauses, paginated; a selection it cannot use answers the error as the page', async () => {
  // Created last, but the fewest stars: creation order and the index's differ.
  await admin.mutation(fn('addDocument'), { table: 'notes', documents: [{ title: 'zero', stars: 0 }] })
  const byIndex = (index: unknown, more: Record<string, unknown> = {}) => Buffer.from(JSON.stringify({ clauses: [], index, ...more })).toString('base64')
  const titles = async (filters: string, paginationOpts: unknown = page) => {
    const r = await admin.query(fn('paginatedTableDocuments'), { table: 'notes', filters, paginationOpts })
    return r.page.map((d: any) => d.title ?? d)
  }
  try {
    expect(await titles(byIndex({ name: 'by_stars', clauses: [] }, { order: 'asc' }))).toEqual(['zero', 'first', 'second'])
    expect(await titles(byIndex({ name: 'by_stars', clauses: [] }))).toEqual(['second', 'first', 'zero'])
    expect(await titles(byIndex({ name: 'by_creation_time', clauses: [] }, { order: 'asc' }))).toEqual(['first', 'second', 'zero'])
    // A clause disabled is not applied.
    expect(await titles(byIndex({ name: 'by_stars', clauses: [{ type: 'indexEq', enabled: false, value: 1 }] }, { order: 'asc' }))).toEqual(['zero', 'first', 'second'])
    expect(await titles(byIndex({ name: 'by_stars', clauses: [{ type: 'indexEq', enabled: true, value: 1 }] }))).toEqual(['first'])
    expect(await titles(byIndex({ name: 'by_stars', clauses: [{ type: 'indexRange', enabled: true, lowerOp: 'gt', lowerValue: 0 }] }))).toEqual(['second', 'first'])
    expect(await titles(byIndex({ name: 'by_stars', clauses: [{ type: 'indexRange', enabled: true, lowerOp: 'gte', lowerValue: 1, upperOp: 'lt', upperValue: 2 }] }))).toEqual(['first'])
    // With a field filter beside it.
    expect(await titles(byIndex({ name: 'by_stars', clauses: [] }, { order: 'asc', clauses: [{ id: 'a', field: 'title', op: 'neq', value: 'first', enabled: true }] }))).toEqual(['zero', 'second'])
    // Paginated in the index's order.
    const asc = byIndex({ name: 'by_stars', clauses: [] }, { order: 'asc' })
    const first = await admin.query(fn('paginatedTableDocuments'), { table: 'notes', filters: asc, paginationOpts: { cursor: null, numItems: 2 } })
    expect([first.page.map((d: any) => d.title), first.isDone]).toEqual([['zero', 'first'], false])
    expect(await titles(asc, { cursor: first.continueCursor, numItems: 2 })).toEqual(['second'])
    // Convex's answers for a selection it can't use: one error object as the page.
    expect(await titles(byIndex({ name: 'nope', clauses: [] }))).toEqual([{ filter: -1, error: 'Index nope does not exist.' }])
    expect(await titles(byIndex({ name: 'by_stars', clauses: [{ type: 'indexEq', enabled: true, value: 1 }, { type: 'indexEq', enabled: true, value: 2 }] }))).toEqual([{ filter: -1, error: 'Index by_stars has 1 fields, but the query has 2 clauses.' }])
  } finally {
    const zero = (await admin.query(fn('paginatedTableDocuments'), { table: 'notes', filters: null, paginationOpts: page })).page.find((d: any) => d.title === 'zero')
    await admin.mutation(fn('deleteDocuments'), { toDelete: [{ id: zero._id, tableName: 'notes' }] })
  }
})

test('a subscription to a dashboard query sees addDocument live', async () => {
  const live = new ConvexClient(backend.url, { unsavedChangesWarning: false } as any)
  try {
    ;(live as any).setAdminAuth(backend.adminKey)
    let latest: any = undefined
    let count: number | undefined
    live.onUpdate(fn('paginatedTableDocuments'), { table: 'notes', filters: null, paginationOpts: page }, (v: any) => (latest = v))
    live.onUpdate(fn('tableSize'), { tableName: 'notes' }, (v: any) => (count = v))
    await until(() => [latest, count], () => latest !== undefined && count === 2)
    expect(await admin.mutation(fn('addDocument'), { table: 'notes', documents: [{ title: 'third', stars: 3, count: 7n }] })).toEqual({ success: true })
    await until(() => count, (c) => c === 3)
    expect(count).toBe(3)
    expect(fields(latest.page)).toEqual([
      { title: 'third', stars: 3, count: 7n },
      { title: 'second', stars: 2 },
      { title: 'first', stars: 1 },
    ])
  } finally {
    await live.close()
  }
  expect(fields(await client.query(api.notes.list, {}))).toEqual([
    { title: 'first', stars: 1 },
    { title: 'second', stars: 2 },
    { title: 'third', stars: 3, count: 7n },
  ])
})

test('a live table mapping sees an empty table created and a table deleted', async () => {
  const live = new ConvexClient(backend.url, { unsavedChangesWarning: false } as any)
  try {
    ;(live as any).setAdminAuth(backend.adminKey)
    let names: string[] = []
    live.onUpdate(fn('getTableMapping'), {}, (v: any) => (names = (Object.values(v) as string[]).filter((n) => !n.startsWith('_'))))
    await until(() => names, (n) => n.includes('notes'))
    expect(await admin.mutation(fn('createTable'), { table: 'scratch' })).toBe(null)
    expect(await until(() => names, (n) => n.includes('scratch'))).toContain('scratch')
    const deleted = await fetch(`${backend.url}/api/delete_tables`, { method: 'POST', headers: { authorization: `Convex ${backend.adminKey}`, 'content-type': 'application/json' }, body: JSON.stringify({ tableNames: ['scratch'], componentId: null }) })
    expect(deleted.status).toBe(200)
    expect(await until(() => names, (n) => !n.includes('scratch'))).not.toContain('scratch')
  } finally {
    await live.close()
  }
})

test('edits that break the schema fail with its error (a ConvexError) and change nothing', async () => {
  const before = await client.query(api.notes.list, {})
  const bad = await errorOf(admin.mutation(fn('addDocument'), { table: 'notes', documents: [{ title: 'ok', stars: 9 }, { title: 'bad', stars: 'many' }] }))
  expect(bad).toBeInstanceOf(ConvexError)
  expect((bad as ConvexError<string>).data).toMatch(/^Failed to insert or update a document in table "notes" because it does not match the schema: Value does not match validator\.\nPath: \.stars\nValue: "many"\nValidator: v\.float64\(\)/)
  const id = before[0]._id
  const patch = await errorOf(admin.mutation(fn('patchDocumentsFields'), { table: 'notes', ids: [id], fields: { stars: 'x' } }))
  expect((patch as ConvexError<string>).data).toMatch(/does not match the schema/)
  const replace = await errorOf(admin.mutation(fn('replaceDocument'), { id, document: { title: 'only a title' } }))
  expect((replace as ConvexError<string>).data).toMatch(/^Failed to insert or update a document in table "notes" because it does not match the schema: Object is missing the required field `stars`/)
  expect(await client.query(api.notes.list, {})).toEqual(before)
})

test('patch, replace, delete, create and clear tables through the dashboard functions', async () => {
  const [first, second, third] = await client.query(api.notes.list, {})
  expect(await admin.mutation(fn('patchDocumentsFields'), { table: 'notes', ids: [first._id, second._id], fields: { stars: 5 } })).toEqual({ success: true })
  // The dashboard's placeholder for undefined removes a field.
  const UNDEFINED = '__CONVEX_PLACEHOLDER_undefined_I23atX0jcndVbFgXoQZffsih7eAqktCyFjgUuAeNBtfr3ySOljPSPSEOPFgprkdBO3zXNiGEJxmJ5ZFPc5C5qKesG80QRPvlJe8vgSxAt9feLTwxTg4PHfVwUaTEJU67FDwldWmTxp1guMPwxQ2jOuhEryTBf3mQ'
  expect(await admin.mutation(fn('patchDocumentsFields'), { table: 'notes', fields: { count: UNDEFINED } })).toEqual({ success: true })
  expect(await admin.mutation(fn('replaceDocument'), { id: second._id, document: { _id: second._id, _creationTime: second._creationTime, title: 'replaced', stars: 0 } })).toEqual({ success: true })
  expect(fields(await client.query(api.notes.list, {}))).toEqual([
    { title: 'first', stars: 5 },
    { title: 'replaced', stars: 0 },
    { title: 'third', stars: 3 },
  ])
  expect(await admin.mutation(fn('deleteDocuments'), { toDelete: [{ id: third._id, tableName: 'notes' }] })).toEqual({ success: true })
  expect(await admin.mutation(fn('replaceDocument'), { id: third._id, document: { title: 'gone', stars: 1 } })).toEqual({ success: false, error: 'Document does not exist.' })
  expect(fields(await client.query(api.notes.list, {}))).toEqual([
    { title: 'first', stars: 5 },
    { title: 'replaced', stars: 0 },
  ])
  // createTable makes an empty table the mapping and table list show.
  expect(await admin.mutation(fn('createTable'), { table: 'drafts' })).toBe(null)
  expect(Object.values(await admin.query(fn('getTableMapping'), {})).filter((n) => !(n as string).startsWith('_'))).toEqual(['notes', 'drafts'])
  expect(await admin.query('_system/cli/tables' as any, { paginationOpts: page })).toMatchObject({ page: [{ name: 'drafts' }, { name: 'notes' }] })
  expect(await admin.query(fn('tableSize'), { tableName: 'drafts' })).toBe(0)
  expect(await admin.mutation(fn('clearTablePage'), { tableName: 'notes', cursor: null })).toMatchObject({ deleted: 2, hasMore: false })
  expect(await client.query(api.notes.list, {})).toEqual([])
  void notesTable
})

test('functions and settings: modules, environment variables, URLs, version, state', async () => {
  const modules = await admin.query(fn('modules:list'), {})
  expect(modules.map(([path, m]: any) => [path, m.functions])).toEqual([
    ['crons.js', []],
    [
      'notes.js',
      [
        { name: 'add', udfType: 'Mutation', visibility: { kind: 'public' } },
        { name: 'addLater', udfType: 'Mutation', visibility: { kind: 'internal' } },
        { name: 'fail', udfType: 'Query', visibility: { kind: 'public' } },
        { name: 'greet', udfType: 'Query', visibility: { kind: 'public' } },
        { name: 'later', udfType: 'Mutation', visibility: { kind: 'public' } },
        { name: 'list', udfType: 'Query', visibility: { kind: 'public' } },
        { name: 'tick', udfType: 'Mutation', visibility: { kind: 'internal' } },
        { name: 'whoami', udfType: 'Query', visibility: { kind: 'public' } },
      ],
    ],
  ].filter(([path]) => modules.some(([p]: any) => p === path)))
  expect((await admin.query(fn('modules:listForAllComponents'), {}))[0][0]).toBe(null)
  expect(await admin.query(fn('modules:argsValidator'), { function: 'notes:add' })).toBe(JSON.stringify({ type: 'object', value: { title: { fieldType: { type: 'string' }, optional: false }, stars: { fieldType: { type: 'number' }, optional: false } } }))
  const res = await fetch(`${backend.url}/api/update_environment_variables`, { method: 'POST', headers: { authorization: `Convex ${backend.adminKey}`, 'content-type': 'application/json' }, body: JSON.stringify({ changes: [{ name: 'B_VAR', value: 'b' }, { name: 'A_VAR', value: 'a' }] }) })
  expect(res.status).toBe(200)
  expect((await admin.query(fn('listEnvironmentVariables'), {})).map(({ name, value }: any) => ({ name, value }))).toEqual([
    { name: 'A_VAR', value: 'a' },
    { name: 'B_VAR', value: 'b' },
  ])
  expect(await admin.query(fn('convexCloudUrl'), {})).toBe(CLOUD)
  expect(await admin.query(fn('convexSiteUrl'), {})).toBe(SITE)
  expect(await admin.query(fn('getVersion'), {})).toBe(await (await fetch(`${backend.url}/version`)).text())
  expect(await admin.query(fn('deploymentState:deploymentState'), {})).toEqual({ state: 'running' })
  expect(await admin.query(fn('listAuthProviders'), {})).toEqual([])
})

test('schedules: pending scheduled functions and crons with their last run', async () => {
  await client.mutation(api.notes.later, { title: 'soon' })
  const jobs = await admin.query(fn('paginatedScheduledJobs'), { paginationOpts: page })
  expect(jobs.page.map((j: any) => [j.udfPath, j.state, typeof j.nextTs])).toEqual([['notes.js:addLater', { type: 'pending' }, 'bigint']])
  expect(JSON.parse(Buffer.from(jobs.page[0].udfArgs).toString())).toEqual([{ title: 'soon' }])
  const crons = await until(() => admin.query(fn('listCronJobs'), {}), (c: any) => c[0]?.lastRun !== null)
  expect(crons.map((c: any) => [c.name, c.cronSpec.udfPath, c.cronSpec.cronSchedule, c.nextRun.state, c.lastRun?.status])).toEqual([['daily note', 'notes.js:tick', { type: 'interval', seconds: 86400n }, { type: 'pending' }, { type: 'success', result: null }]])
  expect((await admin.query(fn('listCronJobRuns'), {})).map((r: any) => [r.name, r.udfPath, r.status.type])).toEqual([['daily note', 'notes.js:tick', 'success']])
})

test('admin routes of the dashboard: check_admin_key, cancel_job, cancel_all_jobs, delete_scheduled_functions_table', async () => {
  const post = (path: string, body: unknown, key: string | null = backend.adminKey) =>
    fetch(`${backend.url}${path}`, { method: 'POST', headers: { ...(key === null ? {} : { authorization: `Convex ${key}` }), 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const check = await fetch(`${backend.url}/api/check_admin_key`, { headers: { authorization: `Convex ${backend.adminKey}` } })
  expect(check.status).toBe(200)
  // A full admin key: an empty list means every operation, as Convex answers.
  expect(await check.json()).toEqual({ success: true, isReadOnly: false, allowedOps: [] })
  const wrong = await fetch(`${backend.url}/api/check_admin_key`, { headers: { authorization: 'Convex not-a-key' } })
  expect([wrong.status, await wrong.json()]).toEqual([401, { code: 'BadAdminKey', message: 'The provided admin key was invalid for this instance' }])
  const none = await fetch(`${backend.url}/api/check_admin_key`)
  expect([none.status, ((await none.json()) as any).code]).toEqual([403, 'BadDeployKey'])
  const pending = async () => (await admin.query(fn('paginatedScheduledJobs'), { paginationOpts: page })).page.map((j: any) => j._id)
  const before = await pending()
  expect(before).toHaveLength(1)
  // Refused without the key: the job stays.
  expect((await post('/api/cancel_job', { id: before[0], componentId: null }, null)).status).toBe(403)
  expect(await pending()).toEqual(before)
  const cancel = await post('/api/cancel_job', { id: before[0], componentId: null })
  expect([cancel.status, await cancel.text()]).toEqual([200, ''])
  expect(await pending()).toEqual([])
  expect(await client.query(api.notes.list, {})).toEqual([])
  await client.mutation(api.notes.later, { title: 'a' })
  await client.mutation(api.notes.later, { title: 'b' })
  expect(await pending()).toHaveLength(2)
  expect((await post('/api/cancel_all_jobs', { udfPath: 'notes:add' })).status).toBe(200)
  expect(await pending()).toHaveLength(2)
  expect((await post('/api/cancel_all_jobs', { udfPath: 'notes.js:addLater', componentId: null })).status).toBe(200)
  expect(await pending()).toEqual([])
  // "Delete all" empties `_scheduled_functions`: the pending job and the canceled records go.
  await client.mutation(api.notes.later, { title: 'c' })
  const records = async () => (await admin.query(fn('paginatedTableDocuments'), { table: '_scheduled_functions', filters: null, paginationOpts: page })).page.length
  expect(await records()).toBe(4)
  expect((await post('/api/delete_scheduled_functions_table', { componentId: null }, null)).status).toBe(403)
  expect(await records()).toBe(4)
  const deleted = await post('/api/delete_scheduled_functions_table', { componentId: null })
  expect([deleted.status, await deleted.text()]).toEqual([200, ''])
  expect(await records()).toBe(0)
  expect(await pending()).toEqual([])
})

test('GET /api/shapes2: each user table shape, as Convex reduces it', async () => {
  expect(await admin.mutation(fn('addDocument'), { table: 'probes', documents: [{ label: 'a', weight: 1.5, parts: [1n] }, { label: null }] })).toEqual({ success: true })
  const anonymous = await fetch(`${backend.url}/api/shapes2`)
  expect(anonymous.status).toBe(403)
  const shapes = (await (await fetch(`${backend.url}/api/shapes2`, { headers: { authorization: `Convex ${backend.adminKey}` } })).json()) as Record<string, unknown>
  expect(Object.keys(shapes).every((n) => !n.startsWith('_'))).toBe(true)
  expect(shapes.probes).toEqual({
    type: 'Object',
    fields: [
      { fieldName: '_creationTime', optional: false, shape: { type: 'Float64', float64Range: { hasSpecialValues: false } } },
      { fieldName: '_id', optional: false, shape: { type: 'Id', tableName: 'probes' } },
      { fieldName: 'label', optional: false, shape: { type: 'Union', shapes: [{ type: 'Null' }, { type: 'String' }] } },
      { fieldName: 'parts', optional: true, shape: { type: 'Array', shape: { type: 'Int64' } } },
      { fieldName: 'weight', optional: true, shape: { type: 'Float64', float64Range: { hasSpecialValues: false } } },
    ],
  })
})
