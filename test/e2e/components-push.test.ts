import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect, test } from 'vitest'
import { ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { convexCli, errorOf, useDeployedBackend } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'
import { componentId } from '../../src/functions/components.ts'

let backend: TestBackend
let appDir: string
let client: ConvexHttpClient

useDeployedBackend('components', (t) => ({ backend, client, appDir } = t as typeof t & { appDir: string }))

const CONFIG = 'convex/convex.config.ts'

/** Pushes the app with its config changed (typecheck off: app code may still name the old tree). */
async function pushWithConfig(config: string): Promise<string> {
  writeFileSync(join(appDir, CONFIG), config)
  const { stdout, stderr } = await convexCli(appDir, ['deploy', '--url', backend.url, '--admin-key', backend.adminKey, '-y', '--typecheck', 'disable'])
  return stdout + stderr
}

function admin(): ConvexHttpClient {
  const c = new ConvexHttpClient(backend.url)
  ;(c as any).setAdminAuth(backend.adminKey)
  return c
}

const WITHOUT_SECOND = `import { defineApp } from "convex/server";
import { v } from "convex/values";
import counter from "./components/counter/convex.config";
const app = defineApp({ env: { APP_GREETING: v.optional(v.string()) } });
app.use(counter, { env: { GREETING: app.env.APP_GREETING } });
export default app;
`

test('a push that drops a component unmounts it: functions gone, data kept, back on remount', async () => {
  const original = readFileSync(join(appDir, CONFIG), 'utf8')
  expect(await client.mutation('app:addToSecond' as any, { name: 'k', by: 3 })).toBe(3)
  const out = await pushWithConfig(WITHOUT_SECOND)
  expect(out).toContain('counter2')
  expect((await errorOf(client.mutation('app:addToSecond' as any, { name: 'k', by: 1 }))).message).toContain('Child component counter2 not found')
  // As Convex: an unmounted component keeps its path, its functions are gone; a path of no component is an internal error.
  expect((await errorOf((admin() as any).function(anyApi.counters.get, 'counter2', { name: 'k' }))).message).toMatch(/Server Error\nCould not find function for 'counters:get' in 'counter2'\. Did you forget to run `npx convex dev`\?/)
  expect((await errorOf((admin() as any).function(anyApi.counters.get, 'never', { name: 'k' }))).message).toMatch(/InternalServerError/)
  // The other instance, and the nested one below it, are untouched.
  expect(await client.mutation('app:add' as any, { name: 'k', by: 1 })).toBe(1)
  await pushWithConfig(original)
  expect(await (admin() as any).function(anyApi.counters.get, 'counter2', { name: 'k' })).toBe(3)
  expect(await (admin() as any).function(anyApi.entries.list, 'counter2/audit', {})).toEqual(['k+3'])
})

test('an unmounted component’s data can be deleted, and only then', async () => {
  const original = readFileSync(join(appDir, CONFIG), 'utf8')
  const del = (id: string) =>
    fetch(`${backend.url}/api/delete_component`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Convex ${backend.adminKey}` }, body: JSON.stringify({ componentId: id }) })
  const mounted = await del(componentId('counter2'))
  expect(mounted.status).toBe(400)
  expect(await mounted.json()).toEqual({ code: 'ComponentMustBeUnmounted', message: 'Component must be unmounted before deletion' })
  await pushWithConfig(WITHOUT_SECOND)
  const deleted = await del(componentId('counter2'))
  // As Convex: 200 with no body; gone, it is not found (404).
  expect([deleted.status, await deleted.text()]).toEqual([200, ''])
  const again = await del(componentId('counter2'))
  expect([again.status, ((await again.json()) as { code: string }).code]).toEqual([404, 'ComponentNotFound'])
  // Mounted again, it starts empty (its child's data went with it).
  await pushWithConfig(original)
  expect(await (admin() as any).function(anyApi.counters.get, 'counter2', { name: 'k' })).toBe(0)
  expect(await (admin() as any).function(anyApi.entries.list, 'counter2/audit', {})).toEqual([])
})

/**
 * Pushes with one file of the app rewritten by `edit`, expects the push to fail saying `message`,
 * and puts the file back.
 */
async function expectPushFails(file: string, edit: (text: string) => string, message: string): Promise<void> {
  const path = join(appDir, file)
  const before = readFileSync(path, 'utf8')
  const after = edit(before)
  expect(after).not.toBe(before)
  writeFileSync(path, after)
  try {
    const failed = await errorOf(convexCli(appDir, ['deploy', '--url', backend.url, '--admin-key', backend.adminKey, '-y', '--typecheck', 'disable']))
    expect(String((failed as any).stdout) + String((failed as any).stderr)).toContain(message)
  } finally {
    writeFileSync(path, before)
  }
}

test('bad component trees fail the push with Convex’s errors, and the last push keeps serving', async () => {
  await expectPushFails(CONFIG, (t) => t.replace('app.use(counter, { name: "counter2", httpPrefix: "/c2" });', 'app.use(counter);'), 'Component ComponentDefinitionPath { path: "" } has multiple child components with the same name: ComponentName(Identifier("counter"))')
  await expectPushFails('convex/components/audit/convex.config.ts', () => `import { defineComponent } from "convex/server";\nimport counter from "../counter/convex.config";\nconst c = defineComponent("audit");\nc.use(counter);\nexport default c;\n`, 'Found cyclic definition dependency')
  // A required variable of a component that its parent doesn't pass.
  await expectPushFails('convex/components/counter/convex.config.ts', (t) => t.replace('{ env: { TAG: "counted", GREETING: component.env.GREETING } }', '{ env: { GREETING: component.env.GREETING } }'), 'Component [ComponentName(Identifier("counter")), ComponentName(Identifier("audit"))] is missing required env var Identifier("TAG")')
  // A parent's variable passed on must fit the child's: not optional for a required one, within its validator.
  const AUDIT = 'convex/components/audit/convex.config.ts'
  const COUNTER = 'convex/components/counter/convex.config.ts'
  await expectPushFails(AUDIT, (t) => t.replace('GREETING: v.optional(v.string())', 'GREETING: v.string()'), 'Component [ComponentName(Identifier("counter")), ComponentName(Identifier("audit"))] env var Identifier("GREETING") is required, but parent env var GREETING is optional')
  await expectPushFails(AUDIT, (t) => t.replace('GREETING: v.optional(v.string())', 'GREETING: v.optional(v.literal("hi"))'), 'Component [ComponentName(Identifier("counter")), ComponentName(Identifier("audit"))] env var Identifier("GREETING") validator is not satisfied by parent env var GREETING validator')
  // A child mounted under a prefix must have routes: an empty router has none.
  await expectPushFails('convex/components/counter/http.ts', (t) => t.replace(/http\.route\(\{[\s\S]*?\n\}\);\n/, ''), 'HTTP mount HttpMountPath("/c2/") is invalid: Child component ComponentName(Identifier("counter2")) doesn\'t have any HTTP routes.')
  // Env vars are strings: another validator is refused before any of that.
  await expectPushFails(COUNTER, (t) => t.replace('{ env: { GREETING: v.optional(v.string()) } }', '{ env: { GREETING: v.optional(v.string()), COUNT: v.optional(v.number()) } }'), 'InvalidEnvVarDeclaration')
  await expectPushFails(COUNTER, (t) => t.replace('{ env: { GREETING: v.optional(v.string()) } }', '{ env: { GREETING: v.optional(v.string()), COUNT: v.optional(v.number()) } }'), 'has a non-string validator. Component env vars must be declared with `v.string()`, `v.literal("...")`, or a union of those.')
  // A component whose crons name a function it doesn't have.
  await expectPushFails('convex/components/counter/crons.ts', (t) => t.replace('internal.counters.tick', '(internal.counters as any).nope'), 'Cron job "tick": counters:nope is not a mutation or action of this push')
  expect(await client.mutation('app:addToSecond' as any, { name: 'bad', by: 2 })).toBe(2)
  expect(await client.query('app:get' as any, { name: 'bad' })).toEqual({ first: 0, second: 2, appRows: 1 })
})
