/**
 * @module `ctx.auth.signJwt` (convex ≥ 1.48, mutations only): an ES256 JWT signed with the
 * deployment's key (keybroker/jwt-key.ts). The caller gives the claims and a lifetime of 1 s to
 * 1 h; the header and `iss`, `iat`, `exp` are ours. `iss` is the deployment's URL, or
 * `<url>/components/<path>` for a component. Reserved claims (`iss`, `iat`, `exp`, `nbf`, and
 * names starting with `convex` or `cvx` in any case) are refused, as the convex package documents.
 */
import { sign } from 'node:crypto'
import type { DeploymentSigningKey } from '../../keybroker/jwt-key.ts'

const MAX_LIFETIME_S = 60 * 60
const RESERVED = new Set(['iss', 'iat', 'exp', 'nbf'])

export class SignJwtError extends Error {}

export interface SignJwtRequest {
  claims?: unknown
  expiresInSeconds?: unknown
}

export function signDeploymentJwt(key: DeploymentSigningKey, issuer: string, request: SignJwtRequest, nowMs: number): string {
  const { expiresInSeconds, claims = {} } = request
  if (typeof expiresInSeconds !== 'number' || !Number.isFinite(expiresInSeconds) || expiresInSeconds < 1 || expiresInSeconds > MAX_LIFETIME_S) {
    throw new SignJwtError(`Invalid argument \`expiresInSeconds\` for \`signJwt\`: must be a number of seconds from 1 to ${MAX_LIFETIME_S}, got ${JSON.stringify(expiresInSeconds) ?? String(expiresInSeconds)}`)
  }
  if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) {
    throw new SignJwtError('Invalid argument `claims` for `signJwt`: must be an object')
  }
  for (const name of Object.keys(claims)) {
    if (RESERVED.has(name) || /^(convex|cvx)/i.test(name)) throw new SignJwtError(`Invalid argument \`claims\` for \`signJwt\`: the claim "${name}" is reserved`)
  }
  const iat = Math.floor(nowMs / 1000)
  const header = { alg: 'ES256', typ: 'JWT', kid: key.publicJwk.kid }
  const payload = { ...(claims as Record<string, unknown>), iss: issuer, iat, exp: iat + Math.floor(expiresInSeconds) }
  const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`
  const signature = sign('sha256', Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' })
  return `${input}.${signature.toString('base64url')}`
}
