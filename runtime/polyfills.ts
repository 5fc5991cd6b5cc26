/** @module Web globals that plain V8 lacks and Convex code expects: TextEncoder/Decoder, atob/btoa. */

export class TextEncoderPolyfill {
  readonly encoding = 'utf-8'
  encode(input = ''): Uint8Array {
    const s = String(input)
    const out: number[] = []
    for (let i = 0; i < s.length; i++) {
      let c = s.charCodeAt(i)
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
        const d = s.charCodeAt(i + 1)
        if (d >= 0xdc00 && d <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00)
          i++
        } else c = 0xfffd
      } else if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd
      if (c < 0x80) out.push(c)
      else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63))
      else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63))
      else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63))
    }
    return new Uint8Array(out)
  }
}

export class TextDecoderPolyfill {
  readonly encoding = 'utf-8'
  decode(input?: ArrayBuffer | ArrayBufferView): string {
    if (input === undefined) return ''
    const b = input instanceof ArrayBuffer ? new Uint8Array(input) : new Uint8Array(input.buffer, input.byteOffset, input.byteLength)
    let out = ''
    for (let i = 0; i < b.length; ) {
      const c = b[i++]!
      let cp: number
      if (c < 0x80) cp = c
      else if (c >= 0xc2 && c < 0xe0 && i < b.length) cp = ((c & 31) << 6) | (b[i++]! & 63)
      else if (c >= 0xe0 && c < 0xf0 && i + 1 < b.length) cp = ((c & 15) << 12) | ((b[i++]! & 63) << 6) | (b[i++]! & 63)
      else if (c >= 0xf0 && c < 0xf5 && i + 2 < b.length) cp = ((c & 7) << 18) | ((b[i++]! & 63) << 12) | ((b[i++]! & 63) << 6) | (b[i++]! & 63)
      else cp = 0xfffd
      out += String.fromCodePoint(cp)
    }
    return out
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
    if (a > 255 || b > 255 || c > 255) throw new Error('Invalid character: btoa only accepts Latin-1 strings')
    const n = (a << 16) | ((b || 0) << 8) | (c || 0)
    out += B64[n >> 18]! + B64[(n >> 12) & 63]! + (i + 1 < s.length ? B64[(n >> 6) & 63]! : '=') + (i + 2 < s.length ? B64[n & 63]! : '=')
  }
  return out
}

export function atob(input: string): string {
  const s = String(input).replace(/[\t\n\f\r ]/g, '').replace(/=+$/, '')
  let out = ''
  let bits = 0, acc = 0
  for (const ch of s) {
    const code = ch.charCodeAt(0)
    const v = code < 128 ? B64_INDEX[code]! : -1
    if (v < 0) throw new Error('Invalid character in atob input')
    acc = (acc << 6) | v
    bits += 6
    if (bits >= 8) {
      bits -= 8
      out += String.fromCharCode((acc >> bits) & 255)
    }
  }
  return out
}
