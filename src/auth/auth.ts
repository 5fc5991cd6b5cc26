/**
 * @module Auth: user identities from JWTs, as `auth.config.ts` configures them.
 *
 * Providers come from the pushed `auth.config.js` (evaluated with the deployment's environment
 * variables; re-read after a push or an env change): OIDC (`domain` + `applicationID`, keys found
 * through `/.well-known/openid-configuration`) and `customJwt` (`issuer`, `jwks`, `algorithm`,
 * optional `applicationID`). A token must match a provider's issuer and audience, be signed by one
 * of its keys (custom JWTs: the provider's RS256 or ES256; OIDC ID tokens: RS256 or EdDSA, with
 * `iat` and exactly one audience) and be within its validity period (5 s of clock skew allowed).
 * Checks and error messages follow Convex's (crates/authentication in convex-backend).
 */
import { createPublicKey, verify } from 'node:crypto'
import type { JsonWebKey } from 'node:crypto'
import type { JSONValue } from '../values/index.ts'

export type AuthProvider =
  | { type?: undefined; domain: string; applicationID: string }
  | { type: 'customJwt'; issuer: string; jwks: string; algorithm: 'RS256' | 'ES256'; applicationID?: string | null }

/** A verified user identity as `ctx.auth.getUserIdentity()` returns it. */
export type UserIdentity = Record<string, JSONValue> & { tokenIdentifier: string; subject: string; issuer: string }

/** A refused token: `code` is Convex's error code (InvalidAuthHeader, NoAuthProvider, Unauthenticated). */
export class AuthError extends Error {
  override name = 'AuthError'
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

/** How long fetched key sets are reused. */
const JWKS_TTL_MS = 10 * 60 * 1000
/** A token naming a key the cached set lacks refetches it (a rotation), at most this often. */
const UNKNOWN_KID_REFETCH_MS = 1000
/** Clock skew tolerated on exp/nbf, in seconds (Convex's customJwt validation epsilon). */
const CUSTOM_JWT_LEEWAY_S = 5

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
/** A custom JWT's issuer compares with `https://` added when it has no protocol. */
const withProtocol = (s: string) => (s.startsWith('https://') || s.startsWith('http://') ? s : `https://${s}`)

function noProviderMessage(providers: AuthProvider[]): string {
  if (providers.length === 0) return 'No auth provider found matching the given token (no providers configured). Check convex/auth.config.ts.'
  const configured = providers.map((p) => (p.type === 'customJwt' ? `CustomJWT(issuer=${p.issuer}, app_id=${p.applicationID ?? 'none'})` : `OIDC(domain=${p.domain}, app_id=${p.applicationID})`))
  return `No auth provider found matching the given token. Check that your JWT's issuer and audience match one of your configured providers: [${configured.join(', ')}]`
}

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

  /**
   * Verifies a JWT and returns the identity it carries; throws AuthError otherwise, with Convex's
   * codes and messages (crates/authentication): `InvalidAuthHeader` for a malformed or
   * unverifiable token, `NoAuthProvider` when no provider matches its issuer and audience, and
   * `Unauthenticated` when an OIDC token fails verification.
   */
  async verify(token: string): Promise<UserIdentity> {
    const parts = token.split('.')
    let header: { alg?: string; kid?: string }
    let claims: Record<string, JSONValue>
    try {
      if (parts.length !== 3) throw new Error('not three parts')
      header = JSON.parse(b64url(parts[0]!).toString()) as { alg?: string; kid?: string }
      claims = JSON.parse(b64url(parts[1]!).toString()) as Record<string, JSONValue>
      if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) throw new Error('not an object')
    } catch {
      throw new AuthError('InvalidAuthHeader', 'Could not parse JWT payload. Check that the token is a valid JWT format with three base64-encoded parts separated by dots.')
    }
    if (typeof claims.iss !== 'string') {
      throw new AuthError('InvalidAuthHeader', "Missing issuer claim ('iss') in JWT payload. The JWT must include an 'iss' claim that matches one of your configured auth providers.")
    }
    const iss = claims.iss
    const aud = Array.isArray(claims.aud) ? claims.aud.map(String) : typeof claims.aud === 'string' ? [claims.aud] : []
    const providers = this.providers()
    const provider = providers.find((p) =>
      p.type === 'customJwt'
        ? trimSlash(withProtocol(p.issuer)) === trimSlash(withProtocol(iss)) && (p.applicationID == null || aud.includes(p.applicationID))
        : trimSlash(p.domain) === trimSlash(iss) && aud.includes(p.applicationID),
    )
    if (provider === undefined) throw new AuthError('NoAuthProvider', noProviderMessage(providers))
    const data = Buffer.from(`${parts[0]}.${parts[1]}`)
    const signature = b64url(parts[2]!)
    const now = Date.now() / 1000
    if (provider.type === 'customJwt') {
      // Signed with the provider's algorithm by a key of its set (refetched once for an unknown kid).
      const decodeError = () =>
        new AuthError(
          'InvalidAuthHeader',
          header.kid === undefined ? "Could not decode token. JWT may be missing a 'kid' (key ID) header." : `Could not decode token. The JWT's 'kid' (key ID) header is '${header.kid}', does this key match any key in the provider's JWKS?`,
        )
      if (header.alg !== provider.algorithm) throw decodeError()
      if (!(await this.#signedByProvider(provider, header, data, signature))) throw decodeError()
      const expired = typeof claims.exp === 'number' && now > claims.exp + CUSTOM_JWT_LEEWAY_S
      const early = typeof claims.nbf === 'number' && now < claims.nbf - CUSTOM_JWT_LEEWAY_S
      if (expired || early) throw new AuthError('InvalidAuthHeader', `Could not validate token: ${expired ? 'Token expired' : 'Token not yet valid'}`)
      // Convex's identity needs a subject and an expiry (UserIdentity::from_custom_jwt).
      if (typeof claims.sub !== 'string' || claims.sub === '' || typeof claims.exp !== 'number') {
        throw new AuthError('InvalidAuthHeader', 'Could not verify token claim. Check that the JWT contains valid claims and matches your auth provider configuration.')
      }
      return identityFromClaims(claims)
    }
    // An OIDC ID token: RS256 or EdDSA, exactly its application as audience, issued and unexpired.
    const oidcFailure = () => new AuthError('Unauthenticated', "Could not verify OIDC token claim. Check that the token signature is valid and the token hasn't expired.")
    if (header.alg !== 'RS256' && header.alg !== 'EdDSA') throw oidcFailure()
    if (aud.length !== 1 || typeof claims.iat !== 'number' || typeof claims.exp !== 'number' || now > claims.exp + CUSTOM_JWT_LEEWAY_S) throw oidcFailure()
    if (typeof claims.sub !== 'string' || claims.sub === '') throw oidcFailure()
    if (!(await this.#signedByProvider(provider, header, data, signature))) throw oidcFailure()
    return identityFromClaims(claims)
  }

  /** Whether a key of the provider's set (matching the token's kid, if any) made `signature`. */
  async #signedByProvider(provider: AuthProvider, header: { alg?: string; kid?: string }, data: Buffer, signature: Buffer): Promise<boolean> {
    let keys = await this.#keys(provider)
    if (header.kid !== undefined && !keys.some((k) => (k as { kid?: string }).kid === header.kid)) keys = await this.#keys(provider, UNKNOWN_KID_REFETCH_MS)
    return keys
      .filter((k) => header.kid === undefined || (k as { kid?: string }).kid === header.kid)
      .some((jwk) => {
        try {
          const key = createPublicKey({ key: jwk, format: 'jwk' })
          if (header.alg === 'RS256') return verify('RSA-SHA256', data, key, signature)
          if (header.alg === 'ES256') return verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature)
          if (header.alg === 'EdDSA') return verify(null, data, key, signature)
          return false
        } catch {
          return false
        }
      })
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
        if (typeof discovery.jwks_uri !== 'string') throw new AuthError('AuthProviderDiscoveryFailed', `Auth provider discovery of ${trimSlash(provider.domain)} failed: no jwks_uri`)
        url = discovery.jwks_uri
      }
      const set = (await fetchJson(url)) as { keys?: JsonWebKey[] }
      if (!Array.isArray(set.keys)) throw new AuthError('InvalidAuthHeader', `Invalid JWKS response body from '${url}'. The response is not valid JSON or doesn't match the expected JWKS format.`)
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
    throw new AuthError('InvalidAuthHeader', `Could not fetch JWKS from URL '${url}': ${(e as Error).message}. Check that the URL is correct and accessible.`)
  }
  if (!res.ok) throw new AuthError('InvalidAuthHeader', `Could not fetch JWKS from URL '${url}': HTTP ${res.status} ${res.statusText}. Check that the URL is correct and accessible.`)
  try {
    return await res.json()
  } catch {
    throw new AuthError('InvalidAuthHeader', `Invalid JWKS response body from '${url}'. The response is not valid JSON or doesn't match the expected JWKS format.`)
  }
}

/** Clock skew tolerated on exp/nbf, in ms. */
export const TOKEN_LEEWAY_MS = CUSTOM_JWT_LEEWAY_S * 1000

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
    throw new AuthError('BadAdminKey', 'Could not parse the identity to act as: expected base64 of a JSON object')
  }
  const subject = String(attrs.subject ?? '')
  const issuer = String(attrs.issuer ?? '')
  return { ...attrs, subject, issuer, tokenIdentifier: typeof attrs.tokenIdentifier === 'string' ? attrs.tokenIdentifier : `${issuer}|${subject}` }
}
