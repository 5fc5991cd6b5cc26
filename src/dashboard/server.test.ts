import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, expect, test } from 'vitest'
import { brotliDecompressSync, gunzipSync } from 'node:zlib'
import { chooseEncoding, createDashboardApp } from './server.ts'

const dir = mkdtempSync(join(tmpdir(), 'dashboard-'))
writeFileSync(join(dir, 'index.html'), '<p>page</p>')
writeFileSync(join(dir, 'app.js'), 'export {}')
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const options = { convexOrigin: () => undefined, siteOrigin: () => undefined, apiPort: 3210, sitePort: 3211, version: '9.9.9' }

test('serves the built files with their types, and the page for any other path', async () => {
  const app = createDashboardApp({ ...options, dir })
  const index = await app.request('/')
  expect([index.status, index.headers.get('content-type'), await index.text()]).toEqual([200, 'text/html; charset=utf-8', '<p>page</p>'])
  expect(index.headers.get('content-security-policy')).toContain("script-src 'self'")
  const js = await app.request('/app.js')
  expect([js.status, js.headers.get('content-type'), await js.text()]).toEqual([200, 'text/javascript; charset=utf-8', 'export {}'])
  // A page of the app, or a path that tries to leave the folder: the page.
  expect(await (await app.request('/data/notes')).text()).toBe('<p>page</p>')
  expect(await (await app.request('/..%2f..%2fetc/passwd')).text()).toBe('<p>page</p>')
  expect((await app.request('/', { method: 'POST' })).status).toBe(405)
})

test('files go compressed to a browser that accepts it: brotli, else gzip, else as built', async () => {
  const app = createDashboardApp({ ...options, dir })
  const get = async (acceptEncoding?: string) => {
    const res = await app.request('/app.js', { headers: acceptEncoding === undefined ? {} : { 'accept-encoding': acceptEncoding } })
    return { encoding: res.headers.get('content-encoding'), vary: res.headers.get('vary'), type: res.headers.get('content-type'), body: Buffer.from(await res.arrayBuffer()) }
  }
  const br = await get('gzip, deflate, br, zstd')
  expect([br.encoding, br.vary, br.type, brotliDecompressSync(br.body).toString()]).toEqual(['br', 'accept-encoding', 'text/javascript; charset=utf-8', 'export {}'])
  // Kept: the second answer is the same bytes.
  expect((await get('br')).body).toEqual(br.body)
  const gz = await get('gzip, br;q=0')
  expect([gz.encoding, gunzipSync(gz.body).toString()]).toEqual(['gzip', 'export {}'])
  for (const plain of [undefined, 'identity', 'deflate', 'gzip;q=0']) expect(await get(plain)).toEqual({ encoding: null, vary: 'accept-encoding', type: 'text/javascript; charset=utf-8', body: Buffer.from('export {}') })
  // A page of the app too.
  expect(gunzipSync((await get('gzip')).body).toString()).toBe('export {}')
  expect(gunzipSync(Buffer.from(await (await app.request('/data/notes', { headers: { 'accept-encoding': 'gzip' } })).arrayBuffer())).toString()).toBe('<p>page</p>')
})

test('chooseEncoding reads Accept-Encoding with its weights', () => {
  expect(chooseEncoding('gzip, deflate, br')).toBe('br')
  expect(chooseEncoding('GZIP;q=0.5, BR;q=1.0')).toBe('br')
  expect(chooseEncoding('br;q=0, gzip;q=0.1')).toBe('gzip')
  expect(chooseEncoding('br;q=0.0, gzip;q=0')).toBe(null)
  expect(chooseEncoding('*')).toBe(null)
  expect(chooseEncoding(undefined)).toBe(null)
})

test('config.json tells the page where the deployment is: the configured origin, else its port', async () => {
  expect(await (await createDashboardApp({ ...options, dir }).request('/config.json')).json()).toEqual({ deploymentUrl: null, apiPort: 3210, siteUrl: null, sitePort: 3211, version: '9.9.9' })
  const configured = createDashboardApp({ ...options, dir, convexOrigin: () => 'https://api.example.com', siteOrigin: () => 'https://site.example.com' })
  expect(await (await configured.request('/config.json')).json()).toEqual({ deploymentUrl: 'https://api.example.com', apiPort: 3210, siteUrl: 'https://site.example.com', sitePort: 3211, version: '9.9.9' })
})

test('a build without the dashboard says so', async () => {
  const empty = mkdtempSync(join(tmpdir(), 'dashboard-empty-'))
  try {
    const res = await createDashboardApp({ ...options, dir: empty }).request('/')
    expect([res.status, await res.text()]).toEqual([404, 'This build of the backend has no dashboard (run `npm run build`).'])
  } finally {
    rmSync(empty, { recursive: true, force: true })
  }
})
