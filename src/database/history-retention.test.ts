import { afterEach, expect, test } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SqlitePersistence } from '../storage/sqlite/sqlite-persistence.ts'
import { HistoryRetention } from './history-retention.ts'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})
function open(): SqlitePersistence {
  const dir = mkdtempSync(join(tmpdir(), 'concave-retention-'))
  dirs.push(dir)
  return SqlitePersistence.open(join(dir, 'db.sqlite3'))
}

const ms = (n: number) => BigInt(n) * 1_000_000n
const put = (id: string, v: number) => ({ id, tableNumber: 10001, json: JSON.stringify({ _id: id, v }) })
const revisions = async (p: SqlitePersistence) => (await p.loadLog(0n, p.maxTs(), 1_000_000)).map((e) => `${e.id}@${Number(e.ts / 1_000_000n)}`)

test('the horizon trails the clock by the window, stops at the latest commit and at readers being opened', async () => {
  const p = open()
  try {
    let now = 0
    let reader: bigint | undefined
    let latest = 0n
    const r = new HistoryRetention(p, () => reader, () => latest, { windowMs: 1000, now: () => now, batch: 3 })
    // Document a updated every 100 ms from 1,000 to 3,000 ms, b written once at 1,050 ms.
    await p.write([{ ts: ms(1000), documents: [put('a', 0)], indexes: [] }])
    await p.write([{ ts: ms(1050), documents: [put('b', 0)], indexes: [] }])
    for (let t = 1100; t <= 3000; t += 100) await p.write([{ ts: ms(t), documents: [put('a', t)], indexes: [] }])
    latest = p.maxTs()

    now = 1500 // nothing is a second old yet
    expect(r.target()).toBe(ms(500))
    expect(await r.run()).toBe(ms(1000))
    expect(r.deleted).toBe(0)
    expect(p.historyHorizon()).toBe(ms(500))

    now = 2250 // revisions up to 1,250 ms are out of the window: a's latest there (1,200) stays
    expect(await r.run()).toBe(ms(1300))
    expect(p.historyHorizon()).toBe(ms(1250))
    expect(r.deleted).toBe(2)
    expect((await revisions(p)).slice(0, 3)).toEqual(['b@1050', 'a@1200', 'a@1300'])

    reader = ms(1600) // a historical view being opened at 1,600 ms holds the horizon there
    now = 10_000
    expect(r.target()).toBe(ms(1600))
    expect(await r.run()).toBe(ms(1700))
    expect((await revisions(p)).slice(0, 3)).toEqual(['b@1050', 'a@1600', 'a@1700'])

    reader = undefined // then it moves on, but never past the latest published commit
    latest = ms(2500)
    expect(await r.run()).toBe(ms(2600))
    expect(p.historyHorizon()).toBe(ms(2500))
    latest = p.maxTs()
    expect(await r.run()).toBe(null)
    expect(await revisions(p)).toEqual(['b@1050', 'a@3000'])
    expect(r.deleted).toBe(20)
  } finally {
    await p.close()
  }
})

test('a window of 0 prunes up to the latest commit; after close nothing more is deleted', async () => {
  const p = open()
  try {
    let latest = 0n
    const r = new HistoryRetention(p, () => undefined, () => latest, { windowMs: 0, now: () => 5000, batch: 2 })
    for (let t = 1; t <= 10; t++) await p.write([{ ts: ms(t), documents: [put('a', t)], indexes: [] }])
    latest = p.maxTs()
    expect(await r.run()).toBe(null)
    expect(await revisions(p)).toEqual(['a@10'])
    await p.write([{ ts: ms(11), documents: [put('a', 11)], indexes: [] }])
    latest = p.maxTs()
    await r.close()
    expect(await r.run()).toBe(null)
    expect(await revisions(p)).toEqual(['a@10', 'a@11'])
  } finally {
    await p.close()
  }
})

test("a named hold keeps the write log back (a streaming export cursor), until let go", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'concave-retention-'))
  dirs.push(dir)
  const { Database } = await import('./database.ts')
  const { CursorCodec } = await import('./cursors.ts')
  const db = await Database.open(SqlitePersistence.open(join(dir, 'db.sqlite3')), new CursorCodec('00'.repeat(32)), { historyRetentionMs: 0 })
  try {
    await db.mutate((txn) => txn.insert('notes', { v: 1 }), { system: false })
    const held = db.committer.publishedTs
    await db.mutate((txn) => txn.insert('notes', { v: 2 }), { system: false })
    // With no retention, the horizon may move up to the latest commit...
    expect(db.history.target()).toBe(db.committer.publishedTs)
    // ...but not past a hold.
    db.holdHistory('streaming-export', held)
    expect(db.history.target()).toBe(held)
    await db.history.run()
    expect(db.persistence.historyHorizon()).toBe(held)
    db.holdHistory('streaming-export', null)
    expect(db.history.target()).toBe(db.committer.publishedTs)
  } finally {
    await db.close()
  }
})
