import { afterEach, expect, test } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SqlitePersistence } from '../storage/sqlite/sqlite-persistence.ts'
import { Database } from '../database/database.ts'
import { CursorCodec } from '../database/cursors.ts'
import { EnvironmentError, EnvironmentVariables } from './environment.ts'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})
const SYSTEM = { CONVEX_CLOUD_URL: 'http://cloud', CONVEX_SITE_URL: 'http://site' }
const SECRET = '4361726e697461732c206c69746572616c6c79206d65616e696e6720226c6974'

async function open(dir: string): Promise<{ db: Database; env: EnvironmentVariables }> {
  const db = await Database.open(SqlitePersistence.open(join(dir, 'db.sqlite3')), new CursorCodec(SECRET))
  const env = new EnvironmentVariables(db, SYSTEM)
  await env.load()
  return { db, env }
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'concave-env-'))
  dirs.push(dir)
  return dir
}

test('variables of an older data folder move into their table once, and stay', async () => {
  const dir = tempDir()
  const p = SqlitePersistence.open(join(dir, 'db.sqlite3'))
  await p.setGlobal('environment_variables', JSON.stringify({ A: '1', B: 'two' }))
  await p.close()
  const first = await open(dir)
  expect(first.env.all).toEqual({ A: '1', B: 'two' })
  expect(await first.db.persistence.getGlobal('environment_variables')).toBe('{}')
  await first.db.close()
  const again = await open(dir)
  expect(again.env.all).toEqual({ A: '1', B: 'two' })
  await again.db.close()
})

test('changes are commits: concurrent batches both land, a refused batch changes nothing, a restart keeps them', async () => {
  const dir = tempDir()
  const { db, env } = await open(dir)
  await Promise.all([env.apply([{ name: 'A', value: '1' }]), env.apply([{ name: 'B', value: '2' }]), env.apply([{ name: 'C', value: '3' }])])
  expect(env.all).toEqual({ A: '1', B: '2', C: '3' })
  await env.apply([{ name: 'A', value: null }, { name: 'B', value: 'two' }])
  const refused = await env.apply([{ name: 'C', value: null }, { name: 'CONVEX_SITE_URL', value: 'x' }]).catch((e: unknown) => e)
  expect(refused).toBeInstanceOf(EnvironmentError)
  expect((refused as EnvironmentError).code).toBe('EnvVarNameForbidden')
  expect(env.all).toEqual({ B: 'two', C: '3' })
  expect(env.forFunctions).toEqual({ B: 'two', C: '3', ...SYSTEM })
  await db.close()
  const again = await open(dir)
  expect(again.env.all).toEqual({ B: 'two', C: '3' })
  await again.db.close()
})
