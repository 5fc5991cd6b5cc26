/**
 * @module `Headers`, `Request`, `Response` (the Fetch standard's bodies and their content types)
 * and `fetch` for actions. `fetch` is served by the host (the `concave/fetch` op); bodies cross
 * the boundary as base64.
 */
import { checkResponseHead } from './http-head.ts'
import { atob, B64, B64_INDEX, TextDecoderPolyfill, TextEncoderPolyfill } from './polyfills.ts'
import { BlobPolyfill, toBytes } from './blob.ts'
import { ReadableStreamPolyfill } from './streams.ts'
import { AbortControllerPolyfill } from './dom.ts'
import type { AbortSignalPolyfill } from './dom.ts'
import { decodeFormData, encodeMultipart, FormDataPolyfill } from './form-data.ts'
import { URLPolyfill, URLSearchParamsPolyfill } from './url.ts'
import { BODY_PIECE } from './protocol.ts'
import type { BytesRef } from './protocol.ts'

type HeadersInit = HeadersPolyfill | Iterable<[string, string]> | Record<string, string>

/** An HTTP token (RFC 9110), what a header name must be. */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
/** What a header value may not hold, once leading and trailing whitespace is trimmed. */
const HEADER_VALUE_FORBIDDEN = /[\0\r\n]/

/** The name lowercased, or the TypeError fetch's Headers throws. */
function checkName(method: string, name: unknown): string {
  const n = String(name)
  if (!HEADER_NAME.test(n)) throw new TypeError(`Headers.${method}: "${n}" is an invalid header name.`)
  return n.toLowerCase()
}

/** The name lowercased and the value trimmed, or the TypeError fetch's Headers throws. */
function checkHeader(method: string, name: unknown, value: unknown): [string, string] {
  const n = checkName(method, name)
  const v = String(value).replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, '')
  if (HEADER_VALUE_FORBIDDEN.test(v)) throw new TypeError(`Headers.${method}: "${v}" is an invalid header value.`)
  return [n, v]
}

/**
 * A header list kept as the name/value pairs appended, in order. Reading a name joins its values
 * with ", " — except `set-cookie`, whose values are never joined (iteration gives each one, and
 * `getSetCookie()` returns them), as the Fetch standard has it.
 */
export class HeadersPolyfill {
  #list: [string, string][] = []
  constructor(init?: HeadersInit) {
    if (init === undefined) return
    if (init === null || (typeof init !== 'object' && typeof init !== 'function')) throw new TypeError("Failed to construct 'Headers': The provided value is not of type '(record<ByteString, ByteString> or sequence<sequence<ByteString>>)'.")
    if (init instanceof HeadersPolyfill) {
      this.#list = init.#list.map(([k, v]) => [k, v])
    } else if (typeof (init as Iterable<unknown>)[Symbol.iterator] === 'function') {
      for (const pair of init as Iterable<unknown>) {
        const items = pair !== null && typeof pair === 'object' && typeof (pair as Iterable<unknown>)[Symbol.iterator] === 'function' ? [...(pair as Iterable<unknown>)] : null
        if (items === null || items.length !== 2) throw new TypeError("Failed to construct 'Headers': Invalid value")
        this.append(items[0] as string, items[1] as string)
      }
    } else {
      for (const [k, v] of Object.entries(init)) this.append(k, v)
    }
  }
  append(name: string, value: string): void {
    this.#list.push(checkHeader('append', name, value))
  }
  set(name: string, value: string): void {
    const [k, v] = checkHeader('set', name, value)
    const at = this.#list.findIndex(([n]) => n === k)
    if (at === -1) {
      this.#list.push([k, v])
      return
    }
    this.#list[at] = [k, v]
    this.#list = this.#list.filter(([n], i) => i <= at || n !== k)
  }
  get(name: string): string | null {
    const k = checkName('get', name)
    const values = this.#list.filter(([n]) => n === k).map(([, v]) => v)
    return values.length === 0 ? null : values.join(', ')
  }
  getSetCookie(): string[] {
    return this.#list.filter(([n]) => n === 'set-cookie').map(([, v]) => v)
  }
  has(name: string): boolean {
    const k = checkName('has', name)
    return this.#list.some(([n]) => n === k)
  }
  delete(name: string): void {
    const k = checkName('delete', name)
    this.#list = this.#list.filter(([n]) => n !== k)
  }
  /** The pairs iteration gives: each name once with its values joined, each set-cookie apart. */
  #pairs(): [string, string][] {
    const out: [string, string][] = []
    const seen = new Map<string, number>()
    for (const [k, v] of this.#list) {
      const at = k === 'set-cookie' ? undefined : seen.get(k)
      if (at === undefined) {
        if (k !== 'set-cookie') seen.set(k, out.length)
        out.push([k, v])
      } else out[at] = [k, `${out[at]![1]}, ${v}`]
    }
    return out
  }
  forEach(fn: (value: string, key: string, parent: HeadersPolyfill) => void, thisArg?: unknown): void {
    for (const [k, v] of this.#pairs()) fn.call(thisArg, v, k, this)
  }
  entries(): IterableIterator<[string, string]> {
    return this.#pairs()[Symbol.iterator]()
  }
  keys(): IterableIterator<string> {
    return this.#pairs().map(([k]) => k)[Symbol.iterator]()
  }
  values(): IterableIterator<string> {
    return this.#pairs().map(([, v]) => v)[Symbol.iterator]()
  }
  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries()
  }
  get [Symbol.toStringTag](): string {
    return 'Headers'
  }
}

const B64_CODES = new TextEncoderPolyfill().encode(B64)

/** Latin-1 codes to a string, in slices (fromCharCode takes only so many arguments). */
function asciiString(codes: Uint8Array): string {
  let s = ''
  for (let i = 0; i < codes.length; i += 8192) s += String.fromCharCode.apply(null, codes.subarray(i, i + 8192) as unknown as number[])
  return s
}

/** Bytes as base64 (bodies cross the sandbox boundary this way, so it must be fast for MBs). */
export function bytesToBase64(b: Uint8Array): string {
  const out = new Uint8Array(Math.ceil(b.length / 3) * 4)
  let o = 0
  let i = 0
  for (; i + 2 < b.length; i += 3) {
    const n = (b[i]! << 16) | (b[i + 1]! << 8) | b[i + 2]!
    out[o++] = B64_CODES[n >> 18]!
    out[o++] = B64_CODES[(n >> 12) & 63]!
    out[o++] = B64_CODES[(n >> 6) & 63]!
    out[o++] = B64_CODES[n & 63]!
  }
  if (i < b.length) {
    const n = (b[i]! << 16) | ((b[i + 1] ?? 0) << 8)
    out[o++] = B64_CODES[n >> 18]!
    out[o++] = B64_CODES[(n >> 12) & 63]!
    out[o++] = i + 1 < b.length ? B64_CODES[(n >> 6) & 63]! : 61
    out[o++] = 61
  }
  return asciiString(out)
}

export function base64ToBytes(s: string): Uint8Array {
  let end = s.length
  while (end > 0 && s.charCodeAt(end - 1) === 61) end--
  const out = new Uint8Array((end * 3) >> 2)
  let acc = 0
  let bits = 0
  let o = 0
  for (let i = 0; i < end; i++) {
    const code = s.charCodeAt(i)
    const v = code < 128 ? B64_INDEX[code]! : -1
    if (v < 0) {
      // Whitespace or a character base64 doesn't have: the careful (slow) decoder decides.
      const bin = atob(s)
      const bytes = new Uint8Array(bin.length)
      for (let j = 0; j < bin.length; j++) bytes[j] = bin.charCodeAt(j)
      return bytes
    }
    acc = ((acc << 6) | v) & 0xffffff
    bits += 6
    if (bits >= 8) {
      bits -= 8
      out[o++] = (acc >> bits) & 255
    }
  }
  return o === out.length ? out : out.subarray(0, o)
}

/** An async syscall to the host: its answer's JSON text. */
export type Host = (op: string, argsJson: string) => Promise<string>
let nextStageId = 1

/**
 * Bytes for a syscall's JSON (see BytesRef): base64 when small, else sent to the host piece by
 * piece first, so their base64 is never held whole.
 */
export async function sendBytes(host: Host, bytes: Uint8Array): Promise<BytesRef> {
  if (bytes.length <= BODY_PIECE) return bytesToBase64(bytes)
  const id = nextStageId++
  for (let at = 0; at < bytes.length; at += BODY_PIECE) await host('concave/stagePut', JSON.stringify({ id, chunk: bytesToBase64(bytes.subarray(at, at + BODY_PIECE)) }))
  return { staged: id, length: bytes.length }
}

/** The bytes a syscall's answer refers to: base64, or staged by the host and fetched piece by piece. */
export async function receiveBytes(host: Host, ref: BytesRef): Promise<Uint8Array> {
  if (typeof ref === 'string') return base64ToBytes(ref)
  const bytes = new Uint8Array(ref.length)
  for (let at = 0; at < ref.length; at += BODY_PIECE) {
    const { chunk } = JSON.parse(await host('concave/stageGet', JSON.stringify({ id: ref.staged, at }))) as { chunk: string }
    bytes.set(base64ToBytes(chunk), at)
  }
  return bytes
}

/** Reads a stream of byte chunks (Uint8Array, ArrayBuffer or strings) to one Uint8Array. */
async function drain(stream: ReadableStreamPolyfill): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  let total = 0
  const reader = stream.getReader()
  while (true) {
    const { done, value } = await reader.read()
    if (done) break
    const chunk = toBytes(value) ?? new Uint8Array(0)
    chunks.push(chunk)
    total += chunk.length
  }
  reader.releaseLock()
  const out = new Uint8Array(total)
  let at = 0
  for (const c of chunks) {
    out.set(c, at)
    at += c.length
  }
  return out
}

/**
 * A body's bytes and the Content-Type it implies (the Fetch standard's "extract a body"): a
 * Blob's own type, multipart with a fresh boundary for FormData, form-urlencoded for
 * URLSearchParams, text for a string; none for bytes and streams.
 */
function extractBody(body: unknown): { bytes: Uint8Array | null; type: string | null } {
  if (body === undefined || body === null) return { bytes: null, type: null }
  if (body instanceof BlobPolyfill) return { bytes: body._bytes(), type: body.type === '' ? null : body.type }
  if (body instanceof FormDataPolyfill) {
    const { bytes, contentType } = encodeMultipart(body)
    return { bytes, type: contentType }
  }
  if (body instanceof URLSearchParamsPolyfill) return { bytes: toBytes(body.toString()), type: 'application/x-www-form-urlencoded;charset=UTF-8' }
  if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return { bytes: toBytes(body), type: null }
  return { bytes: toBytes(String(body)), type: 'text/plain;charset=UTF-8' }
}

/**
 * The body methods Request and Response share. A body is either bytes (read once) or a
 * ReadableStream given by the caller; `body` is always a stream, as in the Fetch standard.
 */
class Body {
  readonly #bytes: Uint8Array | null
  #stream: ReadableStreamPolyfill | null
  /** Whether the stream was given by the caller rather than made from the bytes on demand. */
  readonly #given: boolean
  #used = false
  /** @internal The Content-Type the body implies, for the subclass to set if its headers lack one. */
  readonly _impliedType: string | null
  /** True once the body was read, by a body method or through its stream. */
  get bodyUsed(): boolean {
    return this.#used || this.#stream?._disturbed === true
  }
  constructor(body: unknown) {
    this.#stream = body instanceof ReadableStreamPolyfill ? body : null
    this.#given = this.#stream !== null
    const extracted = this.#given ? { bytes: null, type: null } : extractBody(body)
    this.#bytes = extracted.bytes
    this._impliedType = extracted.type
  }
  /** @internal */
  _hasBody(): boolean {
    return this.#given || this.#bytes !== null
  }
  /** @internal The whole body as bytes, read from its stream if it has one. */
  async _drain(): Promise<Uint8Array> {
    if (this.#stream !== null) return drain(this.#stream)
    return this.#bytes ?? new Uint8Array(0)
  }
  /** @internal Whether the body is a caller's stream (so it can't be copied synchronously). */
  _isStream(): boolean {
    return this.#given
  }
  /** @internal For clone(): this body keeps one branch of its stream, the copy gets the other. */
  _teeBody(): ReadableStreamPolyfill {
    if (this.bodyUsed || this.#stream?.locked === true) throw new TypeError('Body has already been consumed.')
    const [mine, theirs] = this.#stream!.tee()
    this.#stream = mine
    return theirs
  }
  /** @internal The raw bytes of a non-stream body, for the host. */
  _bytes(): Uint8Array {
    if (this.#given) throw new TypeError('This body is a stream; it can only be read once, asynchronously.')
    return this.#bytes ?? new Uint8Array(0)
  }
  get body(): ReadableStreamPolyfill | null {
    if (this.#stream === null) {
      if (this.#bytes === null) return null
      const bytes = this.#bytes
      this.#stream = new ReadableStreamPolyfill({
        start: (c) => {
          if (bytes.length > 0) c.enqueue(bytes.slice())
          c.close()
        },
      })
    }
    return this.#stream
  }
  /** @internal The class name body-read errors give ('Request' or 'Response'). */
  _kind(): string {
    return 'Body'
  }
  /** The body's bytes, once: a second read throws as Convex's does (reading no body is fine, again). */
  async #consume(method: string): Promise<Uint8Array> {
    if (this.bodyUsed || this.#stream?.locked === true) throw new TypeError(`Failed to execute '${method}' on '${this._kind()}': body stream already read`)
    if (this._hasBody()) this.#used = true
    return this.#stream !== null ? drain(this.#stream) : (this.#bytes ?? new Uint8Array(0))
  }
  /** @internal The body's bytes, read once as arrayBuffer() reads them but not copied (for the host). */
  _take(): Promise<Uint8Array> {
    return this.#consume('arrayBuffer')
  }
  async arrayBuffer(): Promise<ArrayBuffer> {
    return (await this.#consume('arrayBuffer')).slice().buffer
  }
  async bytes(): Promise<Uint8Array> {
    return (await this.#consume('bytes')).slice()
  }
  async text(): Promise<string> {
    return new TextDecoderPolyfill().decode(await this.#consume('text'))
  }
  async json(): Promise<unknown> {
    return JSON.parse(new TextDecoderPolyfill().decode(await this.#consume('json')))
  }
  async blob(): Promise<BlobPolyfill> {
    return new BlobPolyfill([await this.#consume('blob')], { type: this.#contentType() ?? '' })
  }
  /** The body as FormData: multipart/form-data or application/x-www-form-urlencoded, by its Content-Type. */
  async formData(): Promise<FormDataPolyfill> {
    return decodeFormData(await this.#consume('formData'), this.#contentType())
  }
  #contentType(): string | null {
    return (this as unknown as { headers?: HeadersPolyfill }).headers?.get('content-type') ?? null
  }
}

export class ResponsePolyfill extends Body {
  readonly status: number
  readonly statusText: string
  readonly headers: HeadersPolyfill
  readonly url: string
  constructor(body?: unknown, init?: { status?: number | string; statusText?: string; headers?: HeadersInit; url?: string } | null) {
    init ??= {}
    // A numeric string converts, as Convex's Response has it; then the range check with its text.
    const status = init.status === undefined ? 200 : typeof init.status === 'string' ? +init.status : init.status
    if (typeof status !== 'number' || !Number.isInteger(status) || status < 200 || status > 599) {
      throw new RangeError("Failed to construct 'Response': The status provided is outside the range [200, 599].")
    }
    const statusText = init.statusText === undefined ? '' : String(init.statusText)
    checkResponseHead(status, statusText)
    super(body)
    this.status = status
    this.statusText = statusText
    this.headers = new HeadersPolyfill(init.headers)
    this.url = init.url ?? ''
    if (this._impliedType !== null && !this.headers.has('content-type')) this.headers.set('content-type', this._impliedType)
  }
  override _kind(): string {
    return 'Response'
  }
  get ok(): boolean {
    return this.status >= 200 && this.status < 300
  }
  clone(): ResponsePolyfill {
    if (this.bodyUsed) throw new TypeError('Cannot clone a Response whose body has been read')
    return new ResponsePolyfill(!this._hasBody() ? null : this._isStream() ? this._teeBody() : this._bytes(), { status: this.status, statusText: this.statusText, headers: this.headers, url: this.url })
  }
  static json(data: unknown, init?: { status?: number; statusText?: string; headers?: HeadersInit } | null): ResponsePolyfill {
    const notSerializable = () => new TypeError("Failed to execute 'json' on 'Response': The data is not JSON serializable")
    let json: string | undefined
    try {
      json = JSON.stringify(data)
    } catch {
      throw notSerializable()
    }
    if (json === undefined) throw notSerializable()
    const headers = new HeadersPolyfill(init?.headers)
    if (!headers.has('content-type')) headers.set('content-type', 'application/json')
    return new ResponsePolyfill(json, { ...init, headers })
  }
  static redirect(url: string | { href: string }, status?: number): ResponsePolyfill {
    // As Convex's: a string as it is, anything else by its `href` (null throws a TypeError).
    const location = typeof url === 'string' ? url : url.href
    return new ResponsePolyfill(null, { status: status ?? 302, headers: { location } })
  }
}

/** The methods the Fetch standard upper-cases; any other keeps its case. */
const NORMALIZED_METHODS = new Set(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT'])

function normalizeMethod(method: string): string {
  const upper = method.toUpperCase()
  return NORMALIZED_METHODS.has(upper) ? upper : method
}

/** A Request's URL, as Convex's runtime takes it: a string or URL, parsed, with an http(s) scheme. */
function parseRequestUrl(input: unknown): string {
  if (input === undefined) throw new TypeError('Request URL is undefined')
  if (typeof input !== 'string' && !(input instanceof URLPolyfill)) throw new TypeError(`Failed to parse URL from ${String(input)}`)
  const url = new URLPolyfill(input)
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`Unsupported URL scheme -- http and https are supported (scheme was ${url.protocol.slice(0, -1)})`)
  return url.href
}

export class RequestPolyfill extends Body {
  readonly url: string
  readonly method: string
  readonly headers: HeadersPolyfill
  /** Aborts when what the request stands for is abandoned (an HTTP action's client went away); by default never. */
  readonly signal: AbortSignalPolyfill
  constructor(input: string | RequestPolyfill | { href: string }, init?: { method?: string; headers?: HeadersInit; body?: unknown; signal?: AbortSignalPolyfill | null } | null) {
    init ??= {}
    const from = input instanceof RequestPolyfill ? input : null
    const url = from !== null ? from.url : parseRequestUrl(input)
    const method = init.method !== undefined ? normalizeMethod(String(init.method)) : (from?.method ?? 'GET')
    if (init.body !== undefined && init.body !== null && (method === 'GET' || method === 'HEAD')) throw new TypeError("Failed to construct 'Request': Request with GET/HEAD method cannot have body.")
    super(init.body !== undefined ? init.body : from === null ? null : from._isStream() ? from.body : from._bytes())
    this.url = url
    this.method = method
    this.headers = new HeadersPolyfill(init.headers ?? from?.headers)
    if (this._impliedType !== null && !this.headers.has('content-type')) this.headers.set('content-type', this._impliedType)
    this.signal = init.signal ?? from?.signal ?? new AbortControllerPolyfill().signal
  }
  override _kind(): string {
    return 'Request'
  }
  clone(): RequestPolyfill {
    if (this.bodyUsed) throw new TypeError('Cannot clone a Request whose body has been read')
    return new RequestPolyfill(this.url, { method: this.method, headers: this.headers, body: !this._hasBody() ? null : this._isStream() ? this._teeBody() : this._bytes(), signal: this.signal })
  }
}

/** `fetch` for actions, given the host call that performs the request. */
export function makeFetch(host: Host) {
  return async (input: string | { url: string } | { href: string }, init: { method?: string; headers?: HeadersInit; body?: unknown; signal?: AbortSignalPolyfill | null } = {}): Promise<ResponsePolyfill> => {
    const signal = init.signal ?? (input instanceof RequestPolyfill ? input.signal : null)
    signal?.throwIfAborted()
    if (signal === null) return doFetch(host, input, init)
    // The request itself runs on in the host; an abort settles the caller's promise at once.
    // (The listener goes once the fetch settles: a long-lived signal, such as an HTTP action's
    // request's, holds no finished fetch.)
    return new Promise<ResponsePolyfill>((resolve, reject) => {
      const onAbort = () => reject(signal.reason)
      signal.addEventListener('abort', onAbort, { once: true })
      doFetch(host, input, init).then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
    })
  }
}

async function doFetch(host: Host, input: string | { url: string } | { href: string }, init: { method?: string; headers?: HeadersInit; body?: unknown }): Promise<ResponsePolyfill> {
  const request = input instanceof RequestPolyfill ? new RequestPolyfill(input, init) : new RequestPolyfill(typeof input === 'string' ? input : 'url' in input ? input.url : input.href, init)
  const url = request.url
  const headers: [string, string][] = []
  request.headers.forEach((v, k) => headers.push([k, v]))
  const body = request._hasBody() ? await request._drain() : null
  const answer = JSON.parse(
    await host('concave/fetch', JSON.stringify({ url, method: request.method, headers, body: body === null ? null : await sendBytes(host, body) })),
  ) as { status: number; statusText: string; headers: [string, string][]; stream: number; url: string }
  // No body for HEAD, 204 and 304 (as the Fetch standard has it).
  const stream = JSON.stringify({ stream: answer.stream })
  if (request.method === 'HEAD' || answer.status === 204 || answer.status === 304) {
    void host('concave/fetchCancel', stream).catch(() => {})
    return new ResponsePolyfill(null, { status: answer.status, statusText: answer.statusText, headers: answer.headers, url: answer.url })
  }
  // The body streams in from the host as it is read.
  const responseBody = new ReadableStreamPolyfill({
    async pull(controller) {
      const { chunk } = JSON.parse(await host('concave/fetchRead', stream)) as { chunk: string | null }
      if (chunk === null) controller.close()
      else controller.enqueue(base64ToBytes(chunk))
    },
    cancel() {
      void host('concave/fetchCancel', stream).catch(() => {})
    },
  })
  return new ResponsePolyfill(responseBody, { status: answer.status, statusText: answer.statusText, headers: answer.headers, url: answer.url })
}
