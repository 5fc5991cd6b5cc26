import { describe, expect, test } from 'vitest'
import { SubscriptionManager } from './subscriptions.ts'
import type { Subscriber } from './subscriptions.ts'
import type { Database } from '../database/database.ts'
import type { FunctionRunner } from '../functions/function-runner.ts'
import type { PublishedCommit } from '../database/committer.ts'
import { ReadSet } from '../database/read-set.ts'
import { keySuccessor } from '../database/query.ts'
import { encodeIndexKey } from '../values/index.ts'

/** A runner whose query runs finish only when the test says so. */
function heldRunner() {
  const pending: (() => void)[] = []
  const runner = {
    runSubscribedQuery: () =>
      new Promise((resolve) => {
        pending.push(() => resolve({ result: { ok: true, value: String(pending.length), logLines: [] }, readSet: null, ts: 0n, journal: null }))
      }),
  } as unknown as FunctionRunner
  return { runner, pending }
}

const db = { committer: { publishedTs: 0n, onCommit: () => () => {} } } as unknown as Database
const anonymous = { key: 'anonymous', admin: false, user: null }
const tick = () => new Promise((r) => setImmediate(r))
/** Enough turns of the event loop for every run that can start to start (one starts per turn). */
const settle = async () => {
  for (let i = 0; i < 40; i++) await tick()
}

describe('SubscriptionManager', () => {
  test('a run that a push overtakes is run again, and its sessions hear only of the rerun as clean', async () => {
    const { runner, pending } = heldRunner()
    const manager = new SubscriptionManager(db, runner)
    const updates: boolean[] = []
    const sub: Subscriber = { entryUpdated: (e) => void updates.push(e.dirty) }
    const entry = manager.subscribe(sub, 'q:list', {}, anonymous)
    await tick()
    expect(manager.runs).toBe(1)
    manager.invalidateAll() // a push lands while the first run is still going
    pending.shift()!()
    await tick()
    await tick()
    expect(manager.runs).toBe(2)
    expect(entry.dirty).toBe(false)
    pending.shift()!()
    await tick()
    expect(entry.dirty).toBe(false)
    expect(updates).toEqual([true, false])
  })

  test('one query whatever order its arguments were written in: one entry, one run', async () => {
    const { runner, pending } = heldRunner()
    const manager = new SubscriptionManager(db, runner)
    const a: Subscriber = { entryUpdated: () => {} }
    const b: Subscriber = { entryUpdated: () => {} }
    const first = manager.subscribe(a, 'q:list', { x: 1, nested: { z: 1, y: 2 } }, anonymous)
    const second = manager.subscribe(b, 'q:list', { nested: { y: 2, z: 1 }, x: 1 }, anonymous)
    expect(second).toBe(first)
    expect([...first.subscribers]).toEqual([a, b])
    await tick()
    expect(manager.runs).toBe(1)
    pending.shift()!()
    await settle()
  })

  test('at most 16 runs at once, 8 for one session; an entry unsubscribed while queued never runs', async () => {
    const { runner, pending } = heldRunner()
    const manager = new SubscriptionManager(db, runner)
    const a: Subscriber = { entryUpdated: () => {} }
    const b: Subscriber = { entryUpdated: () => {} }
    const c: Subscriber = { entryUpdated: () => {} }
    const entries = [a, b, c].flatMap((sub, s) => Array.from({ length: 10 }, (_, i) => manager.subscribe(sub, 'q:list', { s, i }, anonymous)))
    await settle()
    // Round-robin: a, b, c, a, b, c, … until 16 are running (a and b get 6, c 4; no one more than 8).
    expect(manager.runs).toBe(16)
    manager.unsubscribe(a, entries[9]!)
    while (pending.length > 0) {
      pending.shift()!()
      await settle()
    }
    expect(manager.runs).toBe(29)
    expect(manager.runsInFlightPeak).toBe(16)
    expect(entries.filter((e) => e !== entries[9]).every((e) => !e.dirty && e.result !== null)).toBe(true)
  })

  test("one session alone runs 8 at a time; a second session's query starts at once, ahead of the rest of the first's", async () => {
    const { runner, pending } = heldRunner()
    const started: string[] = []
    const tracking = {
      runSubscribedQuery: (path: string, args: { q: string }) => {
        started.push(args.q)
        return runner.runSubscribedQuery(path, args, { admin: false }, null)
      },
    } as unknown as FunctionRunner
    const manager = new SubscriptionManager(db, tracking)
    const flood: Subscriber = { entryUpdated: () => {} }
    const other: Subscriber = { entryUpdated: () => {} }
    for (let i = 0; i < 5000; i++) manager.subscribe(flood, 'q:get', { q: `flood${i}` }, anonymous)
    await settle()
    expect(started.length).toBe(8)
    const mine = manager.subscribe(other, 'q:get', { q: 'mine' }, anonymous)
    await settle()
    expect(started).toEqual([...Array.from({ length: 8 }, (_, i) => `flood${i}`), 'mine'])
    // The flood goes on, 8 at a time, with the other session's run among them.
    pending.splice(0, 2).forEach((done) => done())
    await settle()
    await settle()
    expect(started.length).toBe(11)
    expect(mine.running).toBe(true)
  })

  test("a closed session's queued runs are dropped; an entry another session shares still runs", async () => {
    const { runner, pending } = heldRunner()
    const manager = new SubscriptionManager(db, runner)
    const flood: Subscriber = { entryUpdated: () => {} }
    const other: Subscriber = { entryUpdated: () => {} }
    const entries = Array.from({ length: 100 }, (_, i) => manager.subscribe(flood, 'q:get', { i }, anonymous))
    const shared = manager.subscribe(other, 'q:get', { i: 99 }, anonymous)
    expect(shared).toBe(entries[99])
    await settle()
    expect(manager.runs).toBe(8)
    // The socket closes: the session lets go of every entry.
    for (const e of entries) manager.unsubscribe(flood, e)
    while (pending.length > 0) {
      pending.shift()!()
      await settle()
    }
    // The 8 already running finish; of the rest only the shared entry runs.
    expect(manager.runs).toBe(9)
    expect(shared.result).not.toBeNull()
    expect(manager.size).toBe(1)
  })
})

describe('SubscriptionManager commit log', () => {
  /** A committer whose commits the test publishes, and a runner whose runs read key `k` of index 1 at a given ts. */
  function setup() {
    let listener: (batch: readonly PublishedCommit[]) => void = () => {}
    const db = { committer: { publishedTs: 0n, onCommit: (l: typeof listener) => ((listener = l), () => {}) } } as unknown as Database
    const key = encodeIndexKey(['k'])
    const pending: ((ts: bigint) => void)[] = []
    const runner = {
      runSubscribedQuery: () =>
        new Promise((resolve) => {
          const readSet = new ReadSet()
          readSet.add(1, { lo: key, hi: keySuccessor(key) })
          pending.push((ts) => resolve({ result: { ok: true, value: '1', logLines: [] }, readSet, ts, journal: null }))
        }),
    } as unknown as FunctionRunner
    const manager = new SubscriptionManager(db, runner)
    const publish = (ts: bigint, k: Buffer = key) => listener([{ ts, indexes: [{ indexId: 1, key: k }] }])
    return { manager, pending, publish, key }
  }

  test('commits published with no run in flight are not kept; a run on a snapshot from before them is run again', async () => {
    const { manager, pending, publish } = setup()
    for (let ts = 1n; ts <= 3n; ts++) publish(ts)
    expect(manager.loggedCommits).toBe(0)
    const entry = manager.subscribe({ entryUpdated: () => {} }, 'q:get', {}, anonymous)
    await tick()
    expect(manager.runs).toBe(1)
    // Its snapshot is older than commits no longer kept: it can't be told clean, so it runs again.
    pending.shift()!(2n)
    await settle()
    expect(manager.runs).toBe(2)
    // On a snapshot holding every commit published, it is clean.
    pending.shift()!(3n)
    await settle()
    expect(manager.runs).toBe(2)
    expect(entry.dirty).toBe(false)
  })

  test('commits published while a run is in flight are kept for it: one into its read set runs it again, one outside does not', async () => {
    const { manager, pending, publish } = setup()
    publish(1n)
    const entry = manager.subscribe({ entryUpdated: () => {} }, 'q:get', {}, anonymous)
    await tick()
    publish(2n, encodeIndexKey(['other']))
    expect(manager.loggedCommits).toBe(1)
    pending.shift()!(1n)
    await settle()
    expect(manager.runs).toBe(1)
    expect(entry.dirty).toBe(false)
    publish(3n, encodeIndexKey(['other']))
    expect(manager.loggedCommits).toBe(0)
    publish(4n)
    await tick()
    expect(manager.runs).toBe(2)
    publish(5n)
    expect(manager.loggedCommits).toBe(1)
    pending.shift()!(4n)
    await settle()
    expect(manager.runs).toBe(3)
    pending.shift()!(5n)
    await settle()
    expect(manager.runs).toBe(3)
    expect(entry.dirty).toBe(false)
  })
})
