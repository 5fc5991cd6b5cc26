import { expect, test } from 'vitest'
import { ConvexHttpClient } from 'convex/browser'
import { useDeployedBackend } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'

// The dashboard's "Delete table" (`POST /api/delete_tables`), as Convex answers it.
let backend: TestBackend
let client: ConvexHttpClient

useDeployedBackend('nested', (t) => ({ backend, client } = t))

const deleteTables = (body: unknown, key: string | null = backend.adminKey) =>
  fetch(`${backend.url}/api/delete_tables`, { method: 'POST', headers: { 'content-type': 'application/json', ...(key === null ? {} : { authorization: `Convex ${key}` }) }, body: JSON.stringify(body) })

async function tableNames(): Promise<string[]> {
  const admin = new ConvexHttpClient(backend.url)
  ;(admin as any).setAdminAuth(backend.adminKey)
  return ((await admin.query('_system/cli/tables' as any, { paginationOpts: { numItems: 1000, cursor: null } })) as { page: { name: string }[] }).page.map((t) => t.name)
}

test('a table outside the schema is deleted with its documents; a new one of that name starts empty, with new ids', async () => {
  await client.mutation('nested:seed' as any, { table: 'junk', count: 5 })
  const live = await client.query('nested:count' as any, { table: 'junk' })
  expect(live).toBe(5)
  const res = await deleteTables({ tableNames: ['junk'], componentId: null })
  expect(res.status).toBe(200)
  expect(await client.query('nested:count' as any, { table: 'junk' })).toBe(0)
  expect(await tableNames()).not.toContain('junk')
  await client.mutation('nested:seed' as any, { table: 'junk', count: 1 })
  expect(await client.query('nested:count' as any, { table: 'junk' })).toBe(1)
  expect(await tableNames()).toContain('junk')
})

test('tables the schema declares, system tables and callers without an admin key are refused, and nothing changes', async () => {
  await client.mutation('nested:seed' as any, { table: 'kept', count: 2 })
  const inSchema = await deleteTables({ tableNames: ['kept', 'mixed'], componentId: null })
  expect(inSchema.status).toBe(400)
  expect(await inSchema.json()).toEqual({ code: 'SchemaEnforcementError', message: 'Failed to delete table "mixed" because it appears in the schema' })
  const system = await deleteTables({ tableNames: ['_storage'] })
  expect(system.status).toBe(400)
  expect(((await system.json()) as { message: string }).message).toBe('cannot delete system table _storage')
  expect((await deleteTables({ tableNames: ['kept'] }, null)).status).toBe(403)
  // All or nothing: `kept` was named beside `mixed` and is still there.
  expect(await client.query('nested:count' as any, { table: 'kept' })).toBe(2)
})
