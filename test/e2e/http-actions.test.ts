import { expect, test } from 'vitest'
import { useDeployedBackend } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'

let backend: TestBackend
let appDir: string | undefined

useDeployedBackend('basic', (t) => ({ backend, appDir } = t))

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
  expect(missing.status).toBe(404)
  expect(await missing.text()).toBe('No HttpAction routed for /nope')
  const wrongMethod = await fetch(`${backend.siteUrl}/hello`, { method: 'POST', body: 'x' })
  expect(wrongMethod.status).toBe(404)
  const thrown = await fetch(`${backend.siteUrl}/throws`)
  expect(thrown.status).toBe(500)
  expect(await thrown.text()).toContain('Uncaught Error: http boom')
})
