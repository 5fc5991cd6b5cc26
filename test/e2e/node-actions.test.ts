/**
 * Node.js actions: `"use node"` modules pushed by the real CLI run in a Node.js child process with
 * the full Node API, call back into the deployment, and fail alone.
 */
import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect, test } from 'vitest'
import { ConvexHttpClient } from 'convex/browser'
import { ConvexError } from 'convex/values'
import { anyApi } from 'convex/server'
import { cleanup, convexCli, deploy, errorOf, prepareFixture, startBackend, TEST_SECRET, useDeployedBackend } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'

const api = anyApi as any
let backend: TestBackend
let appDir: string | undefined
let client: ConvexHttpClient

useDeployedBackend('node', (t) => ({ backend, appDir, client } = t), { env: { CONCAVE_NODE_ACTION_MEMORY_MB: '64', INSTANCE_SECRET: TEST_SECRET } })

/** The backend's Node action processes: its children running dist/node-executor.js. */
const actionProcesses = () => {
  const taskDir = `/proc/${backend.process.pid}/task`
  const children = readdirSync(taskDir).flatMap((t) => readFileSync(join(taskDir, t, 'children'), 'utf8').trim().split(' ').filter(Boolean))
  return children.filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').some((arg) => arg.endsWith('/dist/node-executor.js'))
    } catch {
      return false // it ended meanwhile
    }
  })
}

test('a push with "use node" modules registers their actions by kind and visibility; no process runs before the first call', async () => {
  expect(actionProcesses()).toEqual([])
  expect((await errorOf(client.query(api.nodeActions.sha256, { text: 'x' }))).message).toContain('Trying to execute nodeActions.js:sha256 as Query, but it is defined as Action.')
  expect((await errorOf(client.action(api.nodeActions.spin, {}))).message).toContain("Could not find public function for 'nodeActions:spin'. Did you forget to run `npx convex dev` or `npx convex deploy`?")
  expect(actionProcesses()).toEqual([])
})

test('Node actions run in a child process of the backend with its own heap limit and nothing of the backend in its environment or command line', async () => {
  const info = await client.action(api.nodeActions.processInfo, {})
  expect(actionProcesses()).toEqual([String(info.pid)])
  expect(info.ppid).toBe(backend.process.pid)
  expect(info.execArgv).toEqual(['--max-old-space-size=64'])
  // The backend was started with INSTANCE_SECRET, CONCAVE_* and the test runner's variables; the
  // process starts with the deployment's variables and the IPC channel's (which Node takes out of
  // process.env).
  expect(info.environ).toBe(`CONVEX_CLOUD_URL=${backend.url} CONVEX_SITE_URL=${backend.siteUrl} NODE_CHANNEL_FD=3 NODE_CHANNEL_SERIALIZATION_MODE=advanced `)
  expect(JSON.parse(info.env)).toEqual({ CONVEX_CLOUD_URL: backend.url, CONVEX_SITE_URL: backend.siteUrl })
  expect(info.cmdline).toMatch(/^\S+ --max-old-space-size=64 \S+\/dist\/node-executor\.js \S+\/concave-node-\w+ $/)
  for (const text of [info.env, info.environ, info.cmdline]) expect(text).not.toContain(TEST_SECRET)
})

test('a Node action uses Node APIs and validates its arguments and return value', async () => {
  expect(await client.action(api.nodeActions.sha256, { text: 'hello' })).toBe(createHash('sha256').update('hello').digest('hex'))
  expect(actionProcesses()).toHaveLength(1)
  expect((await errorOf(client.action(api.nodeActions.sha256, { text: 3 }))).message).toContain('ArgumentValidationError')
})

test('a Node action calls mutations and queries, and its console output is logged', async () => {
  const result = await client.action(api.nodeActions.roundTrip, { body: 'from node' })
  expect(result).toEqual({ bodies: ['from node'], base64: Buffer.from('from node').toString('base64'), nodeMajor: 24 })
  expect(await client.query(api.notes.list, {})).toEqual(['from node'])
  // The CLI's log stream shows the action's lines.
  const logs = (await (await fetch(`${backend.url}/api/stream_function_logs?cursor=0`, { headers: { authorization: `Convex ${backend.adminKey}` } })).json()) as { entries: { identifier: string; logLines: { level: string; messages: string[] }[] }[] }
  const entry = logs.entries.find((e) => e.identifier === 'nodeActions:roundTrip')!
  expect(entry.logLines.map((l) => [l.level, l.messages])).toEqual([
    ['LOG', ["'node action got' 'from node'"]],
    ['WARN', ["'now' 1"]],
  ])
})

test('an isolate action calls a Node action', async () => {
  expect(await client.action(api.notes.viaNode, { text: 'abc' })).toBe(createHash('sha256').update('abc').digest('hex'))
})

test('errors: a ConvexError keeps its data, a plain Error its message', async () => {
  const err = await errorOf(client.action(api.nodeActions.convexError, {}))
  expect(err).toBeInstanceOf(ConvexError)
  expect((err as ConvexError<any>).data).toEqual({ code: 42, reason: 'from node' })
  expect((await errorOf(client.action(api.nodeActions.plainError, {}))).message).toContain('Uncaught Error: plain failure in node')
})

test('file storage from a Node action', async () => {
  expect(await client.action(api.nodeActions.storeAndRead, { text: 'stored by node' })).toEqual({ text: 'stored by node', type: 'text/plain', url: true })
})

test("process.env holds the deployment's variables only (and the built-in URLs), and a change reaches the next call", async () => {
  const before = await client.action(api.nodeActions.env, {})
  expect(before).toEqual({ greeting: null, secret: null, names: ['CONVEX_CLOUD_URL', 'CONVEX_SITE_URL'] })
  await convexCli(appDir!, ['env', 'set', 'NODE_GREETING', 'hi from env', '--url', backend.url, '--admin-key', backend.adminKey])
  expect(await client.action(api.nodeActions.env, {})).toEqual({ greeting: 'hi from env', secret: null, names: ['CONVEX_CLOUD_URL', 'CONVEX_SITE_URL', 'NODE_GREETING'] })
})

test('an uncaught exception or an unhandled rejection fails its own call with Convex\'s message; the worker and its other calls carry on', async () => {
  const first = await client.action(api.nodeActions.callCount, {})
  const waiting = client.action(api.nodeActions.wait, { ms: 300 })
  // Each of these would otherwise hang until the 2 s time limit.
  const [timer, rejection, emitter, exited] = await Promise.all([
    errorOf(client.action(api.nodeActions.throwInTimer, {})),
    errorOf(client.action(api.nodeActions.strayRejection, {})),
    errorOf(client.action(api.nodeActions.emitterError, {})),
    errorOf(client.action(api.nodeActions.exit, {})),
  ])
  expect(timer.message).toContain('Uncaught uncaughtException: thrown in a timer')
  expect(rejection.message).toContain('Uncaught unhandledRejection: nobody handles this')
  expect(emitter.message).toContain('Uncaught uncaughtException: emitted without a listener')
  expect(exited.message).toContain('Uncaught process.exit: process.exit() called with exit code 3')
  expect(await waiting).toBe(300)
  // Same worker: its module state carried on.
  expect(await client.action(api.nodeActions.callCount, {})).toBe(first + 1)
})

test("console.time/timeLog/timeEnd log as Convex's Node runtime does; count, assert, table and dir as Node formats them", async () => {
  await client.action(api.nodeActions.consoleMethods, {})
  const logs = (await (await fetch(`${backend.url}/api/stream_function_logs?cursor=0`, { headers: { authorization: `Convex ${backend.adminKey}` } })).json()) as { entries: { identifier: string; logLines: { level: string; messages: string[] }[] }[] }
  const lines = logs.entries.find((e) => e.identifier === 'nodeActions:consoleMethods')!.logLines.map((l) => [l.level, l.messages.join(' ').replace(/step: \d+ms/, 'step: Nms')])
  expect(lines).toEqual([
    ['INFO', "'step: Nms' 'half way'"],
    ['INFO', "'step: Nms'"],
    // Each argument through Node's util.inspect, as Convex's node-executor: a string with a ' is "…".
    ['WARN', `"Timer 'step' does not exist"`],
    ['WARN', `"Timer 'default' already exists"`],
    ['LOG', 'default: 1'],
    ['LOG', 'default: 2'],
    ['LOG', 'x: 1'],
    ['LOG', 'default: 1'],
    ['ERROR', 'Assertion failed: math is broken'],
    ['LOG', '┌─────────┬───┐\n│ (index) │ a │\n├─────────┼───┤\n│ 0       │ 1 │\n└─────────┴───┘'],
    ['LOG', '{ a: { b: { c: [Object] } } }'],
  ])
})

test('a Node action that waits past its time limit fails alone with Convex’s message; the worker carries on', async () => {
  // The test backend's action time limit is 2 s.
  const [late, quick] = await Promise.all([errorOf(client.action(api.nodeActions.wait, { ms: 10_000 })), client.action(api.nodeActions.wait, { ms: 50 })])
  expect(late.message).toMatch(/^\[Request ID: [0-9a-f]{16}\] Server Error\nAction `wait` execution timed out \(maximum duration 2s\)\n$/)
  expect(quick).toBe(50)
  expect(await client.action(api.nodeActions.sha256, { text: 'after' })).toBe(createHash('sha256').update('after').digest('hex'))
})

test('a Node action that never yields is stopped 5 s past its limit, as Convex stops a stuck executor; the next calls work', async () => {
  const before = (await client.action(api.nodeActions.processInfo, {})).pid
  const admin = new ConvexHttpClient(backend.url)
  ;(admin as any).setAdminAuth(backend.adminKey)
  // A concurrent Node action shares the worker's fate.
  const spinning = errorOf((admin as any).function(api.nodeActions.spin, undefined, {}))
  await new Promise((r) => setTimeout(r, 1000))
  // Started a second later, this one is cut short when the spinning one's worker is stopped.
  const [spun, waited] = await Promise.all([spinning, errorOf(client.action(api.nodeActions.wait, { ms: 10_000 }))])
  expect(spun.message).toMatch(/^\[Request ID: [0-9a-f]{16}\] Server Error\nFunction execution unexpectedly timed out\. Check your function for infinite loops or other long-running operations\.\n$/)
  expect(waited.message).toContain('The Node.js action worker was stopped: another Node action running in it exceeded its time limit')
  expect(await client.query(api.notes.list, {})).toEqual(['from node'])
  expect(await client.action(api.nodeActions.wait, { ms: 5 })).toBe(5)
  expect(await client.action(api.nodeActions.sha256, { text: 'again' })).toBe(createHash('sha256').update('again').digest('hex'))
  // The stuck process was killed; a new one serves.
  expect(existsSync(`/proc/${before}`)).toBe(false)
  expect(actionProcesses()).toEqual([String((await client.action(api.nodeActions.processInfo, {})).pid)])
  expect(actionProcesses()).not.toEqual([String(before)])
})

test('an action process that dies fails the calls running in it with the worker-exit message; the next call starts a new one', async () => {
  const before = (await client.action(api.nodeActions.processInfo, {})).pid
  const [crashed, waited] = await Promise.all([errorOf(client.action(api.nodeActions.crashWhileWaiting, {})), errorOf(client.action(api.nodeActions.wait, { ms: 1500 }))])
  for (const e of [crashed, waited]) expect(e.message).toMatch(/^\[Request ID: [0-9a-f]{16}\] Server Error\nThe Node\.js action worker exited \(code SIGKILL\)\n$/)
  const after = (await client.action(api.nodeActions.processInfo, {})).pid
  expect(after).not.toBe(before)
  expect(existsSync(`/proc/${before}`)).toBe(false)
  expect(actionProcesses()).toEqual([String(after)])
})

test('a Node action that eats memory fails alone with the memory limit; the next calls work', async () => {
  const before = (await client.action(api.nodeActions.processInfo, {})).pid
  expect((await errorOf(client.action(api.nodeActions.hog, {}))).message).toContain('JavaScript execution ran out of memory (maximum memory usage: 64 MB)')
  expect(await client.action(api.nodeActions.wait, { ms: 1 })).toBe(1)
  expect(await client.query(api.notes.list, {})).toEqual(['from node'])
  expect((await client.action(api.nodeActions.processInfo, {})).pid).not.toBe(before)
})

test('a Node action uses a CommonJS npm package the CLI bundled (which requires Node built-ins)', async () => {
  expect(await client.action(api.nacl.hashAndRandom, { text: 'abc' })).toEqual({ sha512: createHash('sha512').update('abc').digest('hex'), random: 8 })
})

test('a push that defines a query in a "use node" file is refused, and the deployment keeps its functions', async () => {
  const dir = prepareFixture('node')
  try {
    writeFileSync(
      join(dir, 'convex/nodeQuery.ts'),
      `"use node";\nimport { query } from "./_generated/server";\nexport const notAllowed = query({ args: {}, handler: async () => 1 });\n`,
    )
    const err = await errorOf(convexCli(dir, ['deploy', '--url', backend.url, '--admin-key', backend.adminKey, '-y']))
    expect(err.message).toContain('nodeQuery.js defines a query (notAllowed), but a "use node" file may only define actions')
    expect(await client.action(api.nodeActions.sha256, { text: 'still here' })).toBe(createHash('sha256').update('still here').digest('hex'))
  } finally {
    cleanup(dir)
  }
})

/** Starts a backend with the node app, runs `body` with its client, and cleans up. */
async function withOwnBackend(body: (other: TestBackend, client: ConvexHttpClient) => Promise<void>): Promise<void> {
  const other = await startBackend()
  let app: string | undefined
  try {
    app = (await deploy(other, 'node')).appDir
    await body(other, new ConvexHttpClient(other.url))
  } finally {
    await other.stop('SIGKILL')
    cleanup(other.dataDir)
    cleanup(app)
  }
}

/** A process's state letter (R running, S sleeping, Z zombie), or 'gone'. */
function processState(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0]!
  } catch {
    return 'gone'
  }
}

async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!condition() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
}

test('the action process ends with the backend, and removes its module folder', async () => {
  await withOwnBackend(async (other, otherClient) => {
    const { pid, cmdline } = await otherClient.action(api.nodeActions.processInfo, {})
    const moduleDir = (cmdline as string).trim().split(' ').at(-1)!
    expect(existsSync(join(moduleDir, 'nodeActions.js'))).toBe(true)
    await other.stop('SIGKILL')
    await until(() => ['gone', 'Z'].includes(processState(pid)))
    expect(['gone', 'Z']).toContain(processState(pid))
    expect(existsSync(moduleDir)).toBe(false)
  })
})

test('the action process ends with the backend even while an action in it never yields', async () => {
  await withOwnBackend(async (other, otherClient) => {
    const { pid, cmdline } = await otherClient.action(api.nodeActions.processInfo, {})
    const moduleDir = (cmdline as string).trim().split(' ').at(-1)!
    const admin = new ConvexHttpClient(other.url)
    ;(admin as any).setAdminAuth(other.adminKey)
    void errorOf((admin as any).function(api.nodeActions.spin, undefined, {}))
    // Its state is R(unning) once the action spins; idle, it sleeps (S).
    await until(() => processState(pid) === 'R')
    expect(processState(pid)).toBe('R')
    await other.stop('SIGKILL')
    await until(() => ['gone', 'Z'].includes(processState(pid)))
    expect(['gone', 'Z']).toContain(processState(pid))
    expect(existsSync(moduleDir)).toBe(false)
  })
})

test("a Node action's log keeps Convex's node-executor limits: 256 lines, a million characters", async () => {
  const logLinesOf = async (args: unknown) => {
    const res = await fetch(`${backend.url}/api/action`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: 'nodeActions:logsMany', args, format: 'json' }) })
    return ((await res.json()) as { logLines?: string[] }).logLines ?? []
  }
  expect(await logLinesOf({ count: 300, size: 1 })).toEqual([...Array.from({ length: 256 }, () => "[LOG] 'x'"), '[ERROR] Log overflow (maximum 256). Remaining log lines omitted.'])
  // 34 lines of 30,002 characters fit in 1,048,576; the 35th does not.
  expect(await logLinesOf({ count: 40, size: 30_000 })).toEqual([...Array.from({ length: 34 }, () => `[LOG] '${'x'.repeat(30_000)}'`), '[ERROR] Log overflow (maximum 1M characters). Remaining log lines omitted.'])
})
