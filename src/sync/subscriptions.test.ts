import { describe, expect, test } from 'vitest'
import { SubscriptionManager } from './subscriptions.ts'
import type { Subscriber } from './subscriptions.ts'
import type { Database } from '../database/database.ts'
import type { FunctionRunner } from '../functions/function-runner.ts'

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
