/**
 * @module `structuredClone` (the HTML standard's structured serialize/deserialize in one pass):
 * primitives including bigint and undefined, wrapper objects, Date, RegExp, ArrayBuffer and its
 * views, Map, Set, Error, Blob/File, DOMException, arrays and plain objects (own enumerable
 * properties; a class instance comes back as a plain object), with shared references and cycles
 * kept. Functions, symbols, promises and weak collections throw a DataCloneError.
 */
import { DOMExceptionPolyfill } from './dom.ts'
import { BlobPolyfill, FilePolyfill } from './blob.ts'

const ERROR_NAMES = new Set(['Error', 'EvalError', 'RangeError', 'ReferenceError', 'SyntaxError', 'TypeError', 'URIError'])
const ERROR_CONSTRUCTORS: Record<string, ErrorConstructor> = { Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError }

/**
 * What Convex's structuredClone throws for a value it can't clone (a function, a symbol, a
 * WeakMap, …): its host serializes, fails to read the result back, and says so.
 */
function uncloneable(): Error {
  return new Error('could not deserialize value')
}

const tag = (v: object): string => Object.prototype.toString.call(v)

export function structuredClone<T>(value: T, options?: { transfer?: unknown[] }): T {
  // As Convex: any options (only `transfer` exists) are refused.
  if (options !== undefined) throw new Error('structuredClone with transfer not supported')
  return cloneValue(value, new Map()) as T
}

function cloneValue(value: unknown, memory: Map<object, unknown>): unknown {
  if (typeof value === 'symbol' || typeof value === 'function') throw uncloneable()
  if (value === null || typeof value !== 'object') return value
  const known = memory.get(value)
  if (known !== undefined) return known
  const remember = <V>(copy: V): V => {
    memory.set(value, copy)
    return copy
  }
  const t = tag(value)
  // Wrapper objects, dates and regular expressions carry their primitive data only.
  if (t === '[object Boolean]') return remember(Object(Boolean.prototype.valueOf.call(value)))
  if (t === '[object Number]') return remember(Object(Number.prototype.valueOf.call(value)))
  if (t === '[object BigInt]') return remember(Object(BigInt.prototype.valueOf.call(value)))
  if (t === '[object String]') return remember(Object(String.prototype.valueOf.call(value)))
  if (value instanceof Date) return remember(new (globalThis.Date)(value.getTime()))
  if (value instanceof RegExp) return remember(new RegExp(value.source, value.flags))
  if (value instanceof ArrayBuffer) return remember(value.slice(0))
  if (ArrayBuffer.isView(value)) {
    const buffer = cloneValue(value.buffer, memory) as ArrayBuffer
    if (value instanceof DataView) return remember(new DataView(buffer, value.byteOffset, value.byteLength))
    const View = value.constructor as new (b: ArrayBuffer, offset: number, length: number) => ArrayBufferView
    return remember(new View(buffer, value.byteOffset, (value as unknown as { length: number }).length))
  }
  if (value instanceof FilePolyfill) return remember(new FilePolyfill([value._bytes()], value.name, { type: value.type, lastModified: value.lastModified }))
  if (value instanceof BlobPolyfill) return remember(new BlobPolyfill([value._bytes()], { type: value.type }))
  if (value instanceof DOMExceptionPolyfill) return remember(new DOMExceptionPolyfill(value.message, value.name))
  if (value instanceof Map) {
    const copy = remember(new Map())
    for (const [k, v] of value) copy.set(cloneValue(k, memory), cloneValue(v, memory))
    return copy
  }
  if (value instanceof Set) {
    const copy = remember(new Set())
    for (const v of value) copy.add(cloneValue(v, memory))
    return copy
  }
  if (value instanceof Error) {
    const name = ERROR_NAMES.has(value.name) ? value.name : 'Error'
    const copy = remember(new ERROR_CONSTRUCTORS[name]!(value.message))
    if (typeof value.stack === 'string') copy.stack = value.stack
    if ('cause' in value) (copy as { cause?: unknown }).cause = cloneValue(value.cause, memory)
    return copy
  }
  if (value instanceof Promise || value instanceof WeakMap || value instanceof WeakSet || value instanceof WeakRef) throw uncloneable()
  if (Array.isArray(value)) {
    const copy = remember(new Array(value.length))
    for (const key of Object.keys(value)) copy[key as unknown as number] = cloneValue((value as unknown as Record<string, unknown>)[key], memory)
    return copy
  }
  const copy = remember({} as Record<string, unknown>)
  for (const key of Object.keys(value)) copy[key] = cloneValue((value as Record<string, unknown>)[key], memory)
  return copy
}
