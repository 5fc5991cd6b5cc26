/**
 * Errors exactly as Convex writes them: `Uncaught <Name>: <message>` then the stack mapped to the
 * app's sources, the `[Request ID: …] Server Error` framing over HTTP and the sync socket, HTTP
 * action failures as JSON.
 */
import { createHash } from 'node:crypto'
import { expect, test } from 'vitest'
import { ConvexClient, ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import WebSocket from 'ws'
import { convexCli, errorOf, useDeployedBackend } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'

const api = anyApi as any
let backend: TestBackend
let client: ConvexHttpClient

useDeployedBackend('docsapp', (t) => ({ backend, client } = t), {
  // The fixture's app declares a required variable: set it before the push.
  beforeDeploy: async (b, appDir) => {
    await convexCli(appDir, ['env', 'set', 'APP_SECRET', 'for-the-errors-test', '--url', b.url, '--admin-key', b.adminKey])
  },
})

const framed = (message: string) => new RegExp(`^\\[Request ID: [0-9a-f]{16}\\] Server Error\\n${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n$`)

test('an uncaught error: its name and message, then frames in the app’s own files', async () => {
  expect((await errorOf(client.mutation(api.errors.plain, {}))).message).toMatch(framed('Uncaught Error: plain failure\n    at handler (../convex/errors.ts:13:10)'))
  expect((await errorOf(client.query(api.errors.failingQuery, {}))).message).toMatch(framed('Uncaught Error: query failure\n    at handler (../convex/errors.ts:34:10)'))
  // A thrown string is "Uncaught <value>".
  expect((await errorOf(client.mutation(api.errors.nonError, {}))).message).toMatch(framed('Uncaught just a string'))
})

test('a ConvexError subclass keeps its own name and its data', async () => {
  const err = (await errorOf(client.mutation(api.errors.subclass, {}))) as Error & { data?: unknown }
  expect(err.data).toEqual({ reason: 'not yours' })
  const raw = await fetch(`${backend.url}/api/mutation`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: 'errors:subclass', args: {}, format: 'json' }) })
  const body = (await raw.json()) as { errorMessage: string; errorData: unknown }
  expect(body.errorMessage).toMatch(framed('Uncaught NotAllowed: {"reason":"not yours"}\n    at handler (../convex/errors.ts:20:10)'))
  expect(body.errorData).toEqual({ reason: 'not yours' })
})

test('frames as Convex prints them: an unnamed function, a method, a constructor, an async caller', async () => {
  const messageOf = async (name: string) => (await errorOf(client.mutation(api.errors[name], {}))).message
  expect(await messageOf('anonymous')).toMatch(framed('Uncaught Error: anonymous failure\n    at <anonymous> (../convex/errors.ts:79:8)'))
  // Convex prints a method call's function name and then `[as <method>]` (its runtime's frame data
  // never marks a frame top-level).
  expect(await messageOf('inMethod')).toMatch(framed('Uncaught Error: refused in method\n    at check [as check] (../convex/errors.ts:87:10)\n    at handler (../convex/errors.ts:100:22)'))
  expect(await messageOf('inConstructor')).toMatch(framed('Uncaught Error: refused in constructor\n    at new Checker (../convex/errors.ts:84:19)\n    at handler (../convex/errors.ts:107:4)'))
  expect(await messageOf('afterAwait')).toMatch(framed('Uncaught Error: refused later\n    at later (../convex/errors.ts:93:8)\n    at async handler (../convex/errors.ts:114:4)'))
})

test('a promise rejection nothing handles fails the call with its error, as Convex: its name, message and frames, the lines logged before it kept', async () => {
  const res = await fetch(`${backend.url}/api/query`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: 'rejections:unhandled', args: {}, format: 'json' }) })
  const body = (await res.json()) as { status: string; errorMessage: string; logLines: string[] }
  expect(body.status).toBe('error')
  expect(body.errorMessage).toMatch(framed('Uncaught TypeError: nobody catches me\n    at rejectUnhandled (../convex/rejections.ts:7:22)'))
  expect(body.logLines).toEqual(["[LOG] 'before the rejection'"])
  // A caller catches it as any nested failure (Convex's adversarial:unhandledRejectionInSubfunction).
  expect(await client.query(api.rejections.catchesUnhandled, {})).toBe('Uncaught TypeError: nobody catches me\n    at rejectUnhandled (../convex/rejections.ts:7:22)\n')
})

test('a nested call’s error: the caller prefixes the callee’s whole text again, after a blank line its own frames', async () => {
  expect((await errorOf(client.action(api.errors.outer, {}))).message).toMatch(framed('Uncaught Error: Uncaught Error: inner failure\n    at handler (../convex/errors.ts:41:10)\n\n    at async handler (../convex/errors.ts:49:4)'))
  // What the caller catches: the callee's error as Convex prints it, every line ended.
  expect(await client.action(api.errors.outerCatches, {})).toBe('Uncaught Error: inner failure\n    at handler (../convex/errors.ts:41:10)\n')
  // Two calls down (action → action → mutation), a ConvexError keeps its data all the way up.
  const deep = (await errorOf(client.action(api.errors.top, {}))) as Error & { data?: unknown }
  expect(deep.message).toMatch(
    framed(
      'Uncaught ConvexError: Uncaught ConvexError: Uncaught ConvexError: {"code":42}\n    at handler (../convex/errors.ts:122:10)\n\n' +
        '    at async handler (../convex/errors.ts:129:4)\n\n    at async handler (../convex/errors.ts:136:4)',
    ),
  )
  expect(deep.data).toEqual({ code: 42 })
  // A Node action calling a query.
  expect((await errorOf(client.action(api.nodeErrors.nodeCallsQuery, {}))).message).toMatch(
    framed('Uncaught Error: Uncaught Error: query failure\n    at handler (../convex/errors.ts:34:10)\n\n    at async handler (../convex/nodeErrors.ts:16:4)'),
  )
})

test('a Node action’s stack names the app’s files, not the worker’s temporary folder', async () => {
  const message = (await errorOf(client.action(api.nodeErrors.nodeFails, {}))).message
  expect(message).toMatch(framed('Uncaught Error: node failure\n    at handler (../convex/nodeErrors.ts:8:10)'))
})

test('`stack` read by app code in a Node action: Convex’s `convex:/user/` names, no host paths', async () => {
  const stack = (await client.action(api.nodeErrors.stackSeen, {})) as string
  const lines = stack.split('\n')
  expect(lines.slice(0, 3)).toEqual(['Error: where am I', '    at inner (convex:/user/nodeErrors.js:29:33)', '    at outer (convex:/user/nodeErrors.js:26:10)'])
  // Every other frame is the app's bundle, Node's own, or the executor as Convex names it.
  for (const line of lines.slice(3)) expect(line).toMatch(/^    at (?:async )?(?:\S+ \()?(?:convex:\/user\/\S+|node:\S+|bundledFunctions\.js:\d+:\d+)\)?$/)
  expect(stack).not.toMatch(/tmp|file:|dist|concave/)
})

test('over the sync socket: Convex’s framing, with the request id derived from the session and request', async () => {
  const sessionId = '0b6c5a6e-6f5e-4c55-9c1a-7d7cf2a1c0de'
  const ws = new WebSocket(`${backend.url.replace('http', 'ws')}/api/1.48.0/sync`)
  const messages: any[] = []
  ws.on('message', (d) => messages.push(JSON.parse(d.toString())))
  await new Promise((r) => ws.once('open', r))
  ws.send(JSON.stringify({ type: 'Connect', sessionId, connectionCount: 0, lastCloseReason: null, maxObservedTimestamp: null }))
  ws.send(JSON.stringify({ type: 'Mutation', requestId: 7, udfPath: 'errors:plain', args: [{}] }))
  const deadline = Date.now() + 10_000
  while (!messages.some((m) => m.type === 'MutationResponse') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
  ws.close()
  const response = messages.find((m) => m.type === 'MutationResponse')
  const id = createHash('sha256').update(`${sessionId}|7`).digest('hex').slice(0, 16)
  expect(response).toEqual({ type: 'MutationResponse', requestId: 7, success: false, result: `[Request ID: ${id}] Server Error\nUncaught Error: plain failure\n    at handler (../convex/errors.ts:13:10)\n`, ts: null, logLines: [] })
  // A subscribed query that fails: QueryFailed carries the same framing.
  const live = new ConvexClient(backend.url, { unsavedChangesWarning: false } as any)
  try {
    const failed = await new Promise<Error>((resolve) => live.onUpdate(api.errors.failingQuery, {}, () => {}, resolve))
    // The client puts the query's name before the server's text and "Called by client" after it.
    expect(failed.message).toMatch(/^\[CONVEX Q\(errors:failingQuery\)\] \[Request ID: [0-9a-f]{16}\] Server Error\nUncaught Error: query failure\n    at handler \(\.\.\/convex\/errors\.ts:34:10\)\n\n  Called by client$/)
  } finally {
    await live.close()
  }
})

test('an HTTP action that throws a ConvexError answers 500 JSON with its data', async () => {
  const res = await fetch(`${backend.siteUrl}/convex-error`)
  expect(res.status).toBe(500)
  const body = (await res.json()) as { code: string; trace: string; data: unknown }
  expect(body.code).toMatch(/^\[Request ID: [0-9a-f]{16}\] Server Error: Uncaught ConvexError: \{"code":7\}$/)
  expect(body.trace).toBe('Uncaught ConvexError: {"code":7}\n    at <anonymous> (../convex/http.ts:17:10)\n')
  expect(body.data).toEqual({ code: 7 })
})

test("a call's body that Convex wouldn't deserialize, a path that isn't one, and an unknown format: 400 with Convex's code and words", async () => {
  const post = async (route: string, body: string) => {
    const res = await fetch(`${backend.url}${route}`, { method: 'POST', headers: { 'content-type': 'application/json', 'convex-client': 'npm-1.48.0' }, body })
    return [res.status, await res.json()]
  }
  const badBody = (message: string) => [400, { code: 'BadJsonBody', message }]
  expect(await post('/api/query', '')).toEqual(badBody('Failed to parse the request body as JSON: EOF while parsing a value at line 1 column 0'))
  expect(await post('/api/query', '{}')).toEqual(badBody('Failed to deserialize the JSON body into the target type: missing field `path` at line 1 column 2'))
  expect(await post('/api/mutation', '{"path":"posts:seed"}')).toEqual(badBody('Failed to deserialize the JSON body into the target type: missing field `args` at line 1 column 21'))
  expect(await post('/api/action', '{"path":5,"args":{}}')).toEqual(badBody('Failed to deserialize the JSON body into the target type: path: invalid type: integer `5`, expected a string at line 1 column 9'))
  expect(await post('/api/run/posts/all', '{"args":{"channel":"x"},"format":[]}')).toEqual(badBody('Failed to deserialize the JSON body into the target type: format: invalid type: sequence, expected a string at line 1 column 33'))
  expect(await post('/api/query', '{"path":"posts.ts:all","args":{}}')).toEqual([400, { code: 'BadConvexFunctionIdentifier', message: "posts.ts:all is not a valid path to a Convex function. Module path (posts.ts) has an extension that isn't 'js'." }])
  expect(await post('/api/query', '{"path":"../posts:all","args":{}}')).toEqual([400, { code: 'BadConvexFunctionIdentifier', message: '../posts:all is not a valid path to a Convex function. Invalid path component ParentDir in ../posts.' }])
  // The format is read once the function has run: the mutation's writes stand, as in Convex.
  expect(await post('/api/mutation', '{"path":"posts:seed","args":{"channel":"badFormat","count":2},"format":"xml"}')).toEqual([400, { code: 'BadFormat', message: 'format param must be one of [`json`]. Got xml' }])
  expect((await client.query(api.posts.all, { channel: 'badFormat' })).map((p: { n: number }) => p.n)).toEqual([0, 1])
  expect(await post('/api/query', '{"path":"posts:all","args":{"channel":"badFormat"},"format":"convex_json"}')).toEqual([200, { status: 'success', value: [expect.objectContaining({ n: 0 }), expect.objectContaining({ n: 1 })] }])
})
