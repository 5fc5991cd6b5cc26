import { parseInstanceSecret } from './secret.ts'
import { decodeAdminKeyProto, encodeAdminKeyProto, openCurrent, openLegacy, sealCurrent, sealLegacy } from './convex-format.ts'
import type { AdminKeyProto } from './convex-format.ts'
import { openV1 } from './concave-v1.ts'

const INSTANCE_NAME = /^[a-z][a-z0-9-]{0,63}$/
const HEX = /^(?:[0-9a-fA-F]{2})+$/
/** The shortest key Convex's current format makes: version, nonce and tag around an empty payload. */
const MIN_KEY_BYTES = 1 + 12 + 16

/**
 * What a key lets its holder do, as Convex's keybroker means it: `admin` everything, `read-only`
 * an admin that may look but not change anything (no pushes, no writes, no internal mutations or
 * actions), `system` an operation "by Convex itself" (allowed everything).
 */
export type AdminKeyKind = 'admin' | 'read-only' | 'system'

export type AdminKeyOptions = {
  kind?: AdminKeyKind
  /** The member an admin key is for (Convex's `--member-id`; 0, the default, is nobody in particular). */
  memberId?: bigint | number
  /** Issue time in seconds since the epoch (default: now). */
  issuedAtS?: number
  /** Seal in Convex's older secretbox format instead of the current AES-GCM-SIV one. */
  legacy?: boolean
  /** A fixed nonce, for test vectors only. */
  nonce?: Uint8Array
}

/** Which sealing a key came in: Convex's current or legacy format, or Concave's first builds'. */
export type AdminKeyFormat = 'convex' | 'convex-legacy' | 'concave-v1'

export type AdminKeyVerification =
  | { ok: true; kind: AdminKeyKind; format: AdminKeyFormat; issuedAtMs: number; memberId: string | null }
  | { ok: false; reason: string }

/** Throws unless `name` is 1-64 lowercase letters, digits or dashes, starting with a letter. */
export function validateInstanceName(name: string): void {
  if (typeof name !== 'string' || !INSTANCE_NAME.test(name)) {
    throw new Error(
      `Invalid instance name ${JSON.stringify(name)}: must be 1-64 characters of ` +
        'lowercase letters, digits and dashes, starting with a letter',
    )
  }
}

/**
 * Issues an admin key `INSTANCE_NAME|HEX` in Convex's current format, so Convex's backend takes
 * it as readily as Concave does (for the same name and secret).
 */
export function issueAdminKey(instanceName: string, instanceSecretHex: string, opts: AdminKeyOptions = {}): string {
  validateInstanceName(instanceName)
  const secret = parseInstanceSecret(instanceSecretHex)
  const issuedS = opts.issuedAtS ?? Math.floor(Date.now() / 1000)
  if (!Number.isSafeInteger(issuedS) || issuedS <= 0) throw new Error('issuedAtS must be a positive integer')
  const kind = opts.kind ?? 'admin'
  if (kind === 'system' && opts.memberId !== undefined) throw new Error('A system key has no member id')
  const memberId = BigInt(opts.memberId ?? 0)
  if (memberId < 0n || memberId > 0xffff_ffff_ffff_ffffn) throw new Error('memberId must be a 64-bit unsigned integer')
  const proto: AdminKeyProto = {
    instanceName: null,
    issuedS: BigInt(issuedS),
    identity: kind === 'system' ? { system: true } : { memberId },
    isReadOnly: kind === 'read-only',
  }
  const payload = encodeAdminKeyProto(proto)
  const hex = opts.legacy ? sealLegacy(secret, payload, opts.nonce) : sealCurrent(secret, payload, opts.nonce)
  return `${instanceName}|${hex}`
}

/**
 * Drops the deployment type Convex's dashboard and CLI put before a key's name, as Convex does:
 * `prod:NAME|…` → `NAME|…`; for `preview:…|REST` and `project:…|REST`, just REST (the name is
 * then in the sealed payload).
 */
export function removeTypePrefix(key: string): string {
  const bar = key.indexOf('|')
  if (bar < 0) return key
  const prefix = key.slice(0, bar)
  const colon = prefix.indexOf(':')
  if (colon < 0) return key
  const type = prefix.slice(0, colon).toLowerCase()
  if (type === 'preview' || type === 'project') return key.slice(bar + 1)
  return key.slice(colon + 1)
}

/**
 * Checks an admin key against this instance's name and secret. Takes Convex's keys in both its
 * formats, with or without a `TYPE:` before the name (or without the name, when the payload has
 * it), and the keys of Concave's first builds. Never throws.
 */
export function verifyAdminKey(key: string, instanceName: string, instanceSecretHex: string): AdminKeyVerification {
  const fail = (reason: string): AdminKeyVerification => ({ ok: false, reason })
  if (typeof key !== 'string' || key === '') return fail('empty admin key')
  const stripped = removeTypePrefix(key)
  const bar = stripped.indexOf('|')
  let name: string | null = null
  let hex = stripped
  if (bar >= 0) {
    const prefix = stripped.slice(0, bar)
    const colon = prefix.indexOf(':')
    name = colon < 0 ? prefix : prefix.slice(colon + 1)
    hex = stripped.slice(bar + 1)
    if (name !== instanceName) return fail('admin key is for a different instance')
  }
  if (!HEX.test(hex)) return fail(bar < 0 ? "malformed admin key: missing '|'" : 'malformed admin key: not hex')
  const bytes = new Uint8Array(Buffer.from(hex, 'hex'))
  if (bytes.length < MIN_KEY_BYTES) return fail('malformed admin key: too short')

  let secret: Uint8Array
  try {
    secret = parseInstanceSecret(instanceSecretHex)
  } catch (e) {
    return fail(`invalid instance secret: ${(e as Error).message}`)
  }

  const current = openCurrent(secret, bytes)
  const legacy = current === null ? openLegacy(secret, bytes) : null
  const payload = current ?? legacy
  if (payload !== null) {
    let proto: AdminKeyProto
    try {
      proto = decodeAdminKeyProto(payload)
    } catch {
      return fail('malformed admin key payload')
    }
    const keyName = name ?? proto.instanceName
    if (keyName === null) return fail("malformed admin key: missing '|'")
    if (keyName !== instanceName) return fail('admin key is for a different instance')
    if (proto.issuedS === 0n) return fail('malformed admin key payload: no issue time')
    if (proto.identity === null) return fail('malformed admin key payload: no identity')
    const format: AdminKeyFormat = current !== null ? 'convex' : 'convex-legacy'
    const issuedAtMs = Number(proto.issuedS) * 1000
    if ('system' in proto.identity) return { ok: true, kind: 'system', format, issuedAtMs, memberId: null }
    return { ok: true, kind: proto.isReadOnly ? 'read-only' : 'admin', format, issuedAtMs, memberId: String(proto.identity.memberId) }
  }
  if (name !== null) {
    const v1 = openV1(name, secret, bytes)
    if (v1 !== null) return 'reason' in v1 ? fail(v1.reason) : { ok: true, kind: 'admin', format: 'concave-v1', issuedAtMs: v1.issuedAtMs, memberId: null }
  }
  return fail(bar < 0 ? "malformed admin key: missing '|'" : 'admin key authentication failed')
}

/**
 * Splits an admin authorization value `[TYPE:]NAME|HEX[:ACTING_AS]` into the admin key (its type
 * prefix dropped) and the optional "acting as" identity, as Convex reads the header: the first `:`
 * once the type prefix is gone separates them.
 */
export function splitAdminAuthorization(value: string): { adminKey: string; actingAs?: string } {
  const key = removeTypePrefix(value)
  const colon = key.indexOf(':')
  if (colon < 0) return { adminKey: key }
  const actingAs = key.slice(colon + 1)
  return actingAs === '' ? { adminKey: key.slice(0, colon) } : { adminKey: key.slice(0, colon), actingAs }
}
