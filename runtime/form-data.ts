/**
 * @module `FormData` (the XHR standard), and the two body formats it travels in: written as
 * multipart/form-data (the HTML standard's encoding), read from multipart/form-data or
 * application/x-www-form-urlencoded (the Fetch standard's `formData()`).
 */
import { BlobPolyfill, FilePolyfill } from './blob.ts'
import { TextDecoderPolyfill, TextEncoderPolyfill } from './polyfills.ts'
import { URLSearchParamsPolyfill } from './url.ts'

type Entry = [string, string | FilePolyfill]

/** A Blob value as the File an entry holds: a plain Blob is named "blob"; `filename` renames. */
function entryValue(method: string, value: unknown, filename: unknown, argCount: number): string | FilePolyfill {
  if (value instanceof BlobPolyfill) {
    if (value instanceof FilePolyfill && filename === undefined) return value
    const name = filename !== undefined ? String(filename) : value instanceof FilePolyfill ? value.name : 'blob'
    return new FilePolyfill([value], name, { type: value.type, lastModified: value instanceof FilePolyfill ? value.lastModified : undefined })
  }
  if (argCount > 2) throw new TypeError(`Failed to execute '${method}' on 'FormData': parameter 2 is not of type 'Blob'.`)
  return String(value)
}

export class FormDataPolyfill {
  #entries: Entry[] = []
  constructor(form?: unknown) {
    if (form !== undefined) throw new TypeError("Failed to construct 'FormData': there are no form elements here; construct it empty and append to it")
  }
  append(name: string, value: string | BlobPolyfill, filename?: string): void {
    if (arguments.length < 2) throw new TypeError(`Failed to execute 'append' on 'FormData': 2 arguments required, but only ${arguments.length} present.`)
    this.#entries.push([String(name), entryValue('append', value, filename, arguments.length)])
  }
  /** Replaces the first entry named `name` (dropping the others), or appends. */
  set(name: string, value: string | BlobPolyfill, filename?: string): void {
    if (arguments.length < 2) throw new TypeError(`Failed to execute 'set' on 'FormData': 2 arguments required, but only ${arguments.length} present.`)
    const key = String(name)
    const entry: Entry = [key, entryValue('set', value, filename, arguments.length)]
    const first = this.#entries.findIndex(([k]) => k === key)
    if (first === -1) this.#entries.push(entry)
    else this.#entries = [...this.#entries.slice(0, first), entry, ...this.#entries.slice(first + 1).filter(([k]) => k !== key)]
  }
  get(name: string): string | FilePolyfill | null {
    const key = String(name)
    return this.#entries.find(([k]) => k === key)?.[1] ?? null
  }
  getAll(name: string): (string | FilePolyfill)[] {
    const key = String(name)
    return this.#entries.filter(([k]) => k === key).map(([, v]) => v)
  }
  has(name: string): boolean {
    const key = String(name)
    return this.#entries.some(([k]) => k === key)
  }
  delete(name: string): void {
    const key = String(name)
    this.#entries = this.#entries.filter(([k]) => k !== key)
  }
  forEach(callback: (value: string | FilePolyfill, key: string, parent: FormDataPolyfill) => void, thisArg?: unknown): void {
    if (typeof callback !== 'function') throw new TypeError("Failed to execute 'forEach' on 'FormData': The callback provided as parameter 1 is not a function.")
    // Entries appended or deleted by the callback are seen, as with the live iterator.
    for (let i = 0; i < this.#entries.length; i++) callback.call(thisArg, this.#entries[i]![1], this.#entries[i]![0], this)
  }
  *entries(): IterableIterator<[string, string | FilePolyfill]> {
    for (let i = 0; i < this.#entries.length; i++) yield [this.#entries[i]![0], this.#entries[i]![1]]
  }
  *keys(): IterableIterator<string> {
    for (const [k] of this.entries()) yield k
  }
  *values(): IterableIterator<string | FilePolyfill> {
    for (const [, v] of this.entries()) yield v
  }
  [Symbol.iterator](): IterableIterator<[string, string | FilePolyfill]> {
    return this.entries()
  }
  get [Symbol.toStringTag](): string {
    return 'FormData'
  }
}

/** Lone CR or LF as CRLF (names and string values are sent with CRLF line breaks). */
const normalizeNewlines = (s: string): string => s.replace(/\r\n|\r|\n/g, '\r\n')
/** A name or filename inside a quoted header parameter. */
const escapeQuoted = (s: string): string => s.replace(/\n/g, '%0A').replace(/\r/g, '%0D').replace(/"/g, '%22')

/** A boundary no entry is likely to contain (and the random source is the call's own). */
function makeBoundary(): string {
  let digits = ''
  for (let i = 0; i < 24; i++) digits += Math.floor(Math.random() * 10)
  return `----formdata-concave-${digits}`
}

/** A FormData as a multipart/form-data body, with the Content-Type naming its boundary. */
export function encodeMultipart(form: FormDataPolyfill): { bytes: Uint8Array; contentType: string } {
  const boundary = makeBoundary()
  const encoder = new TextEncoderPolyfill()
  const parts: (string | BlobPolyfill)[] = []
  for (const [name, value] of form) {
    const disposition = `--${boundary}\r\nContent-Disposition: form-data; name="${escapeQuoted(normalizeNewlines(name))}"`
    if (typeof value === 'string') parts.push(`${disposition}\r\n\r\n${normalizeNewlines(value)}\r\n`)
    else parts.push(`${disposition}; filename="${escapeQuoted(value.name)}"\r\nContent-Type: ${value.type || 'application/octet-stream'}\r\n\r\n`, value, '\r\n')
  }
  parts.push(`--${boundary}--\r\n`)
  const chunks = parts.map((p) => (typeof p === 'string' ? encoder.encode(p) : p._bytes()))
  const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0))
  let at = 0
  for (const c of chunks) {
    bytes.set(c, at)
    at += c.length
  }
  return { bytes, contentType: `multipart/form-data; boundary=${boundary}` }
}

/** A MIME type's essence (lowercased `type/subtype`) and its parameters (names lowercased). */
export function parseMimeType(value: string): { essence: string; params: Map<string, string> } | null {
  const semi = value.indexOf(';')
  const essence = (semi === -1 ? value : value.slice(0, semi)).trim().toLowerCase()
  if (!/^[!#$%&'*+\-.^_`|~0-9a-z]+\/[!#$%&'*+\-.^_`|~0-9a-z]+$/.test(essence)) return null
  const params = new Map<string, string>()
  const re = /;\s*([^=;\s]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)/g
  let m: RegExpExecArray | null
  while ((m = re.exec(value)) !== null) {
    const key = m[1]!.toLowerCase()
    let v = m[2]!.trim()
    if (v.startsWith('"')) v = v.slice(1, -1).replace(/\\(.)/g, '$1')
    if (!params.has(key)) params.set(key, v)
  }
  return { essence, params }
}

/** Where `pattern` first occurs in `bytes` from `from` on, or -1. */
function indexOfBytes(bytes: Uint8Array, pattern: Uint8Array, from: number): number {
  const first = pattern[0]!
  for (let i = bytes.indexOf(first, from); i !== -1 && i + pattern.length <= bytes.length; i = bytes.indexOf(first, i + 1)) {
    let j = 1
    while (j < pattern.length && bytes[i + j] === pattern[j]) j++
    if (j === pattern.length) return i
  }
  return -1
}

const malformed = (): TypeError => new TypeError('Failed to parse body as FormData.')

/** A multipart/form-data body's entries (files keep their filename and Content-Type). */
function decodeMultipart(bytes: Uint8Array, boundary: string): FormDataPolyfill {
  const encoder = new TextEncoderPolyfill()
  const decoder = new TextDecoderPolyfill()
  const delimiter = encoder.encode(`--${boundary}`)
  const nextDelimiter = encoder.encode(`\r\n--${boundary}`)
  const headerEnd = encoder.encode('\r\n\r\n')
  const form = new FormDataPolyfill()
  // What comes before the first delimiter (a preamble) is ignored.
  let at = indexOfBytes(bytes, delimiter, 0)
  if (at === -1) throw malformed()
  at += delimiter.length
  for (;;) {
    if (bytes[at] === 0x2d && bytes[at + 1] === 0x2d) return form // `--boundary--`: the end
    // Transport padding (spaces and tabs) may follow a delimiter before its CRLF.
    while (bytes[at] === 0x20 || bytes[at] === 0x09) at++
    if (bytes[at] !== 0x0d || bytes[at + 1] !== 0x0a) throw malformed()
    at += 2
    const headersEnd = indexOfBytes(bytes, headerEnd, at)
    if (headersEnd === -1) throw malformed()
    let name: string | null = null
    let filename: string | null = null
    let contentType: string | null = null
    for (const line of decoder.decode(bytes.subarray(at, headersEnd)).split('\r\n')) {
      const colon = line.indexOf(':')
      if (colon === -1) continue
      const header = line.slice(0, colon).trim().toLowerCase()
      const value = line.slice(colon + 1).trim()
      if (header === 'content-type') contentType = value
      else if (header === 'content-disposition') {
        const params = parseMimeType(`x/x;${value.slice(value.indexOf(';') + 1)}`)?.params
        if (!/^form-data\s*(;|$)/i.test(value) || params === undefined) throw malformed()
        const unescape = (s: string) => s.replace(/%0A/gi, '\n').replace(/%0D/gi, '\r').replace(/%22/g, '"')
        name = params.has('name') ? unescape(params.get('name')!) : null
        filename = params.has('filename') ? unescape(params.get('filename')!) : null
      }
    }
    if (name === null) throw malformed()
    const bodyStart = headersEnd + headerEnd.length
    const bodyEnd = indexOfBytes(bytes, nextDelimiter, bodyStart)
    if (bodyEnd === -1) throw malformed()
    const body = bytes.slice(bodyStart, bodyEnd)
    if (filename !== null) form.append(name, new FilePolyfill([body], filename, { type: contentType ?? 'text/plain' }))
    else form.append(name, decoder.decode(body))
    at = bodyEnd + nextDelimiter.length
  }
}

/**
 * A body read as FormData, by its Content-Type: multipart/form-data (with its boundary) or
 * application/x-www-form-urlencoded; anything else is a TypeError (Convex's messages).
 */
export function decodeFormData(bytes: Uint8Array, contentType: string | null): FormDataPolyfill {
  if (contentType === null) throw new TypeError('Missing content type')
  const mime = parseMimeType(contentType)
  if (mime === null) throw new TypeError('Invalid content type')
  if (mime.essence === 'multipart/form-data') {
    const boundary = mime.params.get('boundary')
    if (boundary === undefined || boundary === '') throw new TypeError('Missing boundary parameter in mime type of multipart formdata.')
    return decodeMultipart(bytes, boundary)
  }
  if (mime.essence === 'application/x-www-form-urlencoded') {
    const form = new FormDataPolyfill()
    for (const [k, v] of new URLSearchParamsPolyfill(new TextDecoderPolyfill().decode(bytes)) as unknown as Iterable<[string, string]>) form.append(k, v)
    return form
  }
  throw new TypeError('Body cannot be decoded as form data')
}
