import { expect, test } from 'vitest'
import { Backoff } from './backoff.ts'

test('each failure doubles the ceiling up to the maximum; the wait is the jitter times the ceiling', () => {
  const b = new Backoff(100, 1000, () => 0.5)
  expect([b.fail(), b.fail(), b.fail(), b.fail(), b.fail(), b.fail()]).toEqual([50, 100, 200, 400, 500, 500])
  expect(b.failures).toBe(6)
  b.reset()
  expect(b.failures).toBe(0)
  expect(b.fail()).toBe(50)
})

test('full jitter: the wait spans zero to the ceiling', () => {
  const draws = [0, 0.999]
  const b = new Backoff(100, 60_000, () => draws.shift()!)
  expect(b.fail()).toBe(0)
  expect(b.fail()).toBeCloseTo(199.8)
})

test('a long run of failures stays at the maximum (no overflow to Infinity or NaN)', () => {
  const b = new Backoff(100, 60_000, () => 1)
  let last = 0
  for (let i = 0; i < 2000; i++) last = b.fail()
  expect(last).toBe(60_000)
})
