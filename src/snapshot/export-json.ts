/**
 * @module The value encodings of snapshot export and import.
 *
 * Documents are stored as Convex-encoded JSON (`{"$integer": base64}`, `{"$bytes": base64}`,
 * `{"$float": base64}` for NaN, ±Infinity and -0). A snapshot's `<table>/documents.jsonl` holds
 * Convex's "export JSON" instead (what its `generated_schema.jsonl` calls `"uniform"`): an int64 is
 * a bare JSON integer, a float64 always prints as a float (`1.0`, `-0.0`, `1e21`) so the two stay
 * apart, NaN and ±Infinity are `{"$float": …}` and bytes `{"$bytes": …}`; object keys are sorted.
 */
import type { JSONValue } from '../values/index.ts'

type Json = JSONValue

function int64FromBase64(b64: string): bigint {
  const buf = Buffer.from(b64, 'base64')
  if (buf.length !== 8) throw new Error(`Invalid $integer ${JSON.stringify(b64)}: expected 8 bytes`)
  return buf.readBigInt64LE(0)
}

function int64ToBase64(n: bigint): string {
  const buf = Buffer.alloc(8)
  buf.writeBigInt64LE(n)
  return buf.toString('base64')
}

function float64ToBase64(n: number): string {
  const buf = Buffer.alloc(8)
  buf.writeDoubleLE(n)
  return buf.toString('base64')
}

/** A finite float64 in a form that reads back as a float (never as an integer). */
function floatText(n: number): string {
  if (Object.is(n, -0)) return '-0.0'
  const s = String(n)
  return /[.eE]/.test(s) ? s : `${s}.0`
}

function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** Convex-encoded JSON (as stored) → one line of export JSON. */
export function encodedToExportJson(value: Json): string {
  if (value === null || typeof value === 'boolean') return JSON.stringify(value)
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'number') return floatText(value)
  if (Array.isArray(value)) return `[${value.map(encodedToExportJson).join(',')}]`
  const keys = Object.keys(value)
  if (keys.length === 1 && keys[0]!.startsWith('$')) {
    const inner = value[keys[0]!]
    if (keys[0] === '$integer' && typeof inner === 'string') return int64FromBase64(inner).toString()
    if (keys[0] === '$float' && typeof inner === 'string') {
      const f = Buffer.from(inner, 'base64').readDoubleLE(0)
      return Number.isFinite(f) ? floatText(f) : JSON.stringify({ $float: inner })
    }
    if (keys[0] === '$bytes' && typeof inner === 'string') return JSON.stringify({ $bytes: inner })
  }
  keys.sort(compareKeys)
  return `{${keys.map((k) => `${JSON.stringify(k)}:${encodedToExportJson(value[k]!)}`).join(',')}}`
}

/** A float in Convex-encoded JSON: a plain number, or `$float` where JSON can't say it. */
function encodedFloat(n: number): Json {
  return Number.isFinite(n) && !Object.is(n, -0) ? n : { $float: float64ToBase64(n) }
}

const INTEGER = /^-?\d+$/
const MIN_INT64 = -(2n ** 63n)
const MAX_INT64 = 2n ** 63n - 1n

/**
 * Parses one JSON text into Convex-encoded JSON. `exportJson` (a snapshot's "uniform" tables):
 * integers are int64, other numbers float64. Otherwise (JSONL/JSON array imports, as in Convex)
 * every number is a float64 and int64s are written `{"$integer": …}`.
 */
export function parseToEncoded(text: string, exportJson: boolean): Json {
  return JSON.parse(text, (_key, value: unknown, context?: { source?: string }) => {
    if (typeof value !== 'number') return value
    const source = context?.source
    if (exportJson && source !== undefined && INTEGER.test(source)) {
      const n = BigInt(source)
      if (n < MIN_INT64 || n > MAX_INT64) throw new Error(`Integer ${source} is out of the int64 range`)
      return { $integer: int64ToBase64(n) }
    }
    return encodedFloat(value)
  }) as Json
}
