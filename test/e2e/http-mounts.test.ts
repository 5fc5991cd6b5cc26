// HTTP routing through `defineApp({ httpPrefix })` and components mounted with `app.use(c, {
// httpPrefix })`, as Convex routes it (application_function_runner/http_routing.rs): the variants
// are those of Convex's own component-tests projects (http_prefix_and_mount_routing,
// http_mount_routing, http_no_prefix_mounting).
import { writeFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { expect, test } from 'vitest'
import { convexCli, useDeployedBackend } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'

let backend: TestBackend
let appDir: string

useDeployedBackend('http-mounts', (t) => ({ backend, appDir } = t))

const push = (dir: string) => convexCli(dir, ['deploy', '--url', backend.url, '--admin-key', backend.adminKey, '-y'])
function appConfig(body: string): void {
  writeFileSync(join(appDir, 'convex/convex.config.ts'), `import { defineApp } from "convex/server";\nimport routed from "./components/routed/convex.config";\n${body}\nexport default app;\n`)
}
async function get(path: string, init?: RequestInit): Promise<[number, string]> {
  const res = await fetch(`${backend.siteUrl}${path}`, init)
  return [res.status, await res.text()]
}
const post = (path: string, body: string) => get(path, { method: 'POST', body })

test("the app's prefix: its own routes below /api/, a component mounted at the root takes the rest", async () => {
  // Matched below the prefix; the request keeps its full URL.
  expect(await post('/api/echo', 'hi')).toEqual([200, 'app echo: hi (/api/echo)'])
  expect(await get('/api/files/a/b')).toEqual([200, 'app files /api/files/a/b'])
  // Outside the prefix, the app's routes don't apply: the mount at `/` gets it.
  expect(await post('/echo', 'hi')).toEqual([200, 'component echo: hi'])
  expect(await get('/greet')).toEqual([200, 'hello from the component'])
  // An exact route matches on method too: POST /api/only-get is no route of the app's, and the
  // mount at `/` (the longest match) gets all of `/api/only-get`.
  expect(await get('/api/only-get')).toEqual([200, 'app GET'])
  expect(await post('/api/only-get', '')).toEqual([404, 'No matching routes found'])
  expect(await get('/api/nothing')).toEqual([200, 'component catch-all /api/nothing'])
  // The grandchild, mounted at /gc/ inside the component, and its site URL.
  expect(await get('/gc/where')).toEqual([200, `grandchild at ${backend.siteUrl}/gc`])
})

test('a component mounted under /api/ with no app router: exact routes, prefixes, grandchildren', async () => {
  rmSync(join(appDir, 'convex/http.ts'))
  appConfig('const app = defineApp();\napp.use(routed, { httpPrefix: "/api/" });')
  await push(appDir)
  expect(await get('/api/greet')).toEqual([200, 'hello from the component'])
  expect(await post('/api/echo', 'x')).toEqual([200, 'component echo: x'])
  expect(await get('/api/gc/where')).toEqual([200, `grandchild at ${backend.siteUrl}/api/gc`])
  // The grandchild's router answers what it doesn't route, with the path it matches on.
  expect(await get('/api/gc/nope')).toEqual([404, 'No matching routes found'])
  // Outside every mount, with no router of the app's: Convex's text.
  expect(await get('/greet')).toEqual([404, 'This Convex deployment does not have HTTP actions enabled.'])
})

test('a component used without httpPrefix serves no HTTP routes', async () => {
  appConfig('const app = defineApp();\napp.use(routed);')
  await push(appDir)
  expect(await get('/greet')).toEqual([404, 'This Convex deployment does not have HTTP actions enabled.'])
  expect(await get('/gc/where')).toEqual([404, 'This Convex deployment does not have HTTP actions enabled.'])
})

test("a mount that is the prefix of one of the app's prefix routes fails the push, as in Convex", async () => {
  writeFileSync(
    join(appDir, 'convex/http.ts'),
    'import { httpRouter } from "convex/server";\nimport { httpAction } from "./_generated/server";\nconst http = httpRouter();\nhttp.route({ pathPrefix: "/api/", method: "GET", handler: httpAction(async () => new Response("app")) });\nexport default http;\n',
  )
  appConfig('const app = defineApp();\napp.use(routed, { httpPrefix: "/api/" });')
  const err = (await push(appDir).then(() => null, (e: { stderr: string }) => e)) as { stderr: string } | null
  expect(err?.stderr).toContain('HTTP mount HttpMountPath("/api/") is invalid: Overlap with existing prefix route')
  // The failed push changed nothing: the last one's routes still answer.
  expect(await get('/greet')).toEqual([404, 'This Convex deployment does not have HTTP actions enabled.'])
})
