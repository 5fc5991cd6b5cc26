import { expect, test } from 'vitest'
import { ConvexClient, ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { convexCli, errorOf, until, useDeployedBackend } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'

const api = anyApi as any
let backend: TestBackend
let appDir: string | undefined
let client: ConvexHttpClient
const cli = (...args: string[]) => convexCli(appDir!, ['env', ...args, '--url', backend.url, '--admin-key', backend.adminKey])

useDeployedBackend('basic', (t) => ({ backend, appDir, client } = t))

test('npx convex env set / get / list / remove, visible to the next call', async () => {
  expect(await client.query(api.values.env, { name: 'GREETING' })).toEqual({ value: null, importedAtLoad: 'unset' })
  await cli('set', 'GREETING', 'hello world')
  await cli('set', 'API_KEY=abc123')
  expect(await client.query(api.values.env, { name: 'GREETING' })).toEqual({ value: 'hello world', importedAtLoad: 'hello world' })
  expect((await cli('get', 'GREETING')).stdout.trim()).toBe('hello world')
  expect((await cli('list')).stdout.trim().split('\n')).toEqual(['API_KEY=abc123', 'GREETING=hello world'])
  await cli('remove', 'GREETING')
  expect(await client.query(api.values.env, { name: 'GREETING' })).toEqual({ value: null, importedAtLoad: 'unset' })
  expect((await cli('list')).stdout.trim()).toBe('API_KEY=abc123')
})

test("process.env lists nothing and logs as [process.env], as Convex's: a secret reaches no log by accident; a write to it doesn't stick", async () => {
  const res = await fetch(`${backend.url}/api/query`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: 'values:envShape', args: { name: 'API_KEY' }, format: 'json' }) })
  expect(await res.json()).toEqual({ status: 'success', value: { keys: [], json: '{}', has: false, value: 'abc123' }, logLines: ['[LOG] [process.env]'] })
  const unset = await client.query(api.values.envShape, { name: 'NOT_SET' })
  expect(unset).toEqual({ keys: [], json: '{}', has: false, value: null })
  // The call before replaced `process`: the next ones see the variables all the same.
  for (let i = 0; i < 3; i++) expect(await client.query(api.values.env, { name: 'API_KEY' })).toEqual({ value: 'abc123', importedAtLoad: 'unset' })
})

test('a subscribed query that read a variable, in its call or when its module loaded, runs again when it changes', async () => {
  const live = new ConvexClient(backend.url, { unsavedChangesWarning: false } as any)
  try {
    const seen: unknown[] = []
    let wake: (() => void) | null = null
    live.onUpdate(api.values.env, { name: 'LIVE_VAR' }, (v: unknown) => {
      seen.push(v)
      wake?.()
    })
    const next = async (pred: (v: any) => boolean) => {
      while (!seen.some(pred)) await new Promise<void>((r) => (wake = r))
    }
    await next((v) => v.value === null)
    await cli('set', 'LIVE_VAR', 'one')
    await next((v) => v.value === 'one')
    await cli('set', 'GREETING', 'read at load')
    await next((v) => v.importedAtLoad === 'read at load')
    await cli('remove', 'LIVE_VAR')
    await cli('remove', 'GREETING')
    await next((v) => v.value === null && v.importedAtLoad === 'unset' && seen.length > 3)
  } finally {
    await live.close()
  }
})

test('environment variables survive a restart', async () => {
  await backend.stop()
  await backend.restart()
  expect(await new ConvexHttpClient(backend.url).query(api.values.env, { name: 'API_KEY' })).toEqual({ value: 'abc123', importedAtLoad: 'unset' })
})

test('invalid names and oversized values are refused and nothing changes', async () => {
  const post = (changes: unknown) =>
    fetch(`${backend.url}/api/update_environment_variables`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Convex ${backend.adminKey}` }, body: JSON.stringify({ changes }) })
  const bad = await post([{ name: 'OK_ONE', value: 'x' }, { name: '1bad', value: 'x' }])
  expect(bad.status).toBe(400)
  expect(((await bad.json()) as any).code).toBe('EnvironmentVariableNameInvalid')
  const big = await post([{ name: 'BIG', value: 'x'.repeat(8 * 1024 + 1) }])
  expect(big.status).toBe(400)
  expect(((await big.json()) as any).code).toBe('EnvironmentVariableValueTooLarge')
  expect(await client.query(api.values.env, { name: 'OK_ONE' })).toEqual({ value: null, importedAtLoad: 'unset' })
  const anon = await fetch(`${backend.url}/api/update_environment_variables`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"changes":[]}' })
  expect(anon.status).toBe(403)
})

test("Convex's deployment platform API: /api/v1/update_environment_variables and list_environment_variables (also at /api), deployment_info", async () => {
  const auth = { authorization: `Convex ${backend.adminKey}` }
  const update = await fetch(`${backend.url}/api/v1/update_environment_variables`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ changes: [{ name: 'ZED', value: 'last' }, { name: 'ALPHA', value: 'first' }] }) })
  expect(update.status).toBe(200)
  expect(await update.text()).toBe('')
  expect(((await client.query(api.values.env, { name: 'ALPHA' })) as { value: string }).value).toBe('first')
  for (const path of ['/api/v1/list_environment_variables', '/api/list_environment_variables']) {
    const list = await fetch(`${backend.url}${path}`, { headers: auth })
    expect(list.status).toBe(200)
    const text = await list.text()
    expect(Object.keys(JSON.parse(text).environmentVariables)).toEqual([...Object.keys(JSON.parse(text).environmentVariables)].sort())
    expect(JSON.parse(text).environmentVariables).toMatchObject({ ALPHA: 'first', ZED: 'last' })
    expect((await fetch(`${backend.url}${path}`)).status).toBe(403)
  }
  await fetch(`${backend.url}/api/v1/update_environment_variables`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ changes: [{ name: 'ZED', value: null }, { name: 'ALPHA', value: null }] }) })
  expect(((await (await fetch(`${backend.url}/api/v1/list_environment_variables`, { headers: auth })).json()) as any).environmentVariables).not.toHaveProperty('ALPHA')
  const info = await fetch(`${backend.url}/api/v1/deployment_info`, { headers: auth })
  expect(await info.json()).toEqual({ kind: 'selfHosted' })
  expect((await fetch(`${backend.url}/api/v1/deployment_info`)).status).toBe(403)
})

test("pause_deployment / unpause_deployment: the app's functions fail with Convex's message (the system's still run), a due job waits and runs once resumed", async () => {
  const auth = { authorization: `Convex ${backend.adminKey}` }
  const admin = new ConvexHttpClient(backend.url)
  ;(admin as any).setAdminAuth(backend.adminKey)
  const paused = "Cannot run functions while this deployment is paused. Resume the deployment in the dashboard settings to allow functions to run."
  await client.mutation(api.scheduling.runAfter, { name: 'while-paused', delayMs: 300 })
  const due = Date.now() + 300
  expect((await fetch(`${backend.url}/api/v1/pause_deployment`, { method: 'POST' })).status).toBe(403)
  const pause = await fetch(`${backend.url}/api/v1/pause_deployment`, { method: 'POST', headers: auth })
  expect([pause.status, await pause.text()]).toEqual([200, ''])
  expect((await fetch(`${backend.url}/api/v1/pause_deployment`, { method: 'POST', headers: auth })).status).toBe(200)
  expect((await errorOf(client.query(api.counter.get, { name: 'while-paused' }))).message).toMatch(new RegExp(`^\\[Request ID: [0-9a-f]{16}\\] Server Error\\n${paused.replace(/\./g, '\\.')}\\n?$`))
  expect((await errorOf(admin.mutation(api.counter.increment, { name: 'x' }))).message).toContain(paused)
  const http = await fetch(`${backend.siteUrl}/hello`)
  expect(http.status).toBe(500)
  expect(await http.text()).toContain(paused)
  expect(await admin.query('_system/frontend/backendState:backendState' as any, {})).toEqual({ system: 'none', usage_limit: 'none', user: 'paused' })
  expect(await admin.query('_system/frontend/deploymentState:deploymentState' as any, {})).toEqual({ state: 'paused' })
  // Past the job's time (and some), it hasn't run: the scheduler waits while the deployment is paused.
  await until(() => Date.now(), (now) => now > due + 700)
  const counters = (await admin.query('_system/frontend/paginatedTableDocuments:default' as any, { table: 'counters', filters: null, paginationOpts: { cursor: null, numItems: 100 } })) as { page: { name: string }[] }
  expect(counters.page.map((c) => c.name)).not.toContain('while-paused')
  const resume = await fetch(`${backend.url}/api/v1/unpause_deployment`, { method: 'POST', headers: auth })
  expect(resume.status).toBe(200)
  expect(await until(() => client.query(api.counter.get, { name: 'while-paused' }), (n) => n === 1)).toBe(1)
  const after = (await admin.query('_system/frontend/paginatedTableDocuments:default' as any, { table: 'counters', filters: null, paginationOpts: { cursor: null, numItems: 100 } })) as { page: { name: string }[] }
  expect(after.page.map((c) => c.name)).toContain('while-paused')
  const again = await fetch(`${backend.url}/api/v1/unpause_deployment`, { method: 'POST', headers: auth })
  expect(again.status).toBe(400)
  expect(await again.json()).toEqual({ code: 'UnpauseDeploymentFailed', message: 'Deployment is not currently paused.' })
  expect(await admin.query('_system/frontend/backendState:backendState' as any, {})).toEqual({ system: 'none', usage_limit: 'none', user: 'none' })
})

test('update_canonical_url: functions see the URL as CONVEX_CLOUD_URL, stored files get URLs on it, get_canonical_urls gives it; without a url the backend\'s own is back', async () => {
  const auth = { authorization: `Convex ${backend.adminKey}`, 'content-type': 'application/json' }
  const canonical = async () => (await (await fetch(`${backend.url}/api/v1/get_canonical_urls`, { headers: auth })).json()) as { convexCloudUrl: string; convexSiteUrl: string }
  expect(await canonical()).toEqual({ convexCloudUrl: backend.url, convexSiteUrl: backend.siteUrl })
  const set = await fetch(`${backend.url}/api/v1/update_canonical_url`, { method: 'POST', headers: auth, body: JSON.stringify({ requestDestination: 'convexCloud', url: 'https://api.example.com' }) })
  expect([set.status, await set.text()]).toEqual([200, ''])
  expect(await canonical()).toEqual({ convexCloudUrl: 'https://api.example.com', convexSiteUrl: backend.siteUrl })
  expect(((await client.query(api.values.env, { name: 'CONVEX_CLOUD_URL' })) as { value: string }).value).toBe('https://api.example.com')
  expect(((await client.query(api.values.env, { name: 'CONVEX_SITE_URL' })) as { value: string }).value).toBe(backend.siteUrl)
  const stored = (await client.action(api.files.storeAndRead, { text: 'canonical' })) as { url: string }
  expect(stored.url.startsWith('https://api.example.com/api/storage/')).toBe(true)
  await fetch(`${backend.url}/api/update_canonical_url`, { method: 'POST', headers: auth, body: JSON.stringify({ requestDestination: 'convexCloud' }) })
  expect(await canonical()).toEqual({ convexCloudUrl: backend.url, convexSiteUrl: backend.siteUrl })
  expect(((await client.query(api.values.env, { name: 'CONVEX_CLOUD_URL' })) as { value: string }).value).toBe(backend.url)
  const bad = await fetch(`${backend.url}/api/v1/update_canonical_url`, { method: 'POST', headers: auth, body: JSON.stringify({ requestDestination: 'elsewhere', url: 'https://x' }) })
  expect(bad.status).toBe(400)
  expect(await bad.json()).toEqual({ code: 'BadJsonBody', message: 'Failed to deserialize the JSON body into the target type: requestDestination: unknown variant `elsewhere`, expected `convexCloud` or `convexSite`' })
})
