import { expect, test } from 'vitest'
import { ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import WebSocket from 'ws'
import { cleanup, startBackend, useDeployedBackend } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'

const api = anyApi as any
let backend: TestBackend
let appDir: string | undefined

useDeployedBackend('basic', (t) => ({ backend, appDir } = t))

test('acknowledged writes and the last push survive kill -9', async () => {
  const client = new ConvexHttpClient(backend.url)
  const ids: string[] = []
  for (let i = 0; i < 20; i++) ids.push(await client.mutation(api.messages.send, { author: 'durable', body: `m${i}`, n: i }))
  await Promise.all(Array.from({ length: 10 }, () => client.mutation(api.counter.increment, { name: 'k' }, { skipQueue: true } as any)))
  const tsBefore = ((await (await fetch(`${backend.url}/api/query_ts`, { method: 'POST', headers: { 'content-type': 'application/json' } })).json()) as any).ts as string

  const { signal } = await backend.stop('SIGKILL')
  expect(signal).toBe('SIGKILL')
  await backend.restart()

  const after = new ConvexHttpClient(backend.url)
  const docs = await after.query(api.messages.list, { author: 'durable' })
  expect(docs.map((d: any) => d.body)).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`))
  expect(docs.map((d: any) => d._id)).toEqual(ids)
  expect(await after.query(api.counter.get, { name: 'k' })).toBe(10)
  expect(await after.query(api.messages.range, { author: 'durable', min: 5, max: 8, order: 'desc' })).toEqual([7, 6, 5])

  // Commit timestamps keep increasing across the restart.
  const tsAfter = ((await (await fetch(`${backend.url}/api/query_ts`, { method: 'POST', headers: { 'content-type': 'application/json' } })).json()) as any).ts as string
  const decode = (s: string) => Buffer.from(s, 'base64').readBigUInt64LE()
  expect(decode(tsAfter) >= decode(tsBefore)).toBe(true)
  await after.mutation(api.messages.send, { author: 'durable', body: 'after restart' })
  const tsNext = ((await (await fetch(`${backend.url}/api/query_ts`, { method: 'POST', headers: { 'content-type': 'application/json' } })).json()) as any).ts as string
  expect(decode(tsNext) > decode(tsBefore)).toBe(true)
})

test('SIGTERM shuts down cleanly', async () => {
  const { code } = await backend.stop('SIGTERM')
  expect(code).toBe(0)
  expect(backend.output()).toContain('Concave backend stopped')
  await backend.restart()
  const client = new ConvexHttpClient(backend.url)
  expect((await client.query(api.messages.list, { author: 'durable' })).length).toBe(21)
})

test('with no secret given, a dev secret is made, kept and its admin key printed', async () => {
  const dev = await startBackend({ withSecret: false })
  try {
    const creds = JSON.parse(readFileSync(join(dev.dataDir, 'concave_credentials.json'), 'utf8'))
    expect(creds.instanceName).toBe('convex-self-hosted')
    expect(creds.instanceSecret).toMatch(/^[0-9a-f]{64}$/)
    const printed = /Admin key:\s+(\S+)/.exec(dev.output())?.[1]
    expect(printed).toMatch(/^convex-self-hosted\|[0-9a-f]+$/)
    expect(existsSync(join(dev.dataDir, 'concave_local_backend.sqlite3'))).toBe(true)
    const res = await fetch(`${dev.url}/api/get_config_hashes`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Convex ${printed}` }, body: '{}' })
    expect(res.status).toBe(200)
    // The same secret is reused on the next start.
    await dev.stop()
    await dev.restart()
    const again = await fetch(`${dev.url}/api/get_config_hashes`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Convex ${printed}` }, body: '{}' })
    expect(again.status).toBe(200)
  } finally {
    await dev.stop()
    cleanup(dev.dataDir)
  }
})

test('a second backend on the same data folder refuses to start; a crash leaves no lock behind', async () => {
  const client = new ConvexHttpClient(backend.url)
  await client.mutation(api.messages.send, { author: 'locked', body: 'first' })
  const pid = backend.process.pid
  const second = await startBackend({ dataDir: backend.dataDir }).then(
    () => null,
    (e: Error) => e.message,
  )
  expect(second).toContain(`Another Concave backend (pid ${pid}, port ${new URL(backend.url).port}, started `)
  expect(second).toContain(`is using the data directory ${backend.dataDir}. Stop it first, or give this one another directory (--local-storage).`)
  expect(second).toMatch(/^backend exited with 1:/)
  // The first keeps serving, its data untouched.
  expect((await client.query(api.messages.list, { author: 'locked' })).map((m: any) => m.body)).toEqual(['first'])
  // kill -9 releases the lock: the next start needs no clean-up.
  await backend.stop('SIGKILL')
  await backend.restart()
  expect((await new ConvexHttpClient(backend.url).query(api.messages.list, { author: 'locked' })).map((m: any) => m.body)).toEqual(['first'])
})

/** A raw sync-protocol client: what ConvexClient does on reconnect, step by step. */
async function socketClient(url: string, sessionId: string, connectionCount: number) {
  const ws = new WebSocket(`${url.replace('http', 'ws')}/api/1.48.0/sync`)
  const messages: any[] = []
  let closed = false
  ws.on('message', (d) => messages.push(JSON.parse(d.toString())))
  ws.on('close', () => (closed = true))
  ws.on('error', () => {})
  await new Promise((resolve, reject) => {
    ws.once('open', resolve)
    ws.once('error', reject)
  })
  ws.send(JSON.stringify({ type: 'Connect', sessionId, connectionCount, lastCloseReason: null, maxObservedTimestamp: null }))
  return {
    mutate(requestId: number, udfPath: string, args: unknown) {
      ws.send(JSON.stringify({ type: 'Mutation', requestId, udfPath, args: [args] }))
    },
    /** The MutationResponse for `requestId`, or null if the socket closed without one. */
    async response(requestId: number): Promise<any> {
      const deadline = Date.now() + 10_000
      for (;;) {
        const r = messages.find((m) => m.type === 'MutationResponse' && m.requestId === requestId)
        if (r !== undefined) return r
        if (closed) return null
        if (Date.now() > deadline) throw new Error(`no response to ${requestId}: ${JSON.stringify(messages)}`)
        await new Promise((r) => setTimeout(r, 10))
      }
    },
    close: () => ws.close(),
  }
}

test('a socket mutation re-sent after kill -9 is answered from its record, not run again', async () => {
  const sessionId = 'a4f1c2d3-0000-4000-8000-00000000c0de'
  const first = await socketClient(backend.url, sessionId, 0)
  first.mutate(1, 'counter:increment', { name: 'once-kill' })
  const answered = await first.response(1)
  expect([answered.success, answered.result]).toEqual([true, 1])
  await backend.stop('SIGKILL')
  await backend.restart()
  // The client never saw its Transition: it reconnects and sends the mutation again.
  const again = await socketClient(backend.url, sessionId, 1)
  again.mutate(1, 'counter:increment', { name: 'once-kill' })
  const replayed = await again.response(1)
  expect([replayed.success, replayed.result]).toEqual([true, 1])
  // A new request of the same session does run.
  again.mutate(2, 'counter:increment', { name: 'once-kill' })
  expect((await again.response(2)).result).toBe(2)
  again.close()
  expect(await new ConvexHttpClient(backend.url).query(api.counter.get, { name: 'once-kill' })).toBe(2)
})

test('SIGTERM answers the socket mutations it took before it closes; a re-sent one is applied once', async () => {
  const sessionId = 'a4f1c2d3-0000-4000-8000-00000000beef'
  const first = await socketClient(backend.url, sessionId, 0)
  first.mutate(1, 'counter:increment', { name: 'once-term' })
  const stopped = backend.stop('SIGTERM')
  // Taken before the signal: answered before the socket closes. Arrived after it: unanswered.
  const answered = await first.response(1)
  expect((await stopped).code).toBe(0)
  await backend.restart()
  const again = await socketClient(backend.url, sessionId, 1)
  again.mutate(1, 'counter:increment', { name: 'once-term' })
  const replayed = await again.response(1)
  expect([replayed.success, replayed.result]).toEqual([true, 1])
  if (answered !== null) expect([answered.success, answered.result]).toEqual([true, 1])
  again.close()
  expect(await new ConvexHttpClient(backend.url).query(api.counter.get, { name: 'once-term' })).toBe(1)
})
