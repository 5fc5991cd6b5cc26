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

test('a nested call’s error is not prefixed twice; the caller sees the callee’s text', async () => {
  expect((await errorOf(client.action(api.errors.outer, {}))).message).toMatch(/^\[Request ID: [0-9a-f]{16}\] Server Error\nUncaught Error: inner failure\n    at handler \(\.\.\/convex\/errors\.ts:41:10\)\n/)
  expect(await client.action(api.errors.outerCatches, {})).toBe('Uncaught Error: inner failure\n    at handler (../convex/errors.ts:41:10)')
})

test('a Node action’s stack names the app’s files, not the worker’s temporary folder', async () => {
  const message = (await errorOf(client.action(api.nodeErrors.nodeFails, {}))).message
  expect(message).toMatch(/^\[Request ID: [0-9a-f]{16}\] Server Error\nUncaught Error: node failure\n    at handler \(\.\.\/convex\/nodeErrors\.ts:7:10\)\n/)
  expect(message).not.toMatch(/tmp|file:|dist/)
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
  expect(body.trace).toBe('Uncaught ConvexError: {"code":7}\n    at ../convex/http.ts:17:10\n')
  expect(body.data).toEqual({ code: 7 })
})
