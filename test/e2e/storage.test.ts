import { expect, test } from 'vitest'
import { ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { createHash } from 'node:crypto'
import { request as httpRequest } from 'node:http'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { errorOf, TEST_INSTANCE, TEST_SECRET, until, useDeployedBackend } from '../helpers/test-backend.ts'
import { issueStorageToken, openStorageToken } from '../../keybroker/index.ts'
import type { TestBackend } from '../helpers/test-backend.ts'

const api = anyApi as any
let backend: TestBackend
let appDir: string | undefined
let client: ConvexHttpClient

useDeployedBackend('basic', (t) => ({ backend, appDir, client } = t))

const bytes = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251))

async function upload(body: Buffer, type: string): Promise<string> {
  const url: string = await client.mutation(api.files.generateUploadUrl, {})
  expect(url.startsWith(`${backend.url}/api/storage/upload?token=`)).toBe(true)
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': type }, body })
  expect(res.status).toBe(200)
  const { storageId } = (await res.json()) as { storageId: string }
  return storageId
}

test('upload through a generated URL, then serve it with type, length and digest', async () => {
  const storageId = await upload(bytes, 'image/png')
  const url: string = await client.query(api.files.url, { storageId })
  const res = await fetch(url)
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toBe('image/png')
  expect(res.headers.get('content-length')).toBe('1000')
  const sha = createHash('sha256').update(bytes).digest()
  expect(res.headers.get('digest')).toBe(`sha-256=${sha.toString('base64')}`)
  expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true)
  expect(await client.query(api.files.metadata, { storageId })).toEqual({
    doc: { size: 1000, contentType: 'image/png', sha256: sha.toString('base64') },
    meta: { storageId, size: 1000, contentType: 'image/png', sha256: sha.toString('hex') },
  })
})

test('Range requests', async () => {
  const storageId = await upload(bytes, 'application/octet-stream')
  const url: string = await client.query(api.files.url, { storageId })
  const part = await fetch(url, { headers: { range: 'bytes=10-19' } })
  expect(part.status).toBe(206)
  expect(part.headers.get('content-range')).toBe('bytes 10-19/1000')
  expect(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(10, 20))).toBe(true)
  const tail = await fetch(url, { headers: { range: 'bytes=-5' } })
  expect(Buffer.from(await tail.arrayBuffer()).equals(bytes.subarray(995))).toBe(true)
  const bad = await fetch(url, { headers: { range: 'bytes=2000-' } })
  expect(bad.status).toBe(416)
})

test('delete: the URL is gone and the file no longer served', async () => {
  const storageId = await upload(Buffer.from('bye'), 'text/plain')
  const url: string = await client.query(api.files.url, { storageId })
  await client.mutation(api.files.remove, { storageId })
  expect(await client.query(api.files.url, { storageId })).toBeNull()
  expect((await fetch(url)).status).toBe(404)
  const again = await client.mutation(api.files.remove, { storageId }).catch((e: Error) => e)
  expect((again as Error).message).toContain('not found')
})

const framed = (message: string) => new RegExp(`^\\[Request ID: [0-9a-f]{16}\\] Server Error\\n${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n`)

test('storage calls with a malformed id fail with Convex’s argument error; a well-formed unknown one is simply absent', async () => {
  // `get` reports as storage.getMetadata, as in Convex; the message keeps Convex's line wrap.
  for (const [op, method] of [['getUrl', 'storage.getUrl'], ['getMetadata', 'storage.getMetadata'], ['get', 'storage.getMetadata'], ['delete', 'storage.delete']]) {
    const err = await errorOf(client.action(api.files.loose, { storageId: 'notanid', op }))
    expect(err.message).toMatch(framed(`Uncaught Error: Invalid argument \`storageId\` for \`${method}\`: Invalid storage ID: "notanid". Storage ID should be an\n                    Id of '_storage' table, or a UUID string.`))
  }
  const uuid = '6f1c1e9a-2b0e-4c53-9d1a-0c0f6a3b8e21'
  for (const op of ['getUrl', 'getMetadata', 'get']) expect(await client.action(api.files.loose, { storageId: uuid, op })).toBeNull()
  expect((await errorOf(client.action(api.files.loose, { storageId: uuid, op: 'delete' }))).message).toMatch(framed(`Uncaught Error: storage id ${uuid} not found`))
})

test('a missing or deleted file: getUrl, getMetadata and get answer null, delete throws "storage id X not found"', async () => {
  const storageId = await upload(Buffer.from('short-lived'), 'text/plain')
  await client.mutation(api.files.remove, { storageId })
  for (const op of ['getUrl', 'getMetadata', 'get']) expect(await client.action(api.files.loose, { storageId, op })).toBeNull()
  expect(await client.query(api.files.url, { storageId })).toBeNull()
  // In a mutation and in an action alike.
  expect((await errorOf(client.mutation(api.files.remove, { storageId }))).message).toMatch(framed(`Uncaught Error: storage id ${storageId} not found`))
  expect((await errorOf(client.action(api.files.loose, { storageId, op: 'delete' }))).message).toMatch(framed(`Uncaught Error: storage id ${storageId} not found`))
})

test('an id of another table is refused by every storage call', async () => {
  const messageId: string = await client.mutation(api.messages.send, { author: 'storage-test', body: 'not a file' })
  for (const op of ['getUrl', 'getMetadata', 'get', 'delete']) {
    expect((await errorOf(client.action(api.files.loose, { storageId: messageId, op }))).message).toMatch(
      framed("Uncaught Error: Invalid storage ID. Storage ID cannot be an ID on any table other than '_storage'."),
    )
  }
})

test('GET of a missing file is a 404 FileNotFound; a path that is no storage id a 400 InvalidStoragePath', async () => {
  const storageId = await upload(Buffer.from('gone soon'), 'text/plain')
  await client.mutation(api.files.remove, { storageId })
  const missing = await fetch(`${backend.url}/api/storage/${storageId}`)
  expect(missing.status).toBe(404)
  expect(await missing.json()).toEqual({ code: 'FileNotFound', message: `File ${storageId} not found` })
  const bad = await fetch(`${backend.url}/api/storage/notanid`)
  expect(bad.status).toBe(400)
  expect(await bad.json()).toEqual({
    code: 'InvalidStoragePath',
    message: 'Invalid storage path: "notanid". Please use `storage.getUrl(storageId: Id<"_storage">)` to generate a valid URL to retrieve files. See https://docs.convex.dev/file-storage/serve-files for more details',
  })
})

test('an upload with a Digest header: a mismatch is a 400 Sha256Mismatch and stores nothing; a match is stored', async () => {
  const before: number = await client.query(api.files.count, {})
  const body = Buffer.from('digest me')
  const right = createHash('sha256').update(body).digest('base64')
  const wrong = createHash('sha256').update('something else').digest('base64')
  const post = async (digest: string) => fetch(await client.mutation(api.files.generateUploadUrl, {}), { method: 'POST', headers: { 'content-type': 'text/plain', digest }, body })
  const mismatch = await post(`sha-256=${wrong}`)
  expect(mismatch.status).toBe(400)
  expect(await mismatch.json()).toEqual({ code: 'Sha256Mismatch', message: `Sha256 mismatch. Expected: ${wrong} Actual: ${right}` })
  const malformed = await post('sha-256=nothex')
  expect(malformed.status).toBe(400)
  expect(await malformed.json()).toEqual({ code: 'BadHeader', message: 'Bad header for digest: invalid HTTP header' })
  expect(await client.query(api.files.count, {})).toBe(before)
  const ok = await post(`sha-256=${right}`)
  expect(ok.status).toBe(200)
  const { storageId } = (await ok.json()) as { storageId: string }
  expect(await (await fetch(await client.query(api.files.url, { storageId }))).text()).toBe('digest me')
})

test('an upload URL takes files for its hour, as Convex\'s: each POST stores one, before and after a restart', async () => {
  const url: string = await client.mutation(api.files.generateUploadUrl, {})
  // Convex's token: hex of a version byte, a nonce and the sealed StorageTokenProto.
  expect(new URL(url).searchParams.get('token')).toMatch(/^01[0-9a-f]{80,}$/)
  const before: number = await client.query(api.files.count, {})
  const post = async (body: string) => {
    const res = await fetch(url.replace(/127\.0\.0\.1:\d+/, new URL(backend.url).host), { method: 'POST', headers: { 'content-type': 'text/plain' }, body })
    expect(res.status).toBe(200)
    return ((await res.json()) as { storageId: string }).storageId
  }
  const ids = [await post('first'), ...(await Promise.all(['a', 'b'].map(post)))]
  expect(new Set(ids).size).toBe(3)
  expect(await client.query(api.files.count, {})).toBe(before + 3)
  await backend.stop()
  await backend.restart()
  const afterRestart = await post('third')
  expect(await (await fetch(await client.query(api.files.url, { storageId: afterRestart }))).text()).toBe('third')
  expect(await (await fetch(await client.query(api.files.url, { storageId: ids[0] }))).text()).toBe('first')
})

test('a Range request on an empty file answers 200 with no body and no Content-Range, as Convex does', async () => {
  const storageId = await upload(Buffer.alloc(0), 'text/plain')
  const url: string = await client.query(api.files.url, { storageId })
  const res = await fetch(url, { headers: { range: 'bytes=0-0' } })
  expect(res.status).toBe(200)
  expect(Object.fromEntries([...res.headers].filter(([k]) => !['date', 'connection', 'keep-alive', 'convex-request-id', 'access-control-allow-origin'].includes(k)))).toEqual({
    'content-type': 'text/plain',
    'content-length': '0',
    'cache-control': 'private, max-age=2592000',
    'accept-ranges': 'bytes',
  })
  expect((await res.arrayBuffer()).byteLength).toBe(0)
})

test('an upload declaring more than 1 GiB is refused at once with 413 and nothing is stored', async () => {
  const before = await client.query(api.files.count, {})
  const uploadUrl = new URL(await client.mutation(api.files.generateUploadUrl, {}))
  // Only a few bytes are sent: the declared length alone is refused, before the body is read.
  const answer = await new Promise<{ status: number; connection: string | undefined; body: string }>((resolve, reject) => {
    const req = httpRequest({ host: uploadUrl.hostname, port: uploadUrl.port, path: `${uploadUrl.pathname}${uploadUrl.search}`, method: 'POST', headers: { 'content-type': 'application/octet-stream', 'content-length': String(1024 * 1024 * 1024 + 1) } })
    req.on('response', (res) => {
      let body = ''
      res.on('data', (d) => (body += d))
      res.on('end', () => resolve({ status: res.statusCode!, connection: res.headers.connection, body }))
    })
    req.on('error', reject)
    req.write('just the start')
  })
  expect(answer.status).toBe(413)
  expect(answer.connection).toBe('close')
  expect(JSON.parse(answer.body)).toEqual({ code: 'PayloadTooLarge', message: 'The file is larger than 1073741824 bytes' })
  expect(await client.query(api.files.count, {})).toBe(before)
})

test('files a crash left behind (a committed delete, an unfinished upload) are swept at start-up', async () => {
  const kept = await upload(Buffer.from('kept'), 'text/plain')
  const gone = await upload(Buffer.from('gone'), 'text/plain')
  const overwritten = await upload(Buffer.from('original'), 'text/plain')
  await client.mutation(api.files.remove, { storageId: gone })
  const dir = join(backend.dataDir, 'storage')
  // As if the process died right after the delete committed, and during another upload.
  writeFileSync(join(dir, gone), 'left behind')
  writeFileSync(join(dir, '.upload-interrupted'), 'half a file')
  // And during an import that had moved a file aside and put another in its place: the file whose
  // digest its document has comes back; a moved-aside file that no longer matches goes.
  writeFileSync(join(dir, `.import-kept-${overwritten}`), 'original')
  writeFileSync(join(dir, overwritten), 'imported, never committed')
  writeFileSync(join(dir, `.import-kept-${kept}`), 'stale copy')
  await backend.stop('SIGKILL')
  await backend.restart()
  client = new ConvexHttpClient(backend.url)
  expect(existsSync(join(dir, gone))).toBe(false)
  expect(existsSync(join(dir, '.upload-interrupted'))).toBe(false)
  expect(readFileSync(join(dir, overwritten), 'utf8')).toBe('original')
  expect(existsSync(join(dir, `.import-kept-${overwritten}`))).toBe(false)
  expect(existsSync(join(dir, `.import-kept-${kept}`))).toBe(false)
  expect(readFileSync(join(dir, kept), 'utf8')).toBe('kept')
  expect(await (await fetch(await client.query(api.files.url, { storageId: kept }))).text()).toBe('kept')
})

test('a delete rolled back with its failing sub-mutation keeps the file', async () => {
  const storageId = await upload(Buffer.from('keep me'), 'text/plain')
  await client.mutation(api.files.deleteInFailedChild, { storageId })
  const url: string = await client.query(api.files.url, { storageId })
  await new Promise((r) => setTimeout(r, 200))
  expect(await (await fetch(url)).text()).toBe('keep me')
})

test('actions store and get blobs', async () => {
  const before: number = await client.query(api.files.count, {})
  const r = await client.action(api.files.storeAndRead, { text: 'hello storage' })
  expect(r.text).toBe('hello storage')
  expect(r.type).toBe('text/plain')
  expect(await (await fetch(r.url!)).text()).toBe('hello storage')
  expect(await client.query(api.files.count, {})).toBe(before + 1)
})

test('mutations store and get files (convex 1.48): the file commits with the mutation, its bytes count toward its limits', async () => {
  const stored = await client.mutation(api.files.storeInMutation, { text: 'from a mutation', fail: false })
  // The document's JSON isn't charged for a system table; the file's 15 bytes are, once each way.
  expect(stored).toEqual({ storageId: expect.any(String), text: 'from a mutation', type: 'text/plain', bytesWritten: 15, bytesRead: 15 })
  expect(await client.mutation(api.files.getInMutation, { storageId: stored.storageId })).toBe('from a mutation')
  const served = await fetch((await client.query(api.files.url, { storageId: stored.storageId })) as string)
  expect([served.status, served.headers.get('content-type'), await served.text()]).toEqual([200, 'text/plain', 'from a mutation'])

  // A mutation that fails after storing leaves no file behind.
  const before: number = await client.query(api.files.count, {})
  const failed = await errorOf(client.mutation(api.files.storeInMutation, { text: 'rolled back', fail: true }))
  const lostId = /failing after storing (\S+)/.exec(failed.message)![1]!
  expect(await client.query(api.files.count, {})).toBe(before)
  expect(await client.query(api.files.url, { storageId: lostId })).toBe(null)
  // Its bytes go too, without waiting for a restart's sweep; the committed file's stay.
  const dir = join(backend.dataDir, 'storage')
  await until(() => existsSync(join(dir, lostId)), (there) => !there)
  expect(readFileSync(join(dir, stored.storageId), 'utf8')).toBe('from a mutation')
})

test('uploads with a forged, expired or missing token are refused as Convex refuses them, and store nothing', async () => {
  const before: number = await client.query(api.files.count, {})
  const post = async (query: string) => {
    const res = await fetch(`${backend.url}/api/storage/upload${query}`, { method: 'POST', body: 'x' })
    return [res.status, await res.json()]
  }
  expect(await post('?token=eyJleHAiOjk5OTk5OTk5OTk5OTl9.AAAA')).toEqual([401, { code: 'StorageTokenInvalid', message: "Couldn't decode the StoreFileAuthorization token" }])
  // Sealed with another secret.
  expect(await post(`?token=${issueStorageToken('11'.repeat(32), { instanceName: TEST_INSTANCE, issuedS: Math.floor(Date.now() / 1000), component: null })}`)).toEqual([401, { code: 'StorageTokenInvalid', message: "Couldn't decode the StoreFileAuthorization token" }])
  // A token this instance issued an hour and a second ago.
  const expired = issueStorageToken(TEST_SECRET, { instanceName: TEST_INSTANCE, issuedS: Math.floor(Date.now() / 1000) - 3601, component: null })
  expect(await post(`?token=${expired}`)).toEqual([401, { code: 'StorageTokenExpired', message: 'Store File Authorization expired' }])
  // A token Convex minted with the same secret (its js-integration-tests' fixture, for its dev
  // instance "carnitas", in 2023): decoded, and refused as Convex refuses another instance's
  // (its message's braces are Convex's).
  const convexMinted = '01fadba622425353075d310561a03992352aa952b2f0113f3cd713b6bfa023c765be18fb122abb7ffd5505b81e8362'
  expect(openStorageToken(TEST_SECRET, convexMinted)).toEqual({ instanceName: 'carnitas', issuedS: 1674598314, storeFile: true, component: null })
  expect(await post(`?token=${convexMinted}`)).toEqual([401, { code: 'InvalidStorageToken', message: 'Storage token is for invalid instance {instance_name}' }])
  expect(await post('')).toEqual([400, { code: 'BadQueryArgs', message: 'Failed to deserialize query string: missing field `token`' }])
  expect(await client.query(api.files.count, {})).toBe(before)
})

test('stored files survive a restart', async () => {
  const storageId = await upload(Buffer.from('durable file'), 'text/plain')
  await backend.stop('SIGKILL')
  await backend.restart()
  const url: string = await new ConvexHttpClient(backend.url).query(api.files.url, { storageId })
  expect(await (await fetch(url)).text()).toBe('durable file')
})
