/**
 * @module The deployment's own JWT signing key (`ctx.auth.signJwt`, convex ≥ 1.48): an ES256
 * (P-256) key pair derived from the instance secret, so every process serving the deployment (on
 * one Postgres, say) and every restart signs with the same key, and nothing needs storing. The
 * public half is served as a JWKS at `/.well-known/jwks.json`.
 */
import { createECDH, createHash, createHmac, createPrivateKey } from 'node:crypto'
import type { KeyObject } from 'node:crypto'

/** The order of P-256's base point: a private scalar must lie in [1, n-1]. */
const P256_ORDER = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551')

export interface PublicJwk {
  readonly kty: 'EC'
  readonly crv: 'P-256'
  readonly x: string
  readonly y: string
  readonly kid: string
  readonly alg: 'ES256'
  readonly use: 'sig'
}

export interface DeploymentSigningKey {
  readonly privateKey: KeyObject
  readonly publicJwk: PublicJwk
}

const b64url = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url')

/** Derives the deployment's signing key from its instance secret (hex). */
export function deploymentSigningKey(instanceSecretHex: string): DeploymentSigningKey {
  const secret = Buffer.from(instanceSecretHex, 'hex')
  for (let counter = 1; ; counter++) {
    // HMAC-SHA256 in counter mode, as the admin keys' derivation; a candidate out of range (odds
    // about 2^-32) moves to the next counter.
    const d = createHmac('sha256', secret).update(Buffer.from([0, 0, 0, counter])).update('concave ES256 deployment JWT signing key', 'utf8').digest()
    const scalar = BigInt(`0x${d.toString('hex')}`)
    if (scalar === 0n || scalar >= P256_ORDER) continue
    const ecdh = createECDH('prime256v1')
    ecdh.setPrivateKey(d)
    const point = ecdh.getPublicKey() // 0x04 || x || y
    const x = b64url(point.subarray(1, 33))
    const y = b64url(point.subarray(33, 65))
    const privateKey = createPrivateKey({ key: { kty: 'EC', crv: 'P-256', d: b64url(d), x, y }, format: 'jwk' })
    // The RFC 7638 thumbprint: the required members in lexicographic order.
    const kid = createHash('sha256').update(JSON.stringify({ crv: 'P-256', kty: 'EC', x, y })).digest('base64url')
    return { privateKey, publicJwk: { kty: 'EC', crv: 'P-256', x, y, kid, alg: 'ES256', use: 'sig' } }
  }
}
