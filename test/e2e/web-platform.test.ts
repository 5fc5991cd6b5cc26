/**
 * The web platform inside functions, as Convex's runtime offers it: FormData/File and body
 * content types, Event/EventTarget/AbortSignal, DOMException, WritableStream/TransformStream and
 * pipes, TextDecoder's fatal/BOM/streaming modes, structuredClone and performance — used by a
 * query, a mutation, an action and HTTP actions of the `web` fixture.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect, test } from 'vitest'
import { ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { errorOf, useDeployedBackend } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'

let backend: TestBackend
let client: ConvexHttpClient
let appDir: string

useDeployedBackend('web', (t) => ({ backend, client, appDir } = t))

const web = anyApi.web!

const NOT_VALID = 'TypeError(-): The encoded data is not valid.'
const ABORTED = 'AbortError(20): This operation was aborted [DOMException]'

test('WebAssembly: instantiate, compile and their streaming forms settle (also at import time); errors reject with the right class', async () => {
  expect(await client.query(web.wasm!, {})).toEqual({
    atImport: 5,
    instantiate: [true, 5],
    compiled: [true, true, 5],
    streamed: [5, ['function:add']],
    imports: 20,
    errors: ['CompileError', 'CompileError', 'TypeError', 'LinkError'],
    names: ['instantiate', 1, 'compile', false],
  })
})

test("code from strings is refused as Convex refuses it: eval and every function constructor throw V8's EvalError; instanceof still works", async () => {
  expect(await client.query(web.codeFromStrings!, { kind: 'none' })).toEqual({ isFunction: true, functionName: 'Function', generatorIsFunction: true })
  for (const kind of ['eval', 'Function', 'async', 'generator']) {
    expect((await errorOf(client.query(web.codeFromStrings!, { kind }))).message).toMatch(/^\[Request ID: [0-9a-f]{16}\] Server Error\nUncaught EvalError: Code generation from strings disallowed for this context\n/)
  }
})

test("a builtin Convex doesn't implement (a URL's host, username and password setters) fails the call however the code catches it: Convex's message, the frames, the lines before", async () => {
  for (const [kind, field] of [['query', 'password'], ['action', 'password'], ['query', 'username'], ['action', 'host']]) {
    const message = `Not implemented: set ${field} for URL. Consider calling an action defined in Node.js instead (https://docs.convex.dev/functions/actions).`
    const res = await fetch(`${backend.url}/api/${kind}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: `web:notImplementedIn${kind === 'query' ? 'Query' : 'Action'}`, args: { field }, format: 'json' }) })
    const body = (await res.json()) as { status: string; errorMessage: string; logLines: string[] }
    expect(body.status).toBe('error')
    expect(body.errorMessage).toMatch(new RegExp(`^\\[Request ID: [0-9a-f]{16}\\] Server Error\\n${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n    at setUrlField \\(\\.\\./convex/web\\.ts:\\d+:\\d+\\)\\n`))
    expect(body.logLines).toEqual(["[LOG] 'before'"])
  }
})

test("crypto.getRandomValues refuses float arrays and no argument with Convex's errors", async () => {
  expect(await client.query(web.randomValues!, {})).toEqual({
    float32: 'TypeMismatchError(17): The provided ArrayBufferView is not an integer array type [DOMException]',
    float64: 'TypeMismatchError(17): The provided ArrayBufferView is not an integer array type [DOMException]',
    none: "TypeError(-): Failed to execute 'getRandomValues' on 'Crypto': 1 argument required, but only 0 present.",
    int32: 4,
  })
})

test("a failed decryption rejects with Convex's OperationError messages", async () => {
  expect(await client.action(web.decryptFailures!, {})).toEqual({ oaep: 'OperationError(0): OAEP decryption failed [DOMException]', gcm: 'OperationError(0): Decryption failed [DOMException]' })
})

test("a JS syscall the backend doesn't know ends the call with Convex's message, caught or not", async () => {
  expect((await errorOf(client.action(web.unknownJsSyscall!, {}))).message).toMatch(/^\[Request ID: [0-9a-f]{16}\] Server Error\nUnknown JS syscall: idonotexistandicannotlie\n/)
  // Left unawaited in a query: the same error (not its rejection), no log line, none of the backend's own frames.
  const res = await fetch(`${backend.url}/api/query`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: 'web:unknownJsSyscallInQuery', args: {}, format: 'json' }) })
  const body = (await res.json()) as { errorMessage: string; logLines?: string[] }
  expect(body.errorMessage).toMatch(/^\[Request ID: [0-9a-f]{16}\] Server Error\nUnknown JS syscall: idonotexistandicannotlie\n/)
  expect(body.errorMessage).not.toMatch(/file:|backend-main|node:/)
  expect(body.logLines).toBeUndefined()
})

test('timers and fetch a module took when it loaded work in an action (with its log lines), and end a query as the global ones do', async () => {
  const server = (await import('node:http')).createServer((_req, res) => res.writeHead(204).end())
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  try {
    const { port } = server.address() as { port: number }
    const res = await fetch(`${backend.url}/api/action`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: 'web:globalsTakenAtLoad', args: { url: `http://127.0.0.1:${port}/` }, format: 'json' }) })
    expect(await res.json()).toEqual({ status: 'success', value: 204, logLines: ["[LOG] 'after both'"] })
  } finally {
    server.close()
  }
  expect((await errorOf(client.query(web.timerTakenAtLoadInQuery!, {}))).message).toMatch(/^\[Request ID: [0-9a-f]{16}\] Server Error\nCan't use setTimeout in queries and mutations\./)
})

test('crypto.subtle takes large data: a 24 MiB digest (its bytes cross to the host in pieces)', async () => {
  const size = 24 * 1024 * 1024
  const expected = new Uint8Array(size)
  for (let i = 0; i < size; i++) expected[i] = i % 251
  const { createHash } = await import('node:crypto')
  expect(await client.action(web.digestBig!, { mib: 24 })).toBe(createHash('sha256').update(expected).digest('hex'))
})

test("Atomics.wait is refused as Convex refuses it (it would block the function)", async () => {
  expect(await client.query(web.atomicsWait!, {})).toBe('TypeError(-): Atomics.wait cannot be called in this context')
})

test('DOMException: name, message and the legacy codes', async () => {
  const { domException } = await client.query(web.apis!, {})
  expect(domException).toEqual({
    abort: ['AbortError', 20, 'gone', true, 'AbortError: gone', '[object DOMException]'],
    defaults: ['Error', '', 0],
    codes: [25, 25, 5, 23],
  })
})

test('EventTarget: once, signal, handleEvent objects, preventDefault; AbortSignal is one; so is the global object; isTrusted is an own accessor', async () => {
  const { events } = await client.query(web.apis!, {})
  expect(events).toEqual({
    global: ['hello true true', 'hello true true'],
    isTrusted: ['function', true, false, false],
    log: ['listener ping true', 'until aborted', 'object 1', 'object 2'],
    cancel: [true, true, true],
    signal: [true, ['onabort abort', 'abort event true true'], ABORTED, ABORTED],
    any: [true, 'first'],
  })
})

test('structuredClone keeps Map, Set, Date, RegExp, bigint, undefined, buffers, views and cycles', async () => {
  const { clone } = await client.query(web.apis!, {})
  expect(clone).toEqual({
    kept: [true, true, true, true, '1,two', '1970-01-02T00:00:00.000Z', '/a+b/gi', '1180591620717411303424', true, '1,2,3,4', '2,3', true, '[[1,[2]]]'],
    errors: [
      // As Convex's (its host fails to read back what it couldn't serialize).
      'Error(-): could not deserialize value',
      'Error(-): could not deserialize value',
      'Error(-): could not deserialize value',
      'Error(-): structuredClone with transfer not supported',
    ],
  })
})

test('TextDecoder: fatal rejects overlong forms, surrogates and truncation; BOM; streaming; latin1 and UTF-16; atob/btoa errors', async () => {
  const { text } = await client.query(web.apis!, {})
  expect(text).toEqual({
    fatal: { overlong2: NOT_VALID, overlong3: NOT_VALID, overlong4: NOT_VALID, surrogate: NOT_VALID, tooHigh: NOT_VALID, truncated: NOT_VALID, loneContinuation: NOT_VALID },
    fatalValid: '😀',
    replaced: 'a\ufffd\ufffd\ufffd\ufffd\ufffdb',
    pieces: ['', '€', '😀!'],
    bom: ['hi', 3],
    props: [true, false, 'utf-8'],
    label: "RangeError(-): The encoding label provided ('no-such-encoding') is invalid.",
    otherEncodings: [
      ['windows-1252', '€éAŸ'],
      ['utf-16le', 'A😀'],
      ['utf-16be', 'A\ufffd'],
    ],
    atob: [
      "InvalidCharacterError(5): Failed to execute 'atob': Invalid byte 33, offset 2. [DOMException]",
      "InvalidCharacterError(5): Failed to execute 'atob': Encoded text cannot have a 6-bit remainder. [DOMException]",
      'hi',
    ],
    btoa: "InvalidCharacterError(5): Failed to execute 'btoa': The string to be encoded contains characters outside of the Latin1 range. [DOMException]",
  })
})

test('FormData and File; Request/Response bodies get the content type the Fetch standard gives', async () => {
  const { forms } = await client.query(web.apis!, {})
  expect(forms).toEqual({
    entries: [
      ['name', 'Ada L.'],
      ['tag', 'a'],
      ['tag', 'b'],
      ['avatar', ['ada.png', 'image/png', 4, true]],
      ['plain', ['blob', '', 1, true]],
    ],
    seen: ['name=Ada L.', 'tag=a', 'tag=b', 'avatar=File(ada.png)', 'plain=File(blob)'],
    keys: ['name', 'tag', 'tag', 'avatar', 'plain'],
    lookups: [null, ['a', 'b'], true, false],
    file: ['hello.txt', 'text/plain', 6, 1234, true, 'héllo'],
    contentType: 'multipart/form-data; boundary=…',
    boundaryInBody: true,
    parsed: ['name', 'tag', 'tag', 'avatar', 'plain'],
    avatar: ['ada.png', 'image/png', [0, 1, 254, 255]],
    plainFile: ['blob', 'application/octet-stream'],
    fromRequest: ['a', 'b'],
    urlencoded: [
      ['q', 'a b&c'],
      ['e', 'é'],
    ],
    errors: [
      'TypeError(-): Body cannot be decoded as form data',
      'TypeError(-): Missing boundary parameter in mime type of multipart formdata.',
      'TypeError(-): Failed to parse body as FormData.',
    ],
    contentTypes: {
      string: 'text/plain;charset=UTF-8',
      params: 'application/x-www-form-urlencoded;charset=UTF-8',
      blob: 'image/gif',
      untypedBlob: null,
      bytes: null,
      explicit: 'text/csv',
      requestString: 'text/plain;charset=UTF-8',
      requestBlob: 'application/pdf',
      requestForm: 'multipart/form-data',
    },
  })
})

test('WritableStream (backpressure, close, abort), TransformStream, pipeTo/pipeThrough, TextEncoderStream/TextDecoderStream', async () => {
  const { streams } = await client.query(web.apis!, {})
  expect(streams).toEqual({
    piped: '€URO!',
    written: ['one', 'two', '(closed)'],
    desired: [2, 1, 0, 1],
    locked: [true, false],
    aborted: ['sink aborted: stop', 'write rejected: stop'],
    pipedOut: ['a', 'b', 'c'],
    pipe: ['Error: sink failed', 'Error: sink failed', ABORTED],
  })
})

test('performance.now() is fixed in a query and advances in mutations and actions', async () => {
  expect(await client.query(web.queryClock!, {})).toEqual({ fixed: true, sum: true, positive: true, origin: true })
  expect(await client.mutation(web.mutationClock!, {})).toEqual({ advances: true, origin: true })
  const { clock } = await client.action(web.actionApis!, {})
  expect(clock).toEqual({ advances: true, origin: true })
})

test("fetch rejects with the signal's reason; a stored blob keeps its type, in the action and served back", async () => {
  const result = await client.action(web.actionApis!, {})
  expect(result.aborted).toBe(ABORTED)
  expect(result.preAborted).toBe('rejected with "my reason"')
  expect(result.stored).toEqual(['image/png', 4, 'image/png'])
  const served = await fetch(`${backend.siteUrl}/file?id=${result.storageId}`)
  expect(served.status).toBe(200)
  expect(served.headers.get('content-type')).toBe('image/png')
  expect([...new Uint8Array(await served.arrayBuffer())]).toEqual([137, 80, 78, 71])
})

test('a multipart upload through an HTTP action: fields, file name, type and bytes; the stored file is served with its type', async () => {
  const form = new FormData()
  form.append('caption', 'héllo wörld')
  form.append('photo', new File([new Uint8Array([137, 80, 78, 71, 0, 255])], 'photo.png', { type: 'image/png' }))
  form.append('caption', 'second')
  const res = await fetch(`${backend.siteUrl}/upload`, { method: 'POST', body: form })
  expect(res.status).toBe(200)
  const body = (await res.json()) as { contentType: string; fields: { storageId?: string }[] }
  const storageId = body.fields[1]!.storageId!
  expect(body).toEqual({
    contentType: 'multipart/form-data',
    fields: [
      { name: 'caption', value: 'héllo wörld' },
      { name: 'photo', filename: 'photo.png', type: 'image/png', size: 6, bytes: [137, 80, 78, 71, 0, 255], isFile: true, storageId },
      { name: 'caption', value: 'second' },
    ],
  })
  expect(await client.query(web.storedType!, { storageId })).toBe('image/png')
  const served = await fetch(`${backend.siteUrl}/file?id=${storageId}`)
  expect(served.headers.get('content-type')).toBe('image/png')
  expect([...new Uint8Array(await served.arrayBuffer())]).toEqual([137, 80, 78, 71, 0, 255])
})

test('an urlencoded form through an HTTP action', async () => {
  const res = await fetch(`${backend.siteUrl}/upload`, { method: 'POST', body: new URLSearchParams([['a', '1 2'], ['b', 'ü'], ['a', '3']]) })
  expect(await res.json()).toEqual({
    contentType: 'application/x-www-form-urlencoded',
    fields: [
      { name: 'a', value: '1 2' },
      { name: 'b', value: 'ü' },
      { name: 'a', value: '3' },
    ],
  })
})

test("an HTTP action's FormData response is multipart that a client's formData() reads", async () => {
  const res = await fetch(`${backend.siteUrl}/form`)
  expect(res.headers.get('content-type')).toMatch(/^multipart\/form-data; boundary=\S+$/)
  const form = await res.formData()
  expect([...form.keys()]).toEqual(['greeting', 'data', 'quote'])
  expect(form.get('greeting')).toBe('héllo\r\nworld')
  expect(form.get('quote')).toBe('say "hi"')
  const data = form.get('data') as File
  expect([data.name, data.type, [...new Uint8Array(await data.arrayBuffer())]]).toEqual(['three.bin', 'application/octet-stream', [1, 2, 3]])
})

test('a response streamed through TransformStream and TextEncoderStream', async () => {
  const res = await fetch(`${backend.siteUrl}/transform`)
  expect(res.status).toBe(200)
  expect(await res.text()).toBe('STREAMED TEXT')
})

test('Response.redirect: a string as it is, a URL by its href, 302 unless given; null is a TypeError (as Convex)', async () => {
  expect(await client.query(web.redirects!, {})).toEqual({ text: [302, '/a'], url: [307, 'https://x.test/b?c=1'], nullError: 'TypeError' })
})

test('Headers: set-cookie values stay apart; names are checked by get/has/delete; the tag is Headers', async () => {
  expect(await client.query(web.headers!, {})).toEqual({
    entries: [['set-cookie', 'a=1'], ['x-a', '1, 2'], ['set-cookie', 'b=2']],
    get: ['a=1, b=2', '1, 2', null],
    getSetCookie: ['a=1', 'b=2'],
    keys: ['set-cookie', 'x-a', 'set-cookie'],
    values: ['a=1', '1, 2', 'b=2'],
    forEach: [['set-cookie', 'a=1', true, 'self'], ['x-a', '1, 2', true, 'self'], ['set-cookie', 'b=2', true, 'self']],
    copy: [['x-a', '3']],
    original: 2,
    invalid: [
      'TypeError(-): Headers.get: "Hé-y" is an invalid header name.',
      'TypeError(-): Headers.has: "Hé-y" is an invalid header name.',
      'TypeError(-): Headers.delete: "Hé-y" is an invalid header name.',
      "TypeError(-): Failed to construct 'Headers': Invalid value",
      "TypeError(-): Failed to construct 'Headers': The provided value is not of type '(record<ByteString, ByteString> or sequence<sequence<ByteString>>)'.",
    ],
    tag: ['[object Headers]', '[object Headers]'],
  })
})

test('an HTTP action appending two Set-Cookie headers sends two set-cookie headers', async () => {
  const res = await fetch(`${backend.siteUrl}/cookies`)
  expect(res.status).toBe(200)
  expect(res.headers.getSetCookie()).toEqual(['a=1; Path=/', 'b=2, c; HttpOnly'])
  expect(await res.text()).toBe('cookies')
})

test('URL and URLSearchParams follow the URL standard (the host parses, as in Convex), with Convex\'s messages', async () => {
  const invalid = (s: string) => `TypeError(-): Invalid URL: '${s}'`
  expect(await client.query(web.url!, {})).toEqual({
    module: 'https://example.com/api?x=1',
    parts: [
      ['https://user:pa%20ss@example.com/a/c?x=1#h', 'https:', 'user', 'pa%20ss', 'example.com', 'example.com', '', '/a/c', '?x=1', '#h', 'https://example.com'],
      ['http://[0:f::f:f:0:0]:8080/', 'http:', '', '', '[0:f::f:f:0:0]:8080', '[0:f::f:f:0:0]', '8080', '/', '', '', 'http://[0:f::f:f:0:0]:8080'],
      ['about:blank', 'about:', '', '', '', '', '', 'blank', '', '', 'null'],
      ['file:///C:/', 'file:', '', '', '', '', '', '/C:/', '', '', 'null'],
      ['abcd://ma%C3%B1ana/c?d#e', 'abcd:', '', '', 'ma%C3%B1ana', 'ma%C3%B1ana', '', '/c', '?d', '#e', 'null'],
    ],
    hosts: ['xn--maana-pta', '0.0.1.4', '!', 'http://example.com/', 'https://h/a/b'],
    relative: ['https://other.org/x', 'https://example.com/a/b?q', 'https://example.com/a/b?q#f', 'https://example.com/a/c'],
    invalid: [invalid('1://foo'), invalid('http://256.0.0.0'), invalid('/x'), invalid('not a base'), invalid('file://foo:8000')],
    statics: [true, false, null, 'https://a/p'],
    steps: ['https://baz.qat:8000/qux/quux?foo=bar&baz=12', 'http://foo.bar/baz%23qat%20qux?foo=bar&baz=12', '["bar","baz"]', 'true', 'http://foo.bar/baz%23qat%20qux?bar=qat&sp+ace=a%2Bb%26c', '##frag%20ment'],
    hrefSetter: 'TypeError(-): Could not parse URL: http://example.com/',
    params: [
      'a=1&b=%25zz&c=%F0%9F%98%80&d=x+y&=e&f=',
      [['a', '1'], ['b', 'A  '], ['c', '']],
      'a+b=%C3%BC%7E*%21%27%28%29&n=1',
      ['1', '2'],
      "TypeError(-): Failed to construct 'URLSearchParams': Failed to construct 'URLSearchParams': Sequence initializer must only contain pair elements",
      'a=2&a=1&b=3&c=4',
      4,
      '{"u":"https://a/b","p":{}}',
      '[object URLSearchParams]',
      // As Convex's: sort() by localeCompare, set() removes the name's pairs and appends.
      'a=3&A=4&b=1&B=2',
      'b=2&a=4',
    ],
  })
})

test('Request and Response: URL parsing, method normalization, one body read, status conversion, Response.json', async () => {
  const range = "RangeError(-): Failed to construct 'Response': The status provided is outside the range [200, 599]."
  const json = "TypeError(-): Failed to execute 'json' on 'Response': The data is not JSON serializable"
  expect(await client.query(web.requests!, {})).toEqual({
    url: [
      'TypeError(-): Failed to parse URL from [object Object]',
      "TypeError(-): Invalid URL: 'not a url'",
      'https://example.com/a?b',
      'TypeError(-): Request URL is undefined',
      'TypeError(-): Unsupported URL scheme -- http and https are supported (scheme was ftp)',
      "TypeError(-): Failed to construct 'Request': Request with GET/HEAD method cannot have body.",
      "TypeError(-): Failed to construct 'Request': Request with GET/HEAD method cannot have body.",
      'GET',
    ],
    methods: ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT', 'patch', 'Custom'],
    readTwice: [
      "TypeError(-): Failed to execute 'text' on 'Response': body stream already read",
      "TypeError(-): Failed to execute 'arrayBuffer' on 'Response': body stream already read",
      "TypeError(-): Failed to execute 'text' on 'Request': body stream already read",
      '',
      false,
    ],
    nullInit: [200, 'GET'],
    status: [418, range, range],
    json: [json, json, '{"a":1}'],
  })
})

test('polyfilled globals carry the standard class names and tags; crypto.subtle errors are DOMExceptions', async () => {
  const expected = ['Headers', 'Request', 'Response', 'Blob', 'File', 'FormData', 'ReadableStream', 'WritableStream', 'WritableStreamDefaultWriter', 'TransformStream', 'TextEncoder', 'TextDecoder', 'TextEncoderStream', 'TextDecoderStream', 'DOMException', 'Event', 'CustomEvent', 'EventTarget', 'URL', 'URLSearchParams', 'AbortController', 'AbortSignal']
  expect(await client.query(web.names!, {})).toEqual({
    classes: expected.map((name) => [name, name, name, `[object ${name}]`]),
    cryptoKey: 'CryptoKey',
    subtleError: ['DataError(0): Invalid key length [DOMException]', true, 'DOMException'],
  })
})

test('console lines are formatted as Convex formats them; console.trace appends the stack', async () => {
  const res = await fetch(`${backend.url}/api/run/web/logs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ args: {} }) })
  const { logLines } = (await res.json()) as { logLines: string[] }
  expect(logLines.slice(0, 4)).toEqual([
    "[LOG] {\n  property: 'value',\n  nested_object: {}\n}",
    '[LOG] MyClass {}',
    "[LOG] 'myString' 42 [ 1, 'two' ] null undefined [Function: myFunction]",
    "[INFO] Map (1) {\n  'k' => 1\n} [Error: boom]",
  ])
  const source = readFileSync(join(appDir, 'convex/web.ts'), 'utf8').split('\n')
  const traced = source.findIndex((l) => l.includes('console.trace("myString")')) + 1
  expect(logLines[4]).toBe(`[LOG] 'myString' \n    at handler (../convex/web.ts:${traced}:12)\n`)
  // A lone surrogate reaches the log as U+FFFD.
  expect(logLines[5]).toBe("[LOG] '\ufffd...'")
  expect(logLines).toHaveLength(6)
})

test('a URL and URLSearchParams are logged as Convex logs them', async () => {
  const res = await fetch(`${backend.url}/api/run/web/urlLogs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ args: {} }) })
  const { logLines } = (await res.json()) as { logLines: string[] }
  expect(logLines).toEqual([
    // (Convex's URL inspects its parts with object-inspect's defaults: one line.)
    "[LOG] URL { href: 'https://a.b/c?d=1', origin: 'https://a.b', protocol: 'https:', username: '', password: '', host: 'a.b', hostname: 'a.b', port: '', pathname: '/c', hash: '', search: '?d=1' } URLSearchParams { 'x' => '1', 'y' => '2' } URLSearchParams {}",
  ])
})

test("objects pass in Convex's field order: documents as stored, a function's arguments and its return value", async () => {
  const body = JSON.stringify({ path: 'web:fieldOrder', args: { zeta: 1, doc: { name: 'n', Age: 3, nested: { z: 1, a: 2 }, list: [{ k: 1, b: 2 }] }, alpha: 2 }, format: 'json' })
  const res = await fetch(`${backend.url}/api/mutation`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
  const text = await res.text()
  expect(res.status).toBe(200)
  // The client gets the return value's fields sorted (JSON text, so the order is what was sent).
  expect(JSON.parse(text).value).toEqual({
    args: 'alpha,doc,zeta',
    inserted: ['Age,_creationTime,_id,list,name,nested', 'a,z', 'b,k'],
    patched: 'Age,Zz,_creationTime,_id,aa,list,name,nested',
    replaced: ['_creationTime,_id,b,y', 'c,d'],
    built: { M: [{ x: 2, y: 1 }], a: { b: 2, q: 1 }, z: 1 },
  })
  expect(text).toContain('"built":{"M":[{"x":2,"y":1}],"a":{"b":2,"q":1},"z":1}')
})

test('db.insert, db.patch and db.replace of a value that is not an object fail with Convex’s message', async () => {
  expect(await client.mutation(web.notObjects!, {})).toEqual(['insert', 'patch', 'replace', 'insert', 'patch'].map((op) => `Invalid argument \`value\` for \`db.${op}\`: Value must be an Object`))
})

test("an error's stack read in a function is its frames mapped to the app's sources, as Convex gives it", async () => {
  // A call that keeps no frames and formats stacks its own way (the call after it, in the same
  // warm isolate, has Convex's stacks again).
  expect(await client.query(web.keepNoFrames!, {})).toBe('replaced')
  const { full, limited, dom } = (await client.query(web.stacks!, {})) as { full: string; limited: string; dom: string }
  const source = readFileSync(join(appDir, 'convex/web.ts'), 'utf8').split('\n')
  const line = (text: string) => source.findIndex((l) => l.includes(text)) + 1
  expect(full.split('\n')).toEqual([
    `    at innerFunc (../convex/web.ts:${line('return new Error("made")')}:13)`,
    `    at outerFunc (../convex/web.ts:${line('return innerFunc()')}:13)`,
    `    at handler (../convex/web.ts:${line('const full = outerFunc()')}:17)`,
  ])
  expect(limited).toBe(`    at innerFunc (../convex/web.ts:${line('return new Error("made")')}:13)`)
  expect(dom).toBe(`    at handler (../convex/web.ts:${line('new DOMException("x", "AbortError").stack')}:16)`)
})

test('a syscall the host does not know fails with Convex’s message and only the app’s frames', async () => {
  const source = readFileSync(join(appDir, 'convex/web.ts'), 'utf8').split('\n')
  const at = source.findIndex((l) => l.includes('Convex.syscall("1.0/noSuchOperation"')) + 1
  const stackAt = source.findIndex((l, i) => i > at && l.includes('Convex.syscall("1.0/noSuchOperation"')) + 1
  expect(await client.query(web.unknownSyscallStack!, {})).toMatch(new RegExp(`^    at handler \\(\\.\\./convex/web\\.ts:${stackAt}:\\d+\\)$`))
  const err = await errorOf(client.query(web.unknownSyscall!, {}))
  expect(err.message).toMatch(new RegExp(`^\\[Request ID: [0-9a-f]{16}\\] Server Error\\nUncaught Error: Unknown operation 1\\.0/noSuchOperation\\n    at handler \\(\\.\\./convex/web\\.ts:${at}:\\d+\\)\\n$`))
})

test('a listener a call adds to the global object is gone for the next call; one added at a module’s top level stays', async () => {
  expect(await client.query(web.globalListeners!, {})).toEqual(['module'])
  expect(await client.query(web.globalListeners!, {})).toEqual(['module'])
  expect(await client.query(web.globalListeners!, {})).toEqual(['module'])
})

const dynamicImport = anyApi.dynamicImport!

test("import() in an action or HTTP action loads the module within the call: its top level logs to the call, each module loads once and gives its namespace", async () => {
  const res = await fetch(`${backend.url}/api/action`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: 'dynamicImport:inAction', args: {}, format: 'json' }) })
  const body = (await res.json()) as { status: string; value: unknown; logLines: string[] }
  expect(body.value).toEqual({
    greet: 'hello action',
    default: 'the default export',
    same: true,
    exports: ['default', 'greet', 'loadedAt'],
    loadedDuringCall: true,
    tag: '[object Module]',
  })
  expect(body.logLines).toEqual(["[LOG] 'imported: top level ran'"])
  const http = await fetch(`${backend.siteUrl}/dynamicImport`)
  expect(await http.text()).toBe('hello http')
})

test("import() of a module that isn't there, or that throws while loading, rejects with Convex's message; a bare specifier is refused", async () => {
  const res = await fetch(`${backend.url}/api/action`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: 'dynamicImport:importFails', args: { specifier: './lazy/throwsAtLoad.js' }, format: 'json' }) })
  const body = (await res.json()) as { value: string; logLines: string[] }
  const source = readFileSync(join(appDir, 'convex/lazy/throwsAtLoad.ts'), 'utf8').split('\n')
  const at = source.findIndex((l) => l.includes('throw new Error'))
  // (The module's frame, mapped as its source map names it.)
  // (Imported again in the same call, it fails again with the same error; so it does in the next call.)
  const failure = `Error: Uncaught Error: thrown while loading\n    at <anonymous> (../../convex/lazy/throwsAtLoad.ts:${at + 1}:${source[at]!.indexOf('new Error')})`
  expect(body.value).toBe(failure)
  expect(body.logLines).toEqual(["[LOG] 'throwsAtLoad: before'"])
  expect(await client.action(dynamicImport.importFails!, { specifier: './lazy/throwsAtLoad.js' })).toBe(failure)
  expect(await client.action(dynamicImport.importFails!, { specifier: './lazy/nothingHere.js' })).toBe("Error: Couldn't find JavaScript module 'lazy/nothingHere.js'. Did you forget to run `npx convex dev`?")
  expect(await client.action(dynamicImport.importFails!, { specifier: 'lodash' })).toBe('Error: Cannot import "lodash" from dynamicImport.js: only relative imports between pushed modules are supported')
})

test("import() in a query or mutation is refused with Convex's TypeError, which the code may catch", async () => {
  expect(await client.query(dynamicImport.inQuery!, { caught: true })).toBe('TypeError: dynamic module import unsupported true')
  const source = readFileSync(join(appDir, 'convex/dynamicImport.ts'), 'utf8').split('\n')
  const line = (text: string) => source.findIndex((l) => l.includes(text)) + 1
  const query = await errorOf(client.query(dynamicImport.inQuery!, { caught: false }))
  expect(query.message).toMatch(new RegExp(`^\\[Request ID: [0-9a-f]{16}\\] Server Error\\nUncaught TypeError: dynamic module import unsupported\\n    at handler \\(\\.\\./convex/dynamicImport\\.ts:${line('if (!caught) return (await import(')}:\\d+\\)\\n$`))
  const mutation = await errorOf(client.mutation(dynamicImport.inMutation!, {}))
  expect(mutation.message).toMatch(new RegExp(`^\\[Request ID: [0-9a-f]{16}\\] Server Error\\nUncaught TypeError: dynamic module import unsupported\\n    at handler \\(\\.\\./convex/dynamicImport\\.ts:${line('handler: async () => (await import(')}:\\d+\\)\\n$`))
})

test("an action's import() runs the module's top level off the server's thread: the server answers meanwhile", async () => {
  const importing = client.action(dynamicImport.importSlowModule!, { ms: 1500 })
  // Once the action is importing, a query is answered before the module has finished loading.
  const deadline = Date.now() + 10_000
  while (!((await client.query(dynamicImport.notes!, {})) as string[]).includes('importing') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
  const order: string[] = []
  await Promise.all([importing.then(() => order.push('import')), client.query(dynamicImport.notes!, {}).then(() => order.push('query'))])
  expect(order).toEqual(['query', 'import'])
  expect(await importing).toBe(1500)
})
