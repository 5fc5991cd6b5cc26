import { describe, expect, it } from 'vitest'
import { issueAdminKey, removeTypePrefix, splitAdminAuthorization, validateInstanceName, verifyAdminKey } from './admin-key.ts'
import { decodeAdminKeyProto, deriveKey, encodeAdminKeyProto } from './convex-format.ts'
import { sealV1 } from './concave-v1.ts'

const NAME = 'my-instance'
const SECRET = '0123456789abcdef'.repeat(4)
const OTHER_SECRET = 'fedcba9876543210'.repeat(4)
const ISSUED_S = 1_700_000_000
const NONCE = new Uint8Array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
const ADMIN = { ok: true, kind: 'admin', format: 'convex', issuedAtMs: ISSUED_S * 1000, memberId: '0' }

const issue = (name = NAME, secret = SECRET) => issueAdminKey(name, secret, { issuedAtS: ISSUED_S })

/**
 * Convex's own development instance (crates/keybroker/dev in Convex's repository): its name, its
 * secret (also the convex CLI's LEGACY_LOCAL_BACKEND_INSTANCE_SECRET) and the admin and system
 * keys Convex's keybroker made for it. Both keys are in the legacy secretbox format; the admin key
 * carries no name before a `|` but in its payload.
 */
const CARNITAS = {
  name: 'carnitas',
  secret: '4361726e697461732c206c69746572616c6c79206d65616e696e6720226c6974',
  adminKey: '0135d8598650f8f5cb0f30c34ec2e2bb62793bc28717c8eb6fb577996d50be5f4281b59181095065c5d0f86a2c31ddbe9b597ec62b47ded69782cd',
  systemKey: 'carnitas|01ec1dc4339bc4a2c653e70016b1e1dea952bcfd707a0cd49c1bddcdfcd4d4a79bb2d6bdfa2f1493a1937cdb71e984c4a7',
}

/**
 * Keys in Convex's current format for the carnitas secret with nonce 000102…0b and issued_s
 * 1700000000, computed outside this code base by following the keybroker crate step by step
 * (Python: hmac for KBKDF-CTR-HMAC-SHA256 of "admin key", `cryptography`'s AESGCMSIV with the
 * version byte as associated data, the AdminKey protobuf encoded by hand in prost's field order).
 */
const VECTORS = {
  derivedKey: 'a7526e1715ea4effa55636bee910d731',
  admin: { proto: '1080e2cfaa061800', hex: '01000102030405060708090a0b1e5c06d46516f3f5fa3e99f5af81a957a2adc6f04983839e' },
  readOnlyMember7: { proto: '1080e2cfaa0618072801', hex: '01000102030405060708090a0b5d076ece241fa139ff1c9d5ce9d725a87b037c3ddfd56cc5b668' },
  system: { proto: '1080e2cfaa062200', hex: '01000102030405060708090a0b1e0050533b39313fd1b0b727eaf2c146a1c4e8cc9eb197c4' },
  /** Name `my-instance`, secret 0123…ef: an admin key, member 0. */
  otherSecretAdmin: '01000102030405060708090a0b4f1a577bcb6da0ff959f57c59b631f7a4844f25e6f6164cb',
}

/** Replaces the hex character at `index` of the key's hex part with a different one. */
function flipHexChar(key: string, index: number): string {
  const bar = key.indexOf('|')
  const hex = key.slice(bar + 1)
  const flipped = hex[index] === '0' ? '1' : '0'
  return `${key.slice(0, bar + 1)}${hex.slice(0, index)}${flipped}${hex.slice(index + 1)}`
}

describe("Convex's key format", () => {
  it('derives the AES key as KBKDF-CTR-HMAC-SHA256 of "admin key"', () => {
    expect(Buffer.from(deriveKey(Buffer.from(CARNITAS.secret, 'hex'), 'admin key')).toString('hex')).toEqual(VECTORS.derivedKey)
  })

  it('encodes the AdminKey protobuf as prost does', () => {
    expect(Buffer.from(encodeAdminKeyProto({ instanceName: null, issuedS: BigInt(ISSUED_S), identity: { memberId: 0n }, isReadOnly: false })).toString('hex')).toEqual(VECTORS.admin.proto)
    expect(Buffer.from(encodeAdminKeyProto({ instanceName: null, issuedS: BigInt(ISSUED_S), identity: { memberId: 7n }, isReadOnly: true })).toString('hex')).toEqual(VECTORS.readOnlyMember7.proto)
    expect(Buffer.from(encodeAdminKeyProto({ instanceName: null, issuedS: BigInt(ISSUED_S), identity: { system: true }, isReadOnly: false })).toString('hex')).toEqual(VECTORS.system.proto)
  })

  it('decodes payloads with the name inside, fields in any order and unknown fields', () => {
    expect(decodeAdminKeyProto(Buffer.from('0a086361726e69746173108186ba8d061800', 'hex'))).toEqual({ instanceName: 'carnitas', issuedS: 1638826753n, identity: { memberId: 0n }, isReadOnly: false })
    // is_read_only before the oneof, an unknown varint field 9 and an unknown fixed32 field 10.
    expect(decodeAdminKeyProto(Buffer.from('28014805' + '5501020304' + '1080e2cfaa061807', 'hex'))).toEqual({ instanceName: null, issuedS: 1700000000n, identity: { memberId: 7n }, isReadOnly: true })
    expect(() => decodeAdminKeyProto(Buffer.from('0a05616263', 'hex'))).toThrow('truncated field')
    expect(() => decodeAdminKeyProto(Buffer.from('1280', 'hex'))).toThrow('wire type')
  })

  it.each([
    ['admin', {}, VECTORS.admin.hex],
    ['read-only, member 7', { kind: 'read-only' as const, memberId: 7 }, VECTORS.readOnlyMember7.hex],
    ['system', { kind: 'system' as const }, VECTORS.system.hex],
  ])('issues the vector for a %s key', (_label, opts, hex) => {
    expect(issueAdminKey(CARNITAS.name, CARNITAS.secret, { issuedAtS: ISSUED_S, nonce: NONCE, ...opts })).toEqual(`carnitas|${hex}`)
  })

  it('verifies the vectors with their meaning', () => {
    const base = { ok: true, format: 'convex', issuedAtMs: ISSUED_S * 1000 }
    expect(verifyAdminKey(`carnitas|${VECTORS.admin.hex}`, CARNITAS.name, CARNITAS.secret)).toEqual({ ...base, kind: 'admin', memberId: '0' })
    expect(verifyAdminKey(`carnitas|${VECTORS.readOnlyMember7.hex}`, CARNITAS.name, CARNITAS.secret)).toEqual({ ...base, kind: 'read-only', memberId: '7' })
    expect(verifyAdminKey(`carnitas|${VECTORS.system.hex}`, CARNITAS.name, CARNITAS.secret)).toEqual({ ...base, kind: 'system', memberId: null })
    expect(verifyAdminKey(`${NAME}|${VECTORS.otherSecretAdmin}`, NAME, SECRET)).toEqual(ADMIN)
  })

  it("accepts Convex's own dev admin key (legacy format, name in the payload) and system key", () => {
    expect(verifyAdminKey(CARNITAS.adminKey, CARNITAS.name, CARNITAS.secret)).toEqual({ ok: true, kind: 'admin', format: 'convex-legacy', issuedAtMs: 1638826753000, memberId: '0' })
    expect(verifyAdminKey(CARNITAS.systemKey, CARNITAS.name, CARNITAS.secret)).toEqual({ ok: true, kind: 'system', format: 'convex-legacy', issuedAtMs: 1693517327000, memberId: null })
    expect(verifyAdminKey(`carnitas|${CARNITAS.adminKey}`, CARNITAS.name, CARNITAS.secret)).toMatchObject({ ok: true, kind: 'admin' })
  })

  it("refuses Convex's dev keys for another name or secret", () => {
    expect(verifyAdminKey(CARNITAS.adminKey, 'tacos', CARNITAS.secret)).toEqual({ ok: false, reason: 'admin key is for a different instance' })
    expect(verifyAdminKey(CARNITAS.systemKey, 'tacos', CARNITAS.secret)).toEqual({ ok: false, reason: 'admin key is for a different instance' })
    expect(verifyAdminKey(CARNITAS.systemKey, CARNITAS.name, SECRET)).toEqual({ ok: false, reason: 'admin key authentication failed' })
    expect(verifyAdminKey(CARNITAS.adminKey, CARNITAS.name, SECRET)).toEqual({ ok: false, reason: "malformed admin key: missing '|'" })
  })

  it.each(['prod', 'dev', 'PROD'])('tolerates a %s: type prefix before the name', (type) => {
    expect(verifyAdminKey(`${type}:${NAME}|${VECTORS.otherSecretAdmin}`, NAME, SECRET)).toEqual(ADMIN)
    expect(verifyAdminKey(`${type}:${CARNITAS.systemKey}`, CARNITAS.name, CARNITAS.secret)).toMatchObject({ ok: true, kind: 'system' })
  })

  it('takes the name from the payload for preview: and project: prefixes', () => {
    expect(verifyAdminKey(`preview:team:project|${CARNITAS.adminKey}`, CARNITAS.name, CARNITAS.secret)).toMatchObject({ ok: true, kind: 'admin' })
    expect(verifyAdminKey(`project:team:project|${CARNITAS.adminKey}`, CARNITAS.name, CARNITAS.secret)).toMatchObject({ ok: true, kind: 'admin' })
    // Without a name anywhere, nothing says which instance the key is for.
    expect(verifyAdminKey(`preview:t:p|${VECTORS.otherSecretAdmin}`, NAME, SECRET)).toEqual({ ok: false, reason: "malformed admin key: missing '|'" })
  })

  it('issues legacy-format keys that verify as such', () => {
    const key = issueAdminKey(NAME, SECRET, { issuedAtS: ISSUED_S, legacy: true })
    expect(key).toMatch(/^my-instance\|01[0-9a-f]{96}$/)
    expect(verifyAdminKey(key, NAME, SECRET)).toEqual({ ...ADMIN, format: 'convex-legacy' })
  })
})

describe('issueAdminKey', () => {
  it("issues NAME|HEX in Convex's current format, a fresh nonce each time", () => {
    const a = issue()
    const b = issue()
    expect(a).toMatch(/^my-instance\|01[0-9a-f]{72}$/)
    expect(a).not.toEqual(b)
  })

  it('defaults the issue time to now', () => {
    const before = Math.floor(Date.now() / 1000) * 1000
    const result = verifyAdminKey(issueAdminKey(NAME, SECRET), NAME, SECRET)
    const after = Date.now()
    if (!result.ok) throw new Error(result.reason)
    expect(result.issuedAtMs).toBeGreaterThanOrEqual(before)
    expect(result.issuedAtMs).toBeLessThanOrEqual(after)
  })

  it('rejects an invalid instance name, secret, issue time or member id', () => {
    expect(() => issueAdminKey('Bad_Name', SECRET)).toThrow(/^Invalid instance name "Bad_Name"/)
    expect(() => issueAdminKey(NAME, 'abc')).toThrow(new Error('Instance secret must be 64 hex characters (32 bytes)'))
    expect(() => issueAdminKey(NAME, SECRET, { issuedAtS: 1.5 })).toThrow(new Error('issuedAtS must be a positive integer'))
    expect(() => issueAdminKey(NAME, SECRET, { issuedAtS: 0 })).toThrow(new Error('issuedAtS must be a positive integer'))
    expect(() => issueAdminKey(NAME, SECRET, { memberId: -1 })).toThrow(new Error('memberId must be a 64-bit unsigned integer'))
    expect(() => issueAdminKey(NAME, SECRET, { kind: 'system', memberId: 3 })).toThrow(new Error('A system key has no member id'))
  })
})

describe('verifyAdminKey', () => {
  it('accepts a key it issued', () => {
    expect(verifyAdminKey(issue(), NAME, SECRET)).toEqual(ADMIN)
  })

  it('accepts uppercase hex', () => {
    const key = issue()
    const bar = key.indexOf('|')
    expect(verifyAdminKey(key.slice(0, bar + 1) + key.slice(bar + 1).toUpperCase(), NAME, SECRET)).toEqual(ADMIN)
  })

  it('refuses a key issued for another instance name', () => {
    expect(verifyAdminKey(issue('other-instance'), NAME, SECRET)).toEqual({ ok: false, reason: 'admin key is for a different instance' })
  })

  it('refuses a key for the same name made with a different secret', () => {
    expect(verifyAdminKey(issue(NAME, OTHER_SECRET), NAME, SECRET)).toEqual({ ok: false, reason: 'admin key authentication failed' })
  })

  it.each([0, 1, 2, 25, 26, 40, -1])('refuses a key with hex char %i flipped', (index) => {
    const key = issue()
    const hexLength = key.length - NAME.length - 1
    const tampered = flipHexChar(key, index < 0 ? hexLength + index : index)
    expect(tampered).not.toEqual(key)
    expect(verifyAdminKey(tampered, NAME, SECRET)).toEqual({ ok: false, reason: 'admin key authentication failed' })
  })

  it('refuses a truncated key', () => {
    const key = issue()
    expect(verifyAdminKey(key.slice(0, -2), NAME, SECRET)).toEqual({ ok: false, reason: 'admin key authentication failed' })
    expect(verifyAdminKey(key.slice(0, NAME.length + 1 + 56), NAME, SECRET)).toEqual({ ok: false, reason: 'malformed admin key: too short' })
    expect(verifyAdminKey(key.slice(0, -1), NAME, SECRET)).toEqual({ ok: false, reason: 'malformed admin key: not hex' })
  })

  it.each([
    ['', 'empty admin key'],
    ['garbage', "malformed admin key: missing '|'"],
    [`${NAME}`, "malformed admin key: missing '|'"],
    [`${NAME}|`, 'malformed admin key: not hex'],
    [`${NAME}|xyz0`, 'malformed admin key: not hex'],
    [`${NAME}|${'ab'.repeat(24)}`, 'malformed admin key: too short'],
    [`${NAME}|${'ab'.repeat(100)}`, 'admin key authentication failed'],
    [`|${'ab'.repeat(100)}`, 'admin key is for a different instance'],
    [`other|${'ab'.repeat(100)}`, 'admin key is for a different instance'],
    [`${NAME}x|${'ab'.repeat(100)}`, 'admin key is for a different instance'],
  ])('refuses garbage %j', (key, reason) => {
    expect(verifyAdminKey(key, NAME, SECRET)).toEqual({ ok: false, reason })
  })

  it('reports an invalid instance secret instead of throwing', () => {
    expect(verifyAdminKey(issue(), NAME, 'nope')).toEqual({ ok: false, reason: 'invalid instance secret: Instance secret must be 64 hex characters (32 bytes)' })
  })
})

describe("keys of Concave's first builds", () => {
  const secret = Buffer.from(SECRET, 'hex')
  const V1 = { ok: true, kind: 'admin', format: 'concave-v1', issuedAtMs: 1_700_000_000_123, memberId: null }
  const payload = (fields: Record<string, unknown>) => JSON.stringify({ v: 1, iat: 1_700_000_000_123, kid: 'k1', name: NAME, ...fields })

  it('still verify, as full admin keys', () => {
    expect(verifyAdminKey(sealV1(NAME, secret, payload({})), NAME, SECRET)).toEqual(V1)
    expect(verifyAdminKey(`prod:${sealV1(NAME, secret, payload({}))}`, NAME, SECRET)).toEqual(V1)
  })

  it('are refused for another name, secret or relabelled', () => {
    expect(verifyAdminKey(sealV1(NAME, Buffer.from(OTHER_SECRET, 'hex'), payload({})), NAME, SECRET)).toEqual({ ok: false, reason: 'admin key authentication failed' })
    const forged = sealV1('other-instance', secret, payload({ name: 'other-instance' })).replace(/^other-instance\|/, `${NAME}|`)
    expect(verifyAdminKey(forged, NAME, SECRET)).toEqual({ ok: false, reason: 'admin key authentication failed' })
  })

  it.each([
    ['non-JSON', 'not json', 'malformed admin key payload'],
    ['JSON null', 'null', 'malformed admin key payload'],
    ['wrong version', payload({ v: 2 }), 'malformed admin key payload'],
    ['missing kid', payload({ kid: undefined }), 'malformed admin key payload'],
    ['mismatched payload name', payload({ name: 'other' }), 'admin key payload is for a different instance'],
  ])('with a %s payload are refused', (_label, body, reason) => {
    expect(verifyAdminKey(sealV1(NAME, secret, body), NAME, SECRET)).toEqual({ ok: false, reason })
  })
})

describe('splitAdminAuthorization', () => {
  it.each([
    ['name|abcdef', { adminKey: 'name|abcdef' }],
    ['name|abcdef:eyJzdWIiOiIxIn0=', { adminKey: 'name|abcdef', actingAs: 'eyJzdWIiOiIxIn0=' }],
    ['name|abcdef:a:b', { adminKey: 'name|abcdef', actingAs: 'a:b' }],
    ['name|abcdef:', { adminKey: 'name|abcdef' }],
    ['prod:name|abcdef', { adminKey: 'name|abcdef' }],
    ['prod:name|abcdef:xyz', { adminKey: 'name|abcdef', actingAs: 'xyz' }],
    ['preview:team:proj|abcdef:xyz', { adminKey: 'abcdef', actingAs: 'xyz' }],
    ['abcdef:xyz', { adminKey: 'abcdef', actingAs: 'xyz' }],
    ['', { adminKey: '' }],
  ])('splits %j', (value, expected) => {
    expect(splitAdminAuthorization(value)).toEqual(expected)
  })

  it('yields a key that still verifies', () => {
    const { adminKey, actingAs } = splitAdminAuthorization(`prod:${issue()}:aWRlbnRpdHk=`)
    expect(actingAs).toEqual('aWRlbnRpdHk=')
    expect(verifyAdminKey(adminKey, NAME, SECRET)).toEqual(ADMIN)
  })

  it('removeTypePrefix leaves a key without a type alone', () => {
    expect(removeTypePrefix('name|abc')).toEqual('name|abc')
    expect(removeTypePrefix('abc')).toEqual('abc')
  })
})

describe('validateInstanceName', () => {
  it.each(['a', 'convex-self-hosted', 'a1-b2', 'a'.repeat(64)])('accepts %j', (name) => {
    expect(validateInstanceName(name)).toBeUndefined()
  })

  it.each(['', '1abc', '-abc', 'Abc', 'a_b', 'a|b', 'a b', 'a'.repeat(65)])('rejects %j', (name) => {
    expect(() => validateInstanceName(name)).toThrow(
      new Error(`Invalid instance name ${JSON.stringify(name)}: must be 1-64 characters of lowercase letters, digits and dashes, starting with a letter`),
    )
  })
})
