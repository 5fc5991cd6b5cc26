/**
 * Convex's admin key format, as its open-source keybroker crate defines it (written from the
 * format, not from its code):
 *
 *   key      = [TYPE ":"] NAME "|" HEX      (NAME may be left out when the payload carries it)
 *   HEX      = hex of 0x01 ‖ nonce ‖ sealed payload
 *   payload  = protobuf `convex_keys.AdminKey` { 1 instance_name?: string, 2 issued_s: uint64,
 *              oneof identity { 3 member_id: uint64, 4 system: Empty }, 5 is_read_only: bool }
 *
 * Two ways of sealing, both still accepted by Convex:
 * - current: AES-128-GCM-SIV with a 12-byte nonce and the version byte as associated data; the
 *   16-byte key is KBKDF in counter mode (NIST SP 800-108, HMAC-SHA256, 32-bit big-endian counter
 *   from 1 before the fixed input) of the instance secret with the purpose "admin key";
 * - legacy: NaCl secretbox (XSalsa20-Poly1305) with a 24-byte nonce, keyed by the secret itself.
 */
import { createHmac, randomBytes } from 'node:crypto'
import { gcmsiv } from '@noble/ciphers/aes.js'
import nacl from 'tweetnacl'

export const ADMIN_KEY_VERSION = 1
const ADMIN_KEY_PURPOSE = 'admin key'
const SIV_NONCE_BYTES = 12
const SIV_TAG_BYTES = 16
const BOX_NONCE_BYTES = nacl.secretbox.nonceLength // 24

/** The decoded `convex_keys.AdminKey` message. */
export interface AdminKeyProto {
  instanceName: string | null
  /** Seconds since the epoch (0: absent). */
  issuedS: bigint
  /** Which identity the key carries; null when the message has none. */
  identity: { memberId: bigint } | { system: true } | null
  isReadOnly: boolean
}

/** The 16-byte AES key Convex derives from the secret for `purpose` (KBKDF-CTR-HMAC-SHA256). */
export function deriveKey(secret: Uint8Array, purpose: string): Uint8Array {
  const counter = Buffer.from([0, 0, 0, 1])
  const block = createHmac('sha256', secret).update(counter).update(purpose, 'utf8').digest()
  return new Uint8Array(block.subarray(0, 16))
}

// --- protobuf (only what AdminKey needs) ---

function pushVarint(out: number[], value: bigint): void {
  let v = value
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80)
    v >>= 7n
  }
  out.push(Number(v))
}

/** Encodes the message as prost does: fields in tag order (the oneof at its lowest tag), proto3 defaults left out. */
export function encodeAdminKeyProto(p: AdminKeyProto): Uint8Array {
  const out: number[] = []
  if (p.instanceName !== null) {
    const name = Buffer.from(p.instanceName, 'utf8')
    out.push(0x0a)
    pushVarint(out, BigInt(name.length))
    out.push(...name)
  }
  if (p.issuedS !== 0n) {
    out.push(0x10)
    pushVarint(out, p.issuedS)
  }
  if (p.identity !== null) {
    if ('memberId' in p.identity) {
      out.push(0x18)
      pushVarint(out, p.identity.memberId)
    } else {
      out.push(0x22, 0x00)
    }
  }
  if (p.isReadOnly) out.push(0x28, 0x01)
  return new Uint8Array(out)
}

/** Decodes the message (unknown fields skipped, as protobuf requires); throws on malformed bytes. */
export function decodeAdminKeyProto(bytes: Uint8Array): AdminKeyProto {
  let pos = 0
  const varint = (): bigint => {
    let result = 0n
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (pos >= bytes.length) throw new Error('truncated varint')
      const b = bytes[pos++]!
      result |= BigInt(b & 0x7f) << shift
      if ((b & 0x80) === 0) return result & 0xffff_ffff_ffff_ffffn
    }
    throw new Error('varint too long')
  }
  const lengthDelimited = (): Uint8Array => {
    const len = varint()
    if (len > BigInt(bytes.length - pos)) throw new Error('truncated field')
    const field = bytes.subarray(pos, pos + Number(len))
    pos += Number(len)
    return field
  }
  const p: AdminKeyProto = { instanceName: null, issuedS: 0n, identity: null, isReadOnly: false }
  while (pos < bytes.length) {
    const tag = varint()
    const field = tag >> 3n
    const wire = Number(tag & 7n)
    const expect = (w: number) => {
      if (wire !== w) throw new Error(`field ${field} has wire type ${wire}`)
    }
    if (field === 0n) throw new Error('field number 0')
    switch (field) {
      case 1n:
        expect(2)
        p.instanceName = new TextDecoder('utf-8', { fatal: true }).decode(lengthDelimited())
        break
      case 2n:
        expect(0)
        p.issuedS = varint()
        break
      case 3n:
        expect(0)
        p.identity = { memberId: varint() }
        break
      case 4n:
        expect(2)
        lengthDelimited() // google.protobuf.Empty: any fields it holds are unknown ones
        p.identity = { system: true }
        break
      case 5n:
        expect(0)
        p.isReadOnly = varint() !== 0n
        break
      default:
        if (wire === 0) varint()
        else if (wire === 2) lengthDelimited()
        else if (wire === 1 || wire === 5) {
          const n = wire === 1 ? 8 : 4
          if (pos + n > bytes.length) throw new Error('truncated field')
          pos += n
        } else throw new Error(`unsupported wire type ${wire}`)
    }
  }
  return p
}

// --- sealing ---

/**
 * The current format: hex of version ‖ nonce ‖ AES-128-GCM-SIV(payload) ‖ tag, keyed for
 * `purpose` (Convex's RandomEncryptor: admin keys, and upload URLs' "store file authorization").
 */
export function sealCurrent(secret: Uint8Array, payload: Uint8Array, nonce: Uint8Array = new Uint8Array(randomBytes(SIV_NONCE_BYTES)), purpose = ADMIN_KEY_PURPOSE): string {
  if (nonce.length !== SIV_NONCE_BYTES) throw new Error(`nonce must be ${SIV_NONCE_BYTES} bytes`)
  const aad = new Uint8Array([ADMIN_KEY_VERSION])
  const sealed = gcmsiv(deriveKey(secret, purpose), nonce, aad).encrypt(payload)
  return Buffer.concat([aad, nonce, sealed]).toString('hex')
}

/** The legacy format: hex of version ‖ nonce ‖ secretbox(payload) (NaCl's MAC first). */
export function sealLegacy(secret: Uint8Array, payload: Uint8Array, nonce: Uint8Array = new Uint8Array(randomBytes(BOX_NONCE_BYTES))): string {
  if (nonce.length !== BOX_NONCE_BYTES) throw new Error(`nonce must be ${BOX_NONCE_BYTES} bytes`)
  return Buffer.concat([Buffer.from([ADMIN_KEY_VERSION]), nonce, nacl.secretbox(payload, nonce, secret)]).toString('hex')
}

/** Opens `bytes` (the decoded HEX) in the current format; null if it doesn't authenticate. */
export function openCurrent(secret: Uint8Array, bytes: Uint8Array, purpose = ADMIN_KEY_PURPOSE): Uint8Array | null {
  if (bytes.length < 1 + SIV_NONCE_BYTES + SIV_TAG_BYTES || bytes[0] !== ADMIN_KEY_VERSION) return null
  try {
    return gcmsiv(deriveKey(secret, purpose), bytes.subarray(1, 1 + SIV_NONCE_BYTES), bytes.subarray(0, 1)).decrypt(bytes.subarray(1 + SIV_NONCE_BYTES))
  } catch {
    return null
  }
}

/** Opens `bytes` in the legacy format; null if it doesn't authenticate. */
export function openLegacy(secret: Uint8Array, bytes: Uint8Array): Uint8Array | null {
  if (bytes.length < 1 + BOX_NONCE_BYTES + nacl.secretbox.overheadLength || bytes[0] !== ADMIN_KEY_VERSION) return null
  return nacl.secretbox.open(bytes.subarray(1 + BOX_NONCE_BYTES), bytes.subarray(1, 1 + BOX_NONCE_BYTES), secret)
}
