/** @module Web globals that plain V8 lacks and Convex code expects: TextEncoder/Decoder, atob/btoa. */
import { DOMExceptionPolyfill } from './dom.ts'

/** The length of `s` encoded as UTF-8 (a lone surrogate is U+FFFD's three bytes). */
function encodedLength(s: string): number {
  let n = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) n += 1
    else if (c < 0x800) n += 2
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4
      i++
    } else n += 3
  }
  return n
}

/**
 * Writes `s` as UTF-8 into `dest`, whole characters only, as many as fit (a lone surrogate is
 * U+FFFD); how many code units were read and bytes written.
 */
function writeUtf8(s: string, dest: Uint8Array): { read: number; written: number } {
  let o = 0
  let i = 0
  for (; i < s.length; i++) {
    let c = s.charCodeAt(i)
    let units = 1
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      c = 0x10000 + ((c - 0xd800) << 10) + (s.charCodeAt(i + 1) - 0xdc00)
      units = 2
    } else if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd
    if (c < 0x80) {
      if (o + 1 > dest.length) break
      dest[o++] = c
    } else if (c < 0x800) {
      if (o + 2 > dest.length) break
      dest[o++] = 0xc0 | (c >> 6)
      dest[o++] = 0x80 | (c & 63)
    } else if (c < 0x10000) {
      if (o + 3 > dest.length) break
      dest[o++] = 0xe0 | (c >> 12)
      dest[o++] = 0x80 | ((c >> 6) & 63)
      dest[o++] = 0x80 | (c & 63)
    } else {
      if (o + 4 > dest.length) break
      dest[o++] = 0xf0 | (c >> 18)
      dest[o++] = 0x80 | ((c >> 12) & 63)
      dest[o++] = 0x80 | ((c >> 6) & 63)
      dest[o++] = 0x80 | (c & 63)
    }
    i += units - 1
  }
  return { read: i, written: o }
}

/** UTF-8 straight into bytes of the exact length (no array of numbers between: a large string's would not fit in the isolate). */
export class TextEncoderPolyfill {
  get encoding(): string {
    return 'utf-8'
  }
  encode(input = ''): Uint8Array {
    const s = String(input)
    const out = new Uint8Array(encodedLength(s))
    writeUtf8(s, out)
    return out
  }
  /** Encodes as much of `input` as fits in `dest` (whole characters only). */
  encodeInto(input: string, dest: Uint8Array): { read: number; written: number } {
    return writeUtf8(String(input), dest)
  }
  get [Symbol.toStringTag](): string {
    return 'TextEncoder'
  }
}

/** The encodings this decoder has, by their labels (the Encoding standard's lists). */
const ENCODINGS = new Map<string, string>()
for (const label of ['unicode-1-1-utf-8', 'unicode11utf8', 'unicode20utf8', 'utf-8', 'utf8', 'x-unicode20utf8']) ENCODINGS.set(label, 'utf-8')
for (const label of ['csunicode', 'iso-10646-ucs-2', 'ucs-2', 'unicode', 'unicodefeff', 'utf-16', 'utf-16le']) ENCODINGS.set(label, 'utf-16le')
for (const label of ['unicodefffe', 'utf-16be']) ENCODINGS.set(label, 'utf-16be')
for (const label of ['ansi_x3.4-1968', 'ascii', 'cp1252', 'cp819', 'csisolatin1', 'ibm819', 'iso-8859-1', 'iso-ir-100', 'iso8859-1', 'iso88591', 'iso_8859-1', 'iso_8859-1:1987', 'l1', 'latin1', 'us-ascii', 'windows-1252', 'x-cp1252']) {
  ENCODINGS.set(label, 'windows-1252')
}
/** windows-1252's characters for bytes 0x80–0x9F (the rest are their own code points). */
const WINDOWS_1252_HIGH = [
  0x20ac, 0x81, 0x201a, 0x192, 0x201e, 0x2026, 0x2020, 0x2021, 0x2c6, 0x2030, 0x160, 0x2039, 0x152, 0x8d, 0x17d, 0x8f,
  0x90, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x2dc, 0x2122, 0x161, 0x203a, 0x153, 0x9d, 0x17e, 0x178,
]

/** How many bytes TextDecoder decodes at a time. */
const DECODE_WINDOW = 1 << 16

/** UTF-16 code units to a string, in slices (fromCharCode takes only so many arguments). */
function unitsToString(units: Uint16Array, length: number): string {
  let s = ''
  for (let i = 0; i < length; i += 8192) s += String.fromCharCode.apply(null, units.subarray(i, Math.min(length, i + 8192)) as unknown as number[])
  return s
}

/**
 * The Encoding standard's decoders for UTF-8, UTF-16LE/BE and windows-1252 (what `latin1` and
 * `ascii` mean on the web). UTF-8: invalid sequences (overlong forms, surrogates, code
 * points past U+10FFFF, truncated sequences) become U+FFFD, or a TypeError when `fatal`; a
 * leading BOM is dropped unless `ignoreBOM`; `{stream: true}` keeps a sequence split across
 * chunks for the next call.
 */
export class TextDecoderPolyfill {
  readonly #encoding: string
  readonly #fatal: boolean
  readonly #ignoreBOM: boolean
  /** UTF-16: a byte waiting for its pair, and a high surrogate waiting for its low one. */
  #pendingByte = -1
  #pendingHigh = -1
  // The decoder's state between streamed chunks.
  #needed = 0
  #seen = 0
  #codePoint = 0
  #lower = 0x80
  #upper = 0xbf
  /** Whether the start of the stream (where a BOM may be) is behind us. */
  #bomChecked = false

  constructor(label = 'utf-8', options: { fatal?: boolean; ignoreBOM?: boolean } = {}) {
    const encoding = ENCODINGS.get(String(label).trim().toLowerCase())
    if (encoding === undefined) throw new RangeError(`The encoding label provided ('${String(label)}') is invalid.`)
    this.#encoding = encoding
    this.#fatal = options?.fatal === true
    this.#ignoreBOM = options?.ignoreBOM === true
  }
  get encoding(): string {
    return this.#encoding
  }
  get fatal(): boolean {
    return this.#fatal
  }
  get ignoreBOM(): boolean {
    return this.#ignoreBOM
  }

  decode(input?: ArrayBuffer | ArrayBufferView, options?: { stream?: boolean }): string {
    const stream = options?.stream === true
    let b: Uint8Array
    if (input === undefined || input === null) b = new Uint8Array(0)
    else if (input instanceof ArrayBuffer || Object.prototype.toString.call(input) === '[object SharedArrayBuffer]') b = new Uint8Array(input as ArrayBuffer)
    else if (ArrayBuffer.isView(input)) b = new Uint8Array(input.buffer, input.byteOffset, input.byteLength)
    else throw new TypeError("Failed to execute 'decode' on 'TextDecoder': The provided value is not of type '(ArrayBuffer or ArrayBufferView)'")
    // A large input a window at a time, as if streamed: the code units of one window are held,
    // not the whole input's (twice its size again).
    if (b.length <= DECODE_WINDOW) return this.#decode(b, stream)
    let text = ''
    for (let at = 0; at < b.length; at += DECODE_WINDOW) text += this.#decode(b.subarray(at, at + DECODE_WINDOW), at + DECODE_WINDOW < b.length || stream)
    return text
  }

  #decode(b: Uint8Array, stream: boolean): string {
    // Each byte yields at most one code unit, but a sequence begun in an earlier chunk can
    // complete as a surrogate pair, and a truncated one ends in one U+FFFD.
    const out = new Uint16Array(b.length + 4)
    let o = 0
    const fail = (): void => {
      if (this.#fatal) {
        this.#reset()
        // (The next decode starts afresh, a BOM included.)
        this.#bomChecked = false
        throw new TypeError('The encoded data is not valid.')
      }
      out[o++] = 0xfffd
    }
    if (this.#encoding === 'windows-1252') {
      for (let i = 0; i < b.length; i++) out[o++] = b[i]! >= 0x80 && b[i]! < 0xa0 ? WINDOWS_1252_HIGH[b[i]! - 0x80]! : b[i]!
    } else if (this.#encoding !== 'utf-8') {
      // UTF-16: byte pairs to code units; a surrogate without its partner is an error.
      const bigEndian = this.#encoding === 'utf-16be'
      for (let i = 0; i < b.length; i++) {
        if (this.#pendingByte === -1) {
          this.#pendingByte = b[i]!
          continue
        }
        const u = bigEndian ? (this.#pendingByte << 8) | b[i]! : this.#pendingByte | (b[i]! << 8)
        this.#pendingByte = -1
        if (this.#pendingHigh !== -1) {
          const high = this.#pendingHigh
          this.#pendingHigh = -1
          if (u >= 0xdc00 && u <= 0xdfff) {
            out[o++] = high
            out[o++] = u
            continue
          }
          fail()
        }
        if (u >= 0xd800 && u <= 0xdbff) this.#pendingHigh = u
        else if (u >= 0xdc00 && u <= 0xdfff) fail()
        else out[o++] = u
      }
      if (!stream && (this.#pendingByte !== -1 || this.#pendingHigh !== -1)) {
        this.#reset()
        fail()
      }
    } else {
      for (let i = 0; i < b.length; i++) {
        const byte = b[i]!
        if (this.#needed === 0) {
          if (byte < 0x80) out[o++] = byte
          else if (byte >= 0xc2 && byte <= 0xdf) {
            this.#needed = 1
            this.#codePoint = byte & 0x1f
          } else if (byte >= 0xe0 && byte <= 0xef) {
            if (byte === 0xe0) this.#lower = 0xa0 // would be overlong
            if (byte === 0xed) this.#upper = 0x9f // would be a surrogate
            this.#needed = 2
            this.#codePoint = byte & 0xf
          } else if (byte >= 0xf0 && byte <= 0xf4) {
            if (byte === 0xf0) this.#lower = 0x90 // would be overlong
            if (byte === 0xf4) this.#upper = 0x8f // would be past U+10FFFF
            this.#needed = 3
            this.#codePoint = byte & 0x7
          } else fail()
          continue
        }
        if (byte < this.#lower || byte > this.#upper) {
          // The sequence ends early: one U+FFFD for it, and this byte starts afresh.
          this.#reset()
          fail()
          i--
          continue
        }
        this.#lower = 0x80
        this.#upper = 0xbf
        this.#codePoint = (this.#codePoint << 6) | (byte & 0x3f)
        if (++this.#seen === this.#needed) {
          const cp = this.#codePoint
          this.#reset()
          if (cp < 0x10000) out[o++] = cp
          else {
            out[o++] = 0xd800 + ((cp - 0x10000) >> 10)
            out[o++] = 0xdc00 + ((cp - 0x10000) & 0x3ff)
          }
        }
      }
      if (!stream && this.#needed !== 0) {
        this.#reset()
        fail()
      }
    }
    let start = 0
    if (!this.#bomChecked && o > 0) {
      this.#bomChecked = true
      if (!this.#ignoreBOM && out[0] === 0xfeff && this.#encoding !== 'windows-1252') start = 1
    }
    if (!stream) this.#bomChecked = false
    return unitsToString(out.subarray(start), o - start)
  }

  #reset(): void {
    this.#pendingByte = -1
    this.#pendingHigh = -1
    this.#needed = 0
    this.#seen = 0
    this.#codePoint = 0
    this.#lower = 0x80
    this.#upper = 0xbf
  }

  get [Symbol.toStringTag](): string {
    return 'TextDecoder'
  }
}

/** The base64 alphabet, and each character code's value in it (-1: not base64). */
export const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
export const B64_INDEX = new Int16Array(128).fill(-1)
for (let i = 0; i < 64; i++) B64_INDEX[B64.charCodeAt(i)] = i

export function btoa(input: string): string {
  const s = String(input)
  let out = ''
  for (let i = 0; i < s.length; i += 3) {
    const a = s.charCodeAt(i), b = s.charCodeAt(i + 1), c = s.charCodeAt(i + 2)
    if (a > 255 || b > 255 || c > 255) throw new DOMExceptionPolyfill("Failed to execute 'btoa': The string to be encoded contains characters outside of the Latin1 range.", 'InvalidCharacterError')
    const n = (a << 16) | ((b || 0) << 8) | (c || 0)
    out += B64[n >> 18]! + B64[(n >> 12) & 63]! + (i + 1 < s.length ? B64[(n >> 6) & 63]! : '=') + (i + 2 < s.length ? B64[n & 63]! : '=')
  }
  return out
}

/** The UTF-8 length of a UTF-16 code unit sequence's character at `i` (for error offsets). */
function utf8Length(s: string, i: number): number {
  const c = s.codePointAt(i)!
  return c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4
}

/**
 * Forgiving base64 (ASCII whitespace is skipped, padding optional, stray bits allowed), with
 * Convex's errors: an InvalidCharacterError DOMException naming the offending byte and offset.
 */
export function atob(input: string): string {
  const s = String(input).replace(/[\t\n\f\r ]/g, '')
  const invalid = (detail: string) => new DOMExceptionPolyfill(`Failed to execute 'atob': ${detail}`, 'InvalidCharacterError')
  let firstPad = -1
  let offset = 0
  for (let i = 0; i < s.length; i++) {
    const code = s.charCodeAt(i)
    if (code === 61) {
      if (i % 4 < 2) throw invalid(`Invalid byte 61, offset ${firstPad === -1 ? offset : firstPad}.`)
      if (firstPad === -1) firstPad = offset
    } else if (firstPad !== -1) throw invalid(`Invalid byte 61, offset ${firstPad}.`)
    else if (code >= 128 || B64_INDEX[code]! < 0) {
      const lead = code < 128 ? code : new TextEncoderPolyfill().encode(String.fromCodePoint(s.codePointAt(i)!))[0]!
      throw invalid(`Invalid byte ${lead}, offset ${offset}.`)
    }
    offset += utf8Length(s, i)
  }
  const data = firstPad === -1 ? s.length : firstPad
  if (data % 4 === 1) throw invalid('Encoded text cannot have a 6-bit remainder.')
  let out = ''
  let bits = 0, acc = 0
  for (let i = 0; i < data; i++) {
    acc = ((acc << 6) | B64_INDEX[s.charCodeAt(i)]!) & 0xffffff
    bits += 6
    if (bits >= 8) {
      bits -= 8
      out += String.fromCharCode((acc >> bits) & 255)
    }
  }
  return out
}

/**
 * Gives each class installed as a global the standard's name — `constructor.name` and, unless the
 * class defines its own, the prototype's `Symbol.toStringTag` — rather than the polyfill's own.
 */
export function nameGlobalClasses(globals: Record<string, unknown>, names: string[]): void {
  for (const name of names) {
    const cls = globals[name]
    if (typeof cls !== 'function') continue
    Object.defineProperty(cls, 'name', { value: name, configurable: true })
    const proto = (cls as { prototype?: object }).prototype
    if (proto !== undefined && !Object.prototype.hasOwnProperty.call(proto, Symbol.toStringTag)) {
      Object.defineProperty(proto, Symbol.toStringTag, { value: name, configurable: true })
    }
  }
}
