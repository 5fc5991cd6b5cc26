import { afterAll, beforeAll, expect, test } from 'vitest'
import { IDLE_TRIM_MS, IsolatePool } from './isolate-pool.ts'
import type { IsolateHost } from './isolate-host.ts'

let runtime: string
beforeAll(async () => {
  const { bundleRuntime } = (await import('../../../scripts/build.mjs' as string)) as { bundleRuntime: () => Promise<string> }
  runtime = await bundleRuntime()
})

let now = 0
const pools: IsolatePool[] = []
afterAll(() => pools.forEach((p) => p.close()))

test('a burst keeps its isolates warm for the next; once idle for a while, all but eight are disposed, the least recently used first', () => {
  const pool = new IsolatePool(runtime, 64, 64, () => now)
  pools.push(pool)
  const burst: IsolateHost[] = Array.from({ length: 20 }, () => pool.acquire())
  expect(pool.live).toBe(20)
  for (const host of burst) pool.release(host)
  // The next burst takes the same isolates: none is built.
  const again = Array.from({ length: 20 }, () => pool.acquire())
  expect(new Set(again)).toEqual(new Set(burst))
  expect(pool.peak).toBe(20)
  // Twelve come back now, eight a while later.
  for (const host of again.slice(0, 12)) pool.release(host)
  now += IDLE_TRIM_MS / 2
  for (const host of again.slice(12)) pool.release(host)
  pool.trim()
  expect(pool.live).toBe(20)
  now += IDLE_TRIM_MS / 2
  pool.trim()
  // The twelve are past the idle time; eight stay, and they are the most recently used.
  expect(pool.live).toBe(8)
  expect(again.slice(0, 12).every((h) => h.disposed)).toBe(true)
  expect(again.slice(12).every((h) => !h.disposed)).toBe(true)
  now += IDLE_TRIM_MS * 10
  pool.trim()
  expect(pool.live).toBe(8)
})

test('past 48 idle isolates, one that comes back is disposed', () => {
  const pool = new IsolatePool(runtime, 64, 64, () => now)
  pools.push(pool)
  const hosts = Array.from({ length: 50 }, () => pool.acquire())
  for (const host of hosts) pool.release(host)
  expect(pool.live).toBe(48)
  expect(hosts.slice(48).every((h) => h.disposed)).toBe(true)
})

test('an isolate that comes back after the pool closed is disposed', () => {
  const pool = new IsolatePool(runtime, 64, 64, () => now)
  const host = pool.acquire()
  pool.close()
  pool.release(host)
  expect(host.disposed).toBe(true)
  expect(pool.live).toBe(0)
})
