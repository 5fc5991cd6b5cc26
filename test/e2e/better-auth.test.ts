/**
 * Better Auth through its Convex component (`@convex-dev/better-auth` 0.12.5 with `better-auth`
 * 1.6.34), set up as its Convex guide shows: its HTTP routes on the deployment's site, users and
 * sessions in the component's tables, and the JWTs its `convex` plugin signs, which the backend
 * verifies against the key set those routes serve (`auth.config.ts` names `CONVEX_SITE_URL` as
 * the issuer). package.json overrides better-auth's optional peers (better-sqlite3 ^12, vitest
 * ≤4) to the versions the project uses; Better Auth never loads them on Convex.
 */
import { expect, test } from 'vitest'
import { ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { errorOf, useDeployedBackend } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'

const api = anyApi as any
let backend: TestBackend

useDeployedBackend('better-auth', (t) => ({ backend } = t), {
  // Password hashing (scrypt in JavaScript) takes a while on a busy machine.
  env: { CONCAVE_ACTION_TIMEOUT_MS: '60000' },
  // What the guide has the user set: a secret, and the site the app runs on.
  beforeDeploy: async (b) => {
    const res = await fetch(`${b.url}/api/update_environment_variables`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Convex ${b.adminKey}` },
      body: JSON.stringify({ changes: [{ name: 'BETTER_AUTH_SECRET', value: 'a-test-secret-that-is-long-enough-for-better-auth' }, { name: 'SITE_URL', value: b.siteUrl }] }),
    })
    expect(res.status).toBe(200)
  },
})

const auth = (path: string, init: { body?: unknown; cookie?: string } = {}) =>
  fetch(`${backend.siteUrl}/api/auth${path}`, {
    method: init.body === undefined ? 'GET' : 'POST',
    headers: { 'content-type': 'application/json', origin: backend.siteUrl, ...(init.cookie === undefined ? {} : { cookie: init.cookie }) },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  })
const cookieOf = (res: Response) => res.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ')

test('a user signs up with email and password; the session cookie gets a JWT that queries and mutations accept', async () => {
  const up = await auth('/sign-up/email', { body: { email: 'ada@example.com', password: 'correct horse battery', name: 'Ada' } })
  expect(up.status).toBe(200)
  expect(((await up.json()) as { user: { email: string } }).user.email).toBe('ada@example.com')
  const cookie = cookieOf(up)
  const tokenRes = await auth('/convex/token', { cookie })
  expect(tokenRes.status).toBe(200)
  const { token } = (await tokenRes.json()) as { token: string }
  expect(token.split('.')).toHaveLength(3)

  const client = new ConvexHttpClient(backend.url)
  expect(await client.query(api.auth.me, {})).toBe(null)
  client.setAuth(token)
  expect(await client.query(api.auth.me, {})).toEqual({ email: 'ada@example.com', name: 'Ada', issuer: backend.siteUrl })
  await client.mutation(api.auth.addNote, { text: 'first' })
  expect(await client.query(api.auth.myNotes, {})).toEqual(['first'])
})

test('sign-in takes the right password only; sign-out ends the session the JWT names', async () => {
  expect((await auth('/sign-up/email', { body: { email: 'bo@example.com', password: 'first password', name: 'Bo' } })).status).toBe(200)
  const wrong = await auth('/sign-in/email', { body: { email: 'bo@example.com', password: 'not it' } })
  expect(wrong.status).toBe(401)
  expect(await wrong.json()).toEqual({ code: 'INVALID_EMAIL_OR_PASSWORD', message: 'Invalid email or password' })

  const signedIn = await auth('/sign-in/email', { body: { email: 'bo@example.com', password: 'first password' } })
  expect(signedIn.status).toBe(200)
  const cookie = cookieOf(signedIn)
  const { token } = (await (await auth('/convex/token', { cookie })).json()) as { token: string }
  const client = new ConvexHttpClient(backend.url)
  client.setAuth(token)
  expect(((await client.query(api.auth.me, {})) as { email: string }).email).toBe('bo@example.com')

  expect((await auth('/sign-out', { body: {}, cookie })).status).toBe(200)
  // The JWT is still well signed, but its session is gone.
  expect(await client.query(api.auth.me, {})).toBe(null)
  expect((await errorOf(client.mutation(api.auth.addNote, { text: 'x' }))).message).toContain('Unauthenticated')
})
