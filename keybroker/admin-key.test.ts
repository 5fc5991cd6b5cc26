import { createHash, randomBytes } from 'node:crypto'
import nacl from 'tweetnacl'
import { describe, expect, it } from 'vitest'
import { issueAdminKey, splitAdminAuthorization, validateInstanceName, verifyAdminKey } from './admin-key.ts'

const NAME = 'my-instance'
const SECRET = '0123456789abcdef'.repeat(4)
const OTHER_SECRET = 'fedcba9876543210'.repeat(4)
const ISSUED_AT = 1_700_000_000_000
const VALID = { ok: true, keyId: 'k1', issuedAtMs: ISSUED_AT }

const issue = (name = NAME, secret = SECRET) => issueAdminKey(name, secret, { keyId: 'k1', issuedAtMs: ISSUED_AT })

/** Replaces the hex character at `index` of the key's hex part with a different one. */
function flipHexChar(key: string, index: number): string {
  const bar = key.indexOf('|')
  const hex = key.slice(bar + 1)
  const flipped = hex[index] === '0' ? '1' : '0'
  return `${key.slice(0, bar + 1)}${hex.slice(0, index)}${flipped}${hex.slice(index + 1)}`
}

/** Seals arbitrary payload bytes exactly as the key format specifies, for crafting keys. */
function seal(name: string, payload: string | Uint8Array, secretHex = SECRET): string {
  const key = createHash('sha256')
    .update(
      Buffer.concat([
        Buffer.from('concave-admin-key-v1'),
        Buffer.from([0]),
        Buffer.from(name),
        Buffer.from([0]),
        Buffer.from(secretHex, 'hex'),
      ]),
    )
    .digest()
  const nonce = new Uint8Array(randomBytes(24))
  const bytes = typeof payload === 'string' ? new TextEncoder().encode(payload) : payload
  const box = nacl.secretbox(bytes, nonce, new Uint8Array(key))
  return `${name}|${Buffer.concat([nonce, box]).toString('hex')}`
}

describe('issueAdminKey', () => {
  it('produces NAME|HEX with nonce, MAC and payload', () => {
    const key = issue()
    const payload = JSON.stringify({ v: 1, iat: ISSUED_AT, kid: 'k1', name: NAME })
    // 24-byte nonce + 16-byte MAC + payload bytes, hex-encoded.
    expect(key).toMatch(/^my-instance\|[0-9a-f]+$/)
    expect(key.length).toEqual(NAME.length + 1 + 2 * (24 + 16 + payload.length))
  })

  it('uses a fresh nonce for every key', () => {
    expect(issue()).not.toEqual(issue())
  })

  it('defaults keyId to 8 random hex chars and issuedAtMs to now', () => {
    const before = Date.now()
    const result = verifyAdminKey(issueAdminKey(NAME, SECRET), NAME, SECRET)
    const after = Date.now()
    if (!result.ok) throw new Error(result.reason)
    expect(result.keyId).toMatch(/^[0-9a-f]{8}$/)
    expect(result.issuedAtMs).toBeGreaterThanOrEqual(before)
    expect(result.issuedAtMs).toBeLessThanOrEqual(after)
  })

  it('rejects an invalid instance name, secret or issuedAtMs', () => {
    expect(() => issueAdminKey('Bad_Name', SECRET)).toThrow(/^Invalid instance name "Bad_Name"/)
    expect(() => issueAdminKey(NAME, 'abc')).toThrow(new Error('Instance secret must be 64 hex characters (32 bytes)'))
    expect(() => issueAdminKey(NAME, SECRET, { issuedAtMs: 1.5 })).toThrow(
      new Error('issuedAtMs must be a non-negative integer'),
    )
  })
})

describe('verifyAdminKey', () => {
  it('accepts a key it issued', () => {
    expect(verifyAdminKey(issue(), NAME, SECRET)).toEqual(VALID)
  })

  it('accepts uppercase hex', () => {
    const key = issue()
    const bar = key.indexOf('|')
    const upper = key.slice(0, bar + 1) + key.slice(bar + 1).toUpperCase()
    expect(verifyAdminKey(upper, NAME, SECRET)).toEqual(VALID)
  })

  it('refuses a key issued for another instance name', () => {
    expect(verifyAdminKey(issue('other-instance'), NAME, SECRET)).toEqual({
      ok: false,
      reason: 'admin key is for a different instance',
    })
  })

  it('refuses a key for another instance name relabelled with this name (domain separation)', () => {
    const forged = issue('other-instance').replace(/^other-instance\|/, `${NAME}|`)
    expect(verifyAdminKey(forged, NAME, SECRET)).toEqual({
      ok: false,
      reason: 'admin key authentication failed',
    })
  })

  it('refuses a key for the same name made with a different secret', () => {
    expect(verifyAdminKey(issue(NAME, OTHER_SECRET), NAME, SECRET)).toEqual({
      ok: false,
      reason: 'admin key authentication failed',
    })
  })

  it.each([0, 47, 48, 80, 100, -1])('refuses a key with hex char %i flipped', (index) => {
    const key = issue()
    const hexLength = key.length - NAME.length - 1
    const tampered = flipHexChar(key, index < 0 ? hexLength + index : index)
    expect(tampered).not.toEqual(key)
    expect(verifyAdminKey(tampered, NAME, SECRET)).toEqual({
      ok: false,
      reason: 'admin key authentication failed',
    })
  })

  it('refuses a truncated key', () => {
    const key = issue()
    expect(verifyAdminKey(key.slice(0, -2), NAME, SECRET)).toEqual({
      ok: false,
      reason: 'admin key authentication failed',
    })
    expect(verifyAdminKey(key.slice(0, NAME.length + 1 + 80), NAME, SECRET)).toEqual({
      ok: false,
      reason: 'malformed admin key: too short',
    })
    expect(verifyAdminKey(key.slice(0, -1), NAME, SECRET)).toEqual({
      ok: false,
      reason: 'malformed admin key: not hex',
    })
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

  it('accepts a key sealed per the documented derivation', () => {
    const payload = JSON.stringify({ v: 1, iat: ISSUED_AT, kid: 'k1', name: NAME })
    expect(verifyAdminKey(seal(NAME, payload), NAME, SECRET)).toEqual(VALID)
  })

  it.each([
    ['non-JSON', 'not json', 'malformed admin key payload'],
    [
      'invalid UTF-8',
      Buffer.concat([
        Buffer.from(`{"v":1,"iat":${ISSUED_AT},"kid":"`),
        Buffer.from([0xff]),
        Buffer.from(`","name":"${NAME}"}`),
      ]),
      'malformed admin key payload',
    ],
    ['JSON null', 'null', 'malformed admin key payload'],
    ['wrong version', JSON.stringify({ v: 2, iat: ISSUED_AT, kid: 'k1', name: NAME }), 'malformed admin key payload'],
    ['non-integer iat', JSON.stringify({ v: 1, iat: '1', kid: 'k1', name: NAME }), 'malformed admin key payload'],
    ['missing kid', JSON.stringify({ v: 1, iat: ISSUED_AT, name: NAME }), 'malformed admin key payload'],
    [
      'mismatched payload name',
      JSON.stringify({ v: 1, iat: ISSUED_AT, kid: 'k1', name: 'other' }),
      'admin key payload is for a different instance',
    ],
  ])('refuses a correctly sealed key with %s payload', (_label, payload, reason) => {
    expect(verifyAdminKey(seal(NAME, payload), NAME, SECRET)).toEqual({ ok: false, reason })
  })

  it('reports an invalid instance secret instead of throwing', () => {
    expect(verifyAdminKey(issue(), NAME, 'nope')).toEqual({
      ok: false,
      reason: 'invalid instance secret: Instance secret must be 64 hex characters (32 bytes)',
    })
  })
})

describe('splitAdminAuthorization', () => {
  it.each([
    ['name|abcdef', { adminKey: 'name|abcdef' }],
    ['name|abcdef:eyJzdWIiOiIxIn0=', { adminKey: 'name|abcdef', actingAs: 'eyJzdWIiOiIxIn0=' }],
    ['name|abcdef:a:b', { adminKey: 'name|abcdef', actingAs: 'a:b' }],
    ['name|abcdef:', { adminKey: 'name|abcdef' }],
    ['prod:name|abcdef', { adminKey: 'prod:name|abcdef' }],
    ['prod:name|abcdef:xyz', { adminKey: 'prod:name|abcdef', actingAs: 'xyz' }],
    ['no-bar:xyz', { adminKey: 'no-bar:xyz' }],
    ['', { adminKey: '' }],
  ])('splits %j', (value, expected) => {
    expect(splitAdminAuthorization(value)).toEqual(expected)
  })

  it('yields a key that still verifies', () => {
    const key = issue()
    const { adminKey, actingAs } = splitAdminAuthorization(`${key}:aWRlbnRpdHk=`)
    expect(actingAs).toEqual('aWRlbnRpdHk=')
    expect(verifyAdminKey(adminKey, NAME, SECRET)).toEqual(VALID)
  })
})

describe('validateInstanceName', () => {
  it.each(['a', 'convex-self-hosted', 'a1-b2', 'a'.repeat(64)])('accepts %j', (name) => {
    expect(validateInstanceName(name)).toBeUndefined()
  })

  it.each(['', '1abc', '-abc', 'Abc', 'a_b', 'a|b', 'a b', 'a'.repeat(65)])('rejects %j', (name) => {
    expect(() => validateInstanceName(name)).toThrow(
      new Error(
        `Invalid instance name ${JSON.stringify(name)}: must be 1-64 characters of ` +
          'lowercase letters, digits and dashes, starting with a letter',
      ),
    )
  })
})
