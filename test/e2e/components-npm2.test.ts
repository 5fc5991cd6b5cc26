/**
 * More real Convex components from npm (@convex-dev/crons, @convex-dev/presence), installed in
 * test/fixtures/components-npm2 as their READMEs show and driven through their documented client
 * classes from the app's functions. crons registers jobs at runtime: the component keeps
 * rescheduling itself and runs an app mutation through a function handle. presence keeps its
 * state in its own tables and times sessions out with a nested @convex-dev/batch-worker that
 * sleeps in the scheduler until the next deadline.
 *
 * @convex-dev/workflow has a file of its own (workflow.test.ts).
 */
import { afterAll, expect, test } from 'vitest'
import { ConvexClient, ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { errorOf, until, useDeployedBackend } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'

const api = anyApi as any
let backend: TestBackend
let client: ConvexHttpClient
const live: ConvexClient[] = []

useDeployedBackend('components-npm2', (t) => ({ backend, client } = t))
afterAll(async () => {
  await Promise.all(live.map((c) => c.close()))
})


interface CronInfo {
  id: string
  name?: string
  functionHandle: string
  args: Record<string, unknown>
  schedule: { kind: 'interval'; ms: number } | { kind: 'cron'; cronspec: string; tz?: string }
}

const ticks = (tag: string): Promise<number> => client.query(api.dynamicCrons.ticks, { tag })

test('crons: register interval and cron-spec crons (mutation and action targets) at runtime; list, get, watch them run, delete them', async () => {
  const intervalId: string = await client.mutation(api.dynamicCrons.register, { schedule: { kind: 'interval', ms: 1000 }, tag: 'interval', name: 'every-second' })
  // Six fields: the first is seconds, so this runs every second too.
  const cronId: string = await client.mutation(api.dynamicCrons.register, { schedule: { kind: 'cron', cronspec: '* * * * * *' }, tag: 'cron' })
  // With a time zone (cron-parser works it out with luxon, through Intl in the sandbox).
  const zonedId: string = await client.mutation(api.dynamicCrons.register, { schedule: { kind: 'cron', cronspec: '*/2 * * * * *', tz: 'America/New_York' }, tag: 'zoned', name: 'zoned' })
  // An action as the target.
  const actionId: string = await client.mutation(api.dynamicCrons.registerAction, { schedule: { kind: 'interval', ms: 1000 }, tag: 'action' })
  expect(new Set([intervalId, cronId, zonedId, actionId]).size).toBe(4)

  const listed: CronInfo[] = await client.query(api.dynamicCrons.list, {})
  // Both run the same app function, so they hold the same handle: `function://<id>#<path>`.
  const handle = listed[0]!.functionHandle
  expect(handle).toMatch(/^function:\/\/[^#]+#dynamicCrons:record$/)
  expect(listed).toEqual([
    { id: intervalId, name: 'every-second', functionHandle: handle, args: { tag: 'interval' }, schedule: { kind: 'interval', ms: 1000 } },
    { id: cronId, functionHandle: handle, args: { tag: 'cron' }, schedule: { kind: 'cron', cronspec: '* * * * * *' } },
    { id: zonedId, name: 'zoned', functionHandle: handle, args: { tag: 'zoned' }, schedule: { kind: 'cron', cronspec: '*/2 * * * * *', tz: 'America/New_York' } },
    { id: actionId, functionHandle: expect.stringMatching(/^function:\/\/[^#]+#dynamicCrons:recordFromAction$/), args: { tag: 'action' }, schedule: { kind: 'interval', ms: 1000 } },
  ])
  expect(await client.query(api.dynamicCrons.get, { identifier: { name: 'every-second' } })).toEqual(listed[0])
  expect(await client.query(api.dynamicCrons.get, { identifier: { id: cronId } })).toEqual(listed[1])
  expect(await client.query(api.dynamicCrons.get, { identifier: { name: 'nope' } })).toBeNull()

  // The component's own checks reach the client through the app's mutation.
  const dup = await errorOf(client.mutation(api.dynamicCrons.register, { schedule: { kind: 'interval', ms: 5000 }, tag: 'x', name: 'every-second' }))
  expect(dup.message).toContain('Uncaught Error: Cron with name "every-second" already exists')
  expect((await errorOf(client.mutation(api.dynamicCrons.register, { schedule: { kind: 'interval', ms: 999 }, tag: 'x' }))).message).toContain('Uncaught Error: Interval must be >= 1000ms')
  expect((await errorOf(client.mutation(api.dynamicCrons.register, { schedule: { kind: 'cron', cronspec: 'every tuesday' }, tag: 'x' }))).message).toContain('Uncaught Error: Invalid cronspec: "every tuesday"')
  // An unknown zone gets past the component's check and fails when cron-parser computes the next
  // run (as it does in Node); the component's insert is rolled back with the rest.
  const zone = await errorOf(client.mutation(api.dynamicCrons.register, { schedule: { kind: 'cron', cronspec: '* * * * *', tz: 'Mars/Olympus' }, tag: 'x' }))
  expect(zone.message).toContain('Uncaught Error: CronDate: unhandled timestamp: "')
  expect(await client.query(api.dynamicCrons.list, {})).toHaveLength(4)

  // Each cron reschedules itself in the component and runs the app's mutation by its handle.
  await until(async () => [await ticks('interval'), await ticks('cron'), await ticks('zoned'), await ticks('action')], ([i, c, z, a]) => i! >= 2 && c! >= 2 && z! >= 1 && a! >= 2)
  expect(await ticks('x')).toBe(0)

  await client.mutation(api.dynamicCrons.remove, { identifier: { name: 'every-second' } })
  await client.mutation(api.dynamicCrons.remove, { identifier: { id: cronId } })
  await client.mutation(api.dynamicCrons.remove, { identifier: { name: 'zoned' } })
  await client.mutation(api.dynamicCrons.remove, { identifier: { id: actionId } })
  expect(await client.query(api.dynamicCrons.list, {})).toEqual([])
  expect(await client.query(api.dynamicCrons.get, { identifier: { id: intervalId } })).toBeNull()
  expect((await errorOf(client.mutation(api.dynamicCrons.remove, { identifier: { name: 'every-second' } }))).message).toContain('Uncaught Error: Cron "every-second" not found')

  // Deleting cancelled their scheduled runs: while a new cron runs twice, the old ones don't run.
  const markerId: string = await client.mutation(api.dynamicCrons.register, { schedule: { kind: 'interval', ms: 1000 }, tag: 'marker' })
  await until(() => ticks('marker'), (n) => n >= 1)
  const old = async () => [await ticks('interval'), await ticks('cron'), await ticks('zoned'), await ticks('action')]
  const stopped = await old()
  await until(() => ticks('marker'), (n) => n >= 3)
  expect(await old()).toEqual(stopped)
  await client.mutation(api.dynamicCrons.remove, { identifier: { id: markerId } })
  expect(await client.query(api.dynamicCrons.list, {})).toEqual([])
})

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

test('presence: two users heartbeat into a room, are listed, one disconnects and is listed offline', async () => {
  const heartbeat = (userId: string, sessionId: string, roomId = 'lobby') =>
    client.mutation(api.presence.heartbeat, { roomId, userId, sessionId, interval: 60_000 })
  const alice = await heartbeat('alice', 'a1')
  const bob = await heartbeat('bob', 'b1')
  expect(alice.roomToken).toMatch(UUID)
  expect(alice.sessionToken).toMatch(UUID)
  expect(bob.roomToken).toBe(alice.roomToken)
  expect(bob.sessionToken).toMatch(UUID)
  expect(bob.sessionToken).not.toBe(alice.sessionToken)
  // Another heartbeat of a session keeps its tokens.
  expect(await heartbeat('alice', 'a1')).toEqual(alice)

  const list = () => client.query(api.presence.list, { roomToken: alice.roomToken })
  expect(await list()).toEqual([
    { userId: 'alice', online: true, lastDisconnected: 0 },
    { userId: 'bob', online: true, lastDisconnected: 0 },
  ])
  expect(await client.query(api.presence.list, { roomToken: 'not-a-token' })).toEqual([])
  expect(await client.query(api.presence.listUser, { userId: 'alice' })).toEqual([{ roomId: 'lobby', online: true, lastDisconnected: 0 }])
  // A session belongs to one room and user.
  expect((await errorOf(heartbeat('carol', 'a1'))).message).toContain('Uncaught Error: sessionId a1 must be unique for a given room/user')

  await client.mutation(api.presence.updateRoomUser, { roomId: 'lobby', userId: 'alice', data: { typing: true } })
  const before = Date.now()
  expect(await client.mutation(api.presence.disconnect, { sessionToken: bob.sessionToken })).toBeNull()
  const after = Date.now()
  const listed = await list()
  expect(listed).toEqual([
    { userId: 'alice', online: true, lastDisconnected: 0, data: { typing: true } },
    { userId: 'bob', online: false, lastDisconnected: expect.any(Number) },
  ])
  expect(listed[1].lastDisconnected).toBeGreaterThanOrEqual(before)
  expect(listed[1].lastDisconnected).toBeLessThanOrEqual(after)
  expect(await client.query(api.presence.listRoom, { roomId: 'lobby', onlineOnly: true })).toEqual([{ userId: 'alice', online: true, lastDisconnected: 0 }])
  expect(await client.query(api.presence.listRoom, { roomId: 'lobby' })).toEqual([
    { userId: 'alice', online: true, lastDisconnected: 0 },
    { userId: 'bob', online: false, lastDisconnected: listed[1].lastDisconnected },
  ])
  // The session token went with the session: disconnecting again does nothing.
  expect(await client.mutation(api.presence.disconnect, { sessionToken: bob.sessionToken })).toBeNull()
  // A heartbeat brings bob back online.
  await heartbeat('bob', 'b2')
  expect(await client.query(api.presence.listRoom, { roomId: 'lobby', onlineOnly: true })).toEqual([
    { userId: 'alice', online: true, lastDisconnected: 0 },
    { userId: 'bob', online: true, lastDisconnected: 0 },
  ])
  await client.mutation(api.presence.removeRoomUser, { roomId: 'lobby', userId: 'bob' })
  expect(await client.query(api.presence.listRoom, { roomId: 'lobby' })).toEqual([{ userId: 'alice', online: true, lastDisconnected: 0 }])
  expect(await client.query(api.presence.listUser, { userId: 'bob' })).toEqual([])
})

test('presence: a session that stops heartbeating is disconnected by the nested batch-worker, and a subscriber sees it', async () => {
  const { roomToken } = await client.mutation(api.presence.heartbeat, { roomId: 'den', userId: 'dan', sessionId: 'd1', interval: 60_000 })
  // Times out 2.5 intervals after its heartbeat, with no further heartbeat.
  const start = Date.now()
  await client.mutation(api.presence.heartbeat, { roomId: 'den', userId: 'eve', sessionId: 'e1', interval: 200 })

  const live1 = new ConvexClient(backend.url, { unsavedChangesWarning: false } as any)
  live.push(live1)
  const seen: unknown[] = []
  const offline = new Promise<any[]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out; saw ${JSON.stringify(seen)}`)), 20_000)
    live1.onUpdate(api.presence.list, { roomToken }, (rows: any[]) => {
      seen.push(rows)
      if (rows.some((r) => r.userId === 'eve' && !r.online)) {
        clearTimeout(timer)
        resolve(rows)
      }
    })
  })
  const rows = await offline
  expect(rows).toEqual([
    { userId: 'dan', online: true, lastDisconnected: 0 },
    { userId: 'eve', online: false, lastDisconnected: expect.any(Number) },
  ])
  expect(rows[1].lastDisconnected).toBeGreaterThanOrEqual(start + 500)
  expect(await client.query(api.presence.listUser, { userId: 'eve' })).toEqual([{ roomId: 'den', online: false, lastDisconnected: rows[1].lastDisconnected }])
})
