/**
 * @module The conformance suite of the storage contract (see `Persistence` in persistence.ts): the
 * same cases, registered against any store by a `*.conformance.test.ts` file beside it (as hono runs
 * one `*.case.test.ts` per router, and Convex one persistence test suite per database).
 *
 * A store is given as a `StoreFactory`: `location()` makes a fresh, empty place for a store (a temp
 * directory, a new database) and `open(location)` opens the store there, creating it the first time;
 * opening the same location again after `close()` is a restart.
 */
import { afterEach, describe, expect, test } from 'vitest'
import type { CommitRecord, DocumentWrite, IndexWrite, LogEntry, Persistence, SearchQuery, Snapshot, VectorEntry, VectorQuery } from './persistence.ts'
import { WriteNotApplied } from './persistence.ts'

export interface StoreFactory {
  /** A fresh, empty location for a store; everything in it is removed after the case. */
  location(): Promise<string>
  /** Opens the store at `location` (creating it the first time). */
  open(location: string): Promise<Persistence>
  /** Removes a location made by `location()` (its store is closed by then). */
  remove?(location: string): Promise<void>
}

const T = 10001
const U = 10002
const put = (id: string, v: unknown, tableNumber = T): DocumentWrite => ({ id, tableNumber, json: JSON.stringify({ _id: id, v }) })
const del = (id: string, tableNumber = T): DocumentWrite => ({ id, tableNumber, json: null })
const commit = (ts: bigint, documents: DocumentWrite[], indexes: IndexWrite[] = []): CommitRecord => ({ ts, documents, indexes })
const b = (...bytes: number[]) => Buffer.from(bytes)
const entry = (indexId: number, key: Buffer, id: string | null): IndexWrite => ({ indexId, key, id })
const hex = (rows: { key: Buffer }[]) => rows.map((r) => r.key.toString('hex'))
const revisions = (log: LogEntry[]) => log.map((e) => `${e.id}@${e.ts}${e.json === null ? '-' : ''}`)

export function persistenceCases(name: string, factory: StoreFactory): void {
  describe(`${name}: the storage contract`, () => {
    const opened: Persistence[] = []
    const locations: string[] = []
    /** A new empty store, and how to restart it (close, then open the same location again). */
    async function fresh(): Promise<{ p: Persistence; reopen: () => Promise<Persistence> }> {
      const where = await factory.location()
      locations.push(where)
      const box = { p: await factory.open(where) }
      opened.push(box.p)
      return {
        p: box.p,
        reopen: async () => {
          const i = opened.indexOf(box.p)
          if (i >= 0) opened.splice(i, 1)
          await box.p.close()
          box.p = await factory.open(where)
          opened.push(box.p)
          return box.p
        },
      }
    }
    afterEach(async () => {
      for (const p of opened.splice(0)) await p.close().catch(() => {})
      for (const where of locations.splice(0)) await factory.remove?.(where)
    })
    async function read<R>(p: Persistence, f: (s: Snapshot) => Promise<R>): Promise<R> {
      const s = await p.snapshot()
      try {
        return await f(s)
      } finally {
        s.release()
      }
    }

    describe('timestamps and durability', () => {
      test('a new store is empty at timestamp 0', async () => {
        const { p } = await fresh()
        expect(p.maxTs()).toBe(0n)
        expect(p.historyHorizon()).toBe(0n)
        const s = await p.snapshot()
        expect(s.ts).toBe(0n)
        expect(await s.getDocument('a')).toBe(null)
        expect(await s.countTable(T)).toBe(0)
        expect(await s.scan(1, { lo: b(), hi: null }, 'asc', 10)).toEqual([])
        s.release()
        expect(await p.tables()).toEqual([])
        expect(await p.indexes()).toEqual([])
        expect(await p.modules()).toEqual([])
        expect(await p.getGlobal('anything')).toBe(undefined)
        expect(await p.loadLog(0n, 100n, 100)).toEqual([])
      })

      test('maxTs moves when the write resolves, not before, and survives a restart', async () => {
        const { p, reopen } = await fresh()
        const pending = p.write([commit(5n, [put('a', 1)])])
        expect(p.maxTs()).toBe(0n)
        await pending
        expect(p.maxTs()).toBe(5n)
        await p.write([commit(7n, [put('b', 1)]), commit(9n, [put('a', 2)])])
        expect(p.maxTs()).toBe(9n)
        const again = await reopen()
        expect(again.maxTs()).toBe(9n)
        expect(await read(again, async (s) => [s.ts, await s.getDocument('a'), await s.getDocument('b')])).toEqual([9n, put('a', 2), put('b', 1)])
      })

      test('timestamps beyond 2^53 keep every digit', async () => {
        const { p, reopen } = await fresh()
        const big = 2n ** 62n + 12345n
        await p.write([commit(big, [put('a', 1)])])
        expect(p.maxTs()).toBe(big)
        expect((await p.loadLog(big - 1n, big, 10)).map((e) => e.ts)).toEqual([big])
        const again = await reopen()
        expect(again.maxTs()).toBe(big)
        expect(await read(again, async (s) => s.ts)).toBe(big)
      })
    })

    describe('write groups', () => {
      test('a group of commits lands whole: every document, index entry and log revision', async () => {
        const { p } = await fresh()
        await p.write([
          commit(1n, [put('a', 1), put('b', 1)], [entry(1, b(1), 'a'), entry(1, b(2), 'b')]),
          commit(2n, [put('a', 2), del('b')], [entry(1, b(2), null), entry(1, b(3), 'a'), entry(1, b(1), null)]),
          commit(3n, [put('c', 3, U)], [entry(2, b(9), 'c')]),
        ])
        await read(p, async (s) => {
          expect(s.ts).toBe(3n)
          expect(await s.getDocument('a')).toEqual(put('a', 2))
          expect(await s.getDocument('b')).toBe(null)
          expect(await s.getDocument('c')).toEqual(put('c', 3, U))
          expect(await s.countTable(T)).toBe(1)
          expect(await s.countTable(U)).toBe(1)
          expect(await s.scan(1, { lo: b(), hi: null }, 'asc', 10)).toEqual([{ key: b(3), doc: put('a', 2) }])
          expect(await s.scan(2, { lo: b(), hi: null }, 'asc', 10)).toEqual([{ key: b(9), doc: put('c', 3, U) }])
        })
        expect(revisions(await p.loadLog(0n, 3n, 100))).toEqual(['a@1', 'b@1', 'a@2', 'b@2-', 'c@3'])
      })

      test('a group the store cannot apply leaves nothing behind, and the store takes the next write', async () => {
        const { p, reopen } = await fresh()
        await p.write([commit(1n, [put('a', 1)], [entry(1, b(1), 'a')])])
        // The second commit names one document twice, which the committer never does: the store
        // refuses it (one revision per document and timestamp), and with it the first commit.
        const bad = p.write([commit(2n, [put('a', 2), put('b', 2)], [entry(1, b(2), 'b')]), commit(3n, [put('c', 3), put('c', 4)])])
        await expect(bad).rejects.toBeInstanceOf(WriteNotApplied)
        expect(p.maxTs()).toBe(1n)
        const unchanged = async (q: Persistence) => {
          await read(q, async (s) => {
            expect(s.ts).toBe(1n)
            expect(await s.getDocument('a')).toEqual(put('a', 1))
            expect(await s.getDocument('b')).toBe(null)
            expect(await s.scan(1, { lo: b(), hi: null }, 'asc', 10)).toEqual([{ key: b(1), doc: put('a', 1) }])
          })
          expect(revisions(await q.loadLog(0n, 10n, 100))).toEqual(['a@1'])
        }
        await unchanged(p)
        await unchanged(await reopen().then((q) => q))
      })

      test('after a refused group the same timestamps can be written', async () => {
        const { p } = await fresh()
        await expect(p.write([commit(2n, [put('a', 1), put('a', 2)])])).rejects.toBeInstanceOf(WriteNotApplied)
        await p.write([commit(2n, [put('a', 3)])])
        expect(p.maxTs()).toBe(2n)
        expect(await read(p, (s) => s.getDocument('a'))).toEqual(put('a', 3))
      })
    })

    describe('snapshots', () => {
      test('a held snapshot sees nothing written after it, however long it is held', async () => {
        const { p } = await fresh()
        await p.write([commit(1n, [put('a', 1), put('b', 1)], [entry(1, b(1), 'a'), entry(1, b(2), 'b')])])
        const old = await p.snapshot()
        await p.write([commit(2n, [put('a', 2), del('b'), put('c', 2)], [entry(1, b(2), null), entry(1, b(3), 'c')])])
        for (let ts = 3n; ts <= 20n; ts++) await p.write([commit(ts, [put('a', Number(ts))])])
        const now = await p.snapshot()
        try {
          expect(old.ts).toBe(1n)
          expect(await old.getDocument('a')).toEqual(put('a', 1))
          expect(await old.getDocument('b')).toEqual(put('b', 1))
          expect(await old.getDocument('c')).toBe(null)
          expect(await old.countTable(T)).toBe(2)
          expect(await old.scan(1, { lo: b(), hi: null }, 'asc', 10)).toEqual([
            { key: b(1), doc: put('a', 1) },
            { key: b(2), doc: put('b', 1) },
          ])
          expect(now.ts).toBe(20n)
          expect(await now.getDocument('a')).toEqual(put('a', 20))
          expect(await now.getDocument('b')).toBe(null)
          expect(await now.countTable(T)).toBe(2)
          expect(await now.scan(1, { lo: b(), hi: null }, 'asc', 10)).toEqual([
            { key: b(1), doc: put('a', 20) },
            { key: b(3), doc: put('c', 2) },
          ])
        } finally {
          old.release()
          now.release()
        }
      })

      test('snapshots taken while commits land see each commit whole or not at all', async () => {
        const { p } = await fresh()
        // Every commit writes a and b with its own timestamp: a snapshot must see them agree.
        const writes = (async () => {
          for (let ts = 1n; ts <= 40n; ts++) await p.write([commit(ts, [put('a', Number(ts)), put('b', Number(ts))], [entry(1, b(1), ts % 2n === 0n ? 'a' : 'b')])])
        })()
        const seen: bigint[] = []
        let done = false
        void writes.finally(() => (done = true))
        while (!done) {
          const s = await p.snapshot()
          try {
            const [a, bb, rows] = await Promise.all([s.getDocument('a'), s.getDocument('b'), s.scan(1, { lo: b(), hi: null }, 'asc', 10)])
            const expected = s.ts === 0n ? null : Number(s.ts)
            expect(a && JSON.parse(a.json).v).toBe(expected)
            expect(bb && JSON.parse(bb.json).v).toBe(expected)
            expect(rows.map((r) => r.doc.id)).toEqual(s.ts === 0n ? [] : [s.ts % 2n === 0n ? 'a' : 'b'])
            expect(s.ts <= p.maxTs() || !done).toBe(true)
            seen.push(s.ts)
          } finally {
            s.release()
          }
          // An in-process store may answer from microtasks alone: let the write's I/O complete.
          await new Promise((resolve) => setImmediate(resolve))
        }
        await writes
        expect([...seen].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0))).toEqual(seen)
        expect(await read(p, async (s) => s.ts)).toBe(40n)
      })

      test('many snapshots can be held at once, and released ones are reused', async () => {
        const { p } = await fresh()
        await p.write([commit(1n, [put('a', 1)])])
        for (let round = 0; round < 3; round++) {
          const held = await Promise.all(Array.from({ length: 12 }, () => p.snapshot()))
          expect(await Promise.all(held.map((s) => s.getDocument('a')))).toEqual(held.map(() => put('a', 1)))
          for (const s of held) s.release()
        }
      })
    })

    describe('index scans', () => {
      // Keys compare as unsigned bytes, shorter first on a common prefix.
      const keys = [b(), b(0), b(0, 0), b(0, 1), b(1), b(0x7f), b(0x7f, 0xff), b(0x80), b(0xc3, 0xa9), b(0xff), b(0xff, 0xff, 0xff)]
      async function seeded() {
        const { p, reopen } = await fresh()
        const shuffled = [...keys].reverse()
        await p.write([
          commit(
            1n,
            shuffled.map((_, i) => put(`d${i}`, i)),
            shuffled.map((k, i) => entry(1, k, `d${i}`)),
          ),
        ])
        return { p, reopen }
      }

      test('rows come in unsigned byte order of their keys, both ways', async () => {
        const { p } = await seeded()
        await read(p, async (s) => {
          expect(hex(await s.scan(1, { lo: b(), hi: null }, 'asc', 100))).toEqual(keys.map((k) => k.toString('hex')))
          expect(hex(await s.scan(1, { lo: b(), hi: null }, 'desc', 100))).toEqual(keys.map((k) => k.toString('hex')).reverse())
          const first = (await s.scan(1, { lo: b(), hi: null }, 'asc', 1))[0]!
          expect(first.doc).toEqual(put(`d${keys.length - 1}`, keys.length - 1))
        })
      })

      test('intervals are [lo, hi), limits cut from the scan direction', async () => {
        const { p } = await seeded()
        await read(p, async (s) => {
          const scan = async (lo: Buffer, hi: Buffer | null, order: 'asc' | 'desc' = 'asc', limit = 100) => hex(await s.scan(1, { lo, hi }, order, limit))
          expect(await scan(b(0, 1), b(0x7f, 0xff))).toEqual(['0001', '01', '7f'])
          expect(await scan(b(0, 1), b(0x7f, 0xff), 'desc')).toEqual(['7f', '01', '0001'])
          expect(await scan(b(0x80), null)).toEqual(['80', 'c3a9', 'ff', 'ffffff'])
          expect(await scan(b(0x80), null, 'desc', 2)).toEqual(['ffffff', 'ff'])
          expect(await scan(b(0x80), null, 'asc', 2)).toEqual(['80', 'c3a9'])
          expect(await scan(b(0), b(0, 0))).toEqual(['00'])
          expect(await scan(b(0x7f), b(0x7f))).toEqual([])
          expect(await scan(b(0x10), b(0x20))).toEqual([])
          expect(await scan(b(), b(0), 'desc')).toEqual([''])
          expect(await scan(b(), null, 'asc', 0)).toEqual([])
          // Other indexes are separate key spaces.
          expect(await s.scan(2, { lo: b(), hi: null }, 'asc', 100)).toEqual([])
        })
      })

      test('an entry is replaced by a new id at its key and removed by a null id', async () => {
        const { p, reopen } = await seeded()
        await p.write([commit(2n, [put('x', 'x')], [entry(1, b(1), 'x'), entry(1, b(0x80), null), entry(1, b(0x42), null), entry(2, b(1), 'x')])])
        const check = async (q: Persistence) =>
          read(q, async (s) => {
            expect((await s.scan(1, { lo: b(1), hi: b(0xc3) }, 'asc', 100)).map((r) => [r.key.toString('hex'), r.doc.id])).toEqual([
              ['01', 'x'],
              ['7f', 'd5'],
              ['7fff', 'd4'],
            ])
            expect((await s.scan(2, { lo: b(), hi: null }, 'asc', 100)).map((r) => r.doc.id)).toEqual(['x'])
          })
        await check(p)
        await check(await reopen())
      })

      test('long keys (several kilobytes) order and replace like short ones', async () => {
        const { p } = await fresh()
        const long = (fill: number, tail: number[], length = 5000) => Buffer.concat([Buffer.alloc(length, fill), b(...tail)])
        // Lengths around the points where stores might split a key (1 KiB, 2 KiB, Postgres's ~2.7 KB btree limit).
        const ks = [long(7, []), long(7, [0]), long(7, [1]), long(7, [1, 0]), long(7, [2], 3000), long(8, [], 100), long(7, [], 2500), long(7, [0], 2499)]
        for (const n of [1024, 2047, 2048, 2049, 2704, 2705]) ks.push(long(7, [], n), long(7, [6], n - 1))
        const sorted = [...ks].sort(Buffer.compare)
        await p.write([commit(1n, ks.map((_, i) => put(`k${i}`, i)), ks.map((k, i) => entry(1, k, `k${i}`)))])
        await read(p, async (s) => {
          expect((await s.scan(1, { lo: b(), hi: null }, 'asc', 100)).map((r) => r.key)).toEqual(sorted)
          expect((await s.scan(1, { lo: b(), hi: null }, 'desc', 100)).map((r) => r.key)).toEqual([...sorted].reverse())
          expect((await s.scan(1, { lo: long(7, [0]), hi: long(7, [1, 0]) }, 'asc', 100)).map((r) => r.key)).toEqual([long(7, [0]), long(7, [1])])
          // Every interval, bounds long or short, gives exactly the keys within it.
          for (const lo of [b(), ...sorted]) {
            for (const hi of [...sorted, null]) {
              const within = sorted.filter((k) => Buffer.compare(k, lo) >= 0 && (hi === null || Buffer.compare(k, hi) < 0))
              expect((await s.scan(1, { lo, hi }, 'asc', 100)).map((r) => r.key)).toEqual(within)
              expect((await s.scan(1, { lo, hi }, 'desc', 2)).map((r) => r.key)).toEqual(within.reverse().slice(0, 2))
            }
          }
        })
        await p.write([commit(2n, [], [entry(1, long(7, [1]), 'k0'), entry(1, long(7, [0]), null)])])
        await read(p, async (s) => {
          const rows = await s.scan(1, { lo: long(7, []), hi: long(7, [2]) }, 'asc', 100)
          expect(rows.map((r) => [r.key.length, r.doc.id])).toEqual([
            [5000, 'k0'],
            [5001, 'k0'],
            [5002, 'k3'],
          ])
        })
      })
    })

    describe('the write log', () => {
      test('loadLog: revisions after one timestamp up to another, in (ts, id) order, limited', async () => {
        const { p } = await fresh()
        await p.write([commit(1n, [put('b', 1), put('a', 1)])])
        await p.write([commit(2n, [del('a'), put('c', 2, U)])])
        await p.write([commit(4n, [put('b', 4)])])
        const log = await p.loadLog(0n, 4n, 100)
        expect(log).toEqual([
          { ts: 1n, id: 'a', tableNumber: T, json: put('a', 1).json },
          { ts: 1n, id: 'b', tableNumber: T, json: put('b', 1).json },
          { ts: 2n, id: 'a', tableNumber: T, json: null },
          { ts: 2n, id: 'c', tableNumber: U, json: put('c', 2, U).json },
          { ts: 4n, id: 'b', tableNumber: T, json: put('b', 4).json },
        ])
        expect(revisions(await p.loadLog(1n, 3n, 100))).toEqual(['a@2-', 'c@2'])
        expect(revisions(await p.loadLog(0n, 4n, 3))).toEqual(['a@1', 'b@1', 'a@2-'])
        expect(revisions(await p.loadLog(4n, 10n, 100))).toEqual([])
      })

      test('documentsAt: each id changed after ts, as of ts', async () => {
        const { p } = await fresh()
        await p.write([commit(1n, [put('a', 1), put('b', 1)])])
        await p.write([commit(2n, [put('a', 2), del('b')])])
        await p.write([commit(3n, [put('c', 3)])])
        const at = async (ids: string[], ts: bigint) => Object.fromEntries([...(await p.documentsAt(ids, ts))].map(([id, e]) => [id, `${e.ts}:${e.json === null ? 'deleted' : JSON.parse(e.json).v}`]))
        expect(await at(['a', 'b', 'c'], 1n)).toEqual({ a: '1:1', b: '1:1' })
        expect(await at(['a', 'b', 'c'], 2n)).toEqual({ a: '2:2', b: '2:deleted' })
        expect(await at(['a', 'c'], 0n)).toEqual({})
        expect(await at(['c', 'zzz'], 3n)).toEqual({ c: '3:3' })
        expect((await p.documentsAt(['a'], 1n)).get('a')).toEqual({ ts: 1n, id: 'a', tableNumber: T, json: put('a', 1).json })
      })

      const ids = ['a', 'b', 'c', 'd']
      /** What a historical read at `ts` sees: the log after it and the documents' revisions at it. */
      async function readAt(p: Persistence, ts: bigint) {
        const log = await p.loadLog(ts, p.maxTs(), 1_000_000)
        const before = [...(await p.documentsAt(ids, ts))].filter(([, e]) => e.json !== null).sort(([x], [y]) => (x < y ? -1 : 1))
        return { log, before }
      }
      const everything = (p: Persistence) => p.loadLog(0n, p.maxTs(), 1_000_000)
      /** Prunes to `horizon` in batches of `limit` until caught up; returns the batches' results. */
      async function pruneAll(p: Persistence, horizon: bigint, limit: number) {
        const calls = []
        for (;;) {
          const r = await p.pruneHistory(horizon, limit)
          calls.push(r)
          if (r.pending === null || r.pending > horizon) return calls
        }
      }

      test('pruning keeps one revision per live document below the horizon and every read at or after it', async () => {
        const { p, reopen } = await fresh()
        // ts 1..: a, b, c created; 30 rounds of updates to a and b; c deleted at 40; d created at 50.
        await p.write([commit(1n, [put('a', 0), put('b', 0), put('c', 0)])])
        for (let i = 1; i <= 30; i++) await p.write([commit(BigInt(1 + i), [put('a', i), put('b', i)])])
        await p.write([commit(40n, [del('c')])])
        await p.write([commit(50n, [put('d', 0)])])
        await p.write([commit(60n, [put('a', 100)])])
        expect(await everything(p)).toHaveLength(3 + 60 + 1 + 1 + 1)
        const reads = new Map<bigint, Awaited<ReturnType<typeof readAt>>>()
        for (const ts of [45n, 49n, 50n, 55n, 60n]) reads.set(ts, await readAt(p, ts))

        // 7 revisions examined per call: 3 + 60 + 1 revisions up to ts 45 take 10 calls.
        const calls = await pruneAll(p, 45n, 7)
        expect(calls.map((c) => c.examined)).toEqual([7, 7, 7, 7, 7, 7, 7, 7, 7, 1])
        expect(calls.at(-1)!.pending).toBe(50n)
        expect(calls.reduce((n, c) => n + c.deleted, 0)).toBe(62)
        expect(p.historyHorizon()).toBe(45n)
        // a@31, b@31 (the latest at the horizon), then everything after it; c's deletion is gone.
        expect(revisions(await everything(p))).toEqual(['a@31', 'b@31', 'd@50', 'a@60'])
        for (const [ts, before] of reads) expect(await readAt(p, ts)).toEqual(before)

        // Caught up: nothing more to do until the horizon moves; it never moves back.
        expect(await p.pruneHistory(45n, 7)).toEqual({ examined: 0, deleted: 0, pending: 50n })
        expect(await p.pruneHistory(10n, 7)).toEqual({ examined: 0, deleted: 0, pending: 50n })
        expect(p.historyHorizon()).toBe(45n)

        // The horizon and where pruning stopped survive a restart: later pruning deletes what was superseded since.
        const again = await reopen()
        expect(again.historyHorizon()).toBe(45n)
        await again.write([commit(70n, [put('b', 200), del('d')])])
        // Past the latest commit, the horizon stops at it.
        expect(await pruneAll(again, 1000n, 100)).toEqual([{ examined: 4, deleted: 4, pending: null }])
        expect(again.historyHorizon()).toBe(70n)
        expect(revisions(await everything(again))).toEqual(['a@60', 'b@70'])
      })

      test('a snapshot opened before pruning keeps its view (what an export reads)', async () => {
        const { p } = await fresh()
        await p.write([commit(1n, [put('a', 0), put('b', 0)])])
        const old = await p.snapshot()
        try {
          for (let i = 1; i <= 50; i++) await p.write([commit(BigInt(1 + i), [put('a', i), ...(i === 50 ? [del('b')] : [])])])
          await pruneAll(p, p.maxTs(), 10)
          expect(revisions(await everything(p))).toEqual(['a@51'])
          expect(old.ts).toBe(1n)
          expect(await old.getDocument('a')).toEqual(put('a', 0))
          expect(await old.getDocument('b')).toEqual(put('b', 0))
        } finally {
          old.release()
        }
        expect(await read(p, async (s) => [await s.getDocument('a'), await s.getDocument('b')])).toEqual([put('a', 50), null])
      })
    })

    describe('full-text search', () => {
      const doc = (id: string) => ({ id, tableNumber: T, json: JSON.stringify({ _id: id, _creationTime: 1 }) })
      const query = (q: Partial<SearchQuery>): SearchQuery => ({ terms: [], prefix: null, maxPrefixTerms: 16, filters: [], limit: 1024, ...q })
      const searchEntry = (terms: string[], tag: string) => ({ terms, filterKeys: [tag] })

      test('matching, prefix expansion, frequencies, filters, updates, snapshots, restart and drop', async () => {
        const { p, reopen } = await fresh()
        await p.createTable('messages', T)
        const index = await p.createIndex({ indexId: 201, tableNumber: T, name: 'search_body', fields: [], search: { searchField: 'body', filterFields: ['tag'] } }, [], [
          { indexId: -1, id: 'a', entry: searchEntry(['apple', 'pie'], 'k1') },
        ])
        const other = await p.createIndex({ indexId: 202, tableNumber: T, name: 'search_other', fields: [], search: { searchField: 'other', filterFields: [] } }, [], [{ indexId: -1, id: 'a', entry: { terms: ['apricot'], filterKeys: [] } }])
        expect((await p.indexes()).find((i) => i.name === 'search_body')).toEqual({ indexId: index.indexId, tableNumber: T, name: 'search_body', fields: [], search: { searchField: 'body', filterFields: ['tag'] } })
        await p.write([
          {
            ts: 10n,
            documents: [doc('a'), doc('b'), doc('c')],
            indexes: [],
            search: [
              { indexId: index.indexId, id: 'b', entry: searchEntry(['apple', 'apple', 'applesauce'], 'k2') },
              { indexId: index.indexId, id: 'c', entry: searchEntry(['banana'], 'k1') },
            ],
          },
        ])
        const before = await p.snapshot()
        try {
          const r = await before.search!(index.indexId, query({ terms: ['banana'], prefix: 'app' }))
          expect(r.prefixTerms).toEqual(['apple', 'applesauce'])
          expect(r.documentCount).toBe(3)
          expect(r.termCount).toBe(6)
          expect(Object.fromEntries(r.documentFrequency)).toEqual({ banana: 1, apple: 2, applesauce: 1 })
          expect(r.documents.map((d) => d.id).sort()).toEqual(['a', 'b', 'c'])
          expect(r.documents.find((d) => d.id === 'a')).toEqual(doc('a'))
          // Other indexes' terms are not this index's.
          expect((await before.search!(index.indexId, query({ prefix: 'apr' }))).prefixTerms).toEqual([])
          expect((await before.search!(other.indexId, query({ prefix: 'ap' }))).prefixTerms).toEqual(['apricot'])
          expect((await before.search!(index.indexId, query({ prefix: 'app', maxPrefixTerms: 1 }))).prefixTerms).toEqual(['apple'])
          expect((await before.search!(index.indexId, query({ terms: ['apple', 'banana'], filters: [{ field: 0, key: 'k1' }] }))).documents.map((d) => d.id).sort()).toEqual(['a', 'c'])
          expect((await before.search!(index.indexId, query({ terms: ['apple'], filters: [{ field: 0, key: 'k3' }] }))).documents).toEqual([])
          expect((await before.search!(index.indexId, query({ terms: ['apple'], limit: 1 }))).documents).toHaveLength(1)
          expect((await before.search!(index.indexId, query({ terms: ['apple'], limit: 0 }))).documents).toEqual([])
          const missing = await before.search!(index.indexId, query({ terms: ['zebra'] }))
          expect([missing.documents, Object.fromEntries(missing.documentFrequency)]).toEqual([[], { zebra: 0 }])

          // Replace b's entry and remove a's: later snapshots see it, the earlier one doesn't.
          await p.write([{ ts: 11n, documents: [], indexes: [], search: [{ indexId: index.indexId, id: 'b', entry: searchEntry(['cherry'], 'k2') }, { indexId: index.indexId, id: 'a', entry: null }] }])
          await read(p, async (after) => {
            const r2 = await after.search!(index.indexId, query({ terms: ['cherry'], prefix: 'app' }))
            expect(r2.prefixTerms).toEqual([])
            expect(r2.documentCount).toBe(2)
            expect(r2.termCount).toBe(2)
            expect(r2.documents.map((d) => d.id)).toEqual(['b'])
          })
          expect((await before.search!(index.indexId, query({ prefix: 'app' }))).documents.map((d) => d.id).sort()).toEqual(['a', 'b'])
        } finally {
          before.release()
        }

        const again = await reopen()
        await read(again, async (s) => {
          const r = await s.search!(index.indexId, query({ terms: ['cherry', 'banana'] }))
          expect([r.documentCount, r.termCount, r.documents.map((d) => d.id).sort()]).toEqual([2, 2, ['b', 'c']])
        })
        await again.dropIndex(index.indexId)
        await read(again, async (dropped) => {
          const r3 = await dropped.search!(index.indexId, query({ terms: ['cherry', 'banana'] }))
          expect([r3.documentCount, r3.documents.length]).toEqual([0, 0])
          expect((await dropped.search!(other.indexId, query({ prefix: 'ap' }))).documents.map((d) => d.id)).toEqual(['a'])
        })
      })

      test('the best matches by relevance come first within the limit', async () => {
        const { p } = await fresh()
        const index = await p.createIndex({ indexId: 203, tableNumber: T, name: 's', fields: [], search: { searchField: 'body', filterFields: [] } }, [])
        const e = (terms: string[]) => ({ terms, filterKeys: [] })
        const filler = Array.from({ length: 20 }, (_, i) => `w${i}`)
        await p.write([
          {
            ts: 1n,
            documents: ['many', 'one', 'none', 'rare'].map(doc),
            indexes: [],
            search: [
              { indexId: index.indexId, id: 'many', entry: e(['fox', 'fox', 'fox', 'dog']) },
              { indexId: index.indexId, id: 'one', entry: e(['fox', ...filler]) },
              { indexId: index.indexId, id: 'none', entry: e(['cat']) },
              { indexId: index.indexId, id: 'rare', entry: e(['dog', 'yak']) },
            ],
          },
        ])
        await read(p, async (s) => {
          expect((await s.search!(index.indexId, query({ terms: ['fox'], limit: 1 }))).documents.map((d) => d.id)).toEqual(['many'])
          expect((await s.search!(index.indexId, query({ terms: ['yak', 'cat'], limit: 10 }))).documents.map((d) => d.id).sort()).toEqual(['none', 'rare'])
        })
      })
    })

    describe('vector search', () => {
      const doc = (id: string) => ({ id, tableNumber: T, json: JSON.stringify({ _id: id, _creationTime: 1 }) })
      /** Filter keys are 32 hex digits; these differ only in their last 16. */
      const key = (n: number) => n.toString(16).padStart(32, '0')
      const vEntry = (vector: number[], color: number, size: number): VectorEntry => ({ vector: new Float32Array(vector), filterKeys: [key(color), key(size)] })
      const query = (vector: number[], more: Partial<VectorQuery> = {}): VectorQuery => ({ vector: new Float32Array(vector), limit: 10, filters: [], ...more })
      function cosine(x: number[], y: number[]): number {
        let dot = 0
        let xx = 0
        let yy = 0
        for (let i = 0; i < x.length; i++) {
          dot += x[i]! * y[i]!
          xx += x[i]! * x[i]!
          yy += y[i]! * y[i]!
        }
        return dot / Math.sqrt(xx * yy)
      }
      const vectors: Record<string, number[]> = { a: [1, 0, 0], b: [1, 1, 0], c: [0, 1, 0], d: [-1, 0.5, 0.25] }

      test('nearest by cosine, limits, OR filters, updates, deletes, snapshots, restart and drop', async () => {
        const { p, reopen } = await fresh()
        await p.createTable('docs', T)
        const config = { vectorField: 'embedding', dimensions: 3, filterFields: ['color', 'size'] }
        const index = await p.createIndex({ indexId: 204, tableNumber: T, name: 'by_embedding', fields: [], vector: config }, [], [], [{ indexId: -1, id: 'a', entry: vEntry(vectors.a!, 1, 10) }])
        expect((await p.indexes()).find((i) => i.indexId === index.indexId)).toEqual({ indexId: index.indexId, tableNumber: T, name: 'by_embedding', fields: [], vector: config })
        await p.write([
          {
            ts: 10n,
            documents: [doc('a'), doc('b'), doc('c'), doc('d')],
            indexes: [],
            vectors: [
              { indexId: index.indexId, id: 'b', entry: vEntry(vectors.b!, 2, 10) },
              { indexId: index.indexId, id: 'c', entry: vEntry(vectors.c!, 1, 20) },
              { indexId: index.indexId, id: 'd', entry: vEntry(vectors.d!, 3, 30) },
            ],
          },
        ])
        const q = [1, 0.2, 0]
        const expected = ['a', 'b', 'c', 'd'].map((id) => ({ id, score: cosine(q, vectors[id]!) })).sort((x, y) => y.score - x.score)
        const before = await p.snapshot()
        try {
          const all = await before.vectorSearch!(index.indexId, query(q))
          expect(all.map((h) => h.id)).toEqual(expected.map((h) => h.id))
          all.forEach((h, i) => expect(h.score).toBeCloseTo(expected[i]!.score, 6))
          expect((await before.vectorSearch!(index.indexId, query(q, { limit: 2 }))).map((h) => h.id)).toEqual(expected.slice(0, 2).map((h) => h.id))
          expect(await before.vectorSearch!(index.indexId, query(q, { limit: 0 }))).toEqual([])
          // One filter: any of its keys; several: any of them (an OR across fields).
          expect((await before.vectorSearch!(index.indexId, query(q, { filters: [{ field: 0, keys: [key(1)] }] }))).map((h) => h.id)).toEqual(['a', 'c'])
          expect((await before.vectorSearch!(index.indexId, query(q, { filters: [{ field: 0, keys: [key(1), key(3)] }] }))).map((h) => h.id)).toEqual(['a', 'c', 'd'])
          expect((await before.vectorSearch!(index.indexId, query(q, { filters: [{ field: 0, keys: [key(2)] }, { field: 1, keys: [key(30)] }] }))).map((h) => h.id)).toEqual(['b', 'd'])
          expect((await before.vectorSearch!(index.indexId, query(q, { limit: 1, filters: [{ field: 0, keys: [key(3)] }, { field: 1, keys: [key(20)] }] }))).map((h) => h.id)).toEqual(['c'])
          expect(await before.vectorSearch!(index.indexId, query(q, { filters: [{ field: 0, keys: [key(9)] }] }))).toEqual([])

          // Move b away and delete a: later snapshots see it, the earlier one doesn't.
          await p.write([{ ts: 11n, documents: [], indexes: [], vectors: [{ indexId: index.indexId, id: 'b', entry: vEntry([-1, 0, 0], 2, 10) }, { indexId: index.indexId, id: 'a', entry: null }] }])
          await read(p, async (after) => {
            const hits = await after.vectorSearch!(index.indexId, query(q))
            expect(hits.map((h) => h.id)).toEqual(['c', 'd', 'b'])
            expect(hits[2]!.score).toBeCloseTo(cosine(q, [-1, 0, 0]), 6)
          })
          expect((await before.vectorSearch!(index.indexId, query(q))).map((h) => h.id)).toEqual(expected.map((h) => h.id))
        } finally {
          before.release()
        }

        const again = await reopen()
        expect(await read(again, async (s) => (await s.vectorSearch!(index.indexId, query(q))).map((h) => h.id))).toEqual(['c', 'd', 'b'])
        await again.dropIndex(index.indexId)
        expect((await again.indexes()).some((i) => i.indexId === index.indexId)).toBe(false)
      })

      test('a zero vector scores 0 against any query; a zero query scores 0 everywhere', async () => {
        const { p } = await fresh()
        await p.createTable('docs', T)
        const config = { vectorField: 'embedding', dimensions: 2, filterFields: [] }
        const e = (vector: number[]) => ({ vector: new Float32Array(vector), filterKeys: [] })
        const index = await p.createIndex({ indexId: 205, tableNumber: T, name: 'v', fields: [], vector: config }, [], [], [
          { indexId: -1, id: 'zero', entry: e([0, 0]) },
          { indexId: -1, id: 'pos', entry: e([1, 0]) },
          { indexId: -1, id: 'neg', entry: e([-1, 0.5]) },
        ])
        await read(p, async (s) => {
          const hits = await s.vectorSearch!(index.indexId, { vector: new Float32Array([1, 0.1]), limit: 10, filters: [] })
          expect(hits.map((h) => h.id)).toEqual(['pos', 'zero', 'neg'])
          expect(hits[1]!.score).toBe(0)
          expect(hits[2]!.score).toBeCloseTo(cosine([1, 0.1], [-1, 0.5]), 6)
          const fromZero = await s.vectorSearch!(index.indexId, { vector: new Float32Array([0, 0]), limit: 10, filters: [] })
          expect(fromZero.map((h) => h.score)).toEqual([0, 0, 0])
          expect(fromZero.map((h) => h.id).sort()).toEqual(['neg', 'pos', 'zero'])
        })
      })
    })

    test('ids, terms and module paths order by their UTF-8 bytes, not by a language collation', async () => {
      const { p } = await fresh()
      const ids = ['a', 'B', 'é', '_', 'Z', 'ab', 'a b', 'ä']
      const bytes = [...ids].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)))
      await p.write([commit(1n, ids.map((id) => put(id, 0)))])
      expect((await p.scanTable(T, '', 100)).map((d) => d.id)).toEqual(bytes)
      expect((await p.scanTable(T, 'a', 100)).map((d) => d.id)).toEqual(bytes.slice(bytes.indexOf('a') + 1))
      expect((await p.loadLog(0n, 1n, 100)).map((e) => e.id)).toEqual(bytes)
      const index = await p.createIndex({ indexId: 206, tableNumber: T, name: 's', fields: [], search: { searchField: 'body', filterFields: [] } }, [], [
        { indexId: -1, id: 'a', entry: { terms: ['applz', 'applé', 'apple', 'applf'], filterKeys: [] } },
      ])
      const query: SearchQuery = { terms: [], prefix: 'appl', maxPrefixTerms: 3, filters: [], limit: 10 }
      expect((await read(p, (s) => s.search!(index.indexId, query))).prefixTerms).toEqual(['apple', 'applf', 'applz'])
      const m = (path: string) => ({ path, environment: 'isolate' as const, source: '', sourceMap: null, hash: '' })
      await p.replaceModules(['b.js', 'B.js', 'é.js', 'a/b.js', 'a.js'].map(m), {})
      expect((await p.modules()).map((x) => x.path)).toEqual(['B.js', 'a.js', 'a/b.js', 'b.js', 'é.js'])
    })

    describe('the catalog', () => {
      test('tables: created in any order, listed by number, kept across a restart', async () => {
        const { p, reopen } = await fresh()
        await p.createTable('users', 10002)
        await p.createTable('_scheduled_functions', 7)
        await p.createTable('messages', 10001)
        const expected = [
          { tableNumber: 7, name: '_scheduled_functions', idNumber: 7 },
          { tableNumber: 10001, name: 'messages', idNumber: 10001 },
          { tableNumber: 10002, name: 'users', idNumber: 10002 },
        ]
        expect(await p.tables()).toEqual(expected)
        expect(await (await reopen()).tables()).toEqual(expected)
      })

      test('tables: the number ids carry is kept beside the store key; components may share it', async () => {
        const { p, reopen } = await fresh()
        await p.createTable('messages', 10001, 10001)
        await p.createTable('comp:messages', 10002, 10001)
        await p.createTable('comp:_storage', 540, 540)
        await p.createTable('_storage', 10003, 540)
        const expected = [
          { tableNumber: 540, name: 'comp:_storage', idNumber: 540 },
          { tableNumber: 10001, name: 'messages', idNumber: 10001 },
          { tableNumber: 10002, name: 'comp:messages', idNumber: 10001 },
          { tableNumber: 10003, name: '_storage', idNumber: 540 },
        ]
        expect(await p.tables()).toEqual(expected)
        expect(await (await reopen()).tables()).toEqual(expected)
      })

      test('tables a commit creates are stored with it, with their id numbers and indexes', async () => {
        const { p, reopen } = await fresh()
        const created = [
          { table: { tableNumber: 10001, name: 'notes', idNumber: 10001 }, indexes: [{ indexId: 301, tableNumber: 10001, name: 'by_id', fields: ['_id'] }] },
          { table: { tableNumber: 10002, name: 'a/b:notes', idNumber: 10001 }, indexes: [{ indexId: 302, tableNumber: 10002, name: 'by_id', fields: ['_id'] }] },
        ]
        await p.write([{ ...commit(3n, [{ id: 'x', tableNumber: 10001, json: '{}' }, { id: 'y', tableNumber: 10002, json: '{}' }], [entry(301, b(1), 'x'), entry(302, b(1), 'y')]), tables: created }])
        const check = async (q: Persistence) => {
          expect(await q.tables()).toEqual(created.map((c) => c.table))
          expect(await q.indexes()).toEqual(created.flatMap((c) => c.indexes))
          await read(q, async (s) => {
            expect(await s.getDocument('y')).toEqual({ id: 'y', tableNumber: 10002, json: '{}' })
            expect(await s.countTable(10001)).toBe(1)
          })
        }
        await check(p)
        await check(await reopen())
      })

      test('a table is stored with its indexes in one write: a failing index leaves no table behind', async () => {
        const { p, reopen } = await fresh()
        const byId = (indexId: number, tableNumber: number) => ({ indexId, tableNumber, name: 'by_id', fields: ['_id'] })
        const byTime = (indexId: number, tableNumber: number) => ({ indexId, tableNumber, name: 'by_creation_time', fields: ['_creationTime'] })
        await p.createTable('notes', 10001, 10001, [byId(401, 10001), byTime(402, 10001)])
        // Index 402 is taken: the second table's by_id went in first, and goes with the table.
        await expect(p.createTable('other', 10002, 10002, [byId(403, 10002), byTime(402, 10002)])).rejects.toThrow()
        const check = async (q: Persistence) => {
          expect(await q.tables()).toEqual([{ tableNumber: 10001, name: 'notes', idNumber: 10001 }])
          expect(await q.indexes()).toEqual([byId(401, 10001), byTime(402, 10001)])
        }
        await check(p)
        await check(await reopen())
      })

      test('a dropped table stays as a tombstone named ~dropped~<number>, also after a reopen', async () => {
        const { p, reopen } = await fresh()
        await p.createTable('gone', 10003)
        await p.createTable('kept', 10004)
        await p.dropTable(10003)
        const expected = [
          { tableNumber: 10003, name: '~dropped~10003', idNumber: 10003 },
          { tableNumber: 10004, name: 'kept', idNumber: 10004 },
        ]
        expect(await p.tables()).toEqual(expected)
        expect(await (await reopen()).tables()).toEqual(expected)
      })

      test('indexes: created with their backfill, renamed, staged, dropped with their entries; ids never reused', async () => {
        const { p, reopen } = await fresh()
        await p.createTable('messages', T)
        await p.write([commit(1n, [put('a', 1), put('b', 2)])])
        const byV = await p.createIndex({ indexId: 207, tableNumber: T, name: 'by_v', fields: ['v'] }, [entry(-1, b(2), 'b'), entry(-1, b(1), 'a')])
        expect(byV).toEqual({ indexId: byV.indexId, tableNumber: T, name: 'by_v', fields: ['v'] })
        const staged = await p.createIndex({ indexId: 208, tableNumber: T, name: 'by_w', fields: ['w', 'v'], staged: true }, [])
        expect(new Set([byV.indexId, staged.indexId]).size).toBe(2)
        expect(await p.indexes()).toEqual([
          { indexId: byV.indexId, tableNumber: T, name: 'by_v', fields: ['v'] },
          { indexId: staged.indexId, tableNumber: T, name: 'by_w', fields: ['w', 'v'], staged: true },
        ])
        expect(await read(p, async (s) => (await s.scan(byV.indexId, { lo: b(), hi: null }, 'asc', 10)).map((r) => r.doc.id))).toEqual(['a', 'b'])

        await p.setIndexStaged(staged.indexId, false)
        await p.renameIndex(byV.indexId, 'by_value')
        const again = await reopen()
        expect(await again.indexes()).toEqual([
          { indexId: byV.indexId, tableNumber: T, name: 'by_value', fields: ['v'] },
          { indexId: staged.indexId, tableNumber: T, name: 'by_w', fields: ['w', 'v'] },
        ])
        await again.setIndexStaged(staged.indexId, true)
        expect((await again.indexes()).find((i) => i.indexId === staged.indexId)?.staged).toBe(true)

        await again.dropIndex(byV.indexId)
        expect((await again.indexes()).map((i) => i.indexId)).toEqual([staged.indexId])
        expect(await read(again, (s) => s.scan(byV.indexId, { lo: b(), hi: null }, 'asc', 10))).toEqual([])
        const next = await again.createIndex({ indexId: 209, tableNumber: T, name: 'by_v', fields: ['v'] }, [])
        expect([byV.indexId, staged.indexId]).not.toContain(next.indexId)
        expect(await read(again, (s) => s.scan(next.indexId, { lo: b(), hi: null }, 'asc', 10))).toEqual([])
      })

      test('scanTable, writeIndexEntries and tableDocuments read and write the latest state (index backfill)', async () => {
        const { p } = await fresh()
        await p.write([commit(1n, [put('c', 3), put('a', 1), put('b', 2), put('x', 0, U)])])
        await p.write([commit(2n, [put('d', 4), del('b')])])
        expect(await p.scanTable(T, '', 2)).toEqual([put('a', 1), put('c', 3)])
        expect(await p.scanTable(T, 'c', 2)).toEqual([put('d', 4)])
        expect(await p.scanTable(T, 'd', 2)).toEqual([])
        expect(await p.scanTable(U, '', 10)).toEqual([put('x', 0, U)])
        expect([...(await p.tableDocuments(T))].sort((x, y) => (x.id < y.id ? -1 : 1))).toEqual([put('a', 1), put('c', 3), put('d', 4)])
        expect(await p.tableDocuments(99)).toEqual([])

        await p.writeIndexEntries([entry(5, b(3), 'c'), entry(5, b(1), 'a'), entry(5, b(4), 'd')])
        await p.writeIndexEntries([entry(5, b(3), null), entry(5, b(2), 'c')])
        expect(p.maxTs()).toBe(2n)
        expect(await read(p, async (s) => (await s.scan(5, { lo: b(), hi: null }, 'asc', 10)).map((r) => [r.key[0], r.doc.id]))).toEqual([
          [1, 'a'],
          [2, 'c'],
          [4, 'd'],
        ])
      })

      test('modules are replaced as a whole, with the globals given, in one step', async () => {
        const { p, reopen } = await fresh()
        const m = (path: string, source: string, environment: 'isolate' | 'node' = 'isolate', sourceMap: string | null = null) => ({ path, environment, source, sourceMap, hash: `h-${source}` })
        await p.replaceModules([m('messages.js', 'export const a = 1', 'isolate', '{"v":3}'), m('actions/node.js', 'export const n = 1', 'node')], { push_config: '{"x":1}', other: 'o' })
        expect(await p.modules()).toEqual([m('actions/node.js', 'export const n = 1', 'node'), m('messages.js', 'export const a = 1', 'isolate', '{"v":3}')])
        expect(await p.getGlobal('push_config')).toBe('{"x":1}')
        await p.replaceModules([m('messages.js', 'export const a = 2 // ünïcödé ✓')], { push_config: '{"x":2}' })
        const again = await reopen()
        expect(await again.modules()).toEqual([m('messages.js', 'export const a = 2 // ünïcödé ✓')])
        expect(await again.getGlobal('push_config')).toBe('{"x":2}')
        expect(await again.getGlobal('other')).toBe('o')
        await again.replaceModules([], {})
        expect(await again.modules()).toEqual([])
      })

      test('globals are set, overwritten and kept across a restart', async () => {
        const { p, reopen } = await fresh()
        await p.setGlobal('instance_secret', 's1')
        await p.setGlobal('env', JSON.stringify({ A: 'ä\n"b"' }))
        await p.setGlobal('instance_secret', 's2')
        const again = await reopen()
        expect(await again.getGlobal('instance_secret')).toBe('s2')
        expect(await again.getGlobal('env')).toBe(JSON.stringify({ A: 'ä\n"b"' }))
        expect(await again.getGlobal('missing')).toBe(undefined)
        // Listed whole, without the store's own bookkeeping (its timestamps, its horizon).
        await again.replaceModules([], { schema: 'null' })
        await again.createTable('t', T)
        await again.write([{ ts: 5n, documents: [{ id: 'a', tableNumber: T, json: '{}' }], indexes: [] }])
        await again.pruneHistory(5n, 10)
        await again.setGlobalIfAbsent('credentials', 'c')
        expect([...(await again.globals())]).toEqual([
          ['credentials', 'c'],
          ['env', JSON.stringify({ A: 'ä\n"b"' })],
          ['instance_secret', 's2'],
          ['schema', 'null'],
        ])
      })

      test('the size it takes up is positive and grows with the data', async () => {
        const { p } = await fresh()
        const before = await p.sizeBytes()
        expect(before).toBeGreaterThan(0)
        await p.createTable('big', T)
        const docs = Array.from({ length: 2000 }, (_, i) => ({ id: `doc${i}`, tableNumber: T, json: JSON.stringify({ _id: `doc${i}`, pad: 'x'.repeat(500) }) }))
        await p.write([{ ts: 5n, documents: docs, indexes: [] }])
        expect(await p.sizeBytes()).toBeGreaterThan(before)
      })

      test('a global set only if absent keeps the first value, and answers with what is stored', async () => {
        const { p } = await fresh()
        const [x, y] = await Promise.all([p.setGlobalIfAbsent('credentials', 'first'), p.setGlobalIfAbsent('credentials', 'second')])
        expect([x, y]).toEqual(['first', 'first'])
        expect(await p.setGlobalIfAbsent('credentials', 'third')).toBe('first')
        expect(await p.getGlobal('credentials')).toBe('first')
      })
    })

    test('a restart keeps documents, index entries, the log and the catalog', async () => {
      const { p, reopen } = await fresh()
      await p.createTable('messages', T)
      const index = await p.createIndex({ indexId: 210, tableNumber: T, name: 'by_v', fields: ['v'] }, [])
      await p.write([commit(3n, [put('a', 1), put('b', 2)], [entry(index.indexId, b(1), 'a'), entry(index.indexId, b(2), 'b')])])
      await p.write([commit(4n, [del('a')], [entry(index.indexId, b(1), null)])])
      const again = await reopen()
      expect(again.maxTs()).toBe(4n)
      expect(await again.tables()).toEqual([{ tableNumber: T, name: 'messages', idNumber: T }])
      expect(await again.indexes()).toEqual([index])
      expect(revisions(await again.loadLog(0n, 4n, 10))).toEqual(['a@3', 'b@3', 'a@4-'])
      await read(again, async (s) => {
        expect(s.ts).toBe(4n)
        expect(await s.getDocument('a')).toBe(null)
        expect(await s.countTable(T)).toBe(1)
        expect(await s.scan(index.indexId, { lo: b(), hi: null }, 'desc', 10)).toEqual([{ key: b(2), doc: put('b', 2) }])
      })
      await again.write([commit(5n, [put('c', 3)])])
      expect(again.maxTs()).toBe(5n)
    })
  })
}
