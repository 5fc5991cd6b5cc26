import { afterEach, expect, test } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SqlitePersistence } from './sqlite-persistence.ts'
import type { LogEntry } from '../persistence.ts'

const dirs: string[] = []
function tempFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'concave-history-'))
  dirs.push(dir)
  return join(dir, 'db.sqlite3')
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

const T = 10001
const put = (id: string, v: number) => ({ id, tableNumber: T, json: JSON.stringify({ _id: id, v }) })
const del = (id: string) => ({ id, tableNumber: T, json: null })

const everything = (p: SqlitePersistence) => p.loadLog(0n, p.maxTs(), 1_000_000)
const ids = ['a', 'b', 'c', 'd']

/** What a historical read at `ts` sees: the log after it and the documents' revisions at it. */
async function readAt(p: SqlitePersistence, ts: bigint): Promise<{ log: LogEntry[]; before: [string, LogEntry][] }> {
  const log = await p.loadLog(ts, p.maxTs(), 1_000_000)
  const before = [...(await p.documentsAt(ids, ts))].filter(([, e]) => e.json !== null)
  return { log, before }
}

/** Prunes to `horizon` in batches of `limit` until caught up; returns the batches' results. */
async function pruneAll(p: SqlitePersistence, horizon: bigint, limit: number) {
  const calls = []
  for (;;) {
    const r = await p.pruneHistory(horizon, limit)
    calls.push(r)
    if (r.pending === null || r.pending > horizon) return calls
  }
}

test('pruning keeps one revision per live document below the horizon and every read at or after it', async () => {
  const path = tempFile()
  const p = SqlitePersistence.open(path)
  try {
    // ts 1..: a, b, c created; 30 rounds of updates to a and b; c deleted at 40; d created at 50.
    await p.write([{ ts: 1n, documents: [put('a', 0), put('b', 0), put('c', 0)], indexes: [] }])
    for (let i = 1; i <= 30; i++) await p.write([{ ts: BigInt(1 + i), documents: [put('a', i), put('b', i)], indexes: [] }])
    await p.write([{ ts: 40n, documents: [del('c')], indexes: [] }])
    await p.write([{ ts: 50n, documents: [put('d', 0)], indexes: [] }])
    await p.write([{ ts: 60n, documents: [put('a', 100)], indexes: [] }])
    expect(await everything(p)).toHaveLength(3 + 60 + 1 + 1 + 1)
    expect(p.historyHorizon()).toBe(0n)
    const horizon = 45n
    const reads = new Map<bigint, Awaited<ReturnType<typeof readAt>>>()
    for (const ts of [45n, 49n, 50n, 55n, 60n]) reads.set(ts, await readAt(p, ts))

    // 7 revisions examined per transaction: 3 + 60 + 1 revisions up to ts 45 take 10 calls.
    const calls = await pruneAll(p, horizon, 7)
    expect(calls.map((c) => c.examined)).toEqual([7, 7, 7, 7, 7, 7, 7, 7, 7, 1])
    expect(calls.at(-1)!.pending).toBe(50n)
    expect(calls.reduce((n, c) => n + c.deleted, 0)).toBe(62)
    expect(p.historyHorizon()).toBe(45n)
    // a@31, b@31 (the latest at the horizon), then everything after it; c's deletion is gone.
    expect((await everything(p)).map((e) => `${e.id}@${e.ts}`)).toEqual(['a@31', 'b@31', 'd@50', 'a@60'])
    for (const [ts, before] of reads) expect(await readAt(p, ts)).toEqual(before)

    // Caught up: nothing more to do until the horizon moves; it never moves back.
    expect(await p.pruneHistory(45n, 7)).toEqual({ examined: 0, deleted: 0, pending: 50n })
    expect(await p.pruneHistory(10n, 7)).toEqual({ examined: 0, deleted: 0, pending: 50n })
    expect(p.historyHorizon()).toBe(45n)
  } finally {
    await p.close()
  }

  // The horizon and the cursor survive a restart: later pruning deletes what was superseded since.
  const again = SqlitePersistence.open(path)
  try {
    expect(again.historyHorizon()).toBe(45n)
    await again.write([{ ts: 70n, documents: [put('b', 200), del('d')], indexes: [] }])
    // Past the latest commit, the horizon stops at it.
    const calls = await pruneAll(again, 1000n, 100)
    expect(calls).toEqual([{ examined: 4, deleted: 4, pending: null }])
    expect(again.historyHorizon()).toBe(70n)
    expect((await everything(again)).map((e) => `${e.id}@${e.ts}`)).toEqual(['a@60', 'b@70'])
  } finally {
    await again.close()
  }
})

test('a snapshot opened before pruning keeps its view (what an export reads)', async () => {
  const p = SqlitePersistence.open(tempFile())
  try {
    await p.write([{ ts: 1n, documents: [put('a', 0), put('b', 0)], indexes: [] }])
    const old = await p.snapshot()
    for (let i = 1; i <= 50; i++) await p.write([{ ts: BigInt(1 + i), documents: [put('a', i), ...(i === 50 ? [del('b')] : [])], indexes: [] }])
    await pruneAll(p, p.maxTs(), 10)
    expect((await everything(p)).map((e) => `${e.id}@${e.ts}`)).toEqual(['a@51'])
    expect(old.ts).toBe(1n)
    expect(await old.getDocument('a')).toEqual(put('a', 0))
    expect(await old.getDocument('b')).toEqual(put('b', 0))
    old.release()
    const now = await p.snapshot()
    expect(await now.getDocument('a')).toEqual(put('a', 50))
    expect(await now.getDocument('b')).toBe(null)
    now.release()
  } finally {
    await p.close()
  }
})
