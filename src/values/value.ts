/**
 * Convex values and their JSON wire form ("convex_encoded_json"): `$integer`, `$float`, `$bytes`,
 * plus the runtime-only `$undefined` / `$commitTs` sentinels. Formats follow convex/values
 * `convexToJson`/`jsonToConvex`; decode errors follow the Rust backend (crates/value/src/json/mod.rs,
 * crates/convex/sync_types/src/identifier.rs).
 * @module
 */

/** A Convex value: int64 is `bigint`, float64 is `number`, bytes are an `ArrayBuffer`. */
export type Value = null | boolean | number | bigint | string | ArrayBuffer | Value[] | { [k: string]: Value }

/** A JSON value as produced by `JSON.parse`. */
export type JSONValue = null | boolean | number | string | JSONValue[] | { [k: string]: JSONValue }

/** Sentinel for `{"$undefined": null}` (a missing field in patches, filters and index ranges). */
export const UNDEFINED: unique symbol = Symbol('concave.undefined')

/** Sentinel for `{"$commitTs": null}` (`db.vars.commitTs`, becomes an int64 at commit; sorts as max int64). */
export const COMMIT_TS: unique symbol = Symbol('concave.commitTs')

/** A value that may also contain the runtime-only sentinels. */
export type ExtendedValue =
  | Value
  | typeof UNDEFINED
  | typeof COMMIT_TS
  | ExtendedValue[]
  | { [k: string]: ExtendedValue }

/** Thrown for malformed encoded values. */
export class ValueError extends Error {
  override name = 'ValueError'
}

/** The largest int64. */
export const MAX_INT64 = 0x7fffffffffffffffn
/** The smallest int64. */
export const MIN_INT64 = -0x8000000000000000n
/** Maximum field-name length (crates/convex/sync_types/src/identifier.rs `MAX_FIELD_NAME_LENGTH`). */
export const MAX_FIELD_NAME_LENGTH = 1024

// ---------------------------------------------------------------------------------------------
// base64

const BASE64_RE = /^[A-Za-z0-9+/_-]*={0,2}$/

/** Standard base64 with `=` padding. */
export function base64Encode(bytes: Uint8Array | ArrayBuffer): string {
  const b = bytes instanceof ArrayBuffer ? Buffer.from(bytes) : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  return b.toString('base64')
}

/** Decodes base64 (standard or URL-safe alphabet, padding optional); throws `ValueError` if malformed. */
export function base64Decode(s: string): Buffer {
  const n = s.length
  const pad = n > 0 && s.charCodeAt(n - 1) === 61 ? (n > 1 && s.charCodeAt(n - 2) === 61 ? 2 : 1) : 0
  const ok = BASE64_RE.test(s) && (pad === 0 ? n % 4 !== 1 : n % 4 === 0)
  if (!ok) throw new ValueError(`Invalid base64 string ${JSON.stringify(s.length > 64 ? s.slice(0, 64) + '…' : s)}`)
  return Buffer.from(s, 'base64')
}

/** Copies (if needed) a Buffer's bytes into a standalone ArrayBuffer. */
export function toArrayBuffer(b: Uint8Array): ArrayBuffer {
  if (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.buffer instanceof ArrayBuffer) return b.buffer
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer
}

const scratch = Buffer.alloc(8)

function eightBytes(s: unknown, what: string): Buffer {
  if (typeof s !== 'string') throw new ValueError(`Malformed ${what === 'Int64' ? '$integer' : '$float'}: expected a base64 string`)
  const b = base64Decode(s)
  if (b.length !== 8) throw new ValueError(`${what} must be exactly eight bytes`)
  return b
}

// ---------------------------------------------------------------------------------------------
// timestamps (sync protocol / query_ts): base64 of u64 little-endian, not `$integer`-wrapped

/** Encodes a u64 timestamp as base64 of 8 little-endian bytes. */
export function encodeTs(ts: bigint): string {
  if (ts < 0n || ts > 0xffffffffffffffffn) throw new ValueError(`Timestamp ${ts} is out of range for u64`)
  scratch.writeBigUInt64LE(ts, 0)
  return scratch.toString('base64', 0, 8)
}

/** Decodes a base64 u64 little-endian timestamp; throws `ValueError` if malformed. */
export function decodeTs(s: string): bigint {
  if (typeof s !== 'string') throw new ValueError('Timestamp must be a base64 string')
  const b = base64Decode(s)
  if (b.length !== 8) throw new ValueError(`Timestamp must be exactly eight bytes, got ${b.length}`)
  return b.readBigUInt64LE(0)
}

// ---------------------------------------------------------------------------------------------
// field names

/** Returns the backend's error for an invalid object field name, or null (identifier.rs `check_valid_field_name`). */
export function fieldNameError(k: string): string | null {
  const n = k.length
  let ok = n <= MAX_FIELD_NAME_LENGTH && (n === 0 || k.charCodeAt(0) !== 36)
  if (ok) {
    for (let i = 0; i < n; i++) {
      const c = k.charCodeAt(i)
      if (c < 32 || c > 126) {
        ok = false
        break
      }
    }
    if (ok) return null
  }
  if (k.charCodeAt(0) === 36) return `Field name ${k} starts with '$', which is reserved.`
  for (const ch of k) {
    const c = ch.codePointAt(0)!
    if (c < 32 || c > 126) {
      return `Field name ${k} has invalid character ${rustCharDebug(c)}: Field names can only contain non-control ASCII characters`
    }
  }
  return `Field name is too long (${n} > maximum ${MAX_FIELD_NAME_LENGTH})`
}

/** Identifiers (table names): crates/convex/sync_types/src/identifier.rs `MAX_IDENTIFIER_LEN`. */
export const MAX_IDENTIFIER_LENGTH = 64

/**
 * Returns the backend's error for a string that is not an identifier (a table name), or null
 * (identifier.rs `check_valid_identifier`: a letter or `_` first, then letters, digits and `_`,
 * not only underscores, at most 64 bytes).
 */
export function identifierError(s: string): string | null {
  if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(s) && s.length <= MAX_IDENTIFIER_LENGTH && /[A-Za-z0-9]/.test(s)) return null
  const chars = [...s]
  if (chars.length === 0) return 'Identifier cannot be empty'
  if (!/^[A-Za-z_]$/.test(chars[0]!)) return `Invalid first character ${rustCharDebug(chars[0]!.codePointAt(0)!)} in ${s}: Identifiers must start with an alphabetic character or underscore`
  for (const ch of chars.slice(1)) {
    if (!/^[A-Za-z0-9_]$/.test(ch)) return `Identifier ${s} has invalid character ${rustCharDebug(ch.codePointAt(0)!)}: Identifiers can only contain alphanumeric characters or underscores`
  }
  if (s.length > MAX_IDENTIFIER_LENGTH) return `Identifier is too long (${s.length} > maximum ${MAX_IDENTIFIER_LENGTH})`
  return `Identifier ${s} cannot have exclusively underscores`
}

/** Rust's `{:?}` for a char: `'x'`, with `\n`-style and `\u{..}` escapes (approximates Rust's printable table). */
export function rustCharDebug(cp: number): string {
  switch (cp) {
    case 0: return "'\\0'"
    case 9: return "'\\t'"
    case 10: return "'\\n'"
    case 13: return "'\\r'"
    case 32: return "' '"
    case 39: return "'\\''"
    case 92: return "'\\\\'"
  }
  const ch = String.fromCodePoint(cp)
  return NON_PRINTABLE.test(ch) ? `'\\u{${cp.toString(16)}}'` : `'${ch}'`
}

/** Characters Rust's Debug escapes as `\u{..}`: categories Cc Cf Cs Co Cn Zl Zp Zs (except ' ') and Grapheme_Extend. */
export const NON_PRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}\p{Grapheme_Extend}]/u

// ---------------------------------------------------------------------------------------------
// JSON -> Value

/** Decodes Convex encoded JSON into a value; throws `ValueError` on malformed input. */
export function jsonToValue(json: JSONValue): Value {
  return decode(json, 'none', 0) as Value
}

/**
 * Decodes a document's fields as written by a mutation: `{"$commitTs":null}` (`db.vars.commitTs`)
 * is allowed (→ `COMMIT_TS`, replaced by the commit timestamp when it commits), `$undefined` isn't.
 */
export function jsonToDocumentValue(json: JSONValue): Value {
  return decode(json, 'commitTs', 0) as Value
}

/** Which sentinels a decode accepts. */
type Extensions = 'none' | 'commitTs' | 'all'

/** Like `jsonToValue`, but also accepts `{"$undefined":null}` → `UNDEFINED` and `{"$commitTs":null}` → `COMMIT_TS`. */
export function jsonToValueAllowUndefined(json: JSONValue): ExtendedValue {
  return decode(json, 'all', 0)
}

/** Maximum nesting of arrays/objects (crates/value/src/size.rs `MAX_NESTING`); also bounds recursion. */
export const MAX_VALUE_NESTING = 64

function decode(j: unknown, ext: Extensions, depth: number): ExtendedValue {
  switch (typeof j) {
    case 'string':
    case 'boolean':
    case 'number':
      return j
    case 'object': {
      if (j === null) return null
      if (++depth > MAX_VALUE_NESTING) {
        throw new ValueError(`Value is too nested (nested ${depth} levels deep > maximum nesting ${MAX_VALUE_NESTING})`)
      }
      if (Array.isArray(j)) {
        const out: ExtendedValue[] = new Array(j.length)
        for (let i = 0; i < j.length; i++) out[i] = decode(j[i], ext, depth)
        return out
      }
      return decodeObject(j as Record<string, unknown>, ext, depth)
    }
    default:
      throw new ValueError(`Unexpected type of ${String(j)} in an encoded Convex value`)
  }
}

function decodeObject(j: Record<string, unknown>, ext: Extensions, depth: number): ExtendedValue {
  const out: Record<string, ExtendedValue> = {}
  for (const k in j) {
    if (k.charCodeAt(0) === 36 && isSoleKey(j)) return decodeSpecial(k, j[k], ext)
    const err = fieldNameError(k)
    if (err !== null) throw new ValueError(err)
    setField(out, k, decode(j[k], ext, depth))
  }
  return out
}

function isSoleKey(j: object): boolean {
  let n = 0
  for (const _ in j) if (++n > 1) return false
  return true
}

function decodeSpecial(k: string, v: unknown, ext: Extensions): ExtendedValue {
  switch (k) {
    case '$integer':
      return eightBytes(v, 'Int64').readBigInt64LE(0)
    case '$float': {
      const f = eightBytes(v, 'Float64').readDoubleLE(0)
      // Only NaN, ±Infinity and -0 may be encoded as `$float` (+0 is tolerated, as in the backend).
      if (f === f && f !== 0 && f !== Infinity && f !== -Infinity) {
        throw new ValueError(`Float64 ${f} should be encoded as a number`)
      }
      return f
    }
    case '$bytes':
      if (typeof v !== 'string') throw new ValueError('Malformed $bytes: expected a base64 string')
      return toArrayBuffer(base64Decode(v))
    case '$undefined':
      if (ext === 'all') {
        if (v !== null) throw new ValueError('Malformed $undefined: expected null')
        return UNDEFINED
      }
      break
    case '$commitTs':
      if (ext !== 'none') {
        if (v !== null) throw new ValueError('Malformed $commitTs: expected null')
        return COMMIT_TS
      }
      break
  }
  throw new ValueError(fieldNameError(k)!)
}

/** Sets `o[k] = v`, defining an own property for `__proto__` instead of changing the prototype. */
export function setField<T>(o: Record<string, T>, k: string, v: T): void {
  if (k === '__proto__') Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true })
  else o[k] = v
}

/**
 * `v` with every object's fields in sorted order, as Convex keeps them (its objects are ordered
 * maps: a document reads back as `{ _creationTime, _id, …fields sorted }`). Objects already in
 * order are kept as they are.
 */
export function inFieldOrder<T extends JSONValue>(v: T): T {
  if (typeof v !== 'object' || v === null) return v
  if (Array.isArray(v)) {
    let out: JSONValue[] | null = null
    for (let i = 0; i < v.length; i++) {
      const x = inFieldOrder(v[i]!)
      if (x !== v[i]) (out ??= v.slice())[i] = x
    }
    return (out ?? v) as T
  }
  const o = v as Record<string, JSONValue>
  const keys = Object.keys(o)
  let ordered = true
  for (let i = 1; i < keys.length; i++) {
    // (Integer-like names come first, by number, in any JavaScript object: no order changes that.)
    if (keys[i - 1]! > keys[i]! && !(isIndexName(keys[i - 1]!) && isIndexName(keys[i]!))) {
      ordered = false
      break
    }
  }
  let changed = !ordered
  const values: JSONValue[] = new Array(keys.length)
  for (let i = 0; i < keys.length; i++) {
    const x = o[keys[i]!]!
    values[i] = inFieldOrder(x)
    if (values[i] !== x) changed = true
  }
  if (!changed) return v
  const order = ordered ? keys.map((_, i) => i) : keys.map((_, i) => i).sort((a, b) => (keys[a]! < keys[b]! ? -1 : 1))
  const out: Record<string, JSONValue> = {}
  for (const i of order) setField(out, keys[i]!, values[i]!)
  return out as T
}

/** Whether JavaScript lists the property `k` among an object's integer keys (an array index). */
function isIndexName(k: string): boolean {
  return /^(?:0|[1-9]\d{0,9})$/.test(k) && Number(k) < 4294967295
}

/**
 * JSON text with every object's fields in sorted order (see `inFieldOrder`): a function's
 * arguments and its return value, as Convex passes them. Text that can't hold an object of two
 * fields, or whose objects are in order already, is returned as it is.
 */
export function inFieldOrderText(json: string): string {
  if (!json.includes(',') || !json.includes('{')) return json
  const parsed = JSON.parse(json) as JSONValue
  const ordered = inFieldOrder(parsed)
  return ordered === parsed ? json : JSON.stringify(ordered)
}

// ---------------------------------------------------------------------------------------------
// Value -> JSON

/** True for the floats that must be sent as `$float`: NaN, ±Infinity and -0. */
export function isSpecialFloat(n: number): boolean {
  return n !== n || n === Infinity || n === -Infinity || (n === 0 && 1 / n < 0)
}

/** Encodes a value as Convex encoded JSON (keys sorted; `undefined` fields dropped; sentinels as `$undefined`/`$commitTs`). */
export function valueToJson(v: ExtendedValue): JSONValue {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return v
    case 'number':
      if (!isSpecialFloat(v)) return v
      scratch.writeDoubleLE(v, 0)
      return { $float: scratch.toString('base64', 0, 8) }
    case 'bigint':
      if (v < MIN_INT64 || v > MAX_INT64) throw new ValueError(`BigInt ${v} does not fit into a 64-bit signed integer.`)
      scratch.writeBigInt64LE(v, 0)
      return { $integer: scratch.toString('base64', 0, 8) }
    case 'symbol':
      if (v === UNDEFINED) return { $undefined: null }
      if (v === COMMIT_TS) return { $commitTs: null }
      break
    case 'object': {
      if (v === null) return null
      if (Array.isArray(v)) {
        const out: JSONValue[] = new Array(v.length)
        for (let i = 0; i < v.length; i++) {
          if (v[i] === undefined) throw new ValueError('undefined is not a valid Convex value (in an array)')
          out[i] = valueToJson(v[i]!)
        }
        return out
      }
      if (v instanceof ArrayBuffer) return { $bytes: Buffer.from(v).toString('base64') }
      const proto = Object.getPrototypeOf(v)
      if (proto !== Object.prototype && proto !== null) break
      const keys = Object.keys(v).sort()
      const out: Record<string, JSONValue> = {}
      for (const k of keys) {
        const x = (v as Record<string, ExtendedValue | undefined>)[k]
        if (x !== undefined) setField(out, k, valueToJson(x))
      }
      return out
    }
  }
  const name = typeof v === 'object' ? `${(v as object).constructor?.name ?? 'Object'} ` : ''
  throw new ValueError(`${name}${String(v)} is not a supported Convex type.`)
}
