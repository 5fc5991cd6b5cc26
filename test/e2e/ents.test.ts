/**
 * convex-ents 0.20 (an ent framework over Convex), as its docs set it up: unique fields, 1:many and
 * many:many edges (a generated join table, queried through its compound indexes), edge patches and
 * cascading deletes, all through `ctx.table` from custom functions.
 */
import { expect, test } from 'vitest'
import type { ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { useDeployedBackend } from '../helpers/test-backend.ts'

const api = anyApi as any
let client: ConvexHttpClient

useDeployedBackend('ents', (t) => ({ client } = t))

test('users, messages and tags with their edges; a unique field; a cascading delete', async () => {
  expect(typeof (await client.mutation(api.chat.addUser, { name: 'Ada', email: 'ada@example.com' }))).toBe('string')
  expect(typeof (await client.mutation(api.chat.addUser, { name: 'Bo', email: 'bo@example.com' }))).toBe('string')
  const dup: string = await client.mutation(api.chat.addUser, { name: 'Ada again', email: 'ada@example.com' })
  expect(dup).toMatch(/^In table "users" cannot create a duplicate document with field "email" of value `ada@example.com`, existing document with ID "[^"]+" already has it\.$/)

  await client.mutation(api.chat.post, { email: 'ada@example.com', text: 'hello', tags: ['greeting', 'intro'] })
  await client.mutation(api.chat.post, { email: 'ada@example.com', text: 'ents work', tags: ['intro'] })
  await client.mutation(api.chat.post, { email: 'bo@example.com', text: 'hi', tags: ['greeting'] })
  await client.mutation(api.chat.joinGroup, { email: 'ada@example.com', group: 'admins' })
  await client.mutation(api.chat.joinGroup, { email: 'ada@example.com', group: 'readers' })
  await client.mutation(api.chat.joinGroup, { email: 'bo@example.com', group: 'readers' })

  expect(await client.query(api.chat.profile, { email: 'ada@example.com' })).toEqual({
    name: 'Ada',
    messages: [
      { text: 'hello', tags: ['greeting', 'intro'] },
      { text: 'ents work', tags: ['intro'] },
    ],
    groups: ['admins', 'readers'],
  })
  expect(await client.query(api.chat.tagged, { tag: 'greeting' })).toEqual(['Ada: hello', 'Bo: hi'])
  expect(await client.query(api.chat.counts, {})).toEqual({ users: 2, messages: 3, tags: 2, groups: 2 })

  // Deleting Ada deletes her messages (a `ref` edge) and her group memberships, not the groups or tags.
  await client.mutation(api.chat.removeUser, { email: 'ada@example.com' })
  expect(await client.query(api.chat.profile, { email: 'ada@example.com' })).toBe(null)
  expect(await client.query(api.chat.counts, {})).toEqual({ users: 1, messages: 1, tags: 2, groups: 2 })
  expect(await client.query(api.chat.tagged, { tag: 'greeting' })).toEqual(['Bo: hi'])
  expect(await client.query(api.chat.tagged, { tag: 'intro' })).toEqual([])
  expect((await client.query(api.chat.profile, { email: 'bo@example.com' })).groups).toEqual(['readers'])
})
