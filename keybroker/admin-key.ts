import { createHash, randomBytes } from 'node:crypto'
import nacl from 'tweetnacl'
import { parseInstanceSecret } from './secret.ts'

const KEY_DOMAIN = 'concave-admin-key-v1'
const PAYLOAD_VERSION = 1
const NONCE_BYTES = nacl.secretbox.nonceLength // 24
const MIN_KEY_BYTES = NONCE_BYTES + nacl.secretbox.overheadLength + 1
const INSTANCE_NAME = /^[a-z][a-z0-9-]{0,63}$/
const HEX = /^(?:[0-9a-fA-F]{2})+$/

export type AdminKeyOptions = { keyId?: string; issuedAtMs?: number }
export type AdminKeyVerification = { ok: true; keyId: string; issuedAtMs: number } | { ok: false; reason: string }

/** Throws unless `name` is 1-64 lowercase letters, digits or dashes, starting with a letter. */
export function validateInstanceName(name: string): void {
  if (typeof name !== 'string' || !INSTANCE_NAME.test(name)) {
    throw new Error(
      `Invalid instance name ${JSON.stringify(name)}: must be 1-64 characters of ` +
        'lowercase letters, digits and dashes, starting with a letter',
    )
  }
}

/** Derives the secretbox key, domain-separated by instance name. */
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

/** Issues an admin key `INSTANCE_NAME|HEX` (HEX = nonce ‖ secretbox of the JSON payload). */
export function issueAdminKey(instanceName: string, instanceSecretHex: string, opts: AdminKeyOptions = {}): string {
  validateInstanceName(instanceName)
  const key = deriveKey(instanceName, parseInstanceSecret(instanceSecretHex))
  const iat = opts.issuedAtMs ?? Date.now()
  if (!Number.isSafeInteger(iat) || iat < 0) {
    throw new Error('issuedAtMs must be a non-negative integer')
  }
  const kid = opts.keyId ?? randomBytes(4).toString('hex')
  const payload = JSON.stringify({ v: PAYLOAD_VERSION, iat, kid, name: instanceName })
  const nonce = new Uint8Array(randomBytes(NONCE_BYTES))
  const box = nacl.secretbox(new TextEncoder().encode(payload), nonce, key)
  return `${instanceName}|${Buffer.concat([nonce, box]).toString('hex')}`
}

/** Checks an admin key against this instance's name and secret. Never throws. */
export function verifyAdminKey(key: string, instanceName: string, instanceSecretHex: string): AdminKeyVerification {
  const fail = (reason: string): AdminKeyVerification => ({ ok: false, reason })
  if (typeof key !== 'string' || key === '') return fail('empty admin key')
  const bar = key.indexOf('|')
  if (bar < 0) return fail("malformed admin key: missing '|'")
  if (key.slice(0, bar) !== instanceName) return fail('admin key is for a different instance')
  const hex = key.slice(bar + 1)
  if (!HEX.test(hex)) return fail('malformed admin key: not hex')
  const bytes = new Uint8Array(Buffer.from(hex, 'hex'))
  if (bytes.length < MIN_KEY_BYTES) return fail('malformed admin key: too short')

  let secret: Uint8Array
  try {
    secret = parseInstanceSecret(instanceSecretHex)
  } catch (e) {
    return fail(`invalid instance secret: ${(e as Error).message}`)
  }
  const opened = nacl.secretbox.open(
    bytes.subarray(NONCE_BYTES),
    bytes.subarray(0, NONCE_BYTES),
    deriveKey(instanceName, secret),
  )
  if (!opened) return fail('admin key authentication failed')

  let payload: unknown
  try {
    payload = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(opened))
  } catch {
    return fail('malformed admin key payload')
  }
  const p = payload as { v?: unknown; iat?: unknown; kid?: unknown; name?: unknown } | null
  if (
    typeof p !== 'object' ||
    p === null ||
    p.v !== PAYLOAD_VERSION ||
    typeof p.iat !== 'number' ||
    !Number.isSafeInteger(p.iat) ||
    p.iat < 0 ||
    typeof p.kid !== 'string'
  ) {
    return fail('malformed admin key payload')
  }
  if (p.name !== instanceName) return fail('admin key payload is for a different instance')
  return { ok: true, keyId: p.kid, issuedAtMs: p.iat }
}

/**
 * Splits an admin authorization value `NAME|HEX[:ACTING_AS]` into the admin key and the
 * optional "acting as" identity. Only a `:` after the first `|` separates them.
 */
export function splitAdminAuthorization(value: string): { adminKey: string; actingAs?: string } {
  const bar = value.indexOf('|')
  const colon = bar < 0 ? -1 : value.indexOf(':', bar + 1)
  if (colon < 0) return { adminKey: value }
  const actingAs = value.slice(colon + 1)
  return actingAs === '' ? { adminKey: value.slice(0, colon) } : { adminKey: value.slice(0, colon), actingAs }
}
