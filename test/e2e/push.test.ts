import { expect, test } from 'vitest'
import { ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { existsSync, readFileSync, writeFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { convexCli, useDeployedBackend } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'

const api = anyApi as any
let backend: TestBackend
let appDir: string | undefined
let client: ConvexHttpClient

const push = () => convexCli(appDir!, ['deploy', '--url', backend.url, '--admin-key', backend.adminKey, '-y'])

useDeployedBackend('basic', (t) => ({ backend, appDir, client } = t))

test('a push that adds an index backfills it from existing documents; removing it drops it', async () => {
  for (const body of ['pear', 'apple', 'fig']) await client.mutation(api.messages.send, { author: 'fruit', body })
  const schemaPath = join(appDir!, 'convex/schema.ts')
  const original = readFileSync(schemaPath, 'utf8')
  writeFileSync(schemaPath, original.replace('.index("by_author", ["author"])', '.index("by_author", ["author"])\n    .index("by_body", ["body"])'))
  writeFileSync(
    join(appDir!, 'convex/byBody.ts'),
    `import { query } from "./_generated/server";
export const sorted = query({ args: {}, handler: async (ctx) => (await ctx.db.query("messages").withIndex("by_body" as any).collect()).map((m) => m.body) });
`,
  )
  const out = await push()
  expect(out.stderr).toContain('[+] messages.by_body')
  expect(await client.query('byBody:sorted' as any, {})).toEqual(['apple', 'fig', 'pear'])
  await client.mutation(api.messages.send, { author: 'fruit', body: 'banana' })
  expect(await client.query('byBody:sorted' as any, {})).toEqual(['apple', 'banana', 'fig', 'pear'])

  writeFileSync(schemaPath, original)
  const removed = await push()
  expect(removed.stderr).toContain('[-] messages.by_body')
  const err = await client.query('byBody:sorted' as any, {}).catch((e: Error) => e)
  expect((err as Error).message).toContain('Index messages.by_body not found')
  rmSync(join(appDir!, 'convex/byBody.ts'))
  await push()
  const gone = await client.query('byBody:sorted' as any, {}).catch((e: Error) => e)
  expect((gone as Error).message).toContain("Could not find public function for 'byBody:sorted'")
})

test('a new index on a populated table is built while writes continue, and agrees with a full scan', async () => {
  for (let start = 0; start < 3000; start += 1000) await client.mutation(api.messages.bulk, { author: 'staged', count: 1000, start })
  const schemaPath = join(appDir!, 'convex/schema.ts')
  const original = readFileSync(schemaPath, 'utf8')
  writeFileSync(schemaPath, original.replace('.index("by_author", ["author"])', '.index("by_author", ["author"])\n    .index("by_body", ["body"])'))
  writeFileSync(
    join(appDir!, 'convex/staged.ts'),
    `import { v } from "convex/values";
import { query } from "./_generated/server";
export const viaIndex = query({ args: { author: v.string() }, handler: async (ctx, { author }) =>
  (await ctx.db.query("messages").withIndex("by_body" as any).collect()).filter((m) => m.author === author).map((m) => m.body) });
`,
  )
  let writing = true
  let written = 0
  const writer = (async () => {
    while (writing) {
      await client.mutation(api.messages.bulk, { author: 'staged', count: 5, start: 10_000 + written })
      written += 5
    }
  })()
  const out = await push()
  writing = false
  await writer
  expect(out.stderr).toContain('[+] messages.by_body')
  expect(written).toBeGreaterThan(0)
  const viaIndex: string[] = await client.query('staged:viaIndex' as any, { author: 'staged' })
  const expected: string[] = await client.query(api.messages.bodiesOf, { author: 'staged' })
  expect(viaIndex.length).toBe(3000 + written)
  expect(viaIndex).toEqual(expected)
  writeFileSync(schemaPath, original)
  rmSync(join(appDir!, 'convex/staged.ts'))
  await push()
}, 120_000)

test('a module that throws at import fails the push with its message and keeps the old code', async () => {
  const path = join(appDir!, 'convex/broken.ts')
  writeFileSync(path, `throw new Error("kaboom at import");\nexport const x = 1;\n`)
  const err = (await push().catch((e: unknown) => e)) as { stderr?: string; code?: number }
  expect(err.code).toBe(1)
  expect(err.stderr).toContain('kaboom at import')
  expect(err.stderr).toContain('broken.js')
  rmSync(path)
  expect(await client.query(api.messages.list, { author: 'fruit' })).toHaveLength(4)
})

test('a schema that existing documents break fails the push, naming the document; schemaValidation: false lets it through', async () => {
  const id = await client.mutation(api.messages.send, { author: 'schema', body: 'old shape' })
  const schemaPath = join(appDir!, 'convex/schema.ts')
  const original = readFileSync(schemaPath, 'utf8')
  writeFileSync(schemaPath, original.replace('n: v.optional(v.number()),', 'n: v.optional(v.number()),\n    title: v.string(),'))
  const err = (await push().catch((e: unknown) => e)) as { code?: number; stderr?: string }
  expect(err.code).toBe(1)
  expect(err.stderr).toContain('Schema validation failed.')
  expect(err.stderr).toContain('in table "messages" does not match the schema')
  expect(err.stderr).toContain('Object is missing the required field `title`')
  // Nothing changed: the old schema still accepts writes of the old shape.
  expect(typeof (await client.mutation(api.messages.send, { author: 'schema', body: 'still fine' }))).toBe('string')
  writeFileSync(schemaPath, original.replace('n: v.optional(v.number()),', 'n: v.optional(v.number()),\n    title: v.string(),').replace(/\}\);\s*$/, '}, { schemaValidation: false });\n'))
  const relaxed = await push()
  expect(relaxed.stderr).toContain('Deployed Convex functions')
  expect(typeof id).toBe('string')
  writeFileSync(schemaPath, original)
  await push()
})

test('the last push is served after a restart', async () => {
  await backend.stop()
  await backend.restart()
  expect(await new ConvexHttpClient(backend.url).query(api.messages.list, { author: 'fruit' })).toHaveLength(4)
})

test("an http.ts whose default export is no router fails the push with Convex's words", async () => {
  const path = join(appDir!, 'convex/http.ts')
  const original = existsSync(path) ? readFileSync(path, 'utf8') : null
  try {
    writeFileSync(path, 'export default { routes: [] };\n')
    let err = (await push().then(() => null, (e: { stderr: string }) => e)) as { stderr: string } | null
    expect(err?.stderr).toContain('InvalidModules: Loading the pushed modules encountered the following error:\nFailed to analyze http.js: The default export of `convex/http.js` is not a Router.')
    writeFileSync(path, 'export const notARouter = 1;\n')
    err = (await push().then(() => null, (e: { stderr: string }) => e)) as { stderr: string } | null
    expect(err?.stderr).toContain('Failed to analyze http.js: `convex/http.js` must have a default export of a Router.')
  } finally {
    if (original === null) rmSync(path)
    else writeFileSync(path, original)
  }
})

test("a module that throws when loaded fails the push with Convex's words: the error as uncaught, named, with its frames", async () => {
  writeFileSync(
    join(appDir!, 'convex/throwsAtLoad.ts'),
    `import { query } from "./_generated/server";
if (!process.env.NOT_SET_ANYWHERE) throw new Error("Missing NOT_SET_ANYWHERE");
export const q = query({ args: {}, handler: async () => 1 });
`,
  )
  try {
    const err = (await push().then(() => null, (e: { stderr: string }) => e)) as { stderr: string } | null
    // Then the frames where it was thrown, mapped to the app's sources, as a function's failure shows them.
    expect(err?.stderr).toContain('InvalidModules: Loading the pushed modules encountered the following error:\nFailed to analyze throwsAtLoad.js: Uncaught Error: Missing NOT_SET_ANYWHERE\n    at <anonymous> (../convex/throwsAtLoad.ts:2:41)\n')
  } finally {
    rmSync(join(appDir!, 'convex/throwsAtLoad.ts'))
  }
})
