/** @module `URL` and `URLSearchParams` for the sandbox (plain V8 has neither). */

const FORM_SAFE = /[!'()~]/g

function formEncode(s: string): string {
  return encodeURIComponent(s).replace(FORM_SAFE, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).replace(/%20/g, '+')
}

function formDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '))
  } catch {
    return s
  }
}

export class URLSearchParamsPolyfill {
  #pairs: [string, string][] = []
  #onChange: (() => void) | null = null

  constructor(init?: string | Record<string, string> | Iterable<[string, string]> | URLSearchParamsPolyfill) {
    if (typeof init === 'string') this.#parse(init)
    else if (init instanceof URLSearchParamsPolyfill) this.#pairs = [...init.#pairs.map(([k, v]) => [k, v] as [string, string])]
    else if (init !== undefined && init !== null) {
      const entries = Symbol.iterator in Object(init) ? (init as Iterable<[string, string]>) : Object.entries(init as Record<string, string>)
      for (const [k, v] of entries) this.#pairs.push([String(k), String(v)])
    }
  }

  /** @internal Keeps a URL's `search` in step with edits. */
  _bind(onChange: () => void): this {
    this.#onChange = onChange
    return this
  }

  /** @internal */
  _reset(query: string): void {
    this.#pairs = []
    this.#parse(query)
  }

  #parse(query: string): void {
    for (const part of query.replace(/^\?/, '').split('&')) {
      if (part === '') continue
      const eq = part.indexOf('=')
      this.#pairs.push(eq === -1 ? [formDecode(part), ''] : [formDecode(part.slice(0, eq)), formDecode(part.slice(eq + 1))])
    }
  }

  #changed(): void {
    this.#onChange?.()
  }

  get size(): number {
    return this.#pairs.length
  }
  append(name: string, value: string): void {
    this.#pairs.push([String(name), String(value)])
    this.#changed()
  }
  delete(name: string): void {
    this.#pairs = this.#pairs.filter(([k]) => k !== name)
    this.#changed()
  }
  get(name: string): string | null {
    return this.#pairs.find(([k]) => k === name)?.[1] ?? null
  }
  getAll(name: string): string[] {
    return this.#pairs.filter(([k]) => k === name).map(([, v]) => v)
  }
  has(name: string): boolean {
    return this.#pairs.some(([k]) => k === name)
  }
  set(name: string, value: string): void {
    const i = this.#pairs.findIndex(([k]) => k === name)
    if (i === -1) this.#pairs.push([String(name), String(value)])
    else {
      this.#pairs[i] = [String(name), String(value)]
      this.#pairs = this.#pairs.filter(([k], j) => k !== name || j === i)
    }
    this.#changed()
  }
  sort(): void {
    this.#pairs.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    this.#changed()
  }
  forEach(fn: (value: string, key: string, parent: this) => void): void {
    for (const [k, v] of this.#pairs) fn(v, k, this)
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
    return this.#pairs.map(([k, v]) => `${formEncode(k)}=${formEncode(v)}`).join('&')
  }
}

const ABSOLUTE = /^([a-zA-Z][a-zA-Z0-9+.-]*):(.*)$/
const DEFAULT_PORTS: Record<string, string> = { 'http:': '80', 'https:': '443', 'ws:': '80', 'wss:': '443' }

function normalizePath(path: string): string {
  const out: string[] = []
  const parts = path.split('/')
  for (let i = 0; i < parts.length; i++) {
    const seg = parts[i]!
    if (seg === '..') {
      if (out.length > 1) out.pop()
      if (i === parts.length - 1) out.push('')
    } else if (seg === '.') {
      if (i === parts.length - 1) out.push('')
    } else out.push(seg)
  }
  const joined = out.join('/')
  return joined.startsWith('/') ? joined : `/${joined}`
}

function encodePath(path: string): string {
  return path.replace(/[^A-Za-z0-9\-._~!$&'()*+,;=:@/%]/g, (c) => encodeURIComponent(c))
}

export class URLPolyfill {
  protocol = ''
  username = ''
  password = ''
  hostname = ''
  port = ''
  pathname = '/'
  hash = ''
  #search = ''
  readonly searchParams: URLSearchParamsPolyfill

  constructor(input: string | URLPolyfill, base?: string | URLPolyfill) {
    let s = String(input).trim()
    const m = ABSOLUTE.exec(s)
    if (m === null) {
      if (base === undefined) throw new TypeError(`Invalid URL: ${s}`)
      const b = new URLPolyfill(base)
      if (s.startsWith('//')) s = `${b.protocol}${s}`
      else if (s.startsWith('/')) s = `${b.origin}${s}`
      else if (s.startsWith('?')) s = `${b.origin}${b.pathname}${s}`
      else if (s.startsWith('#')) s = `${b.origin}${b.pathname}${b.search}${s}`
      else s = `${b.origin}${b.pathname.replace(/[^/]*$/, '')}${s}`
    }
    const parsed = ABSOLUTE.exec(s)!
    this.protocol = `${parsed[1]!.toLowerCase()}:`
    let rest = parsed[2]!
    const hashAt = rest.indexOf('#')
    if (hashAt !== -1) {
      this.hash = rest.slice(hashAt) === '#' ? '' : rest.slice(hashAt)
      rest = rest.slice(0, hashAt)
    }
    const queryAt = rest.indexOf('?')
    if (queryAt !== -1) {
      this.#search = rest.slice(queryAt) === '?' ? '' : rest.slice(queryAt)
      rest = rest.slice(0, queryAt)
    }
    if (rest.startsWith('//')) {
      rest = rest.slice(2)
      const slash = rest.indexOf('/')
      let authority = slash === -1 ? rest : rest.slice(0, slash)
      rest = slash === -1 ? '/' : rest.slice(slash)
      const at = authority.lastIndexOf('@')
      if (at !== -1) {
        const [user, pass] = authority.slice(0, at).split(':')
        this.username = user ?? ''
        this.password = pass ?? ''
        authority = authority.slice(at + 1)
      }
      const portMatch = /^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/.exec(authority)
      if (portMatch === null) throw new TypeError(`Invalid URL: ${String(input)}`)
      this.hostname = portMatch[1]!.toLowerCase()
      const port = portMatch[2] ?? ''
      this.port = port === DEFAULT_PORTS[this.protocol] ? '' : port
      if (this.hostname === '' && this.protocol !== 'file:') throw new TypeError(`Invalid URL: ${String(input)}`)
    }
    this.pathname = encodePath(normalizePath(rest === '' ? '/' : rest.replace(/\\/g, '/')))
    this.searchParams = new URLSearchParamsPolyfill(this.#search)._bind(() => {
      const q = this.searchParams.toString()
      this.#search = q === '' ? '' : `?${q}`
    })
  }

  get search(): string {
    return this.#search
  }
  set search(value: string) {
    const v = String(value)
    this.#search = v === '' || v === '?' ? '' : v.startsWith('?') ? v : `?${v}`
    this.searchParams._reset(this.#search)
  }
  get host(): string {
    return this.port === '' ? this.hostname : `${this.hostname}:${this.port}`
  }
  get origin(): string {
    return `${this.protocol}//${this.host}`
  }
  get href(): string {
    const auth = this.username === '' ? '' : `${this.username}${this.password === '' ? '' : `:${this.password}`}@`
    return `${this.protocol}//${auth}${this.host}${this.pathname}${this.#search}${this.hash}`
  }
  toString(): string {
    return this.href
  }
  toJSON(): string {
    return this.href
  }
}
