/**
 * Bounded memory: the request body budget (503 + Retry-After beyond it), the cap on a function's
 * return value, and Convex's limit on a function's arguments.
 */
import { describe, expect, test } from 'vitest'
import { ConvexClient, ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import http from 'node:http'
import { errorOf, useDeployedBackend } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'

const api = anyApi as any
const MiB = 1024 * 1024

let backend: TestBackend
let client: ConvexHttpClient
useDeployedBackend('basic', (t) => ({ backend, client } = t), { env: { CONCAVE_REQUEST_BODY_BUDGET_MB: '1', CONCAVE_FUNCTION_RESULT_MB: '1', CONCAVE_ACTION_TIMEOUT_MS: '1000' } })

/** `[Request ID: …] Server Error\n<message>\n`, as clients get a function's failure. */
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
const framed = (message: string) => new RegExp(`^\\[Request ID: [0-9a-f]{16}\\] Server Error\\n${escape(message)}\\n$`)
/** The same through ConvexClient, which names the call first and the caller last. */
const framedLive = (call: string, message: string) => new RegExp(`^${escape(`[CONVEX ${call}] `)}\\[Request ID: [0-9a-f]{16}\\] Server Error\\n${escape(message)}\\n\\n  Called by client$`)

async function metrics(): Promise<Record<string, number>> {
  return (await (await fetch(`${backend.url}/api/concave/metrics`, { headers: { authorization: `Convex ${backend.adminKey}` } })).json()) as Record<string, number>
}

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 15_000
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** A request whose declared body is only partly sent: the server holds its budget meanwhile. */
function heldRequest(url: string, declared: number): { abort(): void; closed: Promise<void> } {
  const req = http.request(url, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': String(declared) } })
  const closed = new Promise<void>((resolve) => req.on('close', () => resolve()))
  req.on('error', () => {})
  req.write('{"path":"counter:get","args":{"name":"')
  return { abort: () => req.destroy(), closed }
}

type Answer = { status: number; retryAfter: string | null; connection: string | null; body: string }

async function post(url: string, body: string | ReadableStream<Uint8Array>, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body, ...(typeof body === 'string' ? {} : { duplex: 'half' }) } as RequestInit)
  return { status: res.status, retryAfter: res.headers.get('retry-after'), connection: res.headers.get('connection'), body: await res.text() }
}

const call = (name: string, pad = 0) => JSON.stringify({ path: 'counter:get', args: { name: name + ' '.repeat(pad) }, format: 'json' })

describe('the request body budget (CONCAVE_REQUEST_BODY_BUDGET_MB=1)', () => {
  test('a body that does not fit beside those held is answered 503 with Retry-After; it fits again once they are answered', async () => {
    const held = heldRequest(`${backend.url}/api/query`, 800_000)
    await until(async () => (await metrics()).requestBodyBytes === 800_000, 'the held body to take its bytes')
    const overloaded = {
      status: 503,
      retryAfter: '1',
      // The refused body was read and dropped: the connection stays open.
      connection: 'keep-alive',
      body: JSON.stringify({ code: 'Overloaded', message: 'The server is holding as many request bodies as it may at once (1 MiB, CONCAVE_REQUEST_BODY_BUDGET_MB); try again shortly' }),
    }
    // Declared length, chunked, and an HTTP action's body (on both ports): each refused.
    expect(await post(`${backend.url}/api/query`, call('over', 300_000))).toEqual(overloaded)
    const chunked = new ReadableStream<Uint8Array>({
      start(controller) {
        const chunk = new TextEncoder().encode(call('chunked', 64 * 1024))
        for (let i = 0; i < 5; i++) controller.enqueue(chunk)
        controller.close()
      },
    })
    expect(await post(`${backend.url}/api/query`, chunked)).toEqual(overloaded)
    expect(await post(`${backend.siteUrl}/echo`, 'x'.repeat(300_000))).toEqual(overloaded)
    expect(await post(`${backend.url}/http/echo`, 'x'.repeat(300_000))).toEqual(overloaded)
    // A body that fits is served meanwhile.
    expect(await post(`${backend.url}/api/query`, call('fits', 100_000))).toMatchObject({ status: 200, body: '{"status":"success","value":0}' })
    held.abort()
    await held.closed
    await until(async () => (await metrics()).requestBodyBytes === 0, 'the aborted body to give its bytes back')
    expect(await post(`${backend.url}/api/query`, call('over', 300_000))).toMatchObject({ status: 200, body: '{"status":"success","value":0}' })
    const echoed = await post(`${backend.siteUrl}/echo`, 'x'.repeat(300_000))
    expect([echoed.status, JSON.parse(echoed.body).body.length]).toEqual([201, 300_000])
    expect((await metrics()).requestBodyBytes).toBe(0)
  })

  test('a body larger than the whole budget is served when no other is held', async () => {
    const res = await post(`${backend.url}/api/query`, call('alone', 2 * MiB))
    expect(res).toMatchObject({ status: 200, body: '{"status":"success","value":0}' })
    expect((await metrics()).requestBodyBytes).toBe(0)
  })
})

describe("a function's return value (CONCAVE_FUNCTION_RESULT_MB=1)", () => {
  test('nested 64 levels it is returned; 65 fails as Convex reads it', async () => {
    let depth = 0
    for (let v: unknown = await client.query(api.values.nested, { depth: 64 }); Array.isArray(v); v = v[0]) depth++
    expect(depth).toBe(64)
    expect((await errorOf(client.query(api.values.nested, { depth: 65 }))).message).toMatch(framed('Function values.js:nested return value invalid: Value is too nested (nested 65 levels deep > maximum nesting 64)'))
  })

  test("an array past 8192 elements fails as Convex reads the value, returned or given as an argument (whose nesting counts the arguments' own array)", async () => {
    expect((await client.query(api.values.echo, { value: Array.from({ length: 8192 }, () => 1) })).length).toBe(8192)
    expect((await errorOf(client.query(api.values.longArray, { length: 9000 }))).message).toMatch(framed('Function values.js:longArray return value invalid: Array length is too long (9000 > maximum length 8192)'))
    expect((await errorOf(client.query(api.values.echo, { value: Array.from({ length: 9000 }, () => 1) }))).message).toMatch(framed('Invalid arguments for values.js:echo: Array length is too long (9000 > maximum length 8192)'))
    let deep: unknown = 1
    for (let i = 0; i < 62; i++) deep = [deep]
    // {value: 62 arrays}: 63 levels, 64 inside the arguments' array.
    expect(await client.query(api.values.echo, { value: deep })).toEqual(deep)
    expect((await errorOf(client.query(api.values.echo, { value: [deep] }))).message).toMatch(framed('Invalid arguments for values.js:echo: Value is too nested (nested 65 levels deep > maximum nesting 64)'))
  })

  test("near the limit, the log says so in Convex's words; so does a document near 1 MiB", async () => {
    const call = async (kind: string, path: string, args: unknown) => {
      const res = await fetch(`${backend.url}/api/${kind}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path, args, format: 'json' }) })
      return (await res.json()) as { value: unknown; logLines: string[] }
    }
    expect((await call('query', 'values:sized', { size: 838_000 }))).not.toHaveProperty('logLines')
    expect((await call('query', 'values:sized', { size: 900_000 })).logLines).toEqual(['[WARN] Large size of the function return value (actual: 900002 bytes, limit: 1048576 bytes).'])
    const big = await call('mutation', 'values:big', { size: 900_000 })
    expect(big.logLines).toEqual([expect.stringMatching(new RegExp(`^\\[WARN\\] Large document written with ID "${big.value}" \\(actual: 9000\\d\\d bytes, limit: 1048576 bytes\\)\\.$`))])

    // A document nested past 80% of Convex's 16 levels, as the mutation leaves it.
    expect((await call('mutation', 'values:deepDoc', { depth: 11, flatten: false }))).not.toHaveProperty('logLines')
    const deep = await call('mutation', 'values:deepDoc', { depth: 12, flatten: false })
    expect(deep.logLines).toEqual([`[WARN] Deeply nested document written with ID "${deep.value}" (actual: 13 levels, limit: 16 levels).`])
    expect((await call('mutation', 'values:deepDoc', { depth: 15, flatten: true }))).not.toHaveProperty('logLines')
  })

  test("a function that ran past 80% of its time limit, and an action that left operations unawaited, say so in Convex's words", async () => {
    const call = async (kind: string, path: string, args: unknown) => {
      const res = await fetch(`${backend.url}/api/${kind}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path, args, format: 'json' }) })
      return (await res.json()) as { status: string; logLines: string[] }
    }
    const slow = /^\[WARN\] Function execution took a long time\. \(maximum duration: 1s, actual duration: (8\d\d|9\d\d)(\.\d{1,6})?ms\)\.$/
    // A query's or mutation's limit is Convex's 1 s of running; an action's here 1 s (CONCAVE_ACTION_TIMEOUT_MS).
    expect(await call('mutation', 'values:slowMutation', { ms: 600 })).toEqual({ status: 'success', value: null })
    expect(await call('mutation', 'values:slowMutation', { ms: 850 })).toEqual({ status: 'success', value: null, logLines: [expect.stringMatching(slow)] })
    expect(await call('action', 'values:slowAction', { ms: 850 })).toEqual({ status: 'success', value: null, logLines: [expect.stringMatching(slow)] })
    expect(await call('action', 'values:leavesOperations', {})).toEqual({
      status: 'success',
      value: null,
      logLines: ['[WARN] 3 unawaited operations: [query, storage.store]. Async operations should be awaited or they might not run. See https://docs.convex.dev/functions/actions#dangling-promises for more information.'],
    })
  })

  test("one holding a lone surrogate fails the call as Convex's FunctionReturnInvalidJson, its log lines dropped", async () => {
    expect(await client.query(api.values.halfEmoji, { whole: true })).toEqual({ text: '\u{1f389}' })
    const message = 'Function values.js:halfEmoji failed. Could not parse return value as json: lone leading surrogate in hex escape at line 1 column 15'
    expect((await errorOf(client.query(api.values.halfEmoji, { whole: false }))).message).toMatch(framed(message))
    const res = await fetch(`${backend.url}/api/query`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: 'values:halfEmoji', args: { whole: false }, format: 'json' }) })
    expect([res.status, await res.json()]).toEqual([200, { status: 'error', errorMessage: expect.stringMatching(framed(message)) }])
  })

  test('up to the limit it is returned; past it the call fails with Convex\'s message', async () => {
    // A string of n characters is a value of n + 2 bytes.
    expect((await client.query(api.values.sized, { size: MiB - 2 })).length).toBe(MiB - 2)
    expect((await errorOf(client.query(api.values.sized, { size: MiB - 1 }))).message).toMatch(framed('Function values.js:sized return value is too large (actual: 1.00 MiB, limit: 1 MiB)'))
    expect((await errorOf(client.action(api.values.sizedAction, { size: 3 * MiB }))).message).toMatch(framed('Function values.js:sizedAction return value is too large (actual: 3.00 MiB, limit: 1 MiB)'))
  })

  test('a live query whose result is too large gets the error as its result', async () => {
    const live = new ConvexClient(backend.url, { unsavedChangesWarning: false } as any)
    try {
      const failure = await new Promise<Error>((resolve) => live.onUpdate(api.values.sized, { size: 2 * MiB }, () => {}, resolve))
      expect(failure.message).toMatch(framedLive('Q(values:sized)', 'Function values.js:sized return value is too large (actual: 2.00 MiB, limit: 1 MiB)'))
    } finally {
      await live.close()
    }
  })
})

describe("a function's arguments (Convex's 16 MiB)", () => {
  test('arguments over 16 MiB (possible over the sync socket) are refused with Convex\'s message', async () => {
    const live = new ConvexClient(backend.url, { unsavedChangesWarning: false } as any)
    try {
      // [{name: s}]: 2 + (2 + "name" 4 + 1 + (2 + length)) bytes.
      const name = 'x'.repeat(16 * MiB - 10)
      expect((await errorOf(live.mutation(api.counter.increment, { name }))).message).toMatch(framedLive('M(counter:increment)', 'Arguments for counter.js:increment are too large (actual: 16.00 MiB, limit: 16 MiB)'))
    } finally {
      await live.close()
    }
  }, 60_000)
})
