import { expect, test } from 'vitest'
import { ConvexClient, ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { getConvexSize } from 'convex/values'
import type { Value } from 'convex/values'
import { until, useDeployedBackend } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'

const api = anyApi as any
let client: ConvexHttpClient
let backend: TestBackend

useDeployedBackend('meta', (t) => ({ client, backend } = t))

/** Convex's default per-transaction limits. */
const LIMITS = {
  bytesRead: 16 * 2 ** 20,
  bytesWritten: 16 * 2 ** 20,
  databaseQueries: 4096,
  documentsRead: 32_000,
  documentsWritten: 16_000,
  functionsScheduled: 1000,
  scheduledFunctionArgsBytes: 16 * 2 ** 20,
}
type Used = Partial<Record<keyof typeof LIMITS, number>>

/** The metrics `getTransactionMetrics()` reports after using `used` (the rest unused). */
function metrics(used: Used, limits: Used = {}) {
  const all = { ...LIMITS, ...limits }
  return Object.fromEntries(Object.entries(all).map(([k, limit]) => [k, { used: used[k as keyof Used] ?? 0, remaining: limit - (used[k as keyof Used] ?? 0) }]))
}

const size = (docs: unknown[]) => docs.reduce<number>((n, d) => n + getConvexSize(d as Value), 0)


test('ctx.meta.getTransactionMetrics(): what a mutation read, wrote and scheduled, against Convex limits', async () => {
  await client.mutation(api.meta.seed, { count: 3 })
  const r = await client.mutation(api.meta.work, {})
  expect(r.docs.map((d: { n: number }) => d.n)).toEqual([0, 1, 2])
  expect(r.start).toEqual(metrics({}))
  // A query's range and a db.get are one "database query" each; every document read is charged its Convex size.
  const reads = size(r.docs) + size([r.docs[0]])
  expect(r.afterReads).toEqual(metrics({ documentsRead: 4, bytesRead: reads, databaseQueries: 2 }))
  // patch reads the document it changes; writes are charged the new documents' sizes; a scheduled
  // call its arguments array.
  expect(r.afterWrites).toEqual(
    metrics({
      documentsRead: 5,
      bytesRead: reads + size([r.docs[0]]),
      databaseQueries: 2,
      documentsWritten: 2,
      bytesWritten: size([r.inserted, r.patched]),
      functionsScheduled: 1,
      scheduledFunctionArgsBytes: getConvexSize([{ x: 'abc' }]),
    }),
  )
})

test('getTransactionMetrics() in a query counts only what it took (first(), a page)', async () => {
  const r = await client.query(api.meta.queryMetrics, {})
  expect(r.first.n).toBe(0)
  expect(r.metrics).toEqual(metrics({ documentsRead: 1, bytesRead: size([r.first]), databaseQueries: 1 }))
  // A page is charged the documents it holds (not the look-ahead that tells whether more follow).
  // A loop that stops after the first document is charged that document only, each time.
  const b = await client.query(api.meta.breakMetrics, {})
  expect(b.taken.map((d: { n: number }) => d.n)).toEqual([0, 0, 0, 0, 0])
  // (The same range read five times is one range of the read set.)
  expect(b.metrics).toEqual(metrics({ documentsRead: 5, bytesRead: size(b.taken), databaseQueries: 1 }))
  // Two taken of a batch that read more: the rest is given back. Through a filter, the document
  // it left out before the one taken counts (it was read to find it); none after it.
  await client.mutation(api.meta.seedPile, { count: 20 })
  for (const [take, skipFirst, read] of [[2, false, 2], [17, false, 17], [1, true, 2], [3, true, 4]] as const) {
    const t = await client.query(api.meta.takeSome, { take, skipFirst })
    expect(t.taken.length).toBe(take)
    expect(t.hostGlobals).toEqual([])
    const all = await client.query(api.meta.takeSome, { take: read, skipFirst: false })
    expect(t.metrics.documentsRead.used).toBe(read)
    expect(t.metrics.bytesRead.used).toBe(size(all.taken))
  }
  const p = await client.query(api.meta.pageMetrics, {})
  expect(p.isDone).toBe(false)
  expect(p.metrics.documentsRead).toEqual({ used: 2, remaining: LIMITS.documentsRead - 2 })
  expect(p.metrics.bytesRead.used).toBe(size(p.page))
})

test("a function past 80% of a limit without passing it gets Convex's warning in its log", async () => {
  const logLinesOf = async (count: number) => {
    const res = await fetch(`${backend.url}/api/query`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: 'meta:manyReads', args: { count }, format: 'json' }) })
    return ((await res.json()) as { value: number; logLines: string[] }).logLines
  }
  // (An answer without log lines has no `logLines`, as Convex's.)
  expect(await logLinesOf(3276)).toBeUndefined()
  expect(await logLinesOf(3300)).toEqual([
    '[WARN] Many reads in a single function execution (actual: 3300, limit: 4096). Consider using smaller limits in your queries, paginating your queries, or using indexed queries with a selective index range expressions.',
  ])
})

test("getServiceUrl('ai-gateway') is refused as getServiceToken is; another service is an argument error", async () => {
  expect(await client.action(api.meta.serviceUrl, { service: 'ai-gateway' })).toBe('`getServiceUrl("ai-gateway")` isn\'t available on this deployment because the AI gateway is a Convex Cloud service. Deploy to Convex Cloud, or call your model provider directly with your own API key.')
  expect(await client.action(api.meta.serviceUrl, { service: 'mail' })).toBe('Invalid arguments for `getServiceUrl`: unknown variant `mail`, expected `ai-gateway`')
})

test("getServiceToken('ai-gateway') is refused with Convex's self-hosted words", async () => {
  expect(await client.action(api.meta.serviceToken, {})).toBe('`getServiceToken("ai-gateway")` isn\'t available on this deployment because the AI gateway is a Convex Cloud service. Deploy to Convex Cloud, or call your model provider directly with your own API key.')
})

test('log.audit() is taken in queries and refused in actions, as in Convex', async () => {
  expect(await client.query(api.meta.audited, {})).toEqual({ logged: true, missing: 'Invalid arguments for `auditLog`: missing field `body`' })
  expect(await client.action(api.meta.auditedAction, {})).toBe('Audit logging is not yet supported in actions')
})

test('runQuery/runMutation with transactionLimits: the nested call gets that much more, capped, with Convex messages', async () => {
  const r = await client.mutation(api.meta.nestedLimits, {})
  const help = 'Consider using smaller limits in your queries, paginating your queries, or using indexed queries with a selective index range expressions.'
  expect(r.reads.error).toContain(`Too many documents read in a single function execution (limit: 3). ${help}`)
  expect(r.readsEnough).toEqual({ ok: 3 })
  // Inside the call: 7 documents read so far, 5 more allowed; 10 bytes of writes; the rest as before.
  expect(r.inner.documentsRead).toEqual({ used: 7, remaining: 5 })
  expect(r.inner.bytesWritten).toEqual({ used: 0, remaining: 10 })
  expect(r.inner.documentsWritten).toEqual({ used: 0, remaining: LIMITS.documentsWritten })
  // A budget past the transaction's own limit is capped at it.
  expect(r.tooHigh.documentsRead).toEqual({ used: 7, remaining: LIMITS.documentsRead - 7 })
  expect(r.writes.error).toContain('Too many writes in a single function execution (limit: 2)')
  expect(r.writesEnough).toEqual({ ok: 2 })
  expect(r.queries.error).toContain(`Too many reads in a single function execution (limit: 1). ${help}`)
  expect(r.scheduled.error).toContain('Too many functions scheduled by this mutation (limit: 0)')
  expect(r.negative.error).toContain('Invalid arguments for `runUdf`: invalid value: integer `-1`, expected usize')
  expect(r.fraction.error).toContain('Invalid arguments for `runUdf`: invalid type: floating point `1.5`, expected usize')
  // Back in the caller its own limits hold; the failed nested mutation's writes don't count.
  for (const [name, limit] of Object.entries(LIMITS)) expect(r.after[name].used + r.after[name].remaining).toBe(limit)
  expect(r.after.documentsWritten.used).toBe(2)
  expect(r.after.documentsRead.used).toBe(7)
  expect(r.limitedRows).toBe(2)
  expect(await client.query(api.meta.queryNestedLimits, {})).toEqual({ error: expect.stringContaining('Too many documents read in a single function execution (limit: 2)') })
})

test('a scheduled function that cancels itself ends canceled (a mutation keeps its writes); a mutation that then throws ends failed', async () => {
  await client.mutation(api.meta.scheduleSelfCancel, { kind: 'mutation' })
  const done = await until(() => client.query(api.meta.jobState, { tag: 'mutation' }), (j) => j.state?.kind !== 'pending')
  // While it ran it saw its own job inProgress.
  // What it scheduled after canceling itself was born canceled.
  expect(done).toEqual({ state: { kind: 'canceled' }, marks: [{ seenState: 'inProgress', after: 'canceled', child: { kind: 'canceled' } }] })

  await client.mutation(api.meta.scheduleSelfCancel, { kind: 'throwingMutation' })
  const failed = await until(() => client.query(api.meta.jobState, { tag: 'throwingMutation' }), (j) => j.state?.kind !== 'pending')
  expect(failed.state.kind).toBe('failed')
  expect(failed.state.error).toContain('Uncaught Error: after canceling itself')
  expect(failed.marks).toEqual([])

  await client.mutation(api.meta.scheduleSelfCancel, { kind: 'action' })
  const action = await until(() => client.query(api.meta.jobState, { tag: 'action' }), (j) => j.marks.length === 1 && j.state?.kind !== 'inProgress')
  expect(action).toEqual({ state: { kind: 'canceled' }, marks: [{ seenState: 'action', after: 'action', child: { kind: 'canceled' } }] })
})

test('ctx.meta function, deployment and request metadata, over HTTP, the sync socket and for scheduled functions', async () => {
  const instanceName = await (await fetch(`${backend.url}/instance_name`)).text()
  const deployment = { name: instanceName, region: null, class: 's16' }
  // An HTTP client behind a proxy: the first x-forwarded-for address and the user agent are reported,
  // with the request id the response carries.
  const requestIds: string[] = []
  const proxied = new ConvexHttpClient(backend.url, {
    fetch: async (input, init) => {
      const res = await fetch(input, { ...init, headers: { ...(init?.headers as Record<string, string>), 'x-forwarded-for': '203.0.113.7, 10.0.0.1', 'user-agent': 'meta-test/1.0' } })
      requestIds.push(res.headers.get('convex-request-id')!)
      return res
    },
  })
  const m = await proxied.mutation(api.meta.whoAmI, {})
  expect(m.fn).toEqual({ name: 'meta:whoAmI', componentPath: '', type: 'mutation', visibility: 'public' })
  expect(m.deployment).toEqual(deployment)
  expect(m.request).toEqual({ ip: '203.0.113.7', userAgent: 'meta-test/1.0', requestId: requestIds[0], scheduledFunctionId: null, authToken: null })
  // A nested call reports its own name and its caller's request.
  expect(m.nested).toEqual({ fn: { name: 'meta:requestOf', componentPath: '', type: 'mutation', visibility: 'internal' }, request: m.request })
  expect(await proxied.query(api.meta.queryMeta, {})).toEqual({ fn: { name: 'meta:queryMeta', componentPath: '', type: 'query', visibility: 'public' }, deployment })
  const a = await proxied.action(api.meta.actionMeta, {})
  expect(a.fn).toEqual({ name: 'meta:actionMeta', componentPath: '', type: 'action', visibility: 'public' })
  expect(a.deployment).toEqual(deployment)
  expect(a.request).toEqual({ ip: '203.0.113.7', userAgent: 'meta-test/1.0', requestId: requestIds[2], scheduledFunctionId: null, authToken: null })
  expect(a.nested.request).toEqual(a.request)

  // A client with no proxy in front: the connection's address (the user agent is Node's fetch's).
  const direct = await new ConvexHttpClient(backend.url).mutation(api.meta.whoAmI, {})
  expect(direct.request).toEqual({ ip: '127.0.0.1', userAgent: 'node', requestId: expect.stringMatching(/^[0-9a-f]{16}$/), scheduledFunctionId: null, authToken: null })

  // Over the sync socket: the connection's address, a request id per message.
  const live = new ConvexClient(backend.url, { unsavedChangesWarning: false } as any)
  try {
    const s = await live.mutation(api.meta.whoAmI, {})
    expect(s.request.ip).toBe('127.0.0.1')
    expect(s.request.requestId).toMatch(/^[0-9a-f]{16}$/)
    expect(s.nested.request).toEqual(s.request)
  } finally {
    await live.close()
  }

  // A scheduled function (and what it calls) reports its job's id and no client.
  const jobId = await client.mutation(api.meta.scheduleReporter, {})
  const [report] = await until(() => client.query(api.meta.reports, {}), (r) => r.length === 1)
  expect(report.request).toEqual({ ip: null, userAgent: null, requestId: expect.stringMatching(/^[0-9a-f]{16}$/), scheduledFunctionId: jobId, authToken: null })
  expect(report.nested).toEqual(report.request)
})
