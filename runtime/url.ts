/**
 * @module `URL` and `URLSearchParams` for the sandbox (plain V8 has neither), as Convex's runtime
 * has them: parsing, setters and form encoding are host operations (`url/*`, answered by the
 * host's WHATWG URL implementation, as Convex answers them with its `url` crate), so the sandbox
 * holds no URL parser of its own. Setting `host`, `username` or `password` is not supported, as
 * in Convex.
 */
import inspect from 'object-inspect'
import { callHostSync, throwUncatchable } from './host.ts'

/** The parts of a parsed URL, as the host reports them (scheme, search and hash without their `:`, `?`, `#`). */
export interface UrlInfo {
  scheme: string
  hash: string
  host: string
  hostname: string
  href: string
  pathname: string
  port: string
  search: string
  username: string
  password: string
}

/** A change the URL's setters ask the host for. */
export type UrlUpdate =
  | { hash: string | null }
  | { hostname: string | null }
  | { href: string }
  | { port: string }
  | { protocol: string }
  | { pathname: string }
  | { search: string | null }
  | { searchParams: [string, string][] }

/** A host URL operation: its value, or the TypeError it reports. */
function urlOp<T>(op: string, ...args: unknown[]): T {
  const out = JSON.parse(callHostSync(op, JSON.stringify(args))) as { value: T } | { typeError: string }
  if ('typeError' in out) throw new TypeError(out.typeError)
  return out.value
}

/** Convex's uncatchable error for what its URL doesn't implement. */
function notImplemented(operation: string, className: string): never {
  return throwUncatchable(`Not implemented: ${operation} for ${className}. Consider calling an action defined in Node.js instead (https://docs.convex.dev/functions/actions).`)
}

const pairsOf = (query: string): [string, string][] => urlOp('url/getUrlSearchParamPairs', query)

export class URLSearchParamsPolyfill {
  #pairs: [string, string][] = []
  /** The URL whose query these are (its `search` follows every change). */
  #url: ((pairs: [string, string][]) => void) | null = null

  constructor(init?: string | readonly (readonly string[])[] | Record<string, string> | Iterable<readonly string[]> | URLSearchParamsPolyfill) {
    if (init === undefined || init === null) return
    if (typeof init === 'string') this.#pairs = pairsOf(init.startsWith('?') ? init.slice(1) : init)
    else if (init instanceof URLSearchParamsPolyfill) this.#pairs = init.#pairs.map(([k, v]) => [k, v])
    else if (typeof init === 'object' && Symbol.iterator in init) {
      for (const pair of init as Iterable<readonly string[]>) {
        const items = [...pair]
        if (items.length !== 2) throw new TypeError("Failed to construct 'URLSearchParams': Failed to construct 'URLSearchParams': Sequence initializer must only contain pair elements")
        this.#pairs.push([String(items[0]), String(items[1])])
      }
    } else if (typeof init === 'object') {
      for (const key of Object.keys(init)) this.#pairs.push([key, String((init as Record<string, unknown>)[key])])
    } else this.#pairs = pairsOf(String(init))
  }

  /** @internal Ties these params to their URL. */
  static _bind(params: URLSearchParamsPolyfill, onChange: (pairs: [string, string][]) => void): void {
    params.#url = onChange
  }

  /** @internal The URL's query changed: these are its pairs now. */
  static _reset(params: URLSearchParamsPolyfill, query: string): void {
    params.#pairs = pairsOf(query)
  }

  #changed(): void {
    this.#url?.(this.#pairs)
  }

  get size(): number {
    return this.#pairs.length
  }
  append(name: string, value: string): void {
    this.#pairs.push([String(name), String(value)])
    this.#changed()
  }
  /** Every pair of that name (Convex's takes no value argument). */
  delete(name: string): void {
    const n = String(name)
    this.#pairs = this.#pairs.filter(([k]) => k !== n)
    this.#changed()
  }
  get(name: string): string | null {
    const n = String(name)
    return this.#pairs.find(([k]) => k === n)?.[1] ?? null
  }
  getAll(name: string): string[] {
    const n = String(name)
    return this.#pairs.filter(([k]) => k === n).map(([, v]) => v)
  }
  has(name: string): boolean {
    const n = String(name)
    return this.#pairs.some(([k]) => k === n)
  }
  /** As Convex's: the pairs of that name go, and the new one is appended. */
  set(name: string, value: string): void {
    const n = String(name)
    this.#pairs = this.#pairs.filter(([k]) => k !== n)
    this.#pairs.push([n, String(value)])
    this.#changed()
  }
  /** As Convex's: stable, by name as `localeCompare` orders them. */
  sort(): void {
    this.#pairs.sort(([a], [b]) => a.localeCompare(b))
    this.#changed()
  }
  forEach(fn: (value: string, key: string, parent: this) => void, thisArg?: unknown): void {
    for (const [k, v] of this.#pairs) fn.call(thisArg, v, k, this)
  }
  keys(): IterableIterator<string> {
    return this.#pairs.map(([k]) => k)[Symbol.iterator]()
  }
  values(): IterableIterator<string> {
    return this.#pairs.map(([, v]) => v)[Symbol.iterator]()
  }
  entries(): IterableIterator<[string, string]> {
    return this.#pairs.map(([k, v]) => [k, v] as [string, string])[Symbol.iterator]()
  }
  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries()
  }
  toString(): string {
    return this.#pairs.length === 0 ? '' : urlOp('url/stringifyUrlSearchParams', this.#pairs)
  }
  toJSON(): Record<string, never> {
    return {}
  }
  get [Symbol.toStringTag](): string {
    return 'URLSearchParams'
  }
  inspect(): string {
    const inner = this.#pairs.length === 0 ? '' : ` ${this.#pairs.map(([k, v]) => `${inspect(k)} => ${inspect(v)}`).join(', ')} `
    return `${this.constructor.name} {${inner}}`
  }
}

export class URLPolyfill {
  #info: UrlInfo
  readonly #searchParams: URLSearchParamsPolyfill

  static canParse(url: string | URLPolyfill, base?: string | URLPolyfill): boolean {
    try {
      new URLPolyfill(url, base)
      return true
    } catch {
      return false
    }
  }

  static parse(url: string | URLPolyfill, base?: string | URLPolyfill): URLPolyfill | null {
    try {
      return new URLPolyfill(url, base)
    } catch {
      return null
    }
  }

  constructor(url: string | URLPolyfill, base?: string | URLPolyfill) {
    const baseHref = base === undefined ? null : base instanceof URLPolyfill ? base.href : String(base)
    const href = url instanceof URLPolyfill ? url.href : String(url)
    this.#info = urlOp<UrlInfo>('url/getUrlInfo', href, baseHref)
    this.#searchParams = new URLSearchParamsPolyfill(this.#info.search)
    URLSearchParamsPolyfill._bind(this.#searchParams, (pairs) => this.#update({ searchParams: pairs }, false))
  }

  #update(update: UrlUpdate, resetParams = true): void {
    this.#info = urlOp<UrlInfo>('url/updateUrlInfo', this.#info.href, update)
    if (resetParams) URLSearchParamsPolyfill._reset(this.#searchParams, this.#info.search)
  }

  get hash(): string {
    return this.#info.hash === '' ? '' : `#${this.#info.hash}`
  }
  set hash(value: string) {
    const v = String(value)
    const hash = v.startsWith('#') ? v.slice(1) : v
    this.#update({ hash: hash === '' ? null : hash })
  }
  get host(): string {
    return this.#info.host
  }
  set host(_value: string) {
    notImplemented('set host', 'URL')
  }
  get hostname(): string {
    return this.#info.hostname
  }
  set hostname(value: string) {
    const v = String(value)
    this.#update({ hostname: v === '' ? null : v })
  }
  get href(): string {
    return this.#info.href
  }
  set href(value: string) {
    this.#update({ href: String(value) })
  }
  get origin(): string {
    switch (this.#info.scheme) {
      case 'ftp':
      case 'http':
      case 'https':
      case 'ws':
      case 'wss':
        return `${this.#info.scheme}://${this.host}`
      default:
        return 'null'
    }
  }
  get password(): string {
    return this.#info.password
  }
  set password(_value: string) {
    notImplemented('set password', 'URL')
  }
  get pathname(): string {
    return this.#info.pathname
  }
  set pathname(value: string) {
    this.#update({ pathname: String(value) })
  }
  get port(): string {
    return this.#info.port
  }
  set port(value: string) {
    this.#update({ port: String(value) })
  }
  get protocol(): string {
    return `${this.#info.scheme}:`
  }
  set protocol(value: string) {
    this.#update({ protocol: String(value) })
  }
  get search(): string {
    return this.#info.search === '' ? '' : `?${this.#info.search}`
  }
  set search(value: string) {
    const v = String(value)
    const search = v.startsWith('?') ? v.slice(1) : v
    this.#update({ search: search === '' ? null : search })
  }
  get searchParams(): URLSearchParamsPolyfill {
    return this.#searchParams
  }
  get username(): string {
    return this.#info.username
  }
  set username(_value: string) {
    notImplemented('set username', 'URL')
  }
  toString(): string {
    return this.href
  }
  toJSON(): string {
    return this.href
  }
  get [Symbol.toStringTag](): string {
    return 'URL'
  }
  inspect(): string {
    const { href, origin, protocol, username, password, host, hostname, port, pathname, hash, search } = this
    return `${this.constructor.name} ${inspect({ href, origin, protocol, username, password, host, hostname, port, pathname, hash, search })}`
  }
}
