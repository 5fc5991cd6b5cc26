import { compareValues as convexCompare, type Value as ConvexValue } from 'convex/values'
import { describe, expect, test } from 'vitest'
import { COMMIT_TS, compareUtf8, compareValues, UNDEFINED, type ExtendedValue } from './index.ts'
import { prng, randomValue } from './test-helpers.ts'

const b = (...x: number[]): ArrayBuffer => new Uint8Array(x).buffer

// In the documented order.
const ORDERED: (ExtendedValue | undefined)[] = [
  undefined,
  null,
  -(2n ** 63n),
  -1n,
  0n,
  5n,
  2n ** 63n - 1n,
  -Infinity,
  -1.5,
  -0,
  0,
  5e-324,
  1,
  Infinity,
  NaN,
  false,
  true,
  '',
  'A',
  'a',
  'a\0',
  'ab',
  'é',
  '\uffff',
  '😀',
  b(),
  b(0),
  b(0, 0),
  b(1),
  b(255),
  [],
  [null],
  [0n],
  [1],
  [1, 2],
  ['a'],
  [[]],
  {},
  { '': null },
  { A: 5 },
  { a: null },
  { a: 1 },
  { a: 1, b: 1 },
  { a: 2 },
  { b: 0 },
]

describe('compareValues', () => {
  test('sorts a shuffled mixed-type list into the documented order', () => {
    const r = prng(7)
    const shuffled = [...ORDERED]
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1))
      ;[shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]]
    }
    expect(shuffled).not.toEqual(ORDERED)
    // (Array#sort never passes `undefined` to the comparator, so sort boxed values.)
    const sorted = shuffled.map((v): { v: ExtendedValue | undefined } => ({ v })).sort((x, y) => compareValues(x.v, y.v)).map((x) => x.v)
    expect(sorted).toEqual(ORDERED)
    for (let i = 0; i < ORDERED.length; i++) {
      for (let j = 0; j < ORDERED.length; j++) {
        expect([i, j, compareValues(ORDERED[i], ORDERED[j])]).toEqual([i, j, Math.sign(i - j)])
      }
    }
  })

  test('agrees with convex/values compareValues on the list and on random values', () => {
    for (const x of ORDERED) for (const y of ORDERED) expect(compareValues(x, y)).toBe(Math.sign(convexCompare(x as ConvexValue, y as ConvexValue)))
    const r = prng(42)
    const vals = Array.from({ length: 300 }, () => randomValue(r))
    let mismatches = 0
    for (const x of vals) for (const y of vals) if (compareValues(x, y) !== Math.sign(convexCompare(x as ConvexValue, y as ConvexValue))) mismatches++
    expect(mismatches).toBe(0)
  })

  test('strings by UTF-8 bytes, not UTF-16 code units', () => {
    expect('😀' < '\uffff').toBe(true) // JS order
    expect(compareUtf8('😀', '\uffff')).toBe(1)
    expect(compareUtf8('\ue000', '😀')).toBe(-1)
    expect(compareUtf8('a😀', 'a😁')).toBe(-1)
    expect(compareUtf8('abc', 'abc')).toBe(0)
  })

  test('sentinels: UNDEFINED = undefined, COMMIT_TS = max int64', () => {
    expect(compareValues(UNDEFINED, undefined)).toBe(0)
    expect(compareValues(UNDEFINED, null)).toBe(-1)
    expect(compareValues(COMMIT_TS, 2n ** 63n - 1n)).toBe(0)
    expect(compareValues(COMMIT_TS, 5n)).toBe(1)
    expect(compareValues(COMMIT_TS, -Infinity)).toBe(-1)
  })
})
