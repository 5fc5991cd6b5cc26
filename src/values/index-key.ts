/**
 * Order-preserving index keys: the backend's sort-key encoding (crates/value/src/sorting.rs,
 * after FoundationDB's tuple layer), so `Buffer.compare` on keys agrees with `compareValues`
 * element-wise on the tuples, a tuple that is a prefix of another sorting first.
 *
 * Per value: a tag byte, then
 * - undefined 0x01 · null 0x03 · false 0x0E · true 0x0F (no payload)
 * - int64: tags 0x04..0x0C by sign and width (0x08 = zero), then 1/2/4/8 big-endian two's-complement bytes
 * - float64 0x0D: 8 big-endian bytes of the bits, all flipped if negative, else sign bit set
 * - string 0x10 / bytes 0x11: the (UTF-8) bytes with 0x00 escaped as 0x00 0xFF, then 0x00
 * - array 0x12: elements, then 0x00 · object 0x15: per sorted field, escaped name (+0xFF if empty) and value, then 0x00
 * Tags are < 0xFF, so `key ‖ 0xFF` bounds every tuple extending `key` (see `prefixSuccessor`).
 * @module
 */
import { sortedFields } from './compare.ts'
import { COMMIT_TS, MAX_INT64, MIN_INT64, UNDEFINED, ValueError, toArrayBuffer, type ExtendedValue, type Value } from './value.ts'

const UNDEFINED_TAG = 0x01
const NULL_TAG = 0x03
const ZERO_INT_TAG = 0x08
const FLOAT_TAG = 0x0d
const FALSE_TAG = 0x0e
const TRUE_TAG = 0x0f
const STRING_TAG = 0x10
const BYTES_TAG = 0x11
const ARRAY_TAG = 0x12
const OBJECT_TAG = 0x15
const TERMINATOR = 0x00
const ESCAPE = 0xff

let buf = new Uint8Array(1024)
let view = new DataView(buf.buffer)
let pos = 0

function ensure(n: number): void {
  if (pos + n <= buf.length) return
  let size = buf.length * 2
  while (size < pos + n) size *= 2
  const next = new Uint8Array(size)
  next.set(buf.subarray(0, pos))
  buf = next
  view = new DataView(buf.buffer)
}

/** Encodes a tuple of values (top-level `undefined`/`UNDEFINED` = missing field) as an order-preserving key. */
export function encodeIndexKey(values: readonly (ExtendedValue | undefined)[]): Buffer {
  pos = 0
  for (let i = 0; i < values.length; i++) writeValue(values[i], true)
  return Buffer.from(buf.subarray(0, pos))
}

/** Smallest key greater than every key for a tuple extending the tuple encoded by `key` (`key ‖ 0xFF`). */
export function prefixSuccessor(key: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(key.length + 1)
  out.set(key)
  out[key.length] = ESCAPE
  return out
}

/** Smallest byte string greater than every byte string starting with `key` (the backend's `BinaryKey::increment`); null if none. */
export function bytesSuccessor(key: Uint8Array): Buffer | null {
  let n = key.length
  while (n > 0 && key[n - 1] === 0xff) n--
  if (n === 0) return null
  const out = Buffer.from(key.subarray(0, n))
  out[n - 1]!++
  return out
}

function writeValue(v: ExtendedValue | undefined, top: boolean): void {
  ensure(9)
  switch (typeof v) {
    case 'undefined':
      if (!top) throw new ValueError('undefined is not a valid Convex value')
      buf[pos++] = UNDEFINED_TAG
      return
    case 'symbol':
      if (v === COMMIT_TS) return writeInt(MAX_INT64)
      if (v === UNDEFINED && top) {
        buf[pos++] = UNDEFINED_TAG
        return
      }
      throw new ValueError('undefined is not a valid Convex value')
    case 'bigint':
      return writeInt(v)
    case 'number': {
      buf[pos++] = FLOAT_TAG
      view.setFloat64(pos, v)
      const hi = view.getUint32(pos)
      if (hi & 0x80000000) {
        view.setUint32(pos, ~hi)
        view.setUint32(pos + 4, ~view.getUint32(pos + 4))
      } else {
        view.setUint32(pos, hi | 0x80000000)
      }
      pos += 8
      return
    }
    case 'boolean':
      buf[pos++] = v ? TRUE_TAG : FALSE_TAG
      return
    case 'string':
      buf[pos++] = STRING_TAG
      return writeEscapedString(v)
  }
  if (v === null) {
    buf[pos++] = NULL_TAG
    return
  }
  if (v instanceof ArrayBuffer) {
    buf[pos++] = BYTES_TAG
    return writeEscapedBytes(new Uint8Array(v))
  }
  if (Array.isArray(v)) {
    buf[pos++] = ARRAY_TAG
    for (let i = 0; i < v.length; i++) writeValue(v[i], false)
    ensure(1)
    buf[pos++] = TERMINATOR
    return
  }
  const o = v as Record<string, ExtendedValue>
  buf[pos++] = OBJECT_TAG
  for (const k of sortedFields(o)) {
    writeEscapedString(k)
    if (k.length === 0) {
      ensure(1)
      buf[pos++] = ESCAPE
    }
    writeValue(o[k], false)
  }
  ensure(1)
  buf[pos++] = TERMINATOR
}

function writeInt(n: bigint): void {
  if (n === 0n) {
    buf[pos++] = ZERO_INT_TAG
    return
  }
  if (n < MIN_INT64 || n > MAX_INT64) throw new ValueError(`BigInt ${n} does not fit into a 64-bit signed integer.`)
  const neg = n < 0n
  if (n >= -0x80000000n && n <= 0x7fffffffn) {
    const x = Number(n)
    if (x >= -0x80 && x <= 0x7f) {
      buf[pos++] = neg ? ZERO_INT_TAG - 1 : ZERO_INT_TAG + 1
      buf[pos++] = x & 0xff
    } else if (x >= -0x8000 && x <= 0x7fff) {
      buf[pos++] = neg ? ZERO_INT_TAG - 2 : ZERO_INT_TAG + 2
      view.setInt16(pos, x)
      pos += 2
    } else {
      buf[pos++] = neg ? ZERO_INT_TAG - 3 : ZERO_INT_TAG + 3
      view.setInt32(pos, x)
      pos += 4
    }
    return
  }
  buf[pos++] = neg ? ZERO_INT_TAG - 4 : ZERO_INT_TAG + 4
  view.setBigInt64(pos, n)
  pos += 8
}

function writeEscapedString(s: string): void {
  const n = s.length
  ensure(n * 3 + 1)
  for (let i = 0; i < n; i++) {
    let c = s.charCodeAt(i)
    if (c < 0x80) {
      if (c === 0) {
        buf[pos++] = TERMINATOR
        buf[pos++] = ESCAPE
      } else buf[pos++] = c
    } else if (c < 0x800) {
      buf[pos++] = 0xc0 | (c >> 6)
      buf[pos++] = 0x80 | (c & 0x3f)
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const d = i + 1 < n ? s.charCodeAt(i + 1) : 0
      if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00)
        i++
        buf[pos++] = 0xf0 | (c >> 18)
        buf[pos++] = 0x80 | ((c >> 12) & 0x3f)
        buf[pos++] = 0x80 | ((c >> 6) & 0x3f)
        buf[pos++] = 0x80 | (c & 0x3f)
      } else {
        // lone surrogate → U+FFFD, as UTF-8 encoding does
        buf[pos++] = 0xef
        buf[pos++] = 0xbf
        buf[pos++] = 0xbd
      }
    } else {
      buf[pos++] = 0xe0 | (c >> 12)
      buf[pos++] = 0x80 | ((c >> 6) & 0x3f)
      buf[pos++] = 0x80 | (c & 0x3f)
    }
  }
  buf[pos++] = TERMINATOR
}

function writeEscapedBytes(b: Uint8Array): void {
  ensure(b.length * 2 + 1)
  let start = 0
  let z = b.indexOf(0)
  while (z !== -1) {
    buf.set(b.subarray(start, z + 1), pos)
    pos += z + 1 - start
    buf[pos++] = ESCAPE
    start = z + 1
    z = b.indexOf(0, start)
  }
  buf.set(b.subarray(start), pos)
  pos += b.length - start
  buf[pos++] = TERMINATOR
}

// ---------------------------------------------------------------------------------------------
// decoding (for debugging and cursors)

/** Decodes a key made by `encodeIndexKey`; missing fields come back as `undefined`. Throws `ValueError` if malformed. */
export function decodeIndexKey(key: Uint8Array): (Value | undefined)[] {
  const r = { key, pos: 0 }
  const out: (Value | undefined)[] = []
  while (r.pos < key.length) {
    if (key[r.pos] === UNDEFINED_TAG) {
      r.pos++
      out.push(undefined)
    } else out.push(readValue(r))
  }
  return out
}

type Reader = { key: Uint8Array; pos: number }

function need(r: Reader, n: number): void {
  if (r.pos + n > r.key.length) throw new ValueError('Truncated index key')
}

function readEscaped(r: Reader): Buffer {
  const parts: Uint8Array[] = []
  for (;;) {
    const z = r.key.indexOf(TERMINATOR, r.pos)
    if (z === -1) throw new ValueError('Unterminated string in index key')
    parts.push(r.key.subarray(r.pos, z))
    r.pos = z + 1
    if (r.key[r.pos] === ESCAPE) {
      parts.push(Uint8Array.of(0))
      r.pos++
    } else break
  }
  return Buffer.concat(parts)
}

function readValue(r: Reader): Value {
  need(r, 1)
  const tag = r.key[r.pos++]!
  const dv = new DataView(r.key.buffer, r.key.byteOffset, r.key.byteLength)
  switch (tag) {
    case NULL_TAG: return null
    case FALSE_TAG: return false
    case TRUE_TAG: return true
    case ZERO_INT_TAG: return 0n
    case FLOAT_TAG: {
      need(r, 8)
      let hi = dv.getUint32(r.pos)
      let lo = dv.getUint32(r.pos + 4)
      if (hi & 0x80000000) hi = (hi & 0x7fffffff) >>> 0
      else { hi = ~hi >>> 0; lo = ~lo >>> 0 }
      const tmp = new DataView(new ArrayBuffer(8))
      tmp.setUint32(0, hi)
      tmp.setUint32(4, lo)
      r.pos += 8
      return tmp.getFloat64(0)
    }
    case STRING_TAG: return readEscaped(r).toString('utf8')
    case BYTES_TAG: return toArrayBuffer(readEscaped(r))
    case ARRAY_TAG: {
      const items: Value[] = []
      while ((need(r, 1), r.key[r.pos]) !== TERMINATOR) items.push(readValue(r))
      r.pos++
      return items
    }
    case OBJECT_TAG: {
      const o: Record<string, Value> = {}
      for (;;) {
        need(r, 1)
        let field: string
        if (r.key[r.pos] === TERMINATOR) {
          if (r.key[r.pos + 1] !== ESCAPE) {
            r.pos++
            return o
          }
          r.pos += 2
          field = ''
        } else field = readEscaped(r).toString('latin1')
        const v = readValue(r)
        if (field === '__proto__') Object.defineProperty(o, field, { value: v, enumerable: true, writable: true, configurable: true })
        else o[field] = v
      }
    }
  }
  if (tag >= ZERO_INT_TAG - 4 && tag <= ZERO_INT_TAG + 4) {
    const width = 1 << (Math.abs(tag - ZERO_INT_TAG) - 1)
    need(r, width)
    const p = r.pos
    r.pos += width
    if (width === 1) return BigInt(dv.getInt8(p))
    if (width === 2) return BigInt(dv.getInt16(p))
    if (width === 4) return BigInt(dv.getInt32(p))
    return dv.getBigInt64(p)
  }
  throw new ValueError(`Unrecognized tag ${tag} in index key`)
}
