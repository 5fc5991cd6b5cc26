/**
 * @module Auth: user identities from JWTs, as `auth.config.ts` configures them.
 *
 * Providers come from the pushed `auth.config.js` (evaluated with the deployment's environment
 * variables; re-read after a push or an env change): OIDC (`domain` + `applicationID`, keys found
 * through `/.well-known/openid-configuration`) and `customJwt` (`issuer`, `jwks`, `algorithm`,
 * optional `applicationID`). A token must match a provider's issuer and audience, be signed by one
 * of its keys (RS256 or ES256) and be within its validity period.
 */
import { createPublicKey, verify } from 'node:crypto'
import type { JsonWebKey } from 'node:crypto'
import type { JSONValue } from '../values/index.ts'

export type AuthProvider =
  | { type?: undefined; domain: string; applicationID: string }
  | { type: 'customJwt'; issuer: string; jwks: string; algorithm: 'RS256' | 'ES256'; applicationID?: string | null }

/** A verified user identity as `ctx.auth.getUserIdentity()` returns it. */
export type UserIdentity = Record<string, JSONValue> & { tokenIdentifier: string; subject: string; issuer: string }

export class AuthError extends Error {
  override name = 'AuthError'
}

/** How long fetched key sets are reused. */
const JWKS_TTL_MS = 10 * 60 * 1000
/** A token naming a key the cached set lacks refetches it (a rotation), at most this often. */
const UNKNOWN_KID_REFETCH_MS = 1000
/** Clock skew tolerated on exp/nbf, in seconds. */
const LEEWAY_S = 60

const CLAIM_NAMES: Record<string, string> = {
  given_name: 'givenName',
  family_name: 'familyName',
  preferred_username: 'preferredUsername',
  profile: 'profileUrl',
  picture: 'pictureUrl',
  email_verified: 'emailVerified',
  birthdate: 'birthday',
  zoneinfo: 'timezone',
  locale: 'language',
  phone_number: 'phoneNumber',
  phone_number_verified: 'phoneNumberVerified',
  updated_at: 'updatedAt',
}
const REGISTERED = new Set(['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti'])

function b64url(part: string): Buffer {
  return Buffer.from(part, 'base64url')
}

const trimSlash = (s: string) => s.replace(/\/+$/, '')

export class Auth {
  #providers: AuthProvider[] | null = null
  readonly #jwks = new Map<string, { at: number; keys: Promise<JsonWebKey[]> }>()

  constructor(
    /** Reads `auth.config.js`'s default export as JSON (null when there is none). */
    readonly loadConfig: () => string | null,
  ) {}

  /** Forgets the providers (after a push or an environment variable change). */
  invalidate(): void {
    this.#providers = null
  }

  providers(): AuthProvider[] {
    if (this.#providers === null) {
      const json = this.loadConfig()
      const config = json === null ? { providers: [] } : (JSON.parse(json) as { providers?: AuthProvider[] })
      // A provider whose settings are missing (an env var not set yet) can match no token.
      this.#providers = (Array.isArray(config.providers) ? config.providers : []).filter((p) =>
        p?.type === 'customJwt' ? typeof p.issuer === 'string' && typeof p.jwks === 'string' : typeof p?.domain === 'string' && typeof p?.applicationID === 'string',
      )
    }
    return this.#providers
  }

  /** Verifies a JWT and returns the identity it carries; throws AuthError otherwise. */
  async verify(token: string): Promise<UserIdentity> {
    const parts = token.split('.')
    if (parts.length !== 3) throw new AuthError('Could not parse JWT: a token has three dot-separated parts')
    let header: { alg?: string; kid?: string }
    let claims: Record<string, JSONValue>
    try {
      header = JSON.parse(b64url(parts[0]!).toString()) as { alg?: string; kid?: string }
      claims = JSON.parse(b64url(parts[1]!).toString()) as Record<string, JSONValue>
    } catch {
      throw new AuthError('Could not parse JWT: its header or payload is not base64url-encoded JSON')
    }
    const iss = typeof claims.iss === 'string' ? claims.iss : ''
    const aud = Array.isArray(claims.aud) ? claims.aud.map(String) : typeof claims.aud === 'string' ? [claims.aud] : []
    const provider = this.providers().find((p) =>
      p.type === 'customJwt'
        ? trimSlash(p.issuer) === trimSlash(iss) && (p.applicationID == null || aud.includes(p.applicationID))
        : trimSlash(p.domain) === trimSlash(iss) && aud.includes(p.applicationID),
    )
    if (provider === undefined) {
      const configured = this.providers().map((p) => (p.type === 'customJwt' ? `${p.issuer} (aud ${p.applicationID ?? 'any'})` : `${p.domain} (aud ${p.applicationID})`))
      throw new AuthError(`No auth provider found matching the given token (issuer ${JSON.stringify(iss)}, audience ${JSON.stringify(aud)}). Check that your JWT's issuer and audience match one of your configured providers: [${configured.join(', ')}]`)
    }
    const alg = header.alg
    if (alg !== 'RS256' && alg !== 'ES256') throw new AuthError(`Unsupported JWT algorithm ${JSON.stringify(alg)}: only RS256 and ES256 are supported`)
    if (provider.type === 'customJwt' && provider.algorithm !== alg) throw new AuthError(`The token is signed with ${alg}, but the provider expects ${provider.algorithm}`)
    let keys = await this.#keys(provider)
    if (header.kid !== undefined && !keys.some((k) => (k as { kid?: string }).kid === header.kid)) keys = await this.#keys(provider, UNKNOWN_KID_REFETCH_MS)
    const candidates = keys.filter((k) => header.kid === undefined || (k as { kid?: string }).kid === header.kid)
    const data = Buffer.from(`${parts[0]}.${parts[1]}`)
    const signature = b64url(parts[2]!)
    const valid = candidates.some((jwk) => {
      try {
        const key = createPublicKey({ key: jwk, format: 'jwk' })
        return alg === 'RS256' ? verify('RSA-SHA256', data, key, signature) : verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature)
      } catch {
        return false
      }
    })
    if (!valid) throw new AuthError('Could not verify token: the signature does not match any key of the provider')
    const now = Date.now() / 1000
    if (typeof claims.exp !== 'number') throw new AuthError('The JWT has no numeric "exp" claim')
    if (now > claims.exp + LEEWAY_S) throw new AuthError('Token expired: the JWT\'s "exp" is in the past')
    if (typeof claims.nbf === 'number' && now < claims.nbf - LEEWAY_S) throw new AuthError('Token not yet valid: the JWT\'s "nbf" is in the future')
    if (typeof claims.sub !== 'string' || claims.sub === '') throw new AuthError('The JWT has no "sub" claim')
    return identityFromClaims(claims)
  }

  /** The provider's keys, fetched again once the cached set is older than `maxAgeMs`. */
  #keys(provider: AuthProvider, maxAgeMs = JWKS_TTL_MS): Promise<JsonWebKey[]> {
    const source = provider.type === 'customJwt' ? provider.jwks : `${trimSlash(provider.domain)}/.well-known/openid-configuration`
    const cached = this.#jwks.get(source)
    if (cached !== undefined && Date.now() - cached.at < maxAgeMs) return cached.keys
    const keys = (async () => {
      let url = source
      if (provider.type !== 'customJwt') {
        const discovery = (await fetchJson(source)) as { jwks_uri?: string }
        if (typeof discovery.jwks_uri !== 'string') throw new AuthError(`OIDC discovery at ${source} has no jwks_uri`)
        url = discovery.jwks_uri
      }
      const set = (await fetchJson(url)) as { keys?: JsonWebKey[] }
      if (!Array.isArray(set.keys)) throw new AuthError(`The JWKS at ${url} has no "keys"`)
      return set.keys
    })()
    keys.catch(() => this.#jwks.delete(source))
    this.#jwks.set(source, { at: Date.now(), keys })
    return keys
  }
}

async function fetchJson(url: string): Promise<unknown> {
  if (url.startsWith('data:')) {
    const comma = url.indexOf(',')
    const meta = url.slice(5, comma)
    const body = url.slice(comma + 1)
    return JSON.parse(meta.endsWith(';base64') ? Buffer.from(body, 'base64').toString() : decodeURIComponent(body))
  }
  let res: Response
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(10_000) })
  } catch (e) {
    throw new AuthError(`Could not fetch ${url}: ${(e as Error).message}`)
  }
  if (!res.ok) throw new AuthError(`Could not fetch ${url}: HTTP ${res.status}`)
  return res.json()
}

/** Clock skew tolerated on exp/nbf, in ms. */
export const TOKEN_LEEWAY_MS = LEEWAY_S * 1000

/** A JWT's `exp` in ms (read without verifying: for a token `verify` already accepted), or null. */
export function tokenExpiryMs(token: string): number | null {
  try {
    const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as { exp?: unknown }
    return typeof claims.exp === 'number' ? claims.exp * 1000 : null
  } catch {
    return null
  }
}

/** The identity `ctx.auth.getUserIdentity()` returns for verified claims. */
export function identityFromClaims(claims: Record<string, JSONValue>): UserIdentity {
  const identity: Record<string, JSONValue> = {}
  for (const [k, v] of Object.entries(claims)) {
    if (REGISTERED.has(k)) continue
    identity[CLAIM_NAMES[k] ?? k] = v
  }
  const issuer = String(claims.iss ?? '')
  const subject = String(claims.sub ?? '')
  return { ...identity, subject, issuer, tokenIdentifier: `${issuer}|${subject}` }
}

/** The identity an admin key "acts as" (`Convex KEY:BASE64(JSON)`), as Convex derives it. */
export function actingAsIdentity(base64: string): UserIdentity {
  let attrs: Record<string, JSONValue>
  try {
    attrs = JSON.parse(Buffer.from(base64, 'base64').toString()) as Record<string, JSONValue>
  } catch {
    throw new AuthError('Could not parse the identity to act as: expected base64 of a JSON object')
  }
  const subject = String(attrs.subject ?? '')
  const issuer = String(attrs.issuer ?? '')
  return { ...attrs, subject, issuer, tokenIdentifier: typeof attrs.tokenIdentifier === 'string' ? attrs.tokenIdentifier : `${issuer}|${subject}` }
}
