import { randomBytes } from 'node:crypto'

const SECRET_BYTES = 32
const SECRET_HEX = /^[0-9a-fA-F]{64}$/

/** Generates a fresh instance secret: 32 random bytes as 64 lowercase hex characters. */
export function generateInstanceSecret(): string {
  return randomBytes(SECRET_BYTES).toString('hex')
}

/** Decodes a 64-hex-character instance secret into its 32 bytes; throws on any other input. */
export function parseInstanceSecret(hex: string): Uint8Array {
  if (typeof hex !== 'string' || !SECRET_HEX.test(hex)) {
    throw new Error('Instance secret must be 64 hex characters (32 bytes)')
  }
  return new Uint8Array(Buffer.from(hex, 'hex'))
}
