import { afterAll, beforeAll, expect, test } from 'vitest'
import { ConvexClient, ConvexHttpClient } from 'convex/browser'
import { generateKeyPairSync, sign } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { createServer } from 'node:http'
import type { Server } from 'node:http'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import { cleanup, convexCli, prepareFixture, startBackend } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'

let backend: TestBackend
let appDir: string | undefined
let jwksServer: Server
const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
const other = generateKeyPairSync('rsa', { modulusLength: 2048 })
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
let oidcDomain = ''
let missingVarPush = ''
/** The provider's keys: `other` joins them when the test rotates keys. */
let rotated = false
let jwksFetches = 0
/** While set, the provider's key set endpoint answers 503. */
let jwksDown = false

function jwt(claims: Record<string, unknown>, key: KeyObject = privateKey, kid: string | null = 'k1'): string {
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url')
  const data = `${enc({ alg: 'RS256', typ: 'JWT', ...(kid === null ? {} : { kid }) })}.${enc(claims)}`
  return `${data}.${sign('RSA-SHA256', Buffer.from(data), key).toString('base64url')}`
}

function es256(claims: Record<string, unknown>): string {
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url')
  const data = `${enc({ alg: 'ES256', typ: 'JWT', kid: 'e1' })}.${enc(claims)}`
  return `${data}.${sign('sha256', Buffer.from(data), { key: ec.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`
}

const now = () => Math.floor(Date.now() / 1000)
const valid = (sub = 'user-1') => jwt({ iss: 'https://issuer.test', sub, aud: 'concave-tests', iat: now(), exp: now() + 3600, email: 'ada@example.com', name: 'Ada' })

beforeAll(async () => {
  jwksServer = createServer((req, res) => {
    if (req.url === '/text-jwks.json') {
      res.writeHead(200, { 'content-type': 'text/plain' })
      return res.end(JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256', use: 'sig' }] }))
    }
    res.writeHead(200, { 'content-type': 'application/json' })
    if (req.url === '/.well-known/openid-configuration') return res.end(JSON.stringify({ issuer: oidcDomain, jwks_uri: `${oidcDomain}/jwks.json` }))
    if (req.url === '/es-jwks.json') return res.end(JSON.stringify({ keys: [{ ...ec.publicKey.export({ format: 'jwk' }), kid: 'e1', alg: 'ES256', use: 'sig' }] }))
    jwksFetches++
    if (jwksDown) {
      res.statusCode = 503
      return res.end('down')
    }
    const keys = [{ ...publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256', use: 'sig' }]
    if (rotated) keys.push({ ...other.publicKey.export({ format: 'jwk' }), kid: 'k2', alg: 'RS256', use: 'sig' })
    res.end(JSON.stringify({ keys }))
  })
  await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', () => r()))
  backend = await startBackend()
  appDir = prepareFixture('auth')
  const cli = (args: string[]) => convexCli(appDir!, [...args, '--url', backend.url, '--admin-key', backend.adminKey])
  // auth.config.ts reads these at push: without them the push is refused (tested below).
  missingVarPush = await cli(['deploy', '-y']).then(
    () => 'deployed',
    (e: { stderr?: string }) => e.stderr ?? String(e),
  )
  const { port } = jwksServer.address() as { port: number }
  oidcDomain = `http://127.0.0.1:${port}`
  for (const [name, value] of [['JWKS_URL', `${oidcDomain}/jwks.json`], ['ES_JWKS_URL', `${oidcDomain}/es-jwks.json`], ['OIDC_DOMAIN', oidcDomain], ['TEXT_JWKS_URL', `${oidcDomain}/text-jwks.json`]]) {
    await cli(['env', 'set', name!, value!])
  }
  await cli(['deploy', '-y'])
})

test('a push whose auth.config.ts reads an unset environment variable is refused, naming it', () => {
  expect(missingVarPush).toContain('Environment variable JWKS_URL is used in auth config file but its value was not set.')
  expect(missingVarPush).toContain('npx convex env set --url')
  expect(missingVarPush).toContain('JWKS_URL <value>')
})

afterAll(async () => {
  await backend?.stop()
  jwksServer?.close()
  cleanup(backend?.dataDir)
  cleanup(appDir)
})

test('a valid JWT from the configured provider gives ctx.auth.getUserIdentity()', async () => {
  const client = new ConvexHttpClient(backend.url)
  expect(await client.query('whoami:me' as any, {})).toBeNull()
  client.setAuth(valid())
  expect(await client.query('whoami:me' as any, {})).toEqual({ subject: 'user-1', issuer: 'https://issuer.test', tokenIdentifier: 'https://issuer.test|user-1', email: 'ada@example.com', name: 'Ada' })
  expect(await client.action('whoami:meFromAction' as any, {})).toBe('user-1')
})

test('ctx.auth.signJwt signs an ES256 token with the deployment\'s key, verifiable against its /.well-known/jwks.json', async () => {
  const client = new ConvexHttpClient(backend.url)
  const before = Math.floor(Date.now() / 1000)
  const token: string = await client.mutation('whoami:signed' as any, {})
  const jwks = createRemoteJWKSet(new URL(`${backend.url}/.well-known/jwks.json`))
  const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer: backend.url, algorithms: ['ES256'] })
  expect(payload).toEqual({ sub: 'user-7', role: 'editor', nested: { a: [1, 2] }, iss: backend.url, iat: expect.any(Number), exp: payload.iat! + 600 })
  expect(payload.iat).toBeGreaterThanOrEqual(before - 1)
  const keys = (await (await fetch(`${backend.url}/.well-known/jwks.json`)).json()) as { keys: { kid: string; kty: string; crv: string; alg: string }[] }
  expect(keys.keys.map((k) => [k.kty, k.crv, k.alg, k.kid])).toEqual([['EC', 'P-256', 'ES256', protectedHeader.kid]])
  expect(protectedHeader).toEqual({ alg: 'ES256', typ: 'JWT', kid: protectedHeader.kid })
  // Lifetimes of 1 s to 1 h only; reserved claims refused.
  expect(await client.mutation('whoami:signedWith' as any, {})).toEqual([
    'Invalid argument `expiresInSeconds` for `signJwt`: must be a number of seconds from 1 to 3600, got 0',
    'Invalid argument `expiresInSeconds` for `signJwt`: must be a number of seconds from 1 to 3600, got 3601',
    'signed',
    'Invalid argument `claims` for `signJwt`: the claim "exp" is reserved',
    'Invalid argument `claims` for `signJwt`: the claim "CVX_flag" is reserved',
    'Invalid argument `claims` for `signJwt`: the claim "convexUser" is reserved',
  ])
  // Queries can't sign, not even inside a mutation's transaction.
  expect(await client.query('whoami:rawSign' as any, {})).toBe('Unknown async operation 1.0/signJwt')
  expect(await client.mutation('whoami:rawSignFromMutation' as any, {})).toBe('Unknown async operation 1.0/signJwt')
})

test('expired, forged and wrong-audience tokens are refused', async () => {
  const refused = async (token: string) => {
    const client = new ConvexHttpClient(backend.url)
    client.setAuth(token)
    return ((await client.query('whoami:me' as any, {}).catch((e: Error) => e)) as Error).message
  }
  // Convex's codes and messages (InvalidAuthHeader / NoAuthProvider, as 401s).
  expect(await refused(jwt({ iss: 'https://issuer.test', sub: 'u', aud: 'concave-tests', exp: now() - 3600 }))).toContain('Could not validate token: Token expired')
  expect(await refused(jwt({ iss: 'https://issuer.test', sub: 'u', aud: 'concave-tests', exp: now() + 3600 }, other.privateKey))).toContain(
    "Could not decode token. The JWT's 'kid' (key ID) header is 'k1', does this key match any key in the provider's JWKS?",
  )
  expect(await refused(jwt({ iss: 'https://issuer.test', sub: 'u', aud: 'someone-else', exp: now() + 3600 }))).toContain(
    "No auth provider found matching the given token. Check that your JWT's issuer and audience match one of your configured providers: [CustomJWT(issuer=https://issuer.test, app_id=concave-tests), CustomJWT(issuer=https://es.test, app_id=none), OIDC(domain=",
  )
  expect(await refused('not.a.jwt')).toContain('Could not parse JWT payload. Check that the token is a valid JWT format with three base64-encoded parts separated by dots.')
  expect(await refused(jwt({ sub: 'u', aud: 'concave-tests', exp: now() + 3600 }))).toContain("Missing issuer claim ('iss') in JWT payload.")
  const res = await fetch(`${backend.url}/api/query`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer not.a.jwt' }, body: JSON.stringify({ path: 'whoami:me', args: {}, format: 'json' }) })
  expect(res.status).toBe(401)
  expect(((await res.json()) as { code: string }).code).toBe('InvalidAuthHeader')
  // A custom JWT must have an expiry (and a subject), as Convex's identities do.
  expect(await refused(jwt({ iss: 'https://issuer.test', sub: 'no-exp', aud: 'concave-tests' }))).toContain(
    'Could not verify token claim. Check that the JWT contains valid claims and matches your auth provider configuration.',
  )
})

/** The message a token is refused with over HTTP, after checking it is a 401 with that code. */
async function refusal(token: string, code = 'InvalidAuthHeader'): Promise<string> {
  const res = await fetch(`${backend.url}/api/query`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ path: 'whoami:me', args: {}, format: 'json' }) })
  const body = (await res.json()) as { code: string; message: string }
  expect([res.status, body.code]).toEqual([401, code])
  return body.message
}

/** The seconds a message gives: either value, as a second may tick between the test and the server. */
function seconds(message: string, pattern: RegExp, either: [number, number]): void {
  expect(message).toMatch(pattern)
  expect(either).toContain(Number(pattern.exec(message)?.[1]))
}

test('a custom JWT without a kid is refused, even when the provider has a single key', async () => {
  expect(await refusal(jwt({ iss: 'https://issuer.test', sub: 'u', aud: 'concave-tests', exp: now() + 3600 }, privateKey, null))).toBe(
    "Could not decode token. JWT may be missing a 'kid' (key ID) header.",
  )
})

test('a custom JWT issued or valid only in the future, or expired, is refused in Convex’s words', async () => {
  const base = { iss: 'https://issuer.test', sub: 'u', aud: 'concave-tests' }
  seconds(await refusal(jwt({ ...base, iat: now() + 60, exp: now() + 3600 })), /^Could not validate token: Token will be valid in (\d+) seconds$/, [59, 60])
  seconds(await refusal(jwt({ ...base, nbf: now() + 120, exp: now() + 3600 })), /^Could not validate token: Token will be valid in (\d+) seconds$/, [119, 120])
  seconds(await refusal(jwt({ ...base, exp: now() - 3600 })), /^Could not validate token: Token expired (\d+) seconds ago$/, [3600, 3601])
  // Within the 5 s of skew allowed, all three are accepted.
  const client = new ConvexHttpClient(backend.url)
  client.setAuth(jwt({ ...base, sub: 'skewed', iat: now() + 3, nbf: now() + 3, exp: now() - 3 }))
  expect(((await client.query('whoami:me' as any, {})) as any).subject).toBe('skewed')
})

test('a key set that is not JSON, not base64 or not served as JSON is an auth error, not a server error', async () => {
  const claims = (iss: string) => ({ iss, sub: 'u', exp: now() + 3600 })
  expect(await refusal(jwt(claims('https://broken.test')))).toBe(
    "Invalid JWKS response body from 'data:application/json,{not json'. The response is not valid JSON or doesn't match the expected JWKS format.",
  )
  expect(await refusal(jwt(claims('https://bad-base64.test')))).toBe('Invalid JWKS data URL. Check that the data URL is properly formatted and contains valid base64-encoded JSON.')
  expect(await refusal(jwt(claims('https://text.test')))).toBe(
    `Invalid Content-Type 'text/plain' when fetching JWKS from '${oidcDomain}/text-jwks.json'. Expected 'application/json' or 'application/jwk-set+json'.`,
  )
  expect(backend.output()).not.toMatch(/Request failed|SyntaxError|InternalServerError/)
})

test('an OIDC token is refused once expired (no skew) or before its nbf; a future iat is not checked', async () => {
  const accepted = async (claims: Record<string, unknown>) => {
    const c = new ConvexHttpClient(backend.url)
    c.setAuth(jwt({ iss: oidcDomain, aud: 'oidc-app', ...claims }))
    return ((await c.query('whoami:me' as any, {})) as any).subject
  }
  expect(await refusal(jwt({ iss: oidcDomain, sub: 'u', aud: 'oidc-app', iat: now() - 60, exp: now() - 2 }), 'Unauthenticated')).toBe(
    "Could not verify OIDC token claim. Check that the token signature is valid and the token hasn't expired.",
  )
  expect(await refusal(jwt({ iss: oidcDomain, aud: 'oidc-app', sub: 'later', iat: now(), nbf: now() + 600, exp: now() + 1200 }), 'Unauthenticated')).toBe(
    "Could not verify OIDC token claim. Check that the token signature is valid and the token hasn't expired.",
  )
  expect(await accepted({ sub: 'now', iat: now(), nbf: now() + 2, exp: now() + 1200 })).toBe('now')
  expect(await accepted({ sub: 'ahead', iat: now() + 600, exp: now() + 1200 })).toBe('ahead')
})

test('a token signed with a key the provider has just added is accepted (the key set is fetched again)', async () => {
  const claims = () => ({ iss: 'https://issuer.test', sub: 'rotated-user', aud: 'concave-tests', exp: now() + 3600 })
  const call = (token: string) => {
    const client = new ConvexHttpClient(backend.url)
    client.setAuth(token)
    return client.query('whoami:me' as any, {}).then((me: any) => me.subject, (e: Error) => e.message)
  }
  // Unknown key ids refetch at most once a second, so an attacker can't make us fetch per request.
  await new Promise((r) => setTimeout(r, 1100))
  expect(await call(jwt(claims(), other.privateKey, 'k2'))).toContain("Could not decode token. The JWT's 'kid' (key ID) header is 'k2'")
  const before = jwksFetches
  expect(await call(jwt(claims(), other.privateKey, 'k2'))).toContain("Could not decode token. The JWT's 'kid' (key ID) header is 'k2'")
  expect(jwksFetches).toBe(before)
  rotated = true
  await new Promise((r) => setTimeout(r, 1100))
  expect(await call(jwt(claims(), other.privateKey, 'k2'))).toBe('rotated-user')
  expect(jwksFetches).toBe(before + 1)
  // The old key still works; the new one keeps working without more fetches.
  expect(await call(valid())).toBe('user-1')
  expect(await call(jwt(claims(), other.privateKey, 'k2'))).toBe('rotated-user')
  expect(jwksFetches).toBe(before + 1)
})

test('a key set refetch that fails keeps the keys the provider gave before', async () => {
  const claims = () => ({ iss: 'https://issuer.test', sub: 'steady', aud: 'concave-tests', exp: now() + 3600 })
  const call = (token: string) => {
    const client = new ConvexHttpClient(backend.url)
    client.setAuth(token)
    return client.query('whoami:me' as any, {}).then((me: any) => me.subject, (e: Error) => e.message)
  }
  expect(await call(jwt(claims()))).toBe('steady')
  jwksDown = true
  try {
    // An unknown key id makes the backend fetch the set again (at most once a second): it fails.
    await new Promise((r) => setTimeout(r, 1100))
    const before = jwksFetches
    expect(await call(jwt(claims(), other.privateKey, 'k9'))).toContain("The JWT's 'kid' (key ID) header is 'k9'")
    expect(jwksFetches).toBe(before + 1)
    // The keys from before are still there: a token they signed is accepted, with no new fetch.
    expect(await call(jwt(claims()))).toBe('steady')
    expect(jwksFetches).toBe(before + 1)
    expect(backend.output()).toContain("Refetching an auth provider's keys failed; keeping the keys it gave before")
  } finally {
    jwksDown = false
  }
})

test('the real ConvexClient authenticates over the socket', async () => {
  const client = new ConvexClient(backend.url, { unsavedChangesWarning: false } as any)
  try {
    const authenticated = new Promise<boolean>((resolve) => client.setAuth(async () => valid('socket-user'), (ok) => resolve(ok)))
    const identity = new Promise<any>((resolve) => client.onUpdate('whoami:me' as any, {}, (v: any) => v !== null && resolve(v)))
    expect(await authenticated).toBe(true)
    expect((await identity).subject).toBe('socket-user')
  } finally {
    await client.close()
  }
})

test("a socket's identity ends when its token expires; the client then authenticates with a fresh token", async () => {
  const client = new ConvexClient(backend.url, { unsavedChangesWarning: false } as any)
  let fetches = 0
  // The first token is still accepted for 2-3 s (the verifier allows 5 s of clock skew past exp).
  // The client asks twice at first (a cached, then a fresh token): both times it gets that token,
  // which has no iat, so the client can't schedule its own refresh: only the server's expiry ends it.
  const short = jwt({ iss: 'https://issuer.test', sub: 'short-lived', aud: 'concave-tests', exp: now() - 2 })
  const fetcher = async () => (++fetches <= 2 ? short : valid('refreshed'))
  try {
    const seen: string[] = []
    const refreshed = new Promise<void>((resolve) =>
      client.onUpdate('whoami:me' as any, {}, (v: any) => {
        if (v !== null && seen.at(-1) !== v.subject) seen.push(v.subject)
        if (v?.subject === 'refreshed') resolve()
      }),
    )
    client.setAuth(fetcher)
    await refreshed
    expect(seen).toEqual(['short-lived', 'refreshed'])
    expect(fetches).toBe(3)
  } finally {
    await client.close()
  }
})

test('a forged token over the socket is refused', async () => {
  const client = new ConvexClient(backend.url, { unsavedChangesWarning: false } as any)
  try {
    const result = await new Promise<boolean>((resolve) => {
      client.setAuth(async () => jwt({ iss: 'https://issuer.test', sub: 'x', aud: 'concave-tests', exp: now() + 3600 }, other.privateKey), (ok) => resolve(ok))
    })
    expect(result).toBe(false)
  } finally {
    await client.close()
  }
})

test("an HTTP action sees the Bearer token's identity; a bad token is served but getUserIdentity() throws", async () => {
  const whoami = async (authorization?: string) => {
    const res = await fetch(`${backend.siteUrl}/whoami`, { headers: authorization === undefined ? {} : { authorization } })
    return [res.status, (await res.json()) as any] as const
  }
  expect(await whoami()).toEqual([200, { subject: null, viaQuery: null }])
  expect(await whoami(`Bearer ${valid('http-user')}`)).toEqual([200, { subject: 'http-user', viaQuery: 'http-user' }])
  const [status, body] = await whoami(`Bearer ${jwt({ iss: 'https://issuer.test', sub: 'u', aud: 'concave-tests', exp: now() + 3600 }, other.privateKey)}`)
  expect(status).toBe(401)
  expect(body.error).toContain('Could not decode token')
})

test("the Authorization header is read by Convex's rules: a malformed one is a 400 on the API and a throwing getUserIdentity() in an HTTP action", async () => {
  const query = async (authorization: string) => {
    const res = await fetch(`${backend.url}/api/query`, { method: 'POST', headers: { 'content-type': 'application/json', authorization }, body: JSON.stringify({ path: 'whoami:me', args: {}, format: 'json' }) })
    return [res.status, await res.json()] as const
  }
  const short = [400, { code: 'InvalidHeaderFailure', message: 'Invalid authentication header' }] as const
  const otherScheme = [400, { code: 'InvalidAdminKey', message: 'Invalid admin key' }] as const
  expect(await query('a')).toEqual(short)
  expect(await query('Basic dXNlcjpwYXNz')).toEqual(otherScheme)
  expect(await query('Bearer:x.y.z')).toEqual(otherScheme)
  // The schemes are matched without regard to case.
  expect(await query(`bearer ${valid('lower-bearer')}`)).toEqual([
    200,
    { status: 'success', value: { subject: 'lower-bearer', issuer: 'https://issuer.test', tokenIdentifier: 'https://issuer.test|lower-bearer', email: 'ada@example.com', name: 'Ada' } },
  ])
  // Admin routes read it the same way.
  const checkKey = async (authorization: string) => {
    const res = await fetch(`${backend.url}/api/check_admin_key`, { headers: { authorization } })
    return [res.status, await res.json()] as const
  }
  expect(await checkKey('a')).toEqual(short)
  expect(await checkKey('Basic dXNlcjpwYXNz')).toEqual(otherScheme)
  expect(await checkKey(`convex ${backend.adminKey}`)).toEqual([200, { success: true, allowedOps: [], isReadOnly: false }])

  // An HTTP action is served whatever the header (it may be the app's own scheme); asking for the
  // identity then throws why the header is not Convex's.
  const whoami = async (authorization: string) => {
    const res = await fetch(`${backend.siteUrl}/whoami`, { headers: { authorization } })
    return [res.status, (await res.json()) as unknown] as const
  }
  expect(await whoami('a')).toEqual([401, { error: 'Invalid authentication header' }])
  expect(await whoami('Basic dXNlcjpwYXNz')).toEqual([401, { error: 'Invalid admin key' }])
  expect(await whoami(`bearer ${valid('lower-http')}`)).toEqual([200, { subject: 'lower-http', viaQuery: 'lower-http' }])
  expect(await whoami(`Convex ${backend.adminKey}`)).toEqual([200, { subject: null, viaQuery: null }])
  expect(await whoami('Convex not-a-key')).toEqual([401, { error: 'The provided admin key was invalid for this instance' }])
  const actingAs = Buffer.from(JSON.stringify({ subject: 'acted-http', issuer: 'https://acting.test' })).toString('base64')
  expect(await whoami(`Convex ${backend.adminKey}:${actingAs}`)).toEqual([200, { subject: 'acted-http', viaQuery: 'acted-http' }])
})

test('getRequestMetadata().authToken is the JWT of a user call (HTTP, socket, HTTP action); null for admins and anonymous calls', async () => {
  const token = valid('token-user')
  const client = new ConvexHttpClient(backend.url)
  expect(await client.mutation('whoami:token' as any, {})).toBeNull()
  client.setAuth(token)
  expect(await client.mutation('whoami:token' as any, {})).toBe(token)
  expect(await client.action('whoami:tokenFromAction' as any, {})).toBe(token)
  const admin = new ConvexHttpClient(backend.url)
  ;(admin as any).setAdminAuth(backend.adminKey, { subject: 'acted', issuer: 'https://acting.test' })
  expect(await admin.mutation('whoami:token' as any, {})).toBeNull()
  const live = new ConvexClient(backend.url, { unsavedChangesWarning: false } as any)
  try {
    const socketToken = valid('socket-token-user')
    await new Promise<boolean>((resolve) => live.setAuth(async () => socketToken, (ok) => resolve(ok)))
    expect(await live.mutation('whoami:token' as any, {})).toBe(socketToken)
    expect(await live.action('whoami:tokenFromAction' as any, {})).toBe(socketToken)
  } finally {
    await live.close()
  }
  const viaHttpAction = await fetch(`${backend.siteUrl}/token`, { headers: { authorization: `Bearer ${token}` } })
  expect(await viaHttpAction.json()).toEqual({ authToken: token })
  expect(await (await fetch(`${backend.siteUrl}/token`)).json()).toEqual({ authToken: null })
})

test('an admin can act as a user', async () => {
  const client = new ConvexHttpClient(backend.url)
  ;(client as any).setAdminAuth(backend.adminKey, { subject: 'acted', issuer: 'https://acting.test' })
  expect(await client.query('whoami:me' as any, {})).toEqual({ subject: 'acted', issuer: 'https://acting.test', tokenIdentifier: 'https://acting.test|acted', email: null, name: null })
})

test('an admin can act as a user over the socket (setAdminAuth with an identity)', async () => {
  const client = new ConvexClient(backend.url, { unsavedChangesWarning: false } as any)
  try {
    ;(client as any).setAdminAuth(backend.adminKey, { subject: 'acted-on-socket', issuer: 'https://acting.test' })
    const me = await new Promise<any>((resolve) => client.onUpdate('whoami:me' as any, {}, (v: any) => v !== null && resolve(v)))
    expect(me).toEqual({ subject: 'acted-on-socket', issuer: 'https://acting.test', tokenIdentifier: 'https://acting.test|acted-on-socket', email: null, name: null })
  } finally {
    await client.close()
  }
})

test('OIDC providers are found through discovery; ES256 custom JWTs verify', async () => {
  const oidc = new ConvexHttpClient(backend.url)
  oidc.setAuth(jwt({ iss: oidcDomain, sub: 'oidc-user', aud: 'oidc-app', iat: now(), exp: now() + 600 }))
  expect(((await oidc.query('whoami:me' as any, {})) as any).tokenIdentifier).toBe(`${oidcDomain}|oidc-user`)
  // OIDC ID tokens need iat and exactly one audience (Convex's verifier refuses several).
  const oidcRefused = async (claims: Record<string, unknown>) => {
    const c = new ConvexHttpClient(backend.url)
    c.setAuth(jwt(claims))
    return ((await c.query('whoami:me' as any, {}).catch((e: Error) => e)) as Error).message
  }
  const unverifiedOidc = "Could not verify OIDC token claim. Check that the token signature is valid and the token hasn't expired."
  expect(await oidcRefused({ iss: oidcDomain, sub: 'u', aud: 'oidc-app', exp: now() + 600 })).toContain(unverifiedOidc)
  expect(await oidcRefused({ iss: oidcDomain, sub: 'u', aud: ['oidc-app', 'other'], iat: now(), exp: now() + 600 })).toContain(unverifiedOidc)
  const es = new ConvexHttpClient(backend.url)
  es.setAuth(es256({ iss: 'https://es.test', sub: 'ec-user', exp: now() + 600 }))
  expect(((await es.query('whoami:me' as any, {})) as any).subject).toBe('ec-user')
  const wrongAlg = new ConvexHttpClient(backend.url)
  wrongAlg.setAuth(jwt({ iss: 'https://es.test', sub: 'x', exp: now() + 600 }))
  expect(((await wrongAlg.query('whoami:me' as any, {}).catch((e: Error) => e)) as Error).message).toContain("Could not decode token. The JWT's 'kid' (key ID) header is 'k1', does this key match any key in the provider's JWKS?")
})
