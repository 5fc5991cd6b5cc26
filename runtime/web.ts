/**
 * @module Minimal `Headers`, `Response` and `fetch` for actions. `fetch` is served by the host
 * (the `concave/fetch` op); bodies cross the boundary as base64.
 */
import { atob, btoa, TextDecoderPolyfill, TextEncoderPolyfill } from './polyfills.ts'

type HeadersInit = HeadersPolyfill | [string, string][] | Record<string, string>

export class HeadersPolyfill {
  readonly #map = new Map<string, string>()
  constructor(init?: HeadersInit) {
    if (init instanceof HeadersPolyfill) init.forEach((v, k) => this.append(k, v))
    else if (Array.isArray(init)) for (const [k, v] of init) this.append(k, v)
    else if (init !== undefined) for (const [k, v] of Object.entries(init)) this.append(k, v)
  }
  append(name: string, value: string): void {
    const k = name.toLowerCase()
    const prev = this.#map.get(k)
    this.#map.set(k, prev === undefined ? String(value) : `${prev}, ${value}`)
  }
  set(name: string, value: string): void {
    this.#map.set(name.toLowerCase(), String(value))
  }
  get(name: string): string | null {
    return this.#map.get(name.toLowerCase()) ?? null
  }
  has(name: string): boolean {
    return this.#map.has(name.toLowerCase())
  }
  delete(name: string): void {
    this.#map.delete(name.toLowerCase())
  }
  forEach(fn: (value: string, key: string) => void): void {
    for (const [k, v] of this.#map) fn(v, k)
  }
  entries(): IterableIterator<[string, string]> {
    return this.#map.entries()
  }
  keys(): IterableIterator<string> {
    return this.#map.keys()
  }
  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.#map.entries()
  }
}

/** A `Blob` whose bytes are in memory (all the sandbox needs). */
export class BlobPolyfill {
  readonly #bytes: Uint8Array
  readonly type: string
  constructor(parts: unknown[] = [], options: { type?: string } = {}) {
    const chunks = parts.map((p) => (p instanceof BlobPolyfill ? p.#bytes : (toBytes(p) ?? new Uint8Array(0))))
    const size = chunks.reduce((n, c) => n + c.length, 0)
    this.#bytes = new Uint8Array(size)
    let offset = 0
    for (const c of chunks) {
      this.#bytes.set(c, offset)
      offset += c.length
    }
    this.type = String(options.type ?? '').toLowerCase()
  }
  get size(): number {
    return this.#bytes.length
  }
  /** @internal */
  _bytes(): Uint8Array {
    return this.#bytes
  }
  async arrayBuffer(): Promise<ArrayBuffer> {
    return this.#bytes.slice().buffer
  }
  async bytes(): Promise<Uint8Array> {
    return this.#bytes.slice()
  }
  async text(): Promise<string> {
    return new TextDecoderPolyfill().decode(this.#bytes)
  }
  slice(start?: number, end?: number, type?: string): BlobPolyfill {
    return new BlobPolyfill([this.#bytes.slice(start, end)], { type: type ?? this.type })
  }
}

function toBytes(body: unknown): Uint8Array | null {
  if (body === undefined || body === null) return null
  if (body instanceof BlobPolyfill) return body._bytes()
  if (typeof body === 'string') return new TextEncoderPolyfill().encode(body)
  if (body instanceof ArrayBuffer) return new Uint8Array(body)
  if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength)
  return new TextEncoderPolyfill().encode(String(body))
}

export function bytesToBase64(b: Uint8Array): string {
  let s = ''
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]!)
  return btoa(s)
}

export function base64ToBytes(s: string): Uint8Array {
  const bin = atob(s)
  const out = new Uint8Array(bin.length)
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i)
  return out
}

/** The body methods Request and Response share (bodies are buffered, read once). */
class Body {
  readonly #body: Uint8Array | null
  bodyUsed = false
  constructor(body: unknown) {
    this.#body = toBytes(body)
  }
  /** @internal The raw bytes, for the host. */
  _bytes(): Uint8Array {
    return this.#body ?? new Uint8Array(0)
  }
  get body(): Uint8Array | null {
    return this.#body
  }
  #consume(): Uint8Array {
    if (this.bodyUsed) throw new TypeError('Body has already been consumed.')
    this.bodyUsed = true
    return this.#body ?? new Uint8Array(0)
  }
  async arrayBuffer(): Promise<ArrayBuffer> {
    return this.#consume().slice().buffer
  }
  async bytes(): Promise<Uint8Array> {
    return this.#consume().slice()
  }
  async text(): Promise<string> {
    return new TextDecoderPolyfill().decode(this.#consume())
  }
  async json(): Promise<unknown> {
    return JSON.parse(await this.text())
  }
  async blob(): Promise<BlobPolyfill> {
    const type = (this as unknown as { headers?: HeadersPolyfill }).headers?.get('content-type') ?? ''
    return new BlobPolyfill([this.#consume()], { type })
  }
}

export class ResponsePolyfill extends Body {
  readonly status: number
  readonly statusText: string
  readonly headers: HeadersPolyfill
  readonly url: string
  constructor(body?: unknown, init: { status?: number; statusText?: string; headers?: HeadersInit; url?: string } = {}) {
    super(body)
    this.status = init.status ?? 200
    this.statusText = init.statusText ?? ''
    this.headers = new HeadersPolyfill(init.headers)
    this.url = init.url ?? ''
    if (typeof body === 'string' && !this.headers.has('content-type')) this.headers.set('content-type', 'text/plain;charset=UTF-8')
  }
  get ok(): boolean {
    return this.status >= 200 && this.status < 300
  }
  static json(data: unknown, init: { status?: number; statusText?: string; headers?: HeadersInit } = {}): ResponsePolyfill {
    const headers = new HeadersPolyfill(init.headers)
    if (!headers.has('content-type')) headers.set('content-type', 'application/json')
    return new ResponsePolyfill(JSON.stringify(data), { ...init, headers })
  }
  static redirect(url: string, status = 302): ResponsePolyfill {
    return new ResponsePolyfill(null, { status, headers: { location: String(url) } })
  }
}

export class RequestPolyfill extends Body {
  readonly url: string
  readonly method: string
  readonly headers: HeadersPolyfill
  constructor(input: string | RequestPolyfill | { href: string }, init: { method?: string; headers?: HeadersInit; body?: unknown } = {}) {
    const from = input instanceof RequestPolyfill ? input : null
    super(init.body !== undefined ? init.body : from !== null ? from._bytes() : null)
    this.url = from !== null ? from.url : typeof input === 'string' ? input : String((input as { href: string }).href)
    this.method = (init.method ?? from?.method ?? 'GET').toUpperCase()
    this.headers = new HeadersPolyfill(init.headers ?? from?.headers)
  }
  clone(): RequestPolyfill {
    return new RequestPolyfill(this.url, { method: this.method, headers: this.headers, body: this._bytes() })
  }
}

/** `fetch` for actions, given the host call that performs the request. */
export function makeFetch(host: (op: string, argsJson: string) => Promise<string>) {
  return async (input: string | { url: string } | { href: string }, init: { method?: string; headers?: HeadersInit; body?: unknown } = {}): Promise<ResponsePolyfill> => {
    const request = input instanceof RequestPolyfill ? new RequestPolyfill(input, init) : new RequestPolyfill(typeof input === 'string' ? input : 'url' in input ? input.url : input.href, init)
    const url = request.url
    const headers: [string, string][] = []
    request.headers.forEach((v, k) => headers.push([k, v]))
    const body = request.body
    const answer = JSON.parse(
      await host('concave/fetch', JSON.stringify({ url, method: request.method, headers, body: body === null ? null : bytesToBase64(body) })),
    ) as { status: number; statusText: string; headers: [string, string][]; body: string; url: string }
    return new ResponsePolyfill(base64ToBytes(answer.body), { status: answer.status, statusText: answer.statusText, headers: answer.headers, url: answer.url })
  }
}
