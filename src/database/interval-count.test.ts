import { describe, expect, test } from 'vitest'
import { IntervalCount } from './interval-count.ts'

const k = (n: number) => Buffer.from([n])
const iv = (lo: number, hi: number | null) => ({ lo: k(lo), hi: hi === null ? null : k(hi) })

describe('IntervalCount (Convex num_intervals)', () => {
  test('separate reads count one each; repeats, overlaps and adjacent ranges merge', () => {
    const c = new IntervalCount()
    c.direct(1, iv(10, 11))
    c.direct(1, iv(10, 11))
    expect(c.count).toBe(1)
    c.direct(1, iv(20, 21))
    c.direct(2, iv(10, 11))
    expect(c.count).toBe(3)
    c.direct(1, iv(11, 15)) // adjacent to [10, 11)
    expect(c.count).toBe(3)
    c.direct(1, iv(5, 30)) // swallows both intervals of index 1
    expect(c.count).toBe(2)
    c.direct(1, iv(40, null))
    c.direct(1, iv(0, 2))
    expect(c.count).toBe(4)
    c.direct(1, iv(0, null))
    expect(c.count).toBe(2)
  })
  test('empty intervals are ignored', () => {
    const c = new IntervalCount()
    c.direct(1, iv(5, 5))
    expect(c.count).toBe(0)
  })
  test("derived reads aren't counted until a direct read changes their index's set (Convex's arithmetic)", () => {
    const c = new IntervalCount()
    c.derived(1, iv(1, 2))
    c.derived(1, iv(3, 4))
    expect(c.count).toBe(0)
    c.direct(2, iv(1, 2))
    expect(c.count).toBe(1)
    // num_intervals = num_intervals.saturating_sub(before) + after: 1 - 2 saturates at 0, + 2.
    c.direct(1, iv(1, 2))
    expect(c.count).toBe(2)
    c.direct(1, iv(5, 6)) // 2 - 2 + 3
    expect(c.count).toBe(3)
    c.direct(1, iv(0, 10)) // 3 - 3 + 1
    expect(c.count).toBe(1)
  })
  test('inserting in the middle keeps order', () => {
    const c = new IntervalCount()
    for (const n of [50, 10, 30, 20, 40]) c.direct(1, iv(n, n + 1))
    expect(c.count).toBe(5)
    c.direct(1, iv(21, 30))
    expect(c.count).toBe(4)
  })
})
