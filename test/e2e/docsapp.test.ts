/**
 * An app written the way Convex's docs and demos write apps: `defineApp({ env })` in
 * convex.config.ts, `CONVEX_SITE_URL` in auth.config.ts (Convex Auth's template), named
 * `httpAction` exports in http.ts and in other modules.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { cleanup, convexCli, prepareFixture, startBackend } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'

const api = anyApi as any
const CLOUD = 'https://cloud.concave.test'
const SITE = 'https://site.concave.test'
let backend: TestBackend
let appDir: string
let client: ConvexHttpClient
const cli = (...args: string[]) => convexCli(appDir, [...args, '--url', backend.url, '--admin-key', backend.adminKey])
const deploy = () => cli('deploy', '-y')
async function failure(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (e) {
    const { stdout, stderr } = e as { stdout?: string; stderr?: string }
    return `${stdout ?? ''}${stderr ?? ''}`
  }
  throw new Error('expected the command to fail')
}

beforeAll(async () => {
  backend = await startBackend({ args: ['--convex-origin', CLOUD, '--convex-site', SITE] })
  appDir = prepareFixture('docsapp')
  client = new ConvexHttpClient(backend.url)
})

afterAll(async () => {
  await backend?.stop()
  cleanup(backend?.dataDir)
  cleanup(appDir)
})

test('a required variable of defineApp({ env }) must be set before the push lands, and must fit its validator', async () => {
  // The CLI reads the names out of Convex's MissingEnvironmentVariables message and says it its way.
  expect(await failure(deploy())).toContain('Environment variable APP_SECRET is declared as required in convex.config.ts but its value was not set.')
  await cli('env', 'set', 'APP_SECRET', 's3cret-value')
  await cli('env', 'set', 'APP_MODE', 'staging')
  expect(await failure(deploy())).toContain('Environment variable APP_MODE does not match its declared validator')
  await cli('env', 'set', 'APP_MODE', 'prod')
  await deploy()
  // The CLI types `env` from what the push reported, with the built-in variables first.
  const server = readFileSync(join(appDir, 'convex/_generated/server.d.ts'), 'utf8')
  expect(server).toContain('type Env = {\n  readonly CONVEX_CLOUD_URL: string;\n  readonly CONVEX_SITE_URL: string;\n  readonly APP_SECRET: string;\n  readonly APP_MODE: "dev" | "prod" | undefined;\n};')
  // Once declared, a required variable can't be removed, and a set value must fit.
  expect(await failure(cli('env', 'remove', 'APP_SECRET'))).toContain('Cannot delete required environment variables: APP_SECRET. These are declared as required in the app definition.')
  expect(await failure(cli('env', 'set', 'APP_MODE', 'test'))).toContain('Environment variable APP_MODE does not match its declared validator')
  expect(await client.query(api.urls.inQuery, {})).toMatchObject({ secret: 's3cret-value' })
})

test('CONVEX_CLOUD_URL and CONVEX_SITE_URL are in every function, at load and at call, V8 and Node', async () => {
  const urls = { cloud: CLOUD, site: SITE }
  expect(await client.query(api.urls.inQuery, {})).toEqual({ ...urls, atLoad: urls, secret: 's3cret-value' })
  expect(await client.mutation(api.urls.inMutation, {})).toEqual(urls)
  expect(await client.action(api.urls.inAction, {})).toEqual(urls)
  expect(await client.action(api.nodeUrls.inNodeAction, {})).toEqual(urls)
  expect(await (await fetch(`${backend.siteUrl}/urls`)).json()).toEqual(urls)
})

test('convex env shows the built-in variables as Convex does: get finds them, list leaves them out, set refuses them', async () => {
  expect((await cli('env', 'get', 'CONVEX_SITE_URL')).stdout.trim()).toBe(SITE)
  expect((await cli('env', 'get', 'CONVEX_CLOUD_URL')).stdout.trim()).toBe(CLOUD)
  expect((await cli('env', 'list')).stdout.trim().split('\n')).toEqual(['APP_MODE=prod', 'APP_SECRET=s3cret-value'])
  expect(await failure(cli('env', 'set', 'CONVEX_SITE_URL', 'https://elsewhere.test'))).toContain('Environment variable with name "CONVEX_SITE_URL" is built-in and cannot be overridden')
  expect((await cli('env', 'get', 'CONVEX_SITE_URL')).stdout.trim()).toBe(SITE)
})

test('named httpAction exports push and serve; they are not listed as functions', async () => {
  expect(await (await fetch(`${backend.siteUrl}/ping`)).text()).toBe('pong')
  const res = await fetch(`${backend.siteUrl}/webhook`, { method: 'POST', body: JSON.stringify({ kind: 'signup' }) })
  expect(res.status).toBe(202)
  expect(await client.query(api.events.byKind, { kind: 'signup' })).toEqual(['signup'])
  // An httpAction export is not a function clients can call.
  const admin = new ConvexHttpClient(backend.url)
  ;(admin as any).setAdminAuth(backend.adminKey)
  await expect(admin.action(api.webhooks.receive, {})).rejects.toThrow("Could not find public function for 'webhooks:receive'. Did you forget to run `npx convex dev` or `npx convex deploy`?")
  // A call of any kind (what `npx convex run` makes) says so the way Convex does.
  const any = await fetch(`${backend.url}/api/function`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Convex ${backend.adminKey}` }, body: JSON.stringify({ path: 'webhooks:receive', args: {}, format: 'json' }) })
  const body = (await any.json()) as { status: string; errorMessage: string }
  expect(body.status).toBe('error')
  expect(body.errorMessage).toMatch(/^\[Request ID: [0-9a-f]{16}\] Server Error\nCould not find function for 'webhooks:receive'\. Did you forget to run `npx convex dev`\?\n$/)
})

test('index ranges continue past _creationTime onto _id; convex-helpers streams paginate across pages', async () => {
  await client.mutation(api.posts.seed, { channel: 'a', count: 7 })
  await client.mutation(api.posts.seed, { channel: 'b', count: 5 })
  const all = (await client.query(api.posts.all, { channel: 'a' })) as { id: string; t: number; n: number }[]
  expect(all.map((p) => p.n)).toEqual([0, 1, 2, 3, 4, 5, 6])
  const p3 = all[3]!
  const onId = (op: string) => client.query(api.posts.onId, { channel: 'a', creationTime: p3.t, id: p3.id, op })
  expect(await onId('eq')).toEqual([3])
  expect(await onId('gte')).toEqual([3])
  expect(await onId('lte')).toEqual([3])
  expect(await onId('gt')).toEqual([])
  expect(await onId('lt')).toEqual([])
  // Page 2 of a merged stream resumes from a cursor holding (channel, _creationTime, _id).
  const seen: string[] = []
  let cursor: string | null = null
  for (let pages = 0; pages < 10; pages++) {
    const r = (await client.query(api.posts.merged, { a: 'a', b: 'b', paginationOpts: { numItems: 5, cursor } })) as { page: string[]; isDone: boolean; continueCursor: string }
    seen.push(...r.page)
    if (r.isDone) break
    cursor = r.continueCursor
  }
  expect(seen).toEqual(['a0', 'a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'b0', 'b1', 'b2', 'b3', 'b4'])
})

test("range shapes Convex refuses fail with Convex's messages", async () => {
  expect(await client.query(api.posts.badRange, { shape: 'skip' })).toBe(
    'Tried to query index posts.by_channel but the query didn\'t use the index fields in order.\nIndex fields: ["channel", "_creationTime"]\nQuery fields: ["_creationTime"]\nFirst incorrect field: "_creationTime"\nFor more information see https://docs.convex.dev/using/indexes.',
  )
  expect(await client.query(api.posts.badRange, { shape: 'unknown' })).toBe(
    'The index range included a comparison with "nope", but posts.by_channel with fields ["channel", "_creationTime"] doesn\'t index this field. For more information see https://docs.convex.dev/using/indexes.',
  )
})

test('vector search as the docs write it: vectorSearch in an action with a filter, documents loaded by a query', async () => {
  await client.mutation(api.movies.add, { title: 'Alien', genre: 'scifi', embedding: [1, 0, 0] })
  await client.mutation(api.movies.add, { title: 'Arrival', genre: 'scifi', embedding: [0.8, 0.6, 0] })
  await client.mutation(api.movies.add, { title: 'Amélie', genre: 'romance', embedding: [0.9, 0, 0.1] })
  expect(await client.action(api.movies.similar, { embedding: [1, 0, 0] })).toEqual([
    { title: 'Alien', score: 1 },
    { title: 'Amélie', score: 0.994 },
  ])
  expect(await client.action(api.movies.similar, { embedding: [1, 0, 0], genre: 'scifi' })).toEqual([
    { title: 'Alien', score: 1 },
    { title: 'Arrival', score: 0.8 },
  ])
})

test('a multipart upload through an HTTP action: the file stored with its type, the fields kept', async () => {
  const form = new FormData()
  form.append('note', 'holiday')
  form.append('file', new File([new Uint8Array([137, 80, 78, 71, 1, 2, 3])], 'pic.png', { type: 'image/png' }))
  const res = await fetch(`${backend.siteUrl}/upload`, { method: 'POST', body: form })
  expect([res.status, res.status === 200 ? '' : await res.text()]).toEqual([200, ''])
  const body = (await res.json()) as { storageId: string; name: string; type: string; size: number }
  expect([body.name, body.type, body.size]).toEqual(['pic.png', 'image/png', 7])
  const [upload] = (await client.query(api.uploads.list, {})) as { name: string; note: string; url: string }[]
  expect([upload!.name, upload!.note]).toEqual(['pic.png', 'holiday'])
  // Files are served at the deployment's public URL (--convex-origin): here, this backend.
  expect(upload!.url.startsWith(`${CLOUD}/api/storage/`)).toBe(true)
  const served = await fetch(upload!.url.replace(CLOUD, backend.url))
  expect(served.headers.get('content-type')).toBe('image/png')
  expect([...new Uint8Array(await served.arrayBuffer())]).toEqual([137, 80, 78, 71, 1, 2, 3])
})
