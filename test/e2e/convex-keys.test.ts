/**
 * Admin keys made by Convex's keybroker work here: the real CLI pushes with them, and a read-only
 * key may look but not change anything (refused as Convex refuses it).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConvexHttpClient } from 'convex/browser'
import { makeFunctionReference } from 'convex/server'
import { cleanup, convexCli, errorOf, prepareFixture, startBackend, TEST_SECRET } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'
import { sealV1 } from '../../keybroker/concave-v1.ts'

/**
 * Convex's own development instance is named carnitas, and its secret is TEST_SECRET (the convex
 * CLI's LEGACY_LOCAL_BACKEND_INSTANCE_SECRET). These two keys were made by Convex's keybroker for it
 * (crates/keybroker/dev in Convex's repository), in its legacy secretbox format; the admin key
 * names its instance only inside.
 */
const NAME = 'carnitas'
const CONVEX_DEV_ADMIN_KEY = '0135d8598650f8f5cb0f30c34ec2e2bb62793bc28717c8eb6fb577996d50be5f4281b59181095065c5d0f86a2c31ddbe9b597ec62b47ded69782cd'
const CONVEX_DEV_SYSTEM_KEY = 'carnitas|01ec1dc4339bc4a2c653e70016b1e1dea952bcfd707a0cd49c1bddcdfcd4d4a79bb2d6bdfa2f1493a1937cdb71e984c4a7'
/**
 * Keys in Convex's current format (AES-GCM-SIV) for the same name and secret, computed outside
 * this code base by following Convex's keybroker (keybroker/admin-key.test.ts says how): an admin
 * key, and a read-only admin key for member 7.
 */
const CURRENT_ADMIN_KEY = 'carnitas|01000102030405060708090a0b1e5c06d46516f3f5fa3e99f5af81a957a2adc6f04983839e'
const CURRENT_READ_ONLY_KEY = 'carnitas|01000102030405060708090a0b5d076ece241fa139ff1c9d5ce9d725a87b037c3ddfd56cc5b668'

const list = makeFunctionReference<'query', { author?: string }, { author: string; body: string }[]>('messages:list')
const send = makeFunctionReference<'mutation', { author: string; body: string }, string>('messages:send')
const secret = makeFunctionReference<'query', Record<string, never>, string>('messages:secret')
const internalSend = makeFunctionReference<'mutation', { body: string }, string>('messages:internalSend')

let backend: TestBackend
let appDir: string

beforeAll(async () => {
  backend = await startBackend({ withSecret: false, args: ['--instance-name', NAME, '--instance-secret', TEST_SECRET] })
  appDir = prepareFixture('basic')
})

afterAll(async () => {
  await backend?.stop()
  cleanup(backend?.dataDir)
  cleanup(appDir)
})

/** A client authenticated with an admin key (`setAdminAuth` is public in the client, though untyped). */
function adminClient(key: string): ConvexHttpClient {
  const client = new ConvexHttpClient(backend.url)
  ;(client as unknown as { setAdminAuth(key: string): void }).setAdminAuth(key)
  return client
}

const cli = (args: string[], key: string) => convexCli(appDir, [...args, '--url', backend.url, '--admin-key', key])
const cliError = async (args: string[], key: string) => {
  const e = (await errorOf(cli(args, key))) as Error & { stdout: string; stderr: string }
  return `${e.stdout}${e.stderr}`
}

describe("Convex's admin keys", () => {
  it("the real CLI pushes with Convex's own dev admin key (legacy format, no name before a '|')", async () => {
    await cli(['deploy', '-y'], CONVEX_DEV_ADMIN_KEY)
    const client = new ConvexHttpClient(backend.url)
    await client.mutation(send, { author: 'ada', body: 'hi' })
    expect((await client.query(list, {})).map((m) => m.body)).toEqual(['hi'])
  })

  it('the real CLI pushes with a current-format key given as CONVEX_SELF_HOSTED_ADMIN_KEY, with a prod: prefix', async () => {
    const { stdout, stderr } = await convexCli(appDir, ['deploy', '-y'], { CONVEX_SELF_HOSTED_URL: backend.url, CONVEX_SELF_HOSTED_ADMIN_KEY: `prod:${CURRENT_ADMIN_KEY}` })
    expect(`${stdout}${stderr}`).toContain('Deployed Convex functions')
  })

  it("Convex's dev system key runs internal functions, but is no admin's key to check_admin_key", async () => {
    expect((await cli(['run', 'messages:secret'], CONVEX_DEV_SYSTEM_KEY)).stdout.trim()).toEqual('"internal only"')
    const check = await fetch(`${backend.url}/api/check_admin_key`, { headers: { authorization: `Convex ${CONVEX_DEV_SYSTEM_KEY}` } })
    expect([check.status, ((await check.json()) as { code: string }).code]).toEqual([403, 'BadDeployKey'])
  })

  it("a key of Concave's first builds still works", async () => {
    const v1 = sealV1(NAME, Buffer.from(TEST_SECRET, 'hex'), JSON.stringify({ v: 1, iat: 1_700_000_000_000, kid: 'k1', name: NAME }))
    expect((await cli(['run', 'messages:secret'], v1)).stdout.trim()).toEqual('"internal only"')
  })

  it('a key for another instance, or made with another secret, is refused', async () => {
    for (const key of [CURRENT_ADMIN_KEY.replace('carnitas|', 'tacos|'), `${NAME}|01000102030405060708090a0b${'00'.repeat(24)}`]) {
      const res = await fetch(`${backend.url}/api/check_admin_key`, { headers: { authorization: `Convex ${key}` } })
      expect(res.status).toEqual(401)
      expect(await res.json()).toEqual({ code: 'BadAdminKey', message: 'The provided admin key was invalid for this instance' })
    }
  })
})

describe('a read-only admin key', () => {
  const refusal = (action: string) => `You do not have permission to perform this operation (${action}).`

  it('is refused a push, with Convex’s message', async () => {
    const out = await cliError(['deploy', '-y'], CURRENT_READ_ONLY_KEY)
    expect(out).toContain(refusal('deployment:deploy'))
    const res = await fetch(`${backend.url}/api/deploy2/start_push`, { method: 'POST', headers: { authorization: `Convex ${CURRENT_READ_ONLY_KEY}`, 'content-type': 'application/json' }, body: '{}' })
    expect(res.status).toEqual(403)
    expect(await res.json()).toEqual({ code: 'OperationNotPermitted', message: refusal('deployment:deploy') })
  })

  it('is refused an internal mutation (CLI and HTTP) and setting an environment variable', async () => {
    expect(await cliError(['run', 'messages:internalSend', '{"body": "nope"}'], CURRENT_READ_ONLY_KEY)).toContain(refusal('deployment:functions:runInternalMutations'))
    const client = adminClient(CURRENT_READ_ONLY_KEY)
    const e = await errorOf(client.mutation(internalSend, { body: 'nope' }))
    expect(e.message).toContain(refusal('deployment:functions:runInternalMutations'))
    expect(await cliError(['env', 'set', 'SOME_VAR', '1'], CURRENT_READ_ONLY_KEY)).toContain(refusal('deployment:env:write'))
    // Nothing was written.
    expect((await new ConvexHttpClient(backend.url).query(list, {})).map((m) => m.body)).toEqual(['hi'])
  })

  it('may query, internal queries included, and says what it may do', async () => {
    const client = adminClient(CURRENT_READ_ONLY_KEY)
    expect((await client.query(list, {})).map((m) => m.body)).toEqual(['hi'])
    expect(await client.query(secret, {})).toEqual('internal only')
    expect((await cli(['run', 'messages:secret'], CURRENT_READ_ONLY_KEY)).stdout.trim()).toEqual('"internal only"')
    const res = await fetch(`${backend.url}/api/check_admin_key`, { headers: { authorization: `Convex ${CURRENT_READ_ONLY_KEY}` } })
    expect(await res.json()).toEqual({
      success: true,
      isReadOnly: true,
      allowedOps: ['ViewEnvironmentVariables', 'ViewLogs', 'ViewMetrics', 'ViewIntegrations', 'ViewData', 'ViewBackups', 'DownloadBackups', 'RunInternalQueries', 'RunTestQuery', 'ViewAuditLog', 'ViewUsageLimits', 'ViewUsage'],
    })
  })

  it("is, as in Convex, no less than no key: the app's public mutations stay open to it", async () => {
    const client = adminClient(CURRENT_READ_ONLY_KEY)
    await client.mutation(send, { author: 'ro', body: 'public' })
    expect((await client.query(list, { author: 'ro' })).map((m) => m.body)).toEqual(['public'])
  })
})
