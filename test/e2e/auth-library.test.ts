/**
 * Convex Auth (`@convex-dev/auth`, the library most Convex apps sign users in with) on Concave,
 * unmodified: its Password and Anonymous providers, the JWTs it signs with the deployment's
 * `JWT_PRIVATE_KEY`, which the backend verifies against the key set the app's own HTTP actions
 * serve (`auth.config.ts` names `CONVEX_SITE_URL` as the issuer), and refresh tokens.
 */
import { expect, test } from 'vitest'
import { ConvexClient, ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { exportJWK, exportPKCS8, generateKeyPair } from 'jose'
import { errorOf, useDeployedBackend } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'

const api = anyApi as any
let backend: TestBackend

useDeployedBackend('auth-library', (t) => ({ backend } = t), {
  // What `npx @convex-dev/auth` sets up: a signing key pair, and the site the app runs on.
  beforeDeploy: async (b) => {
    const keys = await generateKeyPair('RS256', { extractable: true })
    const privateKey = (await exportPKCS8(keys.privateKey)).trimEnd().replace(/\n/g, ' ')
    const jwks = JSON.stringify({ keys: [{ use: 'sig', ...(await exportJWK(keys.publicKey)) }] })
    const res = await fetch(`${b.url}/api/update_environment_variables`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Convex ${b.adminKey}` },
      body: JSON.stringify({ changes: [{ name: 'JWT_PRIVATE_KEY', value: privateKey }, { name: 'JWKS', value: jwks }, { name: 'SITE_URL', value: 'http://localhost:5173' }] }),
    })
    expect(res.status).toBe(200)
  },
})

type Tokens = { token: string; refreshToken: string }

test('a user signs up with a password, and queries and mutations see them through the JWT Convex Auth signed', async () => {
  const client = new ConvexHttpClient(backend.url)
  const up = (await client.action(api.auth.signIn, { provider: 'password', params: { email: 'ada@example.com', password: 'correct horse battery', flow: 'signUp' } })) as { tokens: Tokens }
  expect(up.tokens.token.split('.')).toHaveLength(3)
  expect(typeof up.tokens.refreshToken).toBe('string')
  expect(await client.query(api.users.viewer, {})).toBe(null)

  client.setAuth(up.tokens.token)
  expect(await client.query(api.users.viewer, {})).toEqual({ email: 'ada@example.com', isAnonymous: null, sessionIsCurrent: true, subjectStartsWithUser: true, issuer: backend.siteUrl })
  await client.mutation(api.users.addNote, { text: 'first' })
  expect(await client.query(api.users.myNotes, {})).toEqual(['first'])
  expect(await client.query(api.auth.isAuthenticated, {})).toBe(true)
})

test('signing in again takes the right password only; a refresh token is exchanged for a JWT and a new refresh token', async () => {
  const client = new ConvexHttpClient(backend.url)
  await client.action(api.auth.signIn, { provider: 'password', params: { email: 'bo@example.com', password: 'first password', flow: 'signUp' } })
  const wrong = await errorOf(client.action(api.auth.signIn, { provider: 'password', params: { email: 'bo@example.com', password: 'not it', flow: 'signIn' } }))
  expect(wrong.message).toContain('InvalidSecret')
  const signedIn = (await client.action(api.auth.signIn, { provider: 'password', params: { email: 'bo@example.com', password: 'first password', flow: 'signIn' } })) as { tokens: Tokens }
  const refreshed = (await client.action(api.auth.signIn, { refreshToken: signedIn.tokens.refreshToken })) as { tokens: Tokens }
  expect(refreshed.tokens.refreshToken).not.toBe(signedIn.tokens.refreshToken)
  client.setAuth(refreshed.tokens.token)
  expect(((await client.query(api.users.viewer, {})) as { email: string }).email).toBe('bo@example.com')

  await client.action(api.auth.signOut, {})
  client.clearAuth()
  expect(await client.query(api.users.viewer, {})).toBe(null)
})

test('an anonymous user signs in with no credentials', async () => {
  const client = new ConvexHttpClient(backend.url)
  const anon = (await client.action(api.auth.signIn, { provider: 'anonymous' })) as { tokens: Tokens }
  client.setAuth(anon.tokens.token)
  expect(await client.query(api.users.viewer, {})).toEqual({ email: null, isAnonymous: true, sessionIsCurrent: true, subjectStartsWithUser: true, issuer: backend.siteUrl })
})

test('a ConvexClient signed in with the JWT follows its user’s data live over the sync socket', async () => {
  const http = new ConvexHttpClient(backend.url)
  const up = (await http.action(api.auth.signIn, { provider: 'password', params: { email: 'cy@example.com', password: 'live updates', flow: 'signUp' } })) as { tokens: Tokens }
  http.setAuth(up.tokens.token)
  const live = new ConvexClient(backend.url)
  try {
    const seen: string[][] = []
    let authenticated: boolean | undefined
    live.setAuth(async () => up.tokens.token, (isAuthenticated) => (authenticated = isAuthenticated))
    const updates = new Promise<void>((resolve) => {
      live.onUpdate(api.users.myNotes, {}, (notes: string[]) => {
        seen.push(notes)
        if (notes.length === 1) resolve()
      })
    })
    await new Promise<void>((resolve) => live.onUpdate(api.users.viewer, {}, (v: unknown) => v !== null && resolve()))
    await http.mutation(api.users.addNote, { text: 'live one' })
    await updates
    expect(authenticated).toBe(true)
    expect(seen.at(-1)).toEqual(['live one'])
  } finally {
    await live.close()
  }
})
