import { afterEach, expect, test } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SqlitePersistence } from '../storage/sqlite/sqlite-persistence.ts'
import { CursorCodec } from '../database/cursors.ts'
import { Database } from '../database/database.ts'
import { valueToJson } from '../values/index.ts'
import { SessionRequests } from './session-requests.ts'

const SECRET = '4361726e697461732c206c69746572616c6c79206d65616e696e6720226c6974'
const cleanup: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c()
})

async function opened(): Promise<{ db: Database; requests: SessionRequests }> {
  const dir = mkdtempSync(join(tmpdir(), 'concave-session-requests-'))
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }))
  const db = await Database.open(SqlitePersistence.open(join(dir, 'db.sqlite3')), new CursorCodec(SECRET))
  cleanup.push(() => db.close())
  const requests = new SessionRequests(db, () => {})
  await requests.start()
  cleanup.push(() => requests.stop())
  return { db, requests }
}

test("a re-sent request's recorded result holds its commit's timestamp where the mutation returned db.vars.commitTs", async () => {
  const { db, requests } = await opened()
  const stamped = { sessionId: 's', requestId: 1 }
  const plain = { sessionId: 's', requestId: 2 }
  const { ts } = await db.mutateAt(async (txn) => {
    await requests.record(txn, stamped, { value: '{"at":{"$commitTs":null},"list":[{"$commitTs":null}]}', logLines: ['[LOG] one'] })
    await requests.record(txn, plain, { value: '"no placeholder"', logLines: [] })
  })
  const at = JSON.stringify(valueToJson(ts))
  const txn = await db.begin(false)
  try {
    expect(await requests.find(txn, stamped)).toEqual({ value: `{"at":${at},"list":[${at}]}`, logLines: ['[LOG] one'] })
    expect(await requests.find(txn, plain)).toEqual({ value: '"no placeholder"', logLines: [] })
    expect(await requests.find(txn, { sessionId: 's', requestId: 3 })).toBe(null)
  } finally {
    db.end(txn)
  }
})
