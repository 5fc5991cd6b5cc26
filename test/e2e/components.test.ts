import { expect, test } from 'vitest'
import { ConvexClient, ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { convexCli, errorOf, until, useDeployedBackend } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'
import { componentId } from '../../src/functions/components.ts'

let backend: TestBackend
let client: ConvexHttpClient
let appDir: string

useDeployedBackend('components', (t) => ({ backend, client, appDir } = t as typeof t & { appDir: string }))

test('an app calls its components; each instance has its own tables, apart from the app’s', async () => {
  expect(await client.mutation('app:add' as any, { name: 'a', by: 2 })).toBe(2)
  expect(await client.mutation('app:add' as any, { name: 'a', by: 3 })).toBe(5)
  expect(await client.mutation('app:addToSecond' as any, { name: 'a', by: 7 })).toBe(7)
  expect(await client.query('app:get' as any, { name: 'a' })).toEqual({ first: 5, second: 7, appRows: 2 })
})

test('a child mutation that throws rolls back only its own writes; the parent catches it and goes on', async () => {
  const caught = await client.mutation('app:addThenRecover' as any, { name: 'r' })
  expect(caught).toMatch(/^Uncaught Error: counter r refused\n/)
  expect(await client.query('app:get' as any, { name: 'r' })).toEqual({ first: 0, second: 0, appRows: 2 })
  expect(await client.query('app:logEntries' as any, {})).toEqual(['before', 'after'])
  // The child's own child (counter → audit) was rolled back with it.
  expect(await client.query('app:auditLog' as any, {})).toEqual(['a+2', 'a+3'])
})

test('a child’s error the app doesn’t catch: Convex prefixes it again, the app’s frames after a blank line', async () => {
  const err = await errorOf(client.mutation('app:addThenFailUncaught' as any, { name: 'u' }))
  expect(err.message).toMatch(/^\[Request ID: [0-9a-f]{16}\] Server Error\nUncaught Error: Uncaught Error: counter u refused\n    at handler \(\.\.\/convex\/components\/counter\/counters\.ts:43:10\)\n\n    at async handler \(\.\.\/convex\/app\.ts:209:4\)\n$/)
})

test('a component calls back into the app through a function handle', async () => {
  const { handle, result } = await client.mutation('app:viaHandle' as any, { entry: 'from handle' })
  expect(handle).toMatch(/^function:\/\/[0-9a-z]+#app:record$/)
  expect(result).toBe('recorded from handle')
  expect(await client.query('app:logEntries' as any, {})).toEqual(['before', 'after', 'from handle'])
  // A handle is the same every time it is made.
  expect((await client.mutation('app:viaHandle' as any, { entry: 'again' })).handle).toBe(handle)
})

test('function handles of a component’s functions are called and scheduled from the app', async () => {
  const { handle, value } = await client.mutation('app:componentHandle' as any, { name: 'h' })
  expect(handle).toMatch(/^function:\/\/[0-9a-z]+#counters:add$/)
  expect(value).toBe(1)
  expect(await until(() => client.query('app:get' as any, { name: 'h' }), (r: any) => r.first === 11)).toEqual({ first: 11, second: 0, appRows: 2 })
})

test('the scheduler: inside a component, and from the app into a component', async () => {
  // The job is the component's own: its `db.system` sees it.
  expect(await client.mutation('app:scheduleInComponent' as any, { name: 's', by: 4 })).toEqual({ name: 'counters.js:addInternal', state: 'pending' })
  expect(await client.mutation('app:scheduleIntoComponent' as any, { name: 's', by: 5 })).toBe('counters.js:add')
  expect(await until(() => client.query('app:get' as any, { name: 's' }), (r: any) => r.first === 9)).toEqual({ first: 9, second: 0, appRows: 2 })
})

test('a component sees its caller’s user but none of the deployment’s environment variables', async () => {
  await fetch(`${backend.url}/api/update_environment_variables`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Convex ${backend.adminKey}` },
    body: JSON.stringify({ changes: [{ name: 'APP_SECRET', value: 'top secret' }] }),
  })
  const admin = new ConvexHttpClient(backend.url)
  ;(admin as any).setAdminAuth(backend.adminKey, { subject: 'user-1', issuer: 'https://issuer.example' })
  expect(await admin.query('app:whoami' as any, {})).toEqual({ identity: 'user-1', secret: null, hasCloudUrl: true, componentPath: 'counter' })
  // From an action, the user doesn't cross into a component.
  expect(await admin.action('app:whoamiFromAction' as any, {})).toEqual({ identity: null, secret: null, hasCloudUrl: true, componentPath: 'counter' })
})

test('an id of the app’s table names nothing inside a component', async () => {
  expect(await client.query('app:foreignId' as any, {})).toBe(null)
})

test('actions call component actions, which call their own functions', async () => {
  expect(await client.action('app:actionAdd' as any, { name: 'act', by: 6 })).toBe(6)
  expect(await client.action('app:actionAdd' as any, { name: 'act', by: 1 })).toBe(7)
  expect(await client.query('app:get' as any, { name: 'act' })).toEqual({ first: 7, second: 0, appRows: 2 })
})

test('clients can’t reach a component’s functions; an admin can, by component path', async () => {
  // `/api/query` has no component path: the function is looked up in the app.
  expect((await errorOf(client.query('counters:get' as any, { name: 'a' }))).message).toMatch(/Could not find public function for 'counters:get'/)
  const admin = new ConvexHttpClient(backend.url)
  ;(admin as any).setAdminAuth(backend.adminKey)
  expect(await (admin as any).function(anyApi.counters.get, 'counter', { name: 'a' })).toBe(5)
  expect(await (admin as any).function(anyApi.counters.get, 'counter2', { name: 'a' })).toBe(7)
  // A component of a component, by its path. (Two scheduled jobs ran at once: order them.)
  expect(((await (admin as any).function(anyApi.entries.list, 'counter/audit', {})) as string[]).sort()).toEqual(['a+2', 'a+3', 'act+1', 'act+6', 'h+1', 'h+10', 's+4', 's+5'])
  expect(await (admin as any).function(anyApi.entries.list, 'counter2/audit', {})).toEqual(['a+7'])
  expect((await errorOf((admin as any).function(anyApi.counters.nope, 'counter', {}))).message).toMatch(/Could not find function for 'counters:nope' in 'counter'\. Did you forget to run `npx convex dev`\?/)
  expect((await errorOf((admin as any).function(anyApi.counters.get, 'nowhere', {}))).message).toMatch(/InternalServerError/)
  // Without an admin key, /api/function answers 403 (as Convex), component path or not.
  const res = await fetch(`${backend.url}/api/function`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: 'counters:get', componentPath: 'counter', args: { name: 'a' } }) })
  expect(res.status).toBe(403)
  expect(((await res.json()) as { code: string }).code).toBe('BadDeployKey')
})

test('db.vars.commitTs is unresolved inside the mutation and the commit timestamp after it', async () => {
  const first = await client.mutation('app:stamp' as any, {})
  const second = await client.mutation('app:stamp' as any, {})
  expect(first.readBack).toBe('[unresolved commit timestamp]')
  expect(typeof first.snapshotTs).toBe('bigint')
  const rows = await client.query('app:stamped' as any, {})
  expect(rows.map((r: any) => r.id)).toEqual([first.id, second.id])
  // Each is its commit's timestamp: after the snapshot its mutation read, in commit order.
  expect(rows[0].at).toBeGreaterThan(first.snapshotTs)
  expect(rows[1].at).toBeGreaterThan(rows[0].at)
  expect(second.snapshotTs).toBeGreaterThanOrEqual(rows[0].at)
})

test('a mutation may return db.vars.commitTs and pass it to a nested mutation: the caller gets the commit timestamp, over HTTP and the socket', async () => {
  const check = async (r: any) => {
    expect(typeof r.direct).toBe('bigint')
    expect([r.doc.at, r.nested.at]).toEqual([r.direct, r.direct])
    const rows: { id: string; at: bigint }[] = await client.query('app:stamped' as any, {})
    expect(rows.filter((row) => row.id === r.doc._id || row.id === r.nested.id).map((row) => row.at)).toEqual([r.direct, r.direct])
  }
  await check(await client.mutation('app:stampAndReturn' as any, {}))
  const socket = new ConvexClient(backend.url)
  try {
    await check(await socket.mutation('app:stampAndReturn' as any, {}))
  } finally {
    await socket.close()
  }
})


test('only a child’s public functions can be called from outside it', async () => {
  expect((await errorOf(client.mutation('app:callHidden' as any, { fn: 'nope' }))).message).toContain('Child component counter does not export [PathComponent("counters"), PathComponent("nope")]')
  expect((await errorOf(client.mutation('app:callHidden' as any, { fn: 'addInternal' }))).message).toContain('Child component counter does not export [PathComponent("counters"), PathComponent("addInternal")]')
  expect((await errorOf(client.action('app:callHiddenFromAction' as any, { fn: 'addInternal' }))).message).toContain("Couldn't resolve counter.counters.addInternal")
})

test('a component’s crons run in each of its instances', async () => {
  expect(await until(() => client.query('app:get' as any, { name: 'cron' }), (r: any) => r.first === 1 && r.second === 1)).toEqual({ first: 1, second: 1, appRows: 2 })
})

test('each component instance has its own file storage', async () => {
  const id = await client.action('app:storeInComponent' as any, { text: 'hello' })
  const seen = await client.query('app:fileSeenBy' as any, { id })
  expect(seen.app).toBe(null)
  expect(seen.appFiles).toBe(0)
  // Its URL names its component, as Convex's (`?component=<component id>`), and is read there.
  expect(seen.counter).toEqual({ url: `${backend.url}/api/storage/${id}?component=${componentId('counter')}`, size: 5, files: 1 })
  expect(seen.counter2).toEqual({ url: null, size: null, files: 0 })
  expect(await (await fetch(seen.counter.url)).text()).toBe('hello')
  for (const elsewhere of [`?component=${componentId('counter2')}`, `?component=${componentId('nowhere')}`]) {
    const answer = await fetch(`${backend.url}/api/storage/${id}${elsewhere}`)
    expect([answer.status, await answer.json()]).toEqual([404, { code: 'FileNotFound', message: `File ${id} not found` }])
  }
  // An upload URL a component made stores into that component.
  const url = await client.mutation('app:componentUploadUrl' as any, {})
  const { storageId } = (await (await fetch(url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'uploaded' })).json()) as { storageId: string }
  const after = await client.query('app:fileSeenBy' as any, { id: storageId })
  expect(after.counter2).toEqual({ url: `${backend.url}/api/storage/${storageId}?component=${componentId('counter2')}`, size: 8, files: 1 })
  expect(await (await fetch(after.counter2.url)).text()).toBe('uploaded')
  expect(after.counter.files).toBe(1)
  expect(after.appFiles).toBe(0)
})

test('HTTP routes of a component mounted under a prefix', async () => {
  const hello = await fetch(`${backend.siteUrl}/c2/hello`)
  expect(hello.status).toBe(200)
  // The component's router matches `/hello`; the request keeps its full URL.
  // Its CONVEX_SITE_URL is where it is mounted.
  expect(await hello.json()).toEqual({ url: `${backend.siteUrl}/c2/hello`, count: 7, user: null, siteUrl: `${backend.siteUrl}/c2` })
  // An exact route of the app's own router wins over the mount.
  expect(await (await fetch(`${backend.siteUrl}/c2/app`)).text()).toBe("the app's own route")
  const missing = await fetch(`${backend.siteUrl}/c2/nope`)
  expect(missing.status).toBe(404)
  expect(await missing.text()).toBe('No matching routes found')
  // The unmounted instance of the same definition serves nothing.
  expect((await fetch(`${backend.siteUrl}/hello`)).status).toBe(404)
})

test('a component sees what its parent passes it: literals, and live reads of the parent’s variables', async () => {
  const admin = new ConvexHttpClient(backend.url)
  ;(admin as any).setAdminAuth(backend.adminKey)
  expect(await (admin as any).function(anyApi.entries.env, 'counter/audit', {})).toEqual({ TAG: 'counted', GREETING: null, APP_GREETING: null })
  await fetch(`${backend.url}/api/update_environment_variables`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Convex ${backend.adminKey}` },
    body: JSON.stringify({ changes: [{ name: 'APP_GREETING', value: 'hi' }] }),
  })
  expect(await (admin as any).function(anyApi.entries.env, 'counter/audit', {})).toEqual({ TAG: 'counted', GREETING: 'hi', APP_GREETING: null })
  // The other instance was passed nothing but its child's literal.
  expect(await (admin as any).function(anyApi.entries.env, 'counter2/audit', {})).toEqual({ TAG: 'counted', GREETING: null, APP_GREETING: null })
})

test('Node.js actions call component functions', async () => {
  expect(await client.action('nodeCalls:addFromNode' as any, { name: 'node', by: 4 })).toEqual({ value: 4, after: 5, digest: await sha8('5') })
  expect(await client.query('app:get' as any, { name: 'node' })).toEqual({ first: 5, second: 0, appRows: 2 })
})

async function sha8(text: string): Promise<string> {
  const { createHash } = await import('node:crypto')
  return createHash('sha256').update(text).digest('hex').slice(0, 8)
}

test('a function and the component function it calls may each run a paginated query', async () => {
  expect(await client.query('app:pagedBoth' as any, {})).toEqual({ mine: 1, theirs: 2 })
})

test('handles that name no function fail with Convex’s messages', async () => {
  expect(await client.mutation('app:badHandles' as any, { handle: 'function://k57000000000000000000000000000001#app:gone' })).toEqual(['Function handle not found', 'Function handle not found'])
  expect((await client.mutation('app:badHandles' as any, { handle: 'not-a-handle' }))[0]).toBe("Could not find public function for 'not-a-handle'. Did you forget to run `npx convex dev` or `npx convex deploy`?")
})

test('a component’s search index covers its own documents only', async () => {
  await client.mutation('app:add' as any, { name: 'zebra crossing', by: 1 })
  await client.mutation('app:addToSecond' as any, { name: 'zebra stripes', by: 1 })
  expect(await client.query('app:searchBoth' as any, { text: 'zebra' })).toEqual({ first: ['zebra crossing'], second: ['zebra stripes'] })
})

test('npx convex run --inline-query runs a one-off read-only query, in the app or in a component', async () => {
  const run = async (...extra: string[]) => (await convexCli(appDir, ['run', ...extra, '--url', backend.url, '--admin-key', backend.adminKey])).stdout.trim()
  await client.mutation('app:add' as any, { name: 'inline', by: 3 })
  expect(await run('--inline-query', '(await ctx.db.query("counters").collect()).filter((c) => c.name === "inline").map((c) => c.value)')).toBe('[\n  -1\n]')
  // In a component, its own tables: the same name is another table there.
  expect(await run('--inline-query', '(await ctx.db.query("counters").withIndex("by_name", (q) => q.eq("name", "inline")).unique())?.value', '--component', 'counter')).toBe('3')
  expect(await run('--inline-query', '(await ctx.db.query("entries").collect()).map((e) => e.what).includes("inline+3")', '--component', 'counter/audit')).toBe('true')
  expect(await run('--inline-query', '(await ctx.db.query("entries").collect()).length')).toBe('0')
  // Read-only: a write fails.
  const write = await errorOf(run('--inline-query', 'await ctx.db.insert("log", { entry: "nope" })'))
  expect(String((write as any).stderr ?? write.message)).toContain('insert')
})

test('/api/run_test_function refuses a wrong admin key, a missing module and an unknown component', async () => {
  const post = (body: unknown) => fetch(`${backend.url}/api/run_test_function`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const source = 'import { query } from "convex:/_system/repl/wrappers.js"; export default query({ handler: async () => 1 });'
  const wrongKey = await post({ adminKey: 'nope', bundle: { path: 'testQuery.js', source }, args: {}, format: 'json' })
  expect(wrongKey.status).toBe(401)
  expect(((await wrongKey.json()) as { code: string }).code).toBe('BadAdminKey')
  const noSource = await post({ adminKey: backend.adminKey, bundle: {}, args: {}, format: 'json' })
  expect(noSource.status).toBe(400)
  const nowhere = await post({ adminKey: backend.adminKey, bundle: { path: 'testQuery.js', source }, args: {}, format: 'json', componentId: 'x' })
  expect(await nowhere.json()).toEqual({ code: 'ComponentNotFound', message: 'Component with ID "x" not found' })
  const ok = await post({ adminKey: backend.adminKey, bundle: { path: 'testQuery.js', source }, args: {}, format: 'json' })
  expect(await ok.json()).toEqual({ status: 'success', value: 1 })
})
