/**
 * The admin key format of Concave's first builds, still accepted so that keys already handed out
 * keep working: `NAME|HEX`, HEX = nonce (24 bytes) ‖ NaCl secretbox of the JSON payload
 * `{"v":1,"iat":MS,"kid":ID,"name":NAME}`, keyed by SHA-256("concave-admin-key-v1" 0 NAME 0 SECRET).
 * New keys are issued in Convex's format (convex-format.ts).
 */
import { createHash, randomBytes } from 'node:crypto'
import nacl from 'tweetnacl'

const KEY_DOMAIN = 'concave-admin-key-v1'
const PAYLOAD_VERSION = 1
const NONCE_BYTES = nacl.secretbox.nonceLength // 24
export const MIN_V1_KEY_BYTES = NONCE_BYTES + nacl.secretbox.overheadLength + 1

export type V1Payload = { keyId: string; issuedAtMs: number }

/** The secretbox key, domain-separated by instance name. */
function deriveKey(instanceName: string, secret: Uint8Array): Uint8Array {
  const digest = createHash('sha256')
    .update(KEY_DOMAIN)
    .update(new Uint8Array([0]))
    .update(instanceName, 'utf8')
    .update(new Uint8Array([0]))
    .update(secret)
    .digest()
  return new Uint8Array(digest.subarray(0, nacl.secretbox.keyLength))
}

/** Seals a v1 key (kept for tests and for checking that such keys still verify). */
export function sealV1(instanceName: string, secret: Uint8Array, payload: string | Uint8Array): string {
  const nonce = new Uint8Array(randomBytes(NONCE_BYTES))
  const bytes = typeof payload === 'string' ? new TextEncoder().encode(payload) : payload
  const box = nacl.secretbox(bytes, nonce, deriveKey(instanceName, secret))
  return `${instanceName}|${Buffer.concat([nonce, box]).toString('hex')}`
}

/**
 * Opens a v1 key's bytes: null if they don't authenticate for this name and secret, else the
 * payload or the reason it is malformed.
 */
export function openV1(instanceName: string, secret: Uint8Array, bytes: Uint8Array): V1Payload | { reason: string } | null {
  if (bytes.length < MIN_V1_KEY_BYTES) return null
  const opened = nacl.secretbox.open(bytes.subarray(NONCE_BYTES), bytes.subarray(0, NONCE_BYTES), deriveKey(instanceName, secret))
  if (!opened) return null
  let payload: unknown
  try {
    payload = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(opened))
  } catch {
    return { reason: 'malformed admin key payload' }
  }
  const p = payload as { v?: unknown; iat?: unknown; kid?: unknown; name?: unknown } | null
  if (typeof p !== 'object' || p === null || p.v !== PAYLOAD_VERSION || typeof p.iat !== 'number' || !Number.isSafeInteger(p.iat) || p.iat < 0 || typeof p.kid !== 'string') {
    return { reason: 'malformed admin key payload' }
  }
  if (p.name !== instanceName) return { reason: 'admin key payload is for a different instance' }
  return { keyId: p.kid, issuedAtMs: p.iat }
}
