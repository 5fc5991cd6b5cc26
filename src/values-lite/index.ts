/**
 * @module Convex values on the host: encoded JSON, document ids, the total order, order-preserving
 * index keys, validators and size limits. A leaf module: imports nothing else of ours.
 */
import { randomBytes } from 'node:crypto'

export type Value = null | boolean | number | bigint | string | ArrayBuffer | Value[] | { [k: string]: Value }
export type JSONValue = null | boolean | number | string | JSONValue[] | { [k: string]: JSONValue }

export class ValueError extends Error {
  override name = 'ValueError'
}

/** `{"$undefined": null}` in patches, filters and index ranges. */
export const UNDEFINED: unique symbol = Symbol('undefined')
/** `{"$commitTs": null}`: the commit timestamp placeholder. */
export const COMMIT_TS: unique symbol = Symbol('commitTs')

// ── base64 ──
export function base64Encode(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')
}
export function base64Decode(s: string): Uint8Array {
  if (typeof s !== 'string' || s.length % 4 !== 0 || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(s)) throw new ValueError(`Invalid base64 string ${JSON.stringify(s)}`)
  return new Uint8Array(Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64'))
}

function isSpecialFloat(n: number): boolean {
  return Number.isNaN(n) || !Number.isFinite(n) || Object.is(n, -0)
}

export function validateFieldName(k: string): void {
  if (k.length > 1024) throw new ValueError(`Field name ${k.slice(0, 32)}... exceeds maximum field name length 1024.`)
  if (k.startsWith('$')) throw new ValueError(`Field name ${k} starts with a '$', which is reserved.`)
  for (let i = 0; i < k.length; i++) {
    const c = k.charCodeAt(i)
    if (c < 32 || c >= 127) throw new ValueError(`Field name ${k} has invalid character '${k[i]}': Field names can only contain non-control ASCII characters`)
  }
}

function decode(json: JSONValue, allowUndefined: boolean, top: boolean): Value | typeof UNDEFINED | typeof COMMIT_TS {
  if (json === null || typeof json === 'boolean' || typeof json === 'string') return json
  if (typeof json === 'number') return json
  if (Array.isArray(json)) return json.map((x) => decode(x, false, false) as Value)
  if (typeof json !== 'object') throw new ValueError(`Unexpected type of ${typeof json}`)
  const keys = Object.keys(json)
  if (keys.length === 1) {
    const k = keys[0]!
    const v = json[k]
    if (k === '$bytes') return base64Decode(v as string).slice().buffer as ArrayBuffer
    if (k === '$integer') {
      const b = base64Decode(v as string)
      if (b.length !== 8) throw new ValueError(`Received ${b.length} bytes, expected 8 for $integer`)
      return new DataView(b.buffer, b.byteOffset, 8).getBigInt64(0, true)
    }
    if (k === '$float') {
      const b = base64Decode(v as string)
      if (b.length !== 8) throw new ValueError(`Received ${b.length} bytes, expected 8 for $float`)
      const f = new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, true)
      if (!isSpecialFloat(f)) throw new ValueError(`Float ${f} should be encoded as a number`)
      return f
    }
    if (k === '$undefined' && allowUndefined) return UNDEFINED
    if (k === '$commitTs') return COMMIT_TS
  }
  void top
  const out: Record<string, Value> = {}
  for (const k of keys) {
    validateFieldName(k)
    out[k] = decode(json[k]!, false, false) as Value
  }
  return out
}

/** Convex-encoded JSON → value. Throws ValueError on malformed input. */
export function jsonToValue(json: JSONValue): Value {
  const v = decode(json, false, true)
  if (v === COMMIT_TS || v === UNDEFINED) throw new ValueError('Unexpected placeholder value')
  return v
}

/** Like jsonToValue, but `{"$undefined":null}` decodes to UNDEFINED and `$commitTs` to COMMIT_TS. */
export function jsonToValueAllowUndefined(json: JSONValue): Value | typeof UNDEFINED | typeof COMMIT_TS {
  return decode(json, true, true)
}

function eightBytes(write: (d: DataView) => void): string {
  const b = new Uint8Array(8)
  write(new DataView(b.buffer))
  return base64Encode(b)
}

/** Value → Convex-encoded JSON (keys sorted). */
export function valueToJson(v: Value): JSONValue {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v
  if (typeof v === 'number') return isSpecialFloat(v) ? { $float: eightBytes((d) => d.setFloat64(0, v, true)) } : v
  if (typeof v === 'bigint') return { $integer: eightBytes((d) => d.setBigInt64(0, v, true)) }
  if (v instanceof ArrayBuffer) return { $bytes: base64Encode(new Uint8Array(v)) }
  if (Array.isArray(v)) return v.map(valueToJson)
  const out: Record<string, JSONValue> = {}
  for (const k of Object.keys(v).sort()) out[k] = valueToJson(v[k]!)
  return out
}

// ── timestamps: base64 of little-endian u64 ──
export function encodeTs(ts: bigint): string {
  return eightBytes((d) => d.setBigUint64(0, ts, true))
}
export function decodeTs(s: string): bigint {
  const b = base64Decode(s)
  if (b.length !== 8) throw new ValueError('Wrong number of bytes for SerializedTs.')
  return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true)
}

// ── ids (id v6): VInt(table) ‖ 16 bytes ‖ fletcher16 footer, base32 (Crockford, lowercase) ──
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz'
const DECODE = new Map([...ALPHABET].map((c, i) => [c, i]))

function fletcher16(bytes: Uint8Array, n: number): number {
  let c0 = 0, c1 = 0
  for (let i = 0; i < n; i++) {
    c0 = (c0 + bytes[i]!) % 255
    c1 = (c1 + c0) % 255
  }
  return (c1 << 8) | c0
}

function base32(bytes: Uint8Array): string {
  let out = '', acc = 0, bits = 0
  for (const b of bytes) {
    acc = (acc << 8) | b
    bits += 8
    while (bits >= 5) {
      bits -= 5
      out += ALPHABET[(acc >> bits) & 31]
    }
    acc &= (1 << bits) - 1
  }
  if (bits > 0) out += ALPHABET[(acc << (5 - bits)) & 31]
  return out
}

export function newInternalId(): Uint8Array {
  return new Uint8Array(randomBytes(16))
}

export function encodeId(tableNumber: number, internalId: Uint8Array): string {
  const bytes: number[] = []
  let n = tableNumber
  do {
    let b = n & 0x7f
    n = Math.floor(n / 128)
    if (n > 0) b |= 0x80
    bytes.push(b)
  } while (n > 0)
  bytes.push(...internalId)
  const arr = new Uint8Array(bytes.length + 2)
  arr.set(bytes)
  const footer = fletcher16(arr, bytes.length)
  arr[bytes.length] = footer & 0xff
  arr[bytes.length + 1] = footer >> 8
  return base32(arr)
}

export function decodeId(s: string): { tableNumber: number; internalId: Uint8Array } | null {
  if (typeof s !== 'string' || s.length < 31 || s.length > 37) return null
  const bytes: number[] = []
  let acc = 0, bits = 0
  for (const ch of s) {
    const v = DECODE.get(ch)
    if (v === undefined) return null
    acc = (acc << 5) | v
    bits += 5
    if (bits >= 8) {
      bits -= 8
      bytes.push((acc >> bits) & 0xff)
    }
    acc &= (1 << bits) - 1
  }
  if (acc !== 0) return null
  const arr = Uint8Array.from(bytes)
  let table = 0, i = 0, shift = 1
  for (;;) {
    if (i >= arr.length || i > 4) return null
    const b = arr[i++]!
    table += (b & 0x7f) * shift
    shift *= 128
    if ((b & 0x80) === 0) break
  }
  if (table === 0 || arr.length !== i + 18) return null
  const footer = arr[i + 16]! | (arr[i + 17]! << 8)
  if (footer !== fletcher16(arr, i + 16)) return null
  return { tableNumber: table, internalId: arr.slice(i, i + 16) }
}

// ── total order: undefined < null < int64 < float64 < boolean < string < bytes < array < object ──
function rank(v: Value | undefined): number {
  if (v === undefined) return 0
  if (v === null) return 1
  switch (typeof v) {
    case 'bigint': return 2
    case 'number': return 3
    case 'boolean': return 4
    case 'string': return 5
  }
  if (v instanceof ArrayBuffer) return 6
  return Array.isArray(v) ? 7 : 8
}

function floatKey(f: number): bigint {
  const d = new DataView(new ArrayBuffer(8))
  d.setFloat64(0, f)
  const bits = d.getBigUint64(0)
  return bits & (1n << 63n) ? ~bits & 0xffffffffffffffffn : bits | (1n << 63n)
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b)
}

export function compareValues(a: Value | undefined, b: Value | undefined): number {
  const ra = rank(a), rb = rank(b)
  if (ra !== rb) return ra < rb ? -1 : 1
  switch (ra) {
    case 0: case 1: return 0
    case 2: return (a as bigint) < (b as bigint) ? -1 : (a as bigint) > (b as bigint) ? 1 : 0
    case 3: { const x = floatKey(a as number), y = floatKey(b as number); return x < y ? -1 : x > y ? 1 : 0 }
    case 4: return a === b ? 0 : a ? 1 : -1
    case 5: return compareBytes(Buffer.from(a as string, 'utf8'), Buffer.from(b as string, 'utf8'))
    case 6: return compareBytes(new Uint8Array(a as ArrayBuffer), new Uint8Array(b as ArrayBuffer))
    case 7: {
      const x = a as Value[], y = b as Value[]
      for (let i = 0; i < Math.min(x.length, y.length); i++) {
        const c = compareValues(x[i], y[i])
        if (c !== 0) return c
      }
      return x.length - y.length === 0 ? 0 : x.length < y.length ? -1 : 1
    }
    default: {
      const x = Object.entries(a as Record<string, Value>).sort(([p], [q]) => (p < q ? -1 : p > q ? 1 : 0))
      const y = Object.entries(b as Record<string, Value>).sort(([p], [q]) => (p < q ? -1 : p > q ? 1 : 0))
      for (let i = 0; i < Math.min(x.length, y.length); i++) {
        const k = compareValues(x[i]![0], y[i]![0]) || compareValues(x[i]![1], y[i]![1])
        if (k !== 0) return k
      }
      return x.length === y.length ? 0 : x.length < y.length ? -1 : 1
    }
  }
}

// ── order-preserving index keys: a tag byte per value, escaped variable-length payloads ──
const END = 0x00

function escaped(bytes: Uint8Array, out: number[]): void {
  for (const b of bytes) {
    out.push(b)
    if (b === 0) out.push(0xff)
  }
  out.push(0, 0)
}

function encodeInto(v: Value | undefined, out: number[]): void {
  const tag = rank(v) + 1
  out.push(tag)
  switch (tag - 1) {
    case 0: case 1: return
    case 2: {
      const d = new DataView(new ArrayBuffer(8))
      d.setBigUint64(0, BigInt.asUintN(64, (v as bigint) + (1n << 63n)))
      out.push(...new Uint8Array(d.buffer))
      return
    }
    case 3: {
      const d = new DataView(new ArrayBuffer(8))
      d.setBigUint64(0, floatKey(v as number))
      out.push(...new Uint8Array(d.buffer))
      return
    }
    case 4: out.push(v ? 1 : 0); return
    case 5: escaped(Buffer.from(v as string, 'utf8'), out); return
    case 6: escaped(new Uint8Array(v as ArrayBuffer), out); return
    case 7:
      for (const x of v as Value[]) encodeInto(x, out)
      out.push(END)
      return
    default:
      for (const [k, x] of Object.entries(v as Record<string, Value>).sort(([p], [q]) => compareValues(p, q))) {
        encodeInto(k, out)
        encodeInto(x, out)
      }
      out.push(END)
  }
}

/** Bytes whose memcmp order matches compareValues element-wise (tuple prefixes sort first). */
export function encodeIndexKey(values: (Value | undefined)[]): Buffer {
  const out: number[] = []
  for (const v of values) encodeInto(v, out)
  return Buffer.from(out)
}

/** The smallest key greater than every key starting with `key` (null if none exists). */
export function prefixSuccessor(key: Buffer): Buffer | null {
  const out = Buffer.from(key)
  for (let i = out.length - 1; i >= 0; i--) {
    if (out[i]! < 0xff) {
      out[i]!++
      return out.subarray(0, i + 1)
    }
  }
  return null
}

// ── validators (the JSON grammar `exportArgs()` and schemas produce) ──
export type ValidatorJSON =
  | { type: 'null' | 'number' | 'bigint' | 'boolean' | 'string' | 'bytes' | 'any' | 'commitTs' }
  | { type: 'literal'; value: JSONValue }
  | { type: 'id'; tableName: string }
  | { type: 'array'; value: ValidatorJSON }
  | { type: 'record'; keys: ValidatorJSON; values: { fieldType: ValidatorJSON; optional: boolean } }
  | { type: 'object'; value: Record<string, { fieldType: ValidatorJSON; optional: boolean }> }
  | { type: 'union'; value: ValidatorJSON[] }

export interface ValidationContext {
  tableNumberForName(name: string): number | undefined
}

/** How Convex prints a value in validation errors: floats with `.0`, strings quoted. */
export function displayValue(v: Value | undefined): string {
  if (v === undefined) return 'undefined'
  if (v === null) return 'null'
  if (typeof v === 'number') return Number.isInteger(v) && !Object.is(v, -0) ? `${v}.0` : String(v)
  if (typeof v === 'bigint') return `${v}n`
  if (typeof v === 'string') return JSON.stringify(v)
  if (typeof v === 'boolean') return String(v)
  if (v instanceof ArrayBuffer) return `b"${Buffer.from(v).toString('hex')}"`
  if (Array.isArray(v)) return `[${v.map(displayValue).join(', ')}]`
  return `{${Object.entries(v).map(([k, x]) => `${k}: ${displayValue(x)}`).join(', ')}}`
}

export function displayValidator(v: ValidatorJSON): string {
  switch (v.type) {
    case 'null': return 'v.null()'
    case 'number': return 'v.float64()'
    case 'bigint': return 'v.int64()'
    case 'boolean': return 'v.boolean()'
    case 'string': return 'v.string()'
    case 'bytes': return 'v.bytes()'
    case 'any': return 'v.any()'
    case 'commitTs': return 'v.commitTs()'
    case 'literal': return `v.literal(${displayValue(jsonToValue(v.value))})`
    case 'id': return `v.id("${v.tableName}")`
    case 'array': return `v.array(${displayValidator(v.value)})`
    case 'record': return `v.record(${displayValidator(v.keys)}, ${displayValidator(v.values.fieldType)})`
    case 'union': return `v.union(${v.value.map(displayValidator).join(', ')})`
    case 'object':
      return `v.object({${Object.entries(v.value).map(([k, f]) => `${k}: ${f.optional ? `v.optional(${displayValidator(f.fieldType)})` : displayValidator(f.fieldType)}`).join(', ')}})`
  }
}

function mismatch(path: string, value: Value | undefined, validator: ValidatorJSON): string {
  return `Value does not match validator.\nPath: ${path === '' ? '.' : path}\nValue: ${displayValue(value)}\nValidator: ${displayValidator(validator)}`
}

function check(validator: ValidatorJSON, value: Value | undefined, path: string, ctx: ValidationContext): string | null {
  switch (validator.type) {
    case 'any': return value === undefined ? mismatch(path, value, validator) : null
    case 'null': return value === null ? null : mismatch(path, value, validator)
    case 'number': return typeof value === 'number' ? null : mismatch(path, value, validator)
    case 'bigint': return typeof value === 'bigint' ? null : mismatch(path, value, validator)
    case 'boolean': return typeof value === 'boolean' ? null : mismatch(path, value, validator)
    case 'string': return typeof value === 'string' ? null : mismatch(path, value, validator)
    case 'bytes': return value instanceof ArrayBuffer ? null : mismatch(path, value, validator)
    case 'commitTs': return typeof value === 'bigint' ? null : mismatch(path, value, validator)
    case 'literal': {
      const lit = jsonToValue(validator.value)
      return value !== undefined && rank(value) === rank(lit) && compareValues(value, lit) === 0 ? null : mismatch(path, value, validator)
    }
    case 'id': {
      if (typeof value !== 'string') return mismatch(path, value, validator)
      const decoded = decodeId(value)
      if (decoded === null) return mismatch(path, value, validator)
      const expected = ctx.tableNumberForName(validator.tableName)
      if (expected !== decoded.tableNumber) return `Found ID "${value}" from a table other than \`${validator.tableName}\`, which does not match the table name in validator \`v.id("${validator.tableName}")\`.${path === '' ? '' : `\nPath: ${path}`}`
      return null
    }
    case 'array': {
      if (!Array.isArray(value)) return mismatch(path, value, validator)
      for (let i = 0; i < value.length; i++) {
        const e = check(validator.value, value[i], `${path}[${i}]`, ctx)
        if (e !== null) return e
      }
      return null
    }
    case 'union':
      return validator.value.some((v) => check(v, value, path, ctx) === null) ? null : mismatch(path, value, validator)
    case 'record': {
      if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof ArrayBuffer) return mismatch(path, value, validator)
      for (const [k, x] of Object.entries(value)) {
        if (check(validator.keys, k, `${path}.${k}`, ctx) !== null) return mismatch(path, value, validator)
        const e = check(validator.values.fieldType, x, `${path}.${k}`, ctx)
        if (e !== null) return e
      }
      return null
    }
    case 'object': {
      if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof ArrayBuffer) return mismatch(path, value, validator)
      for (const [k, f] of Object.entries(validator.value)) {
        const x = value[k]
        if (x === undefined) {
          if (f.optional) continue
          return `Object is missing the required field \`${k}\`. Consider wrapping the field validator in \`v.optional(...)\` if this is expected.\n${path === '' ? '' : `Path: ${path}\n`}Object: ${displayValue(value)}\nValidator: ${displayValidator(validator)}`
        }
        const e = check(f.fieldType, x, `${path}.${k}`, ctx)
        if (e !== null) return e
      }
      for (const k of Object.keys(value)) {
        if (!(k in validator.value)) return `Object contains extra field \`${k}\` that is not in the validator.\n${path === '' ? '' : `Path: ${path}\n`}Object: ${displayValue(value)}\nValidator: ${displayValidator(validator)}`
      }
      return null
    }
  }
}

/** null if `value` matches, else Convex's message for the first mismatch. */
export function validateValue(validator: ValidatorJSON, value: Value | undefined, ctx: ValidationContext): string | null {
  return check(validator, value, '', ctx)
}

// ── size and limits ──
/** Maximum size of a document (1 MiB). */
export const MAX_DOCUMENT_SIZE = 1 << 20
/** Maximum nesting depth of a document. */
export const MAX_NESTING = 16

export function valueSize(v: Value | undefined): number {
  if (v === undefined || v === null) return 1
  switch (typeof v) {
    case 'boolean': return 1
    case 'number': case 'bigint': return 9
    case 'string': return 2 + Buffer.byteLength(v, 'utf8')
  }
  if (v instanceof ArrayBuffer) return 2 + v.byteLength
  if (Array.isArray(v)) return 2 + v.reduce((s: number, x) => s + valueSize(x), 0)
  let s = 2
  for (const [k, x] of Object.entries(v)) s += Buffer.byteLength(k) + 1 + valueSize(x)
  return s
}

function depth(v: Value): number {
  if (v === null || typeof v !== 'object' || v instanceof ArrayBuffer) return 0
  let d = 0
  for (const x of Array.isArray(v) ? v : Object.values(v)) d = Math.max(d, depth(x))
  return d + 1
}

function humanSize(n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(2)} KiB`
  return `${(n / (1024 * 1024)).toFixed(2)} MiB`
}

/** null if the document is within Convex's limits, else the error message. */
export function checkDocumentLimits(doc: Record<string, Value>): string | null {
  const size = valueSize(doc)
  if (size > MAX_DOCUMENT_SIZE) return `Value is too large (${humanSize(size)} > maximum size 1 MiB)`
  if (depth(doc) > MAX_NESTING) return `Document is too nested (nested ${depth(doc)} levels deep > maximum nesting ${MAX_NESTING})`
  return null
}
