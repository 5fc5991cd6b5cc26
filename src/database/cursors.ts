/**
 * @module Pagination cursors as Convex makes them: opaque and authenticated. A cursor holds the
 * query's fingerprint and a position (a key in the query's index, or the end), sealed with
 * AES-256-GCM under a key derived from the instance secret, so a cursor only decodes on the
 * deployment that issued it and only continues the query it came from.
 *
 * The nonce is derived from the contents (an HMAC of them), so the same position of the same
 * query always gives the same cursor text: a paginated query re-run with unchanged results
 * returns an unchanged page, and live queries send no update for it.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync } from 'node:crypto'
import { DatabaseError } from './errors.ts'

const VERSION = 1
const NONCE_BYTES = 12
const TAG_BYTES = 16
const FINGERPRINT_BYTES = 16

/** Where a page starts or ends: after a key of the query's index, or at the end. */
export type CursorPosition = Buffer | 'end'

export interface DecodedCursor {
  fingerprint: Buffer
  position: CursorPosition
}

/** The error Convex gives a cursor that can't be decoded (not one of this deployment's). */
export function cursorParseError(): DatabaseError {
  return new DatabaseError('Failed to parse cursor')
}

/**
 * Convex's error for a cursor from another query: a ConvexError whose data tells the client
 * (usePaginatedQuery) to start the pagination over.
 */
export class InvalidCursorError extends DatabaseError {
  readonly data = { isConvexSystemError: true, paginationError: 'InvalidCursor' }
  constructor() {
    super('InvalidCursor: Tried to run a query starting from a cursor, but it looks like this cursor is from a different query.')
  }
}

/** A query's fingerprint: its serialized form and the fields of the index it reads. */
export function queryFingerprint(query: unknown, indexedFields: readonly string[]): Buffer {
  return createHash('sha256').update(JSON.stringify({ query, indexedFields })).digest().subarray(0, FINGERPRINT_BYTES)
}

export class CursorCodec {
  readonly #key: Buffer
  readonly #nonceKey: Buffer

  constructor(instanceSecretHex: string) {
    const secret = Buffer.from(instanceSecretHex, 'hex')
    this.#key = Buffer.from(hkdfSync('sha256', secret, 'concave', 'pagination cursor key', 32))
    this.#nonceKey = Buffer.from(hkdfSync('sha256', secret, 'concave', 'pagination cursor nonce', 32))
  }

  encode(fingerprint: Buffer, position: CursorPosition): string {
    const plain = Buffer.concat([Buffer.from([VERSION, position === 'end' ? 0 : 1]), fingerprint, position === 'end' ? Buffer.alloc(0) : position])
    const nonce = createHmac('sha256', this.#nonceKey).update(plain).digest().subarray(0, NONCE_BYTES)
    const cipher = createCipheriv('aes-256-gcm', this.#key, nonce)
    const sealed = Buffer.concat([cipher.update(plain), cipher.final()])
    return Buffer.concat([nonce, sealed, cipher.getAuthTag()]).toString('base64url')
  }

  /** Opens a cursor this deployment issued; anything else is Convex's "Failed to parse cursor". */
  decode(cursor: unknown): DecodedCursor {
    if (typeof cursor !== 'string' || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw cursorParseError()
    const raw = Buffer.from(cursor, 'base64url')
    if (raw.length < NONCE_BYTES + TAG_BYTES + 2 + FINGERPRINT_BYTES) throw cursorParseError()
    let plain: Buffer
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, raw.subarray(0, NONCE_BYTES))
      decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES))
      plain = Buffer.concat([decipher.update(raw.subarray(NONCE_BYTES, raw.length - TAG_BYTES)), decipher.final()])
    } catch {
      throw cursorParseError()
    }
    if (plain[0] !== VERSION) throw cursorParseError()
    const fingerprint = plain.subarray(2, 2 + FINGERPRINT_BYTES)
    return { fingerprint, position: plain[1] === 0 ? 'end' : plain.subarray(2 + FINGERPRINT_BYTES) }
  }
}
