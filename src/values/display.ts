/**
 * How the Rust backend prints values inside error messages: `impl Display for ConvexValue`
 * (crates/value/src/lib.rs, utils.rs, bytes.rs), Rust's `{:?}`/`{}` float and string formatting,
 * and serde_json's (ryu) float formatting used for `v.literal(...)`.
 * @module
 */
import { COMMIT_TS, MAX_INT64, NON_PRINTABLE, UNDEFINED, type ExtendedValue } from './value.ts'

/** Formats a value like the backend's `Display for ConvexValue`: `{a: 1.0, b: "x", c: [2, b"AQI="]}`. */
export function displayValue(v: ExtendedValue | undefined): string {
  switch (typeof v) {
    case 'string': return rustDebugStr(v)
    case 'number': return rustDebugF64(v)
    case 'bigint': return v.toString()
    case 'boolean': return v ? 'true' : 'false'
    case 'undefined': return 'undefined'
    case 'symbol': return v === COMMIT_TS ? MAX_INT64.toString() : v === UNDEFINED ? 'undefined' : String(v)
  }
  if (v === null) return 'null'
  if (Array.isArray(v)) return '[' + v.map(displayValue).join(', ') + ']'
  if (v instanceof ArrayBuffer) return `b"${Buffer.from(v).toString('base64')}"`
  const o = v as Record<string, ExtendedValue | undefined>
  const parts: string[] = []
  for (const k of Object.keys(o).sort()) {
    const x = o[k]
    if (x !== undefined && x !== UNDEFINED) parts.push(`${k}: ${displayValue(x)}`)
  }
  return '{' + parts.join(', ') + '}'
}

/** Rust's `{:?}` for `&str`: double-quoted with `\"`, `\\`, `\n`, `\t`, `\r`, `\0` and `\u{..}` escapes. */
export function rustDebugStr(s: string): string {
  if (/^[\x20\x21\x23-\x5b\x5d-\x7e]*$/.test(s)) return `"${s}"`
  let out = '"'
  for (const ch of s) {
    const cp = ch.codePointAt(0)!
    switch (cp) {
      case 0: out += '\\0'; continue
      case 9: out += '\\t'; continue
      case 10: out += '\\n'; continue
      case 13: out += '\\r'; continue
      case 34: out += '\\"'; continue
      case 92: out += '\\\\'; continue
    }
    out += cp !== 32 && NON_PRINTABLE.test(ch) ? `\\u{${cp.toString(16)}}` : ch
  }
  return out + '"'
}

/** Shortest round-trip decimal digits and exponent of |n| (finite, non-zero): n = 0.D × 10^point. */
function digitsOf(n: number): { digits: string; point: number } {
  const s = Math.abs(n).toExponential()
  const e = s.indexOf('e')
  const digits = s[0] + (e > 1 ? s.slice(2, e) : '')
  return { digits, point: Number(s.slice(e + 1)) + 1 }
}

function plainDecimal(digits: string, point: number, minFraction: boolean): string {
  if (point <= 0) return '0.' + '0'.repeat(-point) + digits
  if (point >= digits.length) return digits + '0'.repeat(point - digits.length) + (minFraction ? '.0' : '')
  return digits.slice(0, point) + '.' + digits.slice(point)
}

function special(n: number): string | null {
  if (n !== n) return 'NaN'
  if (n === Infinity) return 'inf'
  if (n === -Infinity) return '-inf'
  return null
}

/** Rust's `{:?}` for f64: `1.0`, `0.5`, `1e16`, `1.5e-5`, `-0.0`, `NaN`, `inf`. */
export function rustDebugF64(n: number): string {
  const sp = special(n)
  if (sp !== null) return sp
  if (n === 0) return 1 / n < 0 ? '-0.0' : '0.0'
  const sign = n < 0 ? '-' : ''
  const { digits, point } = digitsOf(n)
  const abs = Math.abs(n)
  if (abs < 1e-4 || abs >= 1e16) {
    return sign + digits[0] + (digits.length > 1 ? '.' + digits.slice(1) : '') + 'e' + (point - 1)
  }
  return sign + plainDecimal(digits, point, true)
}

/** Rust's `{}` for f64: never exponential, no forced fraction (`1`, `0.0001`, `-0`). */
export function rustDisplayF64(n: number): string {
  const sp = special(n)
  if (sp !== null) return sp
  if (n === 0) return 1 / n < 0 ? '-0' : '0'
  const { digits, point } = digitsOf(n)
  return (n < 0 ? '-' : '') + plainDecimal(digits, point, false)
}

/** serde_json's (ryu) formatting of a finite f64: `1.0`, `1e16`, `1.5e-7`, `0.0001`. */
export function jsonF64(n: number): string {
  if (n === 0) return 1 / n < 0 ? '-0.0' : '0.0'
  const sign = n < 0 ? '-' : ''
  const { digits, point } = digitsOf(n)
  const len = digits.length
  const k = point - len
  if (k >= 0 && point <= 16) return sign + digits + '0'.repeat(k) + '.0'
  if (point > 0 && point <= 16) return sign + digits.slice(0, point) + '.' + digits.slice(point)
  if (point > -5 && point <= 0) return sign + '0.' + '0'.repeat(-point) + digits
  return sign + digits[0] + (len > 1 ? '.' + digits.slice(1) : '') + 'e' + (point - 1)
}

/** humansize's `BINARY` formatting used in size errors: `1 MiB`, `1.01 MiB`, `512 B`. */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB', 'ZiB', 'YiB']
  let size = bytes
  let i = 0
  while (Math.abs(size) >= 1024 && i < units.length - 1) {
    size /= 1024
    i++
  }
  if (Number.isInteger(size)) return `${size} ${units[i]}`
  // Rust's `{:.2}` rounds exact ties to even.
  const scaled = size * 100
  const floor = Math.floor(scaled)
  const frac = scaled - floor
  const rounded = frac > 0.5 || (frac === 0.5 && floor % 2 === 1) ? floor + 1 : floor
  return `${(rounded / 100).toFixed(2)} ${units[i]}`
}
