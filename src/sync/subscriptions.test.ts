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

  test('at most 16 runs at once; an entry unsubscribed while queued never runs', async () => {
    const { runner, pending } = heldRunner()
    const manager = new SubscriptionManager(db, runner)
    const sub: Subscriber = { entryUpdated: () => {} }
    const entries = Array.from({ length: 20 }, (_, i) => manager.subscribe(sub, 'q:list', { i }, anonymous))
    await tick()
    expect(manager.runs).toBe(16)
    manager.unsubscribe(sub, entries[19]!)
    while (pending.length > 0) {
      pending.shift()!()
      await tick()
    }
    expect(manager.runs).toBe(19)
    expect(manager.runsInFlightPeak).toBe(16)
    expect(entries.slice(0, 19).every((e) => !e.dirty && e.result !== null)).toBe(true)
  })
})
