/**
 * @module One-dimensional Postgres arrays in the binary wire format (`array_send`/`array_recv`),
 * for statement parameters: `pg` sends a Buffer parameter as binary, which Postgres reads with the
 * parameter's type's receive function. A large write's columns then cost neither side an escape:
 * `pg`'s text form of a text[] quotes and backslash-escapes every element (each document's JSON
 * is full of quotes) and a bytea[]'s elements go as hex, all of which Postgres then parses back.
 *
 * Layout: ndim (int32), has-nulls flag (int32), element type OID (int32), then per dimension its
 * length and lower bound (int32 each; none for an empty array, which has ndim 0), then per
 * element its byte length (int32, -1 for NULL) and its bytes (the element type's binary form).
 */

const BOOL = 16
const BYTEA = 17
const INT8 = 20
const INT4 = 23
const TEXT = 25

function header(out: Buffer, oid: number, length: number, hasNulls: boolean): number {
  out.writeInt32BE(length === 0 ? 0 : 1, 0)
  out.writeInt32BE(hasNulls ? 1 : 0, 4)
  out.writeInt32BE(oid, 8)
  if (length === 0) return 12
  out.writeInt32BE(length, 12)
  out.writeInt32BE(1, 16)
  return 20
}

function headerSize(length: number): number {
  return length === 0 ? 12 : 20
}

/** A text[] (NULL elements allowed). Strings are sent as UTF-8. */
export function textArray(values: readonly (string | null)[]): Buffer {
  let size = headerSize(values.length)
  let hasNulls = false
  const lengths = new Array<number>(values.length)
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!
    if (v === null) {
      hasNulls = true
      lengths[i] = -1
      size += 4
    } else {
      const n = Buffer.byteLength(v)
      lengths[i] = n
      size += 4 + n
    }
  }
  const out = Buffer.allocUnsafe(size)
  let at = header(out, TEXT, values.length, hasNulls)
  for (let i = 0; i < values.length; i++) {
    const n = lengths[i]!
    out.writeInt32BE(n, at)
    at += 4
    if (n > 0) at += out.write(values[i]!, at, n, 'utf8')
  }
  return out
}

/** A bytea[] (NULL elements allowed). */
export function byteaArray(values: readonly (Uint8Array | null)[]): Buffer {
  let size = headerSize(values.length)
  let hasNulls = false
  for (const v of values) {
    if (v === null) hasNulls = true
    size += 4 + (v === null ? 0 : v.length)
  }
  const out = Buffer.allocUnsafe(size)
  let at = header(out, BYTEA, values.length, hasNulls)
  for (const v of values) {
    if (v === null) {
      out.writeInt32BE(-1, at)
      at += 4
      continue
    }
    out.writeInt32BE(v.length, at)
    out.set(v, at + 4)
    at += 4 + v.length
  }
  return out
}

/** An int8[] of bigints (each must fit in 64 signed bits). */
export function int8Array(values: readonly bigint[]): Buffer {
  const out = Buffer.allocUnsafe(headerSize(values.length) + values.length * 12)
  let at = header(out, INT8, values.length, false)
  // DataView's setter takes the bigint as it is (Buffer's splits it into smaller bigints first).
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength)
  for (const v of values) {
    out.writeInt32BE(8, at)
    view.setBigInt64(at + 4, v)
    at += 12
  }
  return out
}

/** An int4[] (each an integer in 32 signed bits). */
export function int4Array(values: readonly number[]): Buffer {
  const out = Buffer.allocUnsafe(headerSize(values.length) + values.length * 8)
  let at = header(out, INT4, values.length, false)
  for (const v of values) {
    out.writeInt32BE(4, at)
    out.writeInt32BE(v, at + 4)
    at += 8
  }
  return out
}

/** A boolean[]. */
export function boolArray(values: readonly boolean[]): Buffer {
  const out = Buffer.allocUnsafe(headerSize(values.length) + values.length * 5)
  let at = header(out, BOOL, values.length, false)
  for (const v of values) {
    out.writeInt32BE(1, at)
    out[at + 4] = v ? 1 : 0
    at += 5
  }
  return out
}
