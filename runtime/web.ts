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

function toBytes(body: unknown): Uint8Array | null {
  if (body === undefined || body === null) return null
  if (typeof body === 'string') return new TextEncoderPolyfill().encode(body)
  if (body instanceof ArrayBuffer) return new Uint8Array(body)
  if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength)
  return new TextEncoderPolyfill().encode(String(body))
}

function bytesToBase64(b: Uint8Array): string {
  let s = ''
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]!)
  return btoa(s)
}

function base64ToBytes(s: string): Uint8Array {
  const bin = atob(s)
  const out = new Uint8Array(bin.length)
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i)
  return out
}

export class ResponsePolyfill {
  readonly status: number
  readonly statusText: string
  readonly headers: HeadersPolyfill
  readonly url: string
  readonly #body: Uint8Array
  bodyUsed = false
  constructor(body?: unknown, init: { status?: number; statusText?: string; headers?: HeadersInit; url?: string } = {}) {
    this.#body = toBytes(body) ?? new Uint8Array(0)
    this.status = init.status ?? 200
    this.statusText = init.statusText ?? ''
    this.headers = new HeadersPolyfill(init.headers)
    this.url = init.url ?? ''
  }
  get ok(): boolean {
    return this.status >= 200 && this.status < 300
  }
  #consume(): Uint8Array {
    if (this.bodyUsed) throw new TypeError('Body has already been consumed.')
    this.bodyUsed = true
    return this.#body
  }
  async arrayBuffer(): Promise<ArrayBuffer> {
    return this.#consume().slice().buffer
  }
  async text(): Promise<string> {
    return new TextDecoderPolyfill().decode(this.#consume())
  }
  async json(): Promise<unknown> {
    return JSON.parse(await this.text())
  }
}

/** `fetch` for actions, given the host call that performs the request. */
export function makeFetch(host: (op: string, argsJson: string) => Promise<string>) {
  return async (input: string | { url: string }, init: { method?: string; headers?: HeadersInit; body?: unknown } = {}): Promise<ResponsePolyfill> => {
    const url = typeof input === 'string' ? input : String(input.url)
    const headers: [string, string][] = []
    new HeadersPolyfill(init.headers).forEach((v, k) => headers.push([k, v]))
    const body = toBytes(init.body)
    const answer = JSON.parse(
      await host('concave/fetch', JSON.stringify({ url, method: (init.method ?? 'GET').toUpperCase(), headers, body: body === null ? null : bytesToBase64(body) })),
    ) as { status: number; statusText: string; headers: [string, string][]; body: string; url: string }
    return new ResponsePolyfill(base64ToBytes(answer.body), { status: answer.status, statusText: answer.statusText, headers: answer.headers, url: answer.url })
  }
}
