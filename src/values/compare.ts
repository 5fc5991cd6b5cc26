/**
 * Convex's total order on values, as in the Rust backend (`impl Ord for ConvexValue`,
 * crates/value/src/sorting.rs; the JS client's convex/values/compare.ts agrees):
 * undefined < null < int64 < float64 < boolean < string < bytes < array < object.
 * - float64 uses IEEE `total_cmp`: -NaN < -Inf < … < -0 < +0 < … < +Inf < +NaN.
 * - strings compare by UTF-8 bytes (= code point order), not UTF-16 code units.
 * - bytes and arrays compare lexicographically, a proper prefix first.
 * - objects compare as their (field, value) pairs sorted by field name, lexicographically
 *   (field name first, then value; fewer fields first when one is a prefix of the other).
 * The `COMMIT_TS` placeholder sorts as max int64; `UNDEFINED` equals `undefined`.
 * @module
 */
import { COMMIT_TS, MAX_INT64, UNDEFINED, type ExtendedValue } from './value.ts'

/** Type rank of a value in the total order (0 = undefined … 8 = object). */
export function typeRank(v: ExtendedValue | undefined): number {
  switch (typeof v) {
    case 'undefined': return 0
    case 'bigint': return 2
    case 'number': return 3
    case 'boolean': return 4
    case 'string': return 5
    case 'symbol': return v === COMMIT_TS ? 2 : 0
  }
  if (v === null) return 1
  if (v instanceof ArrayBuffer) return 6
  if (Array.isArray(v)) return 7
  return 8
}

/** Compares two values in Convex's total order; returns -1, 0 or 1. */
export function compareValues(a: ExtendedValue | undefined, b: ExtendedValue | undefined): number {
  const ra = typeRank(a)
  const rb = typeRank(b)
  if (ra !== rb) return ra < rb ? -1 : 1
  switch (ra) {
    case 0:
    case 1:
      return 0
    case 2: {
      const x = a === COMMIT_TS ? MAX_INT64 : (a as bigint)
      const y = b === COMMIT_TS ? MAX_INT64 : (b as bigint)
      return x < y ? -1 : x > y ? 1 : 0
    }
    case 3:
      return compareFloats(a as number, b as number)
    case 4:
      return a === b ? 0 : a ? 1 : -1
    case 5:
      return compareUtf8(a as string, b as string)
    case 6:
      return Buffer.compare(new Uint8Array(a as ArrayBuffer), new Uint8Array(b as ArrayBuffer))
    case 7: {
      const x = a as ExtendedValue[]
      const y = b as ExtendedValue[]
      const n = Math.min(x.length, y.length)
      for (let i = 0; i < n; i++) {
        const c = compareValues(x[i], y[i])
        if (c !== 0) return c
      }
      return x.length < y.length ? -1 : x.length > y.length ? 1 : 0
    }
    default:
      return compareObjects(a as Record<string, ExtendedValue>, b as Record<string, ExtendedValue>)
  }
}

/** Field names of an object in sorted order, skipping `undefined`/`UNDEFINED` fields. */
export function sortedFields(o: Record<string, ExtendedValue | undefined>): string[] {
  const keys = Object.keys(o)
  let n = 0
  for (const k of keys) {
    const v = o[k]
    if (v !== undefined && v !== UNDEFINED) keys[n++] = k
  }
  keys.length = n
  return keys.sort()
}

function compareObjects(a: Record<string, ExtendedValue>, b: Record<string, ExtendedValue>): number {
  const ka = sortedFields(a)
  const kb = sortedFields(b)
  const n = Math.min(ka.length, kb.length)
  for (let i = 0; i < n; i++) {
    const x = ka[i]!
    const y = kb[i]!
    if (x !== y) return compareUtf8(x, y)
    const c = compareValues(a[x], b[y])
    if (c !== 0) return c
  }
  return ka.length < kb.length ? -1 : ka.length > kb.length ? 1 : 0
}

const f64 = new Float64Array(1)
const u32 = new Uint32Array(f64.buffer)
const HI = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0 // index of the high word

/** IEEE total order on float64 (Rust `f64::total_cmp`): -NaN < -Inf < -0 < +0 < +Inf < +NaN. */
export function compareFloats(a: number, b: number): number {
  if (a < b) return -1
  if (a > b) return 1
  if (a === b) {
    if (a !== 0) return 0
    const na = 1 / a < 0
    return na === 1 / b < 0 ? 0 : na ? -1 : 1
  }
  // At least one NaN: compare the sign-adjusted bit patterns.
  f64[0] = a
  let ah = u32[HI]!
  let al = u32[1 - HI]!
  f64[0] = b
  let bh = u32[HI]!
  let bl = u32[1 - HI]!
  if (ah & 0x80000000) { ah = ~ah >>> 0; al = ~al >>> 0 } else ah = (ah | 0x80000000) >>> 0
  if (bh & 0x80000000) { bh = ~bh >>> 0; bl = ~bl >>> 0 } else bh = (bh | 0x80000000) >>> 0
  if (ah !== bh) return ah < bh ? -1 : 1
  return al < bl ? -1 : al > bl ? 1 : 0
}

/** Compares strings by their UTF-8 bytes (code point order). */
export function compareUtf8(a: string, b: string): number {
  if (a === b) return 0
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x !== y) {
      // A surrogate (a code point ≥ U+10000) sorts after U+E000..U+FFFF in UTF-8.
      if (x >= 0xd800 && y >= 0xd800) {
        const xs = x <= 0xdfff
        if (xs !== y <= 0xdfff) return xs ? 1 : -1
      }
      return x < y ? -1 : 1
    }
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0
}
