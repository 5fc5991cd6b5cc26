/**
 * @module Auth: user identities from JWTs, as `auth.config.ts` configures them.
 *
 * Providers come from the pushed `auth.config.js` (evaluated with the deployment's environment
 * variables; re-read after a push or an env change): OIDC (`domain` + `applicationID`, keys found
 * through `/.well-known/openid-configuration`) and `customJwt` (`issuer`, `jwks`, `algorithm`,
 * optional `applicationID`). A token must match a provider's issuer and audience, be signed by one
 * of its keys (custom JWTs: the provider's RS256 or ES256, by the key their `kid` names; OIDC ID
 * tokens: RS256 or EdDSA, with `iat` and exactly one audience) and be within its validity period
 * (custom JWTs: `exp`, `nbf` and `iat` with 5 s of clock skew allowed; OIDC: `exp` only, no skew).
 * Checks and error messages follow Convex's (crates/authentication in convex-backend, and the
 * biscuit and openidconnect crates it uses).
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

  /** The last key set each source answered, kept while refetches of it fail. */
  readonly #lastGood = new Map<string, JsonWebKey[]>()

  constructor(
    /** Reads `auth.config.js`'s default export as JSON (null when there is none). */
    readonly loadConfig: () => string | null,
    readonly log: (message: string, fields?: Record<string, unknown>) => void = () => {},
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
    // Convex compares times in whole seconds (its clock and the claims truncated).
    const now = Math.floor(Date.now() / 1000)
    if (provider.type === 'customJwt') {
      // Signed with the provider's algorithm by the key of its set that the token's `kid` names
      // (refetched once for an unknown kid); a token without a kid is refused, as Convex does.
      const decodeError = () =>
        new AuthError(
          'InvalidAuthHeader',
          header.kid === undefined ? "Could not decode token. JWT may be missing a 'kid' (key ID) header." : `Could not decode token. The JWT's 'kid' (key ID) header is '${header.kid}', does this key match any key in the provider's JWKS?`,
        )
      // The key set is fetched (and its errors reported) before the token is looked at.
      await this.#keys(provider)
      if (header.kid === undefined || header.alg !== provider.algorithm) throw decodeError()
      if (!(await this.#signedByProvider(provider, header, data, signature))) throw decodeError()
      // Then its times, in Convex's order and words (5 s of clock skew allowed).
      const at = (claim: JSONValue | undefined) => (typeof claim === 'number' ? Math.trunc(claim) : null)
      const exp = at(claims.exp)
      const nbf = at(claims.nbf)
      const iat = at(claims.iat)
      const invalid = (why: string) => new AuthError('InvalidAuthHeader', `Could not validate token: ${why}`)
      if (exp !== null && now - exp > CUSTOM_JWT_LEEWAY_S) throw invalid(`Token expired ${now - exp} seconds ago`)
      if (nbf !== null && nbf - now > CUSTOM_JWT_LEEWAY_S) throw invalid(`Token will be valid in ${nbf - now} seconds`)
      if (iat !== null && iat - now > CUSTOM_JWT_LEEWAY_S) throw invalid(`Token will be valid in ${iat - now} seconds`)
      // Convex's identity needs a subject and an expiry (UserIdentity::from_custom_jwt).
      if (typeof claims.sub !== 'string' || claims.sub === '' || typeof claims.exp !== 'number') {
        throw new AuthError('InvalidAuthHeader', 'Could not verify token claim. Check that the JWT contains valid claims and matches your auth provider configuration.')
      }
      return identityFromClaims(claims)
    }
    // An OIDC ID token: RS256 or EdDSA, exactly its application as audience, with `iat`, not yet
    // expired (no skew allowed), and past its `nbf` if it has one (5 s of skew allowed).
    const oidcFailure = () => new AuthError('Unauthenticated', "Could not verify OIDC token claim. Check that the token signature is valid and the token hasn't expired.")
    if (header.alg !== 'RS256' && header.alg !== 'EdDSA') throw oidcFailure()
    if (aud.length !== 1 || typeof claims.iat !== 'number' || typeof claims.exp !== 'number' || now >= claims.exp) throw oidcFailure()
    if (typeof claims.nbf === 'number' && claims.nbf - now > CUSTOM_JWT_LEEWAY_S) throw oidcFailure()
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
        const discovery = (await fetchJson(source, 'discovery')) as { jwks_uri?: string }
        if (typeof discovery.jwks_uri !== 'string') throw new AuthError('AuthProviderDiscoveryFailed', `Auth provider discovery of ${trimSlash(provider.domain)} failed: no jwks_uri`)
        url = discovery.jwks_uri
      }
      const set = (await fetchJson(url, 'jwks')) as { keys?: JsonWebKey[] } | null
      if (set === null || typeof set !== 'object' || !Array.isArray(set.keys)) throw new AuthError('InvalidAuthHeader', `Invalid JWKS response body from '${url}'. The response is not valid JSON or doesn't match the expected JWKS format.`)
      return set.keys
    })()
    const entry = { at: Date.now(), keys: keys.then(
      (set) => {
        this.#lastGood.set(source, set)
        return set
      },
      (e: unknown) => {
        // A refetch that fails (the provider down, a bad answer) keeps the last good key set in
        // use until a refetch succeeds; with none yet, the failure is the answer, tried again next time.
        const previous = this.#lastGood.get(source)
        if (previous === undefined) {
          if (this.#jwks.get(source) === entry) this.#jwks.delete(source)
          throw e
        }
        this.log('Refetching an auth provider\'s keys failed; keeping the keys it gave before', { source: source.startsWith('data:') ? 'data: URL' : source, error: (e as Error)?.message ?? String(e) })
        return previous
      },
    ) }
    this.#jwks.set(source, entry)
    return entry.keys
  }
}

/**
 * A key set's JSON, from a `data:` URL or over HTTP, with Convex's errors (crates/authentication
 * fetch_jwks): an HTTP answer must be 200 and `application/json` or `application/jwk-set+json`.
 */
async function fetchJson(url: string, what: 'jwks' | 'discovery'): Promise<unknown> {
  const invalidBody = () => new AuthError('InvalidAuthHeader', `Invalid JWKS response body from '${url}'. The response is not valid JSON or doesn't match the expected JWKS format.`)
  let text: string
  const dataUrl = /^data:([^,]*),(.*)$/is.exec(url)
  if (dataUrl !== null) {
    const [, meta, body] = dataUrl as unknown as [string, string, string]
    if (/;\s*base64\s*$/i.test(meta)) {
      const compact = percentDecode(body).toString('latin1').replace(/[\t\n\f\r ]/g, '')
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.replace(/=+$/, '').length % 4 === 1) {
        throw new AuthError('InvalidAuthHeader', 'Invalid JWKS data URL. Check that the data URL is properly formatted and contains valid base64-encoded JSON.')
      }
      text = Buffer.from(compact, 'base64').toString('utf8')
    } else {
      text = percentDecode(body).toString('utf8')
    }
  } else {
    let res: Response
    try {
      res = await fetch(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(10_000) })
    } catch (e) {
      throw new AuthError('InvalidAuthHeader', `Could not fetch JWKS from URL '${url}': ${(e as Error).message}. Check that the URL is correct and accessible.`)
    }
    if (res.status !== 200) throw new AuthError('InvalidAuthHeader', `Could not fetch JWKS from URL '${url}': HTTP ${res.status} ${res.statusText || 'Unknown'}. Check that the URL is correct and accessible.`)
    const contentType = res.headers.get('content-type')
    if (what === 'jwks' && !isJwksMediaType(contentType)) {
      throw new AuthError('InvalidAuthHeader', `Invalid Content-Type '${contentType ?? 'unknown'}' when fetching JWKS from '${url}'. Expected 'application/json' or 'application/jwk-set+json'.`)
    }
    text = await res.text()
  }
  try {
    return JSON.parse(text)
  } catch {
    throw invalidBody()
  }
}

/** `application/json` or `application/jwk-set+json`, with no charset or utf-8. */
function isJwksMediaType(header: string | null): boolean {
  if (header === null) return false
  const [essence, ...params] = header.split(';').map((p) => p.trim())
  if (!['application/json', 'application/jwk-set+json'].includes(essence!.toLowerCase())) return false
  const charset = params.find((p) => p.toLowerCase().startsWith('charset='))
  return charset === undefined || charset.slice('charset='.length).replace(/^"|"$/g, '') === 'utf-8'
}

/** A data URL's percent-encoding undone; a `%` not followed by two hex digits stays as it is. */
function percentDecode(s: string): Buffer {
  const bytes: number[] = []
  const raw = Buffer.from(s, 'utf8')
  for (let i = 0; i < raw.length; i++) {
    const hex = raw[i] === 0x25 ? raw.subarray(i + 1, i + 3).toString('latin1') : ''
    if (/^[0-9a-fA-F]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16))
      i += 2
    } else {
      bytes.push(raw[i]!)
    }
  }
  return Buffer.from(bytes)
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
