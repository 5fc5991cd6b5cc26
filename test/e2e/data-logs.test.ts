import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { cleanup, convexCli, prepareFixture, ROOT, startBackend } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'

const api = anyApi as any
let backend: TestBackend
let appDir: string | undefined
let client: ConvexHttpClient
const creds = () => ['--url', backend.url, '--admin-key', backend.adminKey]

/** A module of our own next to the basic fixture's: functions that log. */
const LOGGING_MODULE = `
import { v } from "convex/values";
import { mutation, query } from "./_generated/server";
export const shout = mutation({
  args: { text: v.string() },
  handler: async (_ctx, { text }) => {
    console.log(text);
    console.warn("careful", 42);
    return null;
  },
});
export const timed = query({
  args: {},
  handler: async () => {
    console.time("load");
    console.timeLog("load", "rows", 3);
    console.timeEnd("load");
    console.timeEnd("load");
    console.time();
    console.time();
    return null;
  },
});
export const fail = query({ args: {}, handler: async () => { throw new Error("query went wrong"); } });
`

beforeAll(async () => {
  backend = await startBackend()
  appDir = prepareFixture('basic')
  writeFileSync(join(appDir, 'convex/logging.ts'), LOGGING_MODULE)
  await convexCli(appDir, ['deploy', ...creds(), '-y'])
  client = new ConvexHttpClient(backend.url)
}, 120_000)

afterAll(async () => {
  await backend?.stop()
  cleanup(backend?.dataDir)
  cleanup(appDir)
})

test('npx convex data lists the user tables, then a table’s documents with --limit and --order', async () => {
  const ids = []
  for (const [author, body] of [['ada', 'first'], ['bob', 'second'], ['cy', 'third']]) ids.push(await client.mutation(api.messages.send, { author, body }))

  const tables = await convexCli(appDir!, ['data', ...creds()])
  // Tables the schema declares exist (empty) after the push; system tables are not listed.
  expect(tables.stdout.trim().split('\n')).toEqual(['blobs', 'counters', 'kinds', 'messages', 'notes'])

  const docs = (await client.query(api.messages.list, {})) as { _id: string; _creationTime: number; author: string; body: string }[]
  expect(docs.map((d) => d._id)).toEqual(ids)
  const rows = docs.slice(0, 2).map((d) => ({ _id: JSON.stringify(d._id), _creationTime: String(d._creationTime), author: JSON.stringify(d.author), body: JSON.stringify(d.body) }))
  const fields = ['_id', '_creationTime', 'author', 'body'] as const
  const widths = fields.map((f) => Math.max(...rows.map((r) => r[f].length)))
  const expected = [
    fields.map((f, i) => f.padEnd(widths[i]!)).join(' | '),
    widths.map((w) => '-'.repeat(w)).join('-|-'),
    ...rows.map((r) => fields.map((f, i) => r[f].padEnd(widths[i]!)).join(' | ')),
  ]
  const asc = await convexCli(appDir!, ['data', 'messages', '--limit', '2', '--order', 'asc', ...creds()])
  expect(asc.stdout.split('\n').filter((l) => l !== '')).toEqual(expected)
  expect(asc.stderr).toContain('Showing the 2 oldest created documents')

  const desc = await convexCli(appDir!, ['data', 'messages', '--format', 'jsonl', ...creds()])
  expect(desc.stdout.trim().split('\n').map((l) => JSON.parse(l)._id)).toEqual([...ids].reverse())

  // More documents than one page of the CLI's requests: pages follow continueCursor.
  for (let i = 0; i < 5; i++) await client.mutation(api.messages.send, { author: 'z', body: `b${i}` })
  const all = await convexCli(appDir!, ['data', 'messages', '--limit', '100', '--order', 'asc', '--format', 'jsonl', ...creds()])
  expect(all.stdout.trim().split('\n').map((l) => JSON.parse(l).body)).toEqual(['first', 'second', 'third', 'b0', 'b1', 'b2', 'b3', 'b4'])

  const empty = await convexCli(appDir!, ['data', 'notes', ...creds()])
  expect(empty.stderr).toContain('There are no documents in this table.')
}, 120_000)

test('_system/cli/tables is admin only', async () => {
  await expect(client.query('_system/cli/tables' as any, { paginationOpts: { cursor: null, numItems: 10 } })).rejects.toThrow(/Could not find public function/)
})

/** Starts `npx convex logs` (it streams until killed) and collects its output. */
function startLogs(extra: string[] = []): { child: ChildProcess; output: () => string; stop: () => Promise<void> } {
  const child = spawn(process.execPath, [join(ROOT, 'node_modules/convex/bin/main.js'), 'logs', ...creds(), ...extra], {
    cwd: appDir!,
    env: { ...process.env, CI: '1', CONVEX_DEPLOYMENT: '', CONVEX_DEPLOY_KEY: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()))
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()))
  return {
    child,
    output: () => out,
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      return exited
    },
  }
}

async function waitFor(check: () => boolean, what: () => string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting; output so far:\n${what()}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

test('npx convex logs streams console output and errors of new executions', async () => {
  const logs = startLogs()
  try {
    await waitFor(() => logs.output().includes('Watching logs'), logs.output)
    // Let the CLI's first (history) poll complete; new executions after it are streamed.
    await new Promise((r) => setTimeout(r, 500))
    await client.mutation(api.logging.shout, { text: 'hello from mutation' })
    await expect(client.query(api.logging.fail, {})).rejects.toThrow(/query went wrong/)
    await waitFor(() => logs.output().includes('query went wrong'), logs.output)
    const lines = logs.output().split('\n')
    expect(lines.find((l) => l.includes('hello from mutation'))).toMatch(/\[CONVEX M\(logging(\.js)?:shout\)\] \[LOG\] 'hello from mutation'$/)
    expect(lines.find((l) => l.includes('careful'))).toMatch(/\[CONVEX M\(logging(\.js)?:shout\)\] \[WARN\] 'careful' 42$/)
    expect(lines.find((l) => l.includes('query went wrong'))).toMatch(/\[CONVEX Q\(logging(\.js)?:fail\)\] Uncaught Error: query went wrong/)
  } finally {
    await logs.stop()
  }
}, 60_000)

test('npx convex logs --history N prints the last N entries first; --jsonl prints entries as JSON', async () => {
  for (const text of ['old one', 'old two', 'old three']) await client.mutation(api.logging.shout, { text })
  const logs = startLogs(['--history', '2', '--jsonl'])
  try {
    await waitFor(() => logs.output().includes('old three'), logs.output)
    const entries = logs
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l))
    expect(entries.map((e) => e.logLines[0].messages[0])).toEqual(["'old two'", "'old three'"])
    expect(entries[0]).toMatchObject({ kind: 'Completion', udfType: 'Mutation', identifier: 'logging:shout', componentPath: null, error: null, environment: 'isolate' })
    expect(entries[0].logLines[0]).toMatchObject({ level: 'LOG', isTruncated: false })
    expect(entries[0].timestamp).toBeGreaterThan(1e9)
    expect(entries[0].timestamp).toBeLessThan(1e11)
  } finally {
    await logs.stop()
  }
}, 60_000)

test('stream_function_logs needs an admin key and long-polls', async () => {
  expect((await fetch(`${backend.url}/api/stream_function_logs?cursor=0`)).status).toBe(403)
  const auth = { authorization: `Convex ${backend.adminKey}` }
  const { newCursor } = (await (await fetch(`${backend.url}/api/stream_function_logs?cursor=0`, { headers: auth })).json()) as { newCursor: number }
  const pending = fetch(`${backend.url}/api/stream_function_logs?cursor=${newCursor}`, { headers: auth }).then((r) => r.json())
  await new Promise((r) => setTimeout(r, 200))
  await client.mutation(api.logging.shout, { text: 'wake up' })
  const next = (await pending) as { entries: { logLines: { messages: string[] }[] }[]; newCursor: number }
  expect(next.entries.map((e) => e.logLines[0]!.messages[0])).toEqual(["'wake up'"])
  expect(next.newCursor).toBeGreaterThan(newCursor)
})

test('a call its argument validator refuses is logged as a failed execution, as in Convex', async () => {
  const auth = { authorization: `Convex ${backend.adminKey}` }
  const { newCursor } = (await (await fetch(`${backend.url}/api/stream_function_logs?cursor=0`, { headers: auth })).json()) as { newCursor: number }
  const refused = await client.mutation(api.logging.shout, { text: 42 as never }).catch((e: Error) => e)
  expect((refused as Error).message).toContain('ArgumentValidationError')
  const { entries } = (await (await fetch(`${backend.url}/api/stream_function_logs?cursor=${newCursor}`, { headers: auth })).json()) as { entries: { kind: string; udfType: string; identifier: string; error: string | null; logLines: unknown[] }[] }
  const entry = entries.find((e) => e.identifier === 'logging:shout')!
  expect(entry).toMatchObject({ kind: 'Completion', udfType: 'Mutation', logLines: [] })
  expect(entry.error).toContain('ArgumentValidationError: Value does not match validator.')
})

test("console.time/timeLog/timeEnd in a query log as Convex's isolate does", async () => {
  const auth = { authorization: `Convex ${backend.adminKey}` }
  const { newCursor } = (await (await fetch(`${backend.url}/api/stream_function_logs?cursor=0`, { headers: auth })).json()) as { newCursor: number }
  await client.query(api.logging.timed, {})
  const { entries } = (await (await fetch(`${backend.url}/api/stream_function_logs?cursor=${newCursor}`, { headers: auth })).json()) as { entries: { identifier: string; logLines: { level: string; messages: string[] }[] }[] }
  const lines = entries.find((e) => e.identifier === 'logging:timed')!.logLines.map((l) => [l.level, l.messages.join(' ').replace(/^load: \d+ms/, 'load: Nms')])
  expect(lines).toEqual([
    ['INFO', "load: Nms 'rows' 3"],
    ['INFO', 'load: Nms'],
    ['WARN', "Timer 'load' does not exist"],
    ['WARN', "Timer 'default' already exists"],
  ])
})

test('GET /health answers OK without auth', async () => {
  const res = await fetch(`${backend.url}/health`)
  expect(res.status).toBe(200)
  expect(await res.text()).toBe('OK')
})
