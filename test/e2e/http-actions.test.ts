import { createHash } from 'node:crypto'
import { createServer, request as httpRequest } from 'node:http'
import type { IncomingMessage } from 'node:http'
import { expect, test } from 'vitest'
import { ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { until, useDeployedBackend } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'

let backend: TestBackend
let appDir: string | undefined

// 20 MiB bodies cross the sandbox in 1 MiB chunks: leave them time on a busy CI machine.
useDeployedBackend('basic', (t) => ({ backend, appDir } = t), { env: { CONCAVE_ACTION_TIMEOUT_MS: '15000' } })

test('GET with query string, status and headers', async () => {
  const res = await fetch(`${backend.siteUrl}/hello?name=ada`)
  expect(res.status).toBe(200)
  expect(res.headers.get('x-concave')).toBe('yes')
  expect(await res.text()).toBe('hello ada')
})

test('POST body, content type and the path the action sees', async () => {
  const res = await fetch(`${backend.siteUrl}/echo`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'payload' })
  expect(res.status).toBe(201)
  expect(await res.json()).toEqual({ method: 'POST', body: 'payload', type: 'text/plain', path: '/echo' })
})

test('CORS is whatever the router declares (an OPTIONS route)', async () => {
  const res = await fetch(`${backend.siteUrl}/echo`, { method: 'OPTIONS' })
  expect(res.status).toBe(204)
  expect(res.headers.get('access-control-allow-methods')).toBe('POST')
})

test('prefix routes for every method; HEAD is routed as GET without a body', async () => {
  for (const method of ['GET', 'PUT', 'DELETE', 'PATCH', 'POST']) {
    const res = await fetch(`${backend.siteUrl}/files/a/b.txt`, { method })
    expect(await res.text()).toBe(`${method} /files/a/b.txt`)
  }
  const head = await fetch(`${backend.siteUrl}/files/x`, { method: 'HEAD' })
  expect(head.status).toBe(200)
  expect(await head.text()).toBe('')
})

test('a Response built from a ReadableStream and a request body read as a stream', async () => {
  const res = await fetch(`${backend.siteUrl}/stream`)
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toBe('text/plain')
  expect(await res.text()).toBe('chunk 1;chunk 2;chunk 3;')
  const pushed = await fetch(`${backend.siteUrl}/stream-pushed`)
  expect(await pushed.text()).toBe('first;second;third;pulled')
  const upload = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode('streamed '))
      controller.enqueue(new TextEncoder().encode('héllo'))
      controller.close()
    },
  })
  const echo = await fetch(`${backend.siteUrl}/stream-echo`, { method: 'POST', body: upload, duplex: 'half' } as RequestInit)
  expect(echo.status).toBe(200)
  expect(await echo.json()).toEqual({ bytes: 15, text: 'STREAMED HÉLLO', used: true })
  const broken = await fetch(`${backend.siteUrl}/stream-fails`)
  expect(broken.status).toBe(500)
  expect(await broken.text()).toContain('stream source broke')
})

test('a streamed response goes out as it is produced: the head and first chunk before the action finishes', async () => {
  const res = await fetch(`${backend.siteUrl}/stream-waits`)
  // The action is still waiting for the gate below, so these arrived while it ran.
  expect(res.status).toBe(200)
  const reader = res.body!.getReader()
  expect(new TextDecoder().decode((await reader.read()).value)).toBe('before;')
  await new ConvexHttpClient(backend.url).mutation(anyApi.counter.increment, { name: 'stream-gate' })
  let rest = ''
  for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value)
  expect(rest).toBe('after')
})

test("an action's fetch streams the upstream body: a proxy passes each part on as it arrives", async () => {
  let release!: () => void
  const released = new Promise<void>((r) => (release = r))
  const upstream = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.write('part1;')
    // The rest only once the test has seen the first part come through the proxy.
    void released.then(() => res.end('part2'))
  })
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()))
  try {
    const { port } = upstream.address() as { port: number }
    const res = await fetch(`${backend.siteUrl}/proxy?url=${encodeURIComponent(`http://127.0.0.1:${port}/stream`)}`)
    expect(res.status).toBe(200)
    expect(res.headers.get('x-upstream-status')).toBe('200')
    const reader = res.body!.getReader()
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('part1;')
    release()
    let rest = ''
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value)
    expect(rest).toBe('part2')
  } finally {
    release()
    upstream.close()
  }
})

test('request.clone() of a streamed body and response.clone() of a fetch both read every byte (tee)', async () => {
  const upload = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const part of ['one ', 'two ', 'three']) controller.enqueue(new TextEncoder().encode(part))
      controller.close()
    },
  })
  const target = encodeURIComponent(`${backend.siteUrl}/hello?name=clone`)
  const res = await fetch(`${backend.siteUrl}/clone-stream?url=${target}`, { method: 'POST', body: upload, duplex: 'half' } as RequestInit)
  expect(await res.json()).toEqual({ original: 'one two three', cloned: 'one two three', fetched: 'hello clone', fetchedCopy: 'hello clone' })
})

test('a client that goes away ends a streaming action', async () => {
  const abort = new AbortController()
  const res = await fetch(`${backend.siteUrl}/stream-forever`, { signal: abort.signal })
  const reader = res.body!.getReader()
  expect(new TextDecoder().decode((await reader.read()).value)).toMatch(/^tick 1;/)
  abort.abort()
  // The action's next write fails and the action ends with that error (not at its 2 s time limit).
  const auth = { authorization: `Convex ${backend.adminKey}` }
  let entry: { error: string | null } | undefined
  for (let cursor = 0; entry === undefined; ) {
    const page = (await (await fetch(`${backend.url}/api/stream_function_logs?cursor=${cursor}`, { headers: auth })).json()) as { entries: { identifier: string; error: string | null }[]; newCursor: number }
    entry = page.entries.find((e) => e.identifier === 'GET /stream-forever')
    cursor = page.newCursor
  }
  expect(entry.error).toContain('The client closed the connection')
})

test('a chunked request body streams to the action while its response streams back', async () => {
  const url = new URL(`${backend.siteUrl}/stream-duplex`)
  const req = httpRequest({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'transfer-encoding': 'chunked', 'content-type': 'text/plain' } })
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    req.once('response', resolve)
    req.once('error', reject)
  })
  // Each chunk is sent only after the answer to the one before: a buffered body would never end.
  req.write('ab')
  const res = await response
  expect(res.statusCode).toBe(202)
  expect(res.headers['x-duplex']).toBe('yes')
  const chunks = res[Symbol.asyncIterator]()
  const next = async () => String((await chunks.next()).value)
  expect(await next()).toBe('[AB]')
  req.write('cd')
  expect(await next()).toBe('[CD]')
  req.end()
  let tail = ''
  for (let c = await chunks.next(); !c.done; c = await chunks.next()) tail += String(c.value)
  expect(tail).toBe('[end]')
})

test("a response body is held to Convex's 20 MiB: a chunk that doesn't fit is dropped with an error in the log, a body near the limit is warned of", async () => {
  const MiB = 1024 * 1024
  const auth = { authorization: `Convex ${backend.adminKey}` }
  const { newCursor } = (await (await fetch(`${backend.url}/api/stream_function_logs?cursor=0`, { headers: auth })).json()) as { newCursor: number }
  // Whole bodies cross from the sandbox in pieces: one of the limit's size fits in its memory.
  const near = await fetch(`${backend.siteUrl}/big-response?whole=${20 * MiB}`)
  expect(near.status).toBe(200)
  expect((await near.arrayBuffer()).byteLength).toBe(20 * MiB)
  // Strings of that size are encoded (and decoded) within the sandbox's memory.
  const text = await fetch(`${backend.siteUrl}/big-response?text=${19 * MiB}`)
  expect([text.status, (await text.arrayBuffer()).byteLength]).toEqual([200, 19 * MiB])
  const decoded = await fetch(`${backend.siteUrl}/big-response?decoded=${2 * MiB}`)
  expect([decoded.status, (await decoded.text()) === 'b'.repeat(2 * MiB)]).toEqual([200, true])
  // A whole body is one chunk: past the limit, the response goes out with none.
  const over = await fetch(`${backend.siteUrl}/big-response?whole=${21 * MiB}`)
  expect(over.status).toBe(200)
  expect(await over.text()).toBe('')
  // The 10 MiB chunk would pass the limit: dropped; the one after it still fits.
  const streamed = await fetch(`${backend.siteUrl}/big-response?chunks=${15 * MiB},${10 * MiB},${1.5 * MiB}`)
  const bytes = new Uint8Array(await streamed.arrayBuffer())
  expect(bytes.length).toBe(16.5 * MiB)
  expect([bytes[0], bytes[15 * MiB - 1], bytes[15 * MiB], bytes[bytes.length - 1]]).toEqual([0x61, 0x61, 0x63, 0x63])
  const lines: [string, string][][] = []
  for (let cursor = newCursor; lines.length < 5; ) {
    const page = (await (await fetch(`${backend.url}/api/stream_function_logs?cursor=${cursor}`, { headers: auth })).json()) as { entries: { identifier: string; logLines: { level: string; messages: string[] }[] }[]; newCursor: number }
    for (const e of page.entries) if (e.identifier === 'GET /big-response') lines.push(e.logLines.map((l) => [l.level, l.messages.join(' ')]))
    cursor = page.newCursor
  }
  const tooLarge: [string, string] = ['ERROR', 'HttpResponseTooLarge: HTTP actions support responses up to 20 MiB']
  expect(lines).toEqual([
    [['WARN', 'Large response returned from an HTTP action (actual: 20971520 bytes, limit: 20971520 bytes).']],
    [['WARN', 'Large response returned from an HTTP action (actual: 19922944 bytes, limit: 20971520 bytes).']],
    [],
    [tooLarge],
    [tooLarge, ['WARN', 'Large response returned from an HTTP action (actual: 17301504 bytes, limit: 20971520 bytes).']],
  ])
})

test('a request body of 20 MiB reaches the action whole (it crosses into the sandbox in pieces)', async () => {
  const size = 20 * 1024 * 1024
  const res = await fetch(`${backend.siteUrl}/body-length`, { method: 'POST', body: 'x'.repeat(size) })
  expect([res.status, await res.text()]).toEqual([200, JSON.stringify({ bytes: size })])
  const streamed = await fetch(`${backend.siteUrl}/stream-count`, { method: 'POST', body: new Uint8Array(size + 1).subarray(1) })
  expect([streamed.status, await streamed.text()]).toEqual([200, JSON.stringify({ bytes: size })])
})

test('an action stores, gets and posts a 24 MiB file: its bytes cross the sandbox in pieces, never whole in base64', async () => {
  const size = 24 * 1024 * 1024
  const expected = new Uint8Array(size)
  for (let i = 0; i < size; i++) expected[i] = i % 251
  const sha256 = createHash('sha256').update(expected).digest('hex')
  // The action posts the file it read back here: its length and digest come back.
  const server = createServer((req, res) => {
    const hash = createHash('sha256')
    let length = 0
    req.on('data', (c: Buffer) => {
      hash.update(c)
      length += c.length
    })
    req.on('end', () => res.end(`${length} ${hash.digest('hex')}`))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  try {
    const { port } = server.address() as { port: number }
    const r = await new ConvexHttpClient(backend.url).action(anyApi.files.bigRoundTrip!, { mib: 24, url: `http://127.0.0.1:${port}/` })
    expect(r).toEqual({ size, type: 'application/octet-stream', tail: [...expected.subarray(size - 3)], sha256, posted: `${size} ${sha256}` })
  } finally {
    server.close()
  }
})

test("request.signal aborts when the client goes away before the response, and the action runs on (as Convex's)", async () => {
  expect(await (await fetch(`${backend.siteUrl}/abort-watch?check=1`)).json()).toEqual({ aborted: false, isSignal: true, cloned: true })
  const client = new ConvexHttpClient(backend.url)
  const controller = new AbortController()
  const pending = fetch(`${backend.siteUrl}/abort-watch`, { signal: controller.signal }).catch((e: Error) => e.name)
  // The action is waiting for its signal: the client gives up.
  await until(() => client.query(anyApi.counter.get!, { name: 'abort-watch:started' }), (n) => n === 1)
  controller.abort()
  expect(await pending).toBe('AbortError')
  await until(() => client.query(anyApi.counter.get!, { name: 'aborted:AbortError' }), (n) => n === 1)
})

test('an action that fails after its streamed response began ends the body cleanly, as Convex does; the failure is in its log', async () => {
  const auth = { authorization: `Convex ${backend.adminKey}` }
  const { newCursor } = (await (await fetch(`${backend.url}/api/stream_function_logs?cursor=0`, { headers: auth })).json()) as { newCursor: number }
  const res = await fetch(`${backend.siteUrl}/stream-then-throw`)
  expect([res.status, await res.text()]).toEqual([200, 'part 1;part 2;'])
  let entry: { error: string | null } | undefined
  for (let cursor = newCursor; entry === undefined; ) {
    const page = (await (await fetch(`${backend.url}/api/stream_function_logs?cursor=${cursor}`, { headers: auth })).json()) as { entries: { identifier: string; error: string | null }[]; newCursor: number }
    entry = page.entries.find((e) => e.identifier === 'GET /stream-then-throw')
    cursor = page.newCursor
  }
  expect(entry.error).toMatch(/^Uncaught Error: Hit error while streaming\n/)
})

test('request bodies over 20 MiB are refused: up front when the length is known, mid-stream when chunked', async () => {
  const big = 'x'.repeat(20 * 1024 * 1024 + 1)
  // The server answers without reading on; a client still uploading may see a reset instead.
  const answered = async (request: Promise<Response>, status: number, text: string) => {
    let res: Response
    let body: string
    try {
      res = await request
      body = await res.text()
    } catch (e) {
      // The server closes the connection once it has answered: the client may see that first.
      expect(['EPIPE', 'ECONNRESET', 'UND_ERR_SOCKET']).toContain((e as any).cause?.code)
      return
    }
    expect(res.status).toBe(status)
    expect(body).toContain(text)
  }
  await answered(fetch(`${backend.siteUrl}/echo`, { method: 'POST', body: big }), 413, 'Request body is too large (limit 20971520 bytes)')
  // A declared length past the limit is answered before the body comes: here it never does.
  const early = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const echo = new URL(`${backend.siteUrl}/echo`)
    const req = httpRequest({ host: echo.hostname, port: echo.port, path: echo.pathname, method: 'POST', headers: { 'content-length': String(30 * 1024 * 1024) } })
    req.on('response', (res) => {
      let body = ''
      res.on('data', (d) => (body += d))
      res.on('end', () => resolve({ status: res.statusCode!, body }))
    })
    req.on('error', reject)
    req.write('just a few bytes')
  })
  expect(early).toEqual({ status: 413, body: 'Request body is too large (limit 20971520 bytes)' })
  // Chunked: the action reading it sees the stream fail with the limit's message. (node:http, whose
  // errors all arrive as events, since the server may close before the upload is done.)
  const url = new URL(`${backend.siteUrl}/stream-count`)
  const chunkedAnswer = await new Promise<{ status: number; body: string } | 'reset'>((resolve) => {
    const req = httpRequest({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'transfer-encoding': 'chunked' } })
    req.on('response', (res) => {
      let body = ''
      res.on('data', (d) => (body += d))
      res.on('end', () => resolve({ status: res.statusCode!, body }))
      res.on('error', () => resolve('reset'))
    })
    req.on('error', () => resolve('reset'))
    const chunk = Buffer.alloc(1024 * 1024, 120)
    let sent = 0
    const more = () => {
      while (sent < 21) {
        sent++
        if (!req.write(chunk)) return void req.once('drain', more)
      }
      req.end()
    }
    more()
  })
  if (chunkedAnswer !== 'reset') {
    expect(chunkedAnswer.status).toBe(500)
    expect(chunkedAnswer.body).toContain('Request body is too large (limit 20971520 bytes)')
  }
  // Just under the limit, chunked, is read to the end.
  const under = new ReadableStream<Uint8Array>({
    start(controller) {
      for (let i = 0; i < 20; i++) controller.enqueue(new Uint8Array(1024 * 1024).fill(120))
      controller.close()
    },
  })
  const counted = await fetch(`${backend.siteUrl}/stream-count`, { method: 'POST', body: under, duplex: 'half' } as RequestInit)
  expect(await counted.json()).toEqual({ bytes: 20 * 1024 * 1024 })
  // The server keeps serving.
  expect(await (await fetch(`${backend.siteUrl}/hello?name=after`)).text()).toBe('hello after')
})

test('an HTTP action runs mutations and queries', async () => {
  const res = await fetch(`${backend.siteUrl}/messages`, { method: 'POST', body: JSON.stringify({ author: 'http', body: 'via http' }) })
  expect(res.headers.get('content-type')).toBe('application/json')
  expect(await res.json()).toEqual({ count: 1 })
})

test('also served under /http/ on the API port', async () => {
  const res = await fetch(`${backend.url}/http/hello`)
  expect(await res.text()).toBe('hello world')
})

test('unrouted paths get 404; a throwing action gets 500 with its message', async () => {
  const missing = await fetch(`${backend.siteUrl}/nope`)
  expect([missing.status, missing.headers.get('content-type')]).toEqual([404, 'text/plain; charset=utf-8'])
  expect(await missing.text()).toBe('No matching routes found')
  const wrongMethod = await fetch(`${backend.siteUrl}/hello`, { method: 'POST', body: 'x' })
  expect(wrongMethod.status).toBe(404)
  // A throw is answered as Convex does: JSON naming the request, with the source-mapped trace.
  const thrown = await fetch(`${backend.siteUrl}/throws`)
  expect(thrown.status).toBe(500)
  expect(thrown.headers.get('content-type')).toBe('application/json')
  const body = (await thrown.json()) as { code: string; trace: string }
  expect(Object.keys(body).sort()).toEqual(['code', 'trace'])
  expect(body.code).toMatch(/^\[Request ID: [0-9a-f]{16}\] Server Error: Uncaught Error: http boom$/)
  expect(body.trace).toBe('Uncaught Error: http boom\n    at <anonymous> (../convex/http.ts:62:10)\n')
})

test('a response no HTTP server can send is refused with a clear 500', async () => {
  const status = await fetch(`${backend.siteUrl}/bad-status`)
  expect(status.status).toBe(500)
  expect(((await status.json()) as { trace: string }).trace).toMatch(/^Uncaught RangeError: Failed to construct 'Response': The status provided is outside the range \[200, 599\]\.\n    at /)
  const header = await fetch(`${backend.siteUrl}/bad-header`)
  expect(header.status).toBe(500)
  expect(((await header.json()) as { trace: string }).trace).toMatch(/^Uncaught TypeError: Headers\.append: "bad name" is an invalid header name\.\n    at /)
  // Changed after the sandbox's checks (a status text with a line break): the host refuses it, and
  // cancels the streamed body rather than leave the action waiting for a reader.
  const statusText = await fetch(`${backend.siteUrl}/bad-status-text`)
  expect(statusText.status).toBe(500)
  expect(await statusText.text()).toBe("The HTTP action's response is not a valid HTTP response: Invalid statusText")
})
