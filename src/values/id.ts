/**
 * Convex document ids (id v6, crates/value/src/id_v6.rs + base32.rs):
 * `base32(VInt(tableNumber) ‖ internalId[16] ‖ le16(fletcher16(previous bytes) ^ 0))`,
 * lowercase Crockford alphabet, no padding, most-significant bits first.
 * @module
 */
import { randomFillSync } from 'node:crypto'

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz'
const DECODE = new Int8Array(128).fill(-1)
for (let i = 0; i < 32; i++) DECODE[ALPHABET.charCodeAt(i)] = i

/** Shortest id: 1-byte table number (31 chars). */
export const MIN_ID_LENGTH = 31
/** Longest id: 5-byte table number (37 chars). */
export const MAX_ID_LENGTH = 37
/** Largest table number (u32). */
export const MAX_TABLE_NUMBER = 0xffffffff

/** The alphabet's character codes. */
const ALPHABET_CODES = Uint8Array.from(ALPHABET, (c) => c.charCodeAt(0))
/** An id's bytes being encoded (VInt table number ‖ internal id ‖ footer: at most 23). */
const bytes = new Uint8Array(23)
/** An id's characters being encoded (at most MAX_ID_LENGTH), read out as one latin1 string. */
const chars = Buffer.allocUnsafeSlow(MAX_ID_LENGTH)

function base32Encode(data: Uint8Array, len: number): string {
  let n = 0
  let acc = 0
  let bits = 0
  for (let i = 0; i < len; i++) {
    acc = ((acc << 8) | data[i]!) & 0xfff
    bits += 8
    while (bits >= 5) {
      bits -= 5
      chars[n++] = ALPHABET_CODES[(acc >> bits) & 31]!
    }
  }
  if (bits > 0) chars[n++] = ALPHABET_CODES[(acc << (5 - bits)) & 31]!
  return chars.toString('latin1', 0, n)
}

function fletcher16(data: Uint8Array, len: number): number {
  let c0 = 0
  let c1 = 0
  for (let i = 0; i < len; i++) {
    c0 = (c0 + data[i]!) & 255
    c1 = (c1 + c0) & 255
  }
  return (c1 << 8) | c0
}

/** Writes `tableNumber`'s VInt at the start of `bytes`; returns its length. */
function writeTableNumber(tableNumber: number): number {
  if (!Number.isInteger(tableNumber) || tableNumber < 1 || tableNumber > MAX_TABLE_NUMBER) {
    throw new RangeError(`Invalid table number ${tableNumber}`)
  }
  let pos = 0
  let n = tableNumber
  while (n >= 0x80) {
    bytes[pos++] = (n % 0x80) | 0x80
    n = Math.floor(n / 0x80)
  }
  bytes[pos++] = n
  return pos
}

/** The id whose table number and internal id are the first `pos` bytes of `bytes`. */
function finish(pos: number): string {
  const footer = fletcher16(bytes, pos)
  bytes[pos++] = footer & 0xff
  bytes[pos++] = footer >> 8
  return base32Encode(bytes, pos)
}

/** Encodes a document id from its table number (1..2^32-1) and 16-byte internal id. */
export function encodeId(tableNumber: number, internalId: Uint8Array): string {
  const pos = writeTableNumber(tableNumber)
  if (internalId.length !== 16) throw new RangeError(`Internal id must be 16 bytes, got ${internalId.length}`)
  bytes.set(internalId, pos)
  return finish(pos + 16)
}

/** Random bytes for time-ordered ids, refilled 4 KiB at a time (one crypto call per ~400 ids). */
const randomPool = Buffer.alloc(4096)
let randomOffset = randomPool.length

/**
 * A new id of `tableNumber` whose 16-byte internal id is 6 bytes of milliseconds since the epoch
 * (`ms`), then 10 random bytes (80 bits). Ids of a table then sort roughly by creation, so inserts
 * append to the id B-trees instead of dirtying a random page each; clients still treat ids as opaque.
 */
export function timeOrderedId(tableNumber: number, ms: number = Date.now()): string {
  const pos = writeTableNumber(tableNumber)
  const hi = Math.floor(ms / 2 ** 32)
  const lo = ms >>> 0
  bytes[pos] = (hi >> 8) & 0xff
  bytes[pos + 1] = hi & 0xff
  bytes[pos + 2] = lo >>> 24
  bytes[pos + 3] = (lo >>> 16) & 0xff
  bytes[pos + 4] = (lo >>> 8) & 0xff
  bytes[pos + 5] = lo & 0xff
  if (randomOffset + 10 > randomPool.length) {
    randomFillSync(randomPool)
    randomOffset = 0
  }
  for (let i = 0; i < 10; i++) bytes[pos + 6 + i] = randomPool[randomOffset + i]!
  randomOffset += 10
  return finish(pos + 16)
}

/** Decodes an id; returns null unless `s` is a canonical id (length, alphabet, table ≠ 0, footer, no spare bits). */
export function decodeId(s: string): { tableNumber: number; internalId: Uint8Array } | null {
  if (typeof s !== 'string' || s.length < MIN_ID_LENGTH || s.length > MAX_ID_LENGTH) return null
  const bytes = new Uint8Array((s.length * 5) >> 3)
  let acc = 0
  let bits = 0
  let pos = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    const d = c < 128 ? DECODE[c]! : -1
    if (d < 0) return null
    acc = ((acc << 5) | d) & 0xfff
    bits += 5
    if (bits >= 8) {
      bits -= 8
      bytes[pos++] = (acc >> bits) & 0xff
    }
  }
  if ((acc & ((1 << bits) - 1)) !== 0) return null // leftover bits must be zero padding
  let tableNumber = 0
  let i = 0
  for (let scale = 1; ; scale *= 0x80) {
    if (i >= 5 || i >= bytes.length) return null
    const b = bytes[i++]!
    tableNumber += (b & 0x7f) * scale
    if (b < 0x80) break
  }
  if (tableNumber === 0 || tableNumber > MAX_TABLE_NUMBER) return null
  if (bytes.length !== i + 18) return null
  const footer = bytes[i + 16]! | (bytes[i + 17]! << 8)
  if (fletcher16(bytes, i + 16) !== footer) return null
  const internalId = bytes.slice(i, i + 16)
  // Reject non-canonical encodings (e.g. a VInt with redundant continuation bytes), as the backend does.
  if (encodeId(tableNumber, internalId) !== s) return null
  return { tableNumber, internalId }
}

/** A fresh random 16-byte internal id. */
export function newInternalId(): Uint8Array {
  return randomFillSync(new Uint8Array(16))
}
