/**
 * Value sizes and limits, following the backend:
 * - sizes: crates/value/src/size.rs + `impl Size for ConvexValue` (same formula as convex/values `getConvexSize`);
 * - per-value limits checked whenever a value is built: crates/value/src/{array,object,size,string}.rs;
 * - document checks: crates/common/src/document.rs (`validate`, `check_user_size`, `DocumentValidationError`).
 * @module
 */
import { displayValue, formatSize, rustDisplayF64 } from './display.ts'
import { COMMIT_TS, MAX_VALUE_NESTING, UNDEFINED, ValueError, fieldNameError, jsonToValue, jsonToValueAllowUndefined, type ExtendedValue, type JSONValue, type Value } from './value.ts'

/** Maximum document size including system fields (`MAX_USER_SIZE`, 1 MiB). */
export const MAX_DOCUMENT_SIZE = 1 << 20
/** Maximum document nesting (`MAX_DOCUMENT_NESTING`); a flat document has nesting 1. */
export const MAX_DOCUMENT_NESTING = 16
/** Maximum size of any value (`MAX_SIZE`, 32 MiB). */
export const MAX_VALUE_SIZE = 1 << 25
/** Maximum array length (`MAX_ARRAY_LEN`). */
export const MAX_ARRAY_LENGTH = 8192
/** Maximum number of fields in an object (`MAX_OBJECT_FIELDS`). */
export const MAX_OBJECT_FIELDS = 1024
/** Maximum size of a function's arguments (`FUNCTION_MAX_ARGS_SIZE`, 16 MiB). */
export const MAX_FUNCTION_ARGS_SIZE = 1 << 24
/** Largest integer exactly representable as float64 (`_creationTime` must be below it). */
const MAX_EXACT_F64_INT = 2 ** 53

/** UTF-8 byte length of a string. */
export function utf8Length(s: string): number {
  const n = s.length
  if (n > 256) return Buffer.byteLength(s, 'utf8')
  let bytes = n
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0x80) {
      if (c < 0x800) bytes += 1
      else if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
        const d = s.charCodeAt(i + 1)
        if (d >= 0xdc00 && d <= 0xdfff) {
          bytes += 2 // 4 bytes for 2 code units
          i++
        } else bytes += 2
      } else bytes += 2
    }
  }
  return bytes
}

/** Size of a value in the backend's accounting (null/bool 1, int64/float64 9, string/bytes 2+len, array 2+Σ, object 2+Σ(name+1+value)). */
export function valueSize(v: ExtendedValue | undefined): number {
  switch (typeof v) {
    case 'undefined': return 0
    case 'boolean': return 1
    case 'bigint':
    case 'number': return 9
    case 'string': return 2 + utf8Length(v)
    case 'symbol': return v === COMMIT_TS ? 9 : 0
  }
  if (v === null) return 1
  if (v instanceof ArrayBuffer) return 2 + v.byteLength
  let size = 2
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) size += valueSize(v[i])
    return size
  }
  const o = v as Record<string, ExtendedValue>
  for (const k in o) {
    const x = o[k]
    if (x !== undefined && x !== UNDEFINED) size += k.length + 1 + valueSize(x)
  }
  return size
}

/** Nesting depth: scalars 0, an array/object 1 + the deepest element. */
export function valueNesting(v: ExtendedValue | undefined): number {
  if (v === null || typeof v !== 'object' || v instanceof ArrayBuffer) return 0
  let max = 0
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const d = valueNesting(v[i])
      if (d > max) max = d
    }
  } else {
    for (const k in v) {
      const d = valueNesting((v as Record<string, ExtendedValue>)[k])
      if (d > max) max = d
    }
  }
  return 1 + max
}

class LimitError extends Error {}

/** The nesting of the value whose size `walk` returned last. */
let walkedNesting = 0

/**
 * Returns the value's size (its nesting in `walkedNesting`), throwing LimitError for a violation.
 * With `sorted`, fields are visited in the backend's (sorted) order so the reported violation is
 * the one the backend reports first.
 */
function walk(v: ExtendedValue | undefined, sorted: boolean): number {
  if (v === null || typeof v !== 'object' || v instanceof ArrayBuffer) {
    const size = valueSize(v)
    if (size > MAX_VALUE_SIZE) throw new LimitError(tooLarge(size, MAX_VALUE_SIZE))
    walkedNesting = 0
    return size
  }
  let size = 2
  let nesting = 0
  let count = 0
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      size += walk(v[i], sorted)
      if (walkedNesting > nesting) nesting = walkedNesting
    }
    count = v.length
    if (count > MAX_ARRAY_LENGTH) throw new LimitError(`Array length is too long (${count} > maximum length ${MAX_ARRAY_LENGTH})`)
  } else {
    const keys = Object.keys(v)
    if (sorted) keys.sort()
    for (const k of keys) {
      const x = (v as Record<string, ExtendedValue>)[k]
      if (x === undefined || x === UNDEFINED) continue
      const err = fieldNameError(k)
      if (err !== null) throw new LimitError(err)
      size += k.length + 1 + walk(x, sorted)
      if (walkedNesting > nesting) nesting = walkedNesting
      count++
    }
    if (count > MAX_OBJECT_FIELDS) throw new LimitError(`Object has too many fields (${count} > maximum number ${MAX_OBJECT_FIELDS})`)
  }
  if (size > MAX_VALUE_SIZE) throw new LimitError(tooLarge(size, MAX_VALUE_SIZE))
  nesting += 1
  if (nesting > MAX_VALUE_NESTING) {
    throw new LimitError(`Value is too nested (nested ${nesting} levels deep > maximum nesting ${MAX_VALUE_NESTING})`)
  }
  walkedNesting = nesting
  return size
}

function tooLarge(size: number, max: number): string {
  return `Value is too large (${formatSize(size)} > maximum size ${formatSize(max)})`
}

/** Checks the limits every Convex value obeys (field names, array length, field count, 32 MiB, nesting 64); returns the backend's message or null. */
export function checkValueLimits(v: ExtendedValue | undefined): string | null {
  return limitsOf(v).error
}

function limitsOf(v: ExtendedValue | undefined): { size: number; nesting: number; error: string | null } {
  try {
    const size = walk(v, false)
    return { size, nesting: walkedNesting, error: null }
  } catch (e) {
    if (!(e instanceof LimitError)) throw e
  }
  try {
    walk(v, true)
  } catch (e) {
    if (e instanceof LimitError) return { size: 0, nesting: 0, error: e.message }
    throw e
  }
  throw new Error('unreachable: limit violation not found in sorted order')
}

/**
 * Checks a full document (with `_id` and `_creationTime`) as the backend does on insert/replace/patch:
 * value limits, then document validation (nesting ≤ 16, system fields), then the 1 MiB size limit.
 * Returns the backend's message or null; `measured.nesting` is set to the document's nesting.
 */
export function checkDocumentLimits(doc: Record<string, Value>, measured?: { nesting: number }): string | null {
  const { size, nesting, error } = limitsOf(doc)
  if (error !== null) return error
  if (measured !== undefined) measured.nesting = nesting
  const violations: string[] = []
  if (nesting > MAX_DOCUMENT_NESTING) {
    violations.push(`Document is too nested (nested ${nesting} levels deep > maximum nesting ${MAX_DOCUMENT_NESTING})`)
  }
  const id = own(doc, '_id')
  if (id === undefined) violations.push("The '_id' field is missing")
  else if (typeof id !== 'string') violations.push(`The '_id' field ${displayValue(id)} must be an Id`)
  const ct = own(doc, '_creationTime')
  if (ct === undefined) violations.push("The '_creationTime' field is missing")
  else if (typeof ct !== 'number') violations.push(`The '_creationTime' field should be a float, is ${displayValue(ct)}`)
  else if (!(ct > 0 && ct < MAX_EXACT_F64_INT)) {
    violations.push(`The '_creationTime' field should be a timestamp in milliseconds, is ${rustDisplayF64(ct)}`)
  }
  const system = Object.keys(doc).filter((k) => k.charCodeAt(0) === 95 && k !== '_id' && k !== '_creationTime' && doc[k] !== undefined)
  for (const k of system.sort()) {
    violations.push(`Field '${k}' starts with an underscore, which is only allowed for system fields like '_id'`)
  }
  if (violations.length > 0) {
    return `Document(value: ${displayValue(doc)}) isn't a valid document: ${violations.join('\n ')}`
  }
  if (size > MAX_DOCUMENT_SIZE) return tooLarge(size, MAX_DOCUMENT_SIZE)
  return null
}

/** Maximum size of a function's return value (`FUNCTION_MAX_RESULT_SIZE`, 16 MiB). */
export const MAX_FUNCTION_RESULT_SIZE = 1 << 24

/**
 * Checks the size of a function's return value, given as its convex-encoded JSON (crates/isolate/src/helpers.rs);
 * `path` is the canonical path, e.g. `messages.js:list`. A value's size is at most 5 times its
 * JSON's length (`0,` is 9 bytes), so a short one is not parsed.
 */
export function checkResultSize(path: string, json: string, limit = MAX_FUNCTION_RESULT_SIZE): string | null {
  // As Convex reads a return value: first as a value (its limits), then its size. The text is
  // read as values only if it may break a limit. (Nesting past 64 takes more than 128 characters:
  // short results, the most, are not scanned.)
  if (json.length > 2 * MAX_VALUE_NESTING && mayBreakValueLimits(json)) {
    let tooNested: string | null
    try {
      tooNested = checkValueLimits(jsonToValue(JSON.parse(json) as JSONValue))
    } catch (e) {
      if (!(e instanceof ValueError)) throw e
      tooNested = e.message
    }
    if (tooNested !== null) return `Function ${path} return value invalid: ${tooNested}`
  }
  if (json.length * 5 + 16 <= limit) return null
  const size = valueSize(jsonToValue(JSON.parse(json) as JSONValue))
  if (size <= limit) return null
  return `Function ${path} return value is too large (actual: ${formatSize(size)}, limit: ${formatSize(limit)})`
}

/**
 * The Convex size of the value the JSON text `json` holds, when it may be more than `atLeast`;
 * null when it can't be (a value is at most 5 bytes per JSON character, plus 16): only large
 * texts are decoded.
 */
export function jsonSizeIfOver(json: string, atLeast: number): number | null {
  if (json.length * 5 + 16 <= atLeast) return null
  return valueSize(jsonToValueAllowUndefined(JSON.parse(json) as JSONValue))
}

/**
 * Checks a function's positional arguments as Convex reads them (crates/udf/src/helpers.rs): one
 * array value, within every value's limits (its nesting counting the array's own level), then
 * within the arguments' size; `path` is the canonical path, e.g. `messages.js:list`. One walk.
 */
export function checkArgs(path: string, args: readonly Value[]): string | null {
  const { size, error } = limitsOf(args as Value[])
  if (error !== null) return `Invalid arguments for ${path}: ${error}`
  if (size <= MAX_FUNCTION_ARGS_SIZE) return null
  return `Arguments for ${path} are too large (actual: ${formatSize(size)}, limit: ${formatSize(MAX_FUNCTION_ARGS_SIZE)})`
}

function own(o: Record<string, Value>, k: string): Value | undefined {
  return Object.prototype.hasOwnProperty.call(o, k) ? o[k] : undefined
}

/**
 * `valueSize` of a value given in its JSON wire form (`$integer`, `$float`, `$bytes` objects),
 * without decoding it: how a stored document's size is charged to a transaction.
 */
export function jsonValueSize(v: unknown): number {
  switch (typeof v) {
    case 'boolean': return 1
    case 'number': return 9
    case 'string': return 2 + utf8Length(v)
    case 'object': break
    default: return 0
  }
  if (v === null) return 1
  let size = 2
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) size += jsonValueSize(v[i])
    return size
  }
  const o = v as Record<string, unknown>
  for (const k in o) {
    // Field names can't start with `$`: such a key marks an encoded scalar.
    if (k.charCodeAt(0) === 36) return k === '$bytes' ? 2 + base64DecodedLength(String(o[k])) : 9
    size += k.length + 1 + jsonValueSize(o[k])
  }
  return size
}

/** `jsonValueSize(JSON.parse(text))`, computed by scanning the text (no objects are built). */
export function jsonTextSize(text: string): number {
  // Non-ASCII characters only occur inside strings, so the scanner counts string runs in UTF-16
  // units and the UTF-8 surplus of the whole text is added once.
  return new SizeScanner(text).value() + (Buffer.byteLength(text) - text.length)
}

function base64DecodedLength(b64: string): number {
  let n = b64.length
  while (n > 0 && b64.charCodeAt(n - 1) === 61) n-- // '='
  return Math.floor((n * 3) / 4)
}

class SizeScanner {
  i = 0
  readonly s: string
  /** The next backslash at or after where it was last looked for (the text's length if none). */
  #backslash = -1
  constructor(s: string) {
    this.s = s
  }

  #ws(): void {
    const s = this.s
    for (let c = s.charCodeAt(this.i); c === 32 || c === 9 || c === 10 || c === 13; c = s.charCodeAt(++this.i));
  }

  value(): number {
    this.#ws()
    const c = this.s.charCodeAt(this.i)
    if (c === 34) return 2 + this.#string() // '"'
    if (c === 123) return this.#object() // '{'
    if (c === 91) return this.#array() // '['
    if (c === 116 || c === 110) { this.i += 4; return 1 } // true, null
    if (c === 102) { this.i += 5; return 1 } // false
    // A number: up to the next delimiter.
    const s = this.s
    let d = s.charCodeAt(++this.i)
    while (this.i < s.length && d !== 44 && d !== 125 && d !== 93 && d !== 32 && d !== 10 && d !== 13 && d !== 9) d = s.charCodeAt(++this.i)
    return 9
  }

  /**
   * The UTF-8 length of the string at `i` (its opening quote), less the surplus of its unescaped
   * non-ASCII characters (see jsonTextSize); leaves `i` past the closing quote.
   */
  #string(): number {
    const s = this.s
    let i = this.i + 1
    let bytes = 0
    for (;;) {
      // Runs without escapes are measured whole (most strings are one run).
      if (this.#backslash < i) this.#backslash = nextOrEnd(s, '\\', i)
      const quote = s.indexOf('"', i)
      const end = quote < this.#backslash ? quote : this.#backslash
      bytes += end - i // UTF-16 units; jsonTextSize adds the UTF-8 surplus
      i = end
      if (end === quote) break
      if (s.charCodeAt(i + 1) !== 117) { bytes += 1; i += 2; continue } // \n, \", \\ …
      const code = parseInt(s.slice(i + 2, i + 6), 16)
      i += 6
      if (code < 0x80) bytes += 1
      else if (code < 0x800) bytes += 2
      else if (code >= 0xd800 && code <= 0xdbff && s.charCodeAt(i) === 92 && s.charCodeAt(i + 1) === 117 && isLow(parseInt(s.slice(i + 2, i + 6), 16))) { bytes += 4; i += 6 }
      else bytes += 3
    }
    this.i = i + 1
    return bytes
  }

  #array(): number {
    const s = this.s
    this.i++
    let size = 2
    this.#ws()
    if (s.charCodeAt(this.i) === 93) { this.i++; return size }
    for (;;) {
      size += this.value()
      this.#ws()
      const c = s.charCodeAt(this.i++)
      if (c !== 44) return size // ']' (or malformed)
    }
  }

  #object(): number {
    const s = this.s
    this.i++
    let size = 2
    this.#ws()
    if (s.charCodeAt(this.i) === 125) { this.i++; return size }
    for (;;) {
      this.#ws()
      const special = s.charCodeAt(this.i + 1) === 36 // {"$…": an encoded scalar
      const keyStart = this.i
      const keyBytes = this.#string()
      const keyEnd = this.i
      this.#ws()
      this.i++ // ':'
      if (special) {
        const isBytes = s.slice(keyStart + 1, keyEnd - 1) === '$bytes'
        this.#ws()
        const valueStart = this.i
        this.value()
        const encoded = s.slice(valueStart + 1, this.i - 1)
        this.#ws()
        this.i++ // '}'
        return isBytes ? 2 + base64DecodedLength(encoded) : 9
      }
      size += keyBytes + 1 + this.value()
      this.#ws()
      const c = s.charCodeAt(this.i++)
      if (c !== 44) return size // '}' (or malformed)
    }
  }
}

function nextOrEnd(s: string, c: string, from: number): number {
  const at = s.indexOf(c, from)
  return at === -1 ? s.length : at
}

function isLow(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff
}

/** Byte counts as Convex's messages write them (`common::fmt::format_bytes`): "16 MiB", "1.5 KiB", "1534 bytes". */
export function formatBytes(n: number): string {
  if (n === 0) return '0 bytes'
  const units: [number, string][] = [[2 ** 30, 'GiB'], [1e9, 'GB'], [2 ** 20, 'MiB'], [1e6, 'MB'], [2 ** 10, 'KiB'], [1e3, 'KB']]
  for (const [unit, name] of units) {
    if (n < unit) continue
    if (n % unit === 0) return `${n / unit} ${name}`
    if ((n * 10) % unit === 0) return `${Math.floor(n / unit)}.${Math.floor((n * 10) / unit) % 10} ${name}`
  }
  return `${n} bytes`
}

/**
 * Whether JSON text may hold a value past a limit of shape: nesting past 64 (encoded scalars such
 * as `{"$integer": …}` add one, so this may say yes for a value within it), or an array or object
 * with more elements than either may have. A scan of the text, without parsing it.
 */
function mayBreakValueLimits(json: string): boolean {
  /** Per open array or object: the commas met in it so far (its elements, less one). */
  const commas: number[] = []
  const arrays: boolean[] = []
  let inString = false
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x5b || c === 0x7b) {
      if (commas.push(0) > MAX_VALUE_NESTING) return true
      arrays.push(c === 0x5b)
    } else if (c === 0x2c) {
      const top = commas.length - 1
      if (++commas[top]! >= (arrays[top] ? MAX_ARRAY_LENGTH : MAX_OBJECT_FIELDS)) return true
    } else if (c === 0x5d || c === 0x7d) {
      commas.pop()
      arrays.pop()
    }
  }
  return false
}
