import { expect, test } from 'vitest'
import { createPublicKey, verify } from 'node:crypto'
import { deploymentSigningKey } from './jwt-key.ts'
import { signDeploymentJwt } from '../src/auth/sign-jwt.ts'

const SECRET = '4361726e697461732c206c69746572616c6c79206d65616e696e6720226c6974'
const OTHER = 'ab'.repeat(32)

test('the signing key is derived from the instance secret: the same for every process and restart, another for another secret', () => {
  const a = deploymentSigningKey(SECRET)
  const b = deploymentSigningKey(SECRET)
  expect(b.publicJwk).toEqual(a.publicJwk)
  expect(deploymentSigningKey(OTHER).publicJwk.kid).not.toBe(a.publicJwk.kid)
  expect(Object.keys(a.publicJwk).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y'])
  expect([a.publicJwk.kty, a.publicJwk.crv, a.publicJwk.alg, a.publicJwk.use]).toEqual(['EC', 'P-256', 'ES256', 'sig'])
  // 32-byte coordinates, base64url without padding.
  expect(Buffer.from(a.publicJwk.x, 'base64url')).toHaveLength(32)
  expect(Buffer.from(a.publicJwk.y, 'base64url')).toHaveLength(32)
})

test('a token verifies with the public JWK, names the issuer, and lasts what was asked', () => {
  const key = deploymentSigningKey(SECRET)
  const token = signDeploymentJwt(key, 'http://127.0.0.1:3210/components/pool', { claims: { sub: 'u' }, expiresInSeconds: 90.7 }, 1_700_000_000_999)
  const [h, p, s] = token.split('.') as [string, string, string]
  expect(JSON.parse(Buffer.from(h, 'base64url').toString())).toEqual({ alg: 'ES256', typ: 'JWT', kid: key.publicJwk.kid })
  expect(JSON.parse(Buffer.from(p, 'base64url').toString())).toEqual({ sub: 'u', iss: 'http://127.0.0.1:3210/components/pool', iat: 1_700_000_000, exp: 1_700_000_090 })
  const publicKey = createPublicKey({ key: { ...key.publicJwk }, format: 'jwk' })
  expect(verify('sha256', Buffer.from(`${h}.${p}`), { key: publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url'))).toBe(true)
  expect(verify('sha256', Buffer.from(`${h}.${p}x`), { key: publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url'))).toBe(false)
})
