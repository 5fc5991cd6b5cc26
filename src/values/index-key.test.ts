import { describe, expect, test } from 'vitest'
import { bytesSuccessor, COMMIT_TS, compareValues, decodeIndexKey, encodeIndexKey, prefixSuccessor, type ExtendedValue } from './index.ts'
import { prng, randomValue } from './test-helpers.ts'

type Tuple = (ExtendedValue | undefined)[]

function compareTuples(a: Tuple, b: Tuple): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const c = compareValues(a[i], b[i])
    if (c !== 0) return c
  }
  return Math.sign(a.length - b.length)
}

const hex = (t: Tuple): string => encodeIndexKey(t).toString('hex')

describe('encodeIndexKey', () => {
  test('exact bytes (the backend sort-key encoding)', () => {
    expect(hex([undefined])).toBe('01')
    expect(hex([null])).toBe('03')
    expect(hex([0n])).toBe('08')
    expect(hex([1n])).toBe('0901')
    expect(hex([-1n])).toBe('07ff')
    expect(hex([-128n])).toBe('0780')
    expect(hex([-129n])).toBe('06ff7f')
    expect(hex([256n])).toBe('0a0100')
    expect(hex([2n ** 31n])).toBe('0c0000000080000000')
    expect(hex([COMMIT_TS])).toBe('0c7fffffffffffffff')
    expect(hex([1])).toBe('0dbff0000000000000')
    expect(hex([-0])).toBe('0d7fffffffffffffff')
    expect(hex([0])).toBe('0d8000000000000000')
    expect(hex([false, true])).toBe('0e0f')
    expect(hex(['a\0'])).toBe('106100ff00')
    expect(hex(['é'])).toBe('10c3a900')
    expect(hex([new Uint8Array([0, 1]).buffer])).toBe('1100ff0100')
    expect(hex([[1n, 'x']])).toBe('12090110780000')
    expect(hex([{}])).toBe('1500')
    expect(hex([{ '': null }])).toBe('1500ff0300')
    expect(hex([{ b: 1n, a: null }])).toBe('156100036200090100')
  })

  test('byte order agrees with compareValues on random tuples (seeded)', () => {
    const r = prng(12345)
    const tuples: Tuple[] = []
    for (let i = 0; i < 600; i++) {
      const len = Math.floor(r() * 3) + (i % 5 === 0 ? 0 : 1)
      tuples.push(Array.from({ length: len }, () => (r() < 0.08 ? undefined : randomValue(r))))
    }
    // Also prefixes of existing tuples, to exercise "prefix sorts first".
    for (let i = 0; i < 100; i++) tuples.push(tuples[i]!.slice(0, Math.max(0, tuples[i]!.length - 1)))
    const keys = tuples.map((t) => encodeIndexKey(t))
    let mismatches = 0
    let comparisons = 0
    for (let i = 0; i < tuples.length; i++) {
      for (let j = 0; j < tuples.length; j++) {
        comparisons++
        if (Math.sign(Buffer.compare(keys[i]!, keys[j]!)) !== compareTuples(tuples[i]!, tuples[j]!)) mismatches++
      }
    }
    expect(comparisons).toBe(700 * 700)
    expect(mismatches).toBe(0)
    // Every key decodes back to an equal tuple.
    for (let i = 0; i < tuples.length; i++) expect(compareTuples(decodeIndexKey(keys[i]!), tuples[i]!)).toBe(0)
  })

  test('prefixSuccessor bounds exactly the tuples extending a prefix', () => {
    const r = prng(99)
    const tuples: Tuple[] = Array.from({ length: 400 }, () => [randomValue(r), randomValue(r)])
    for (let i = 0; i < 60; i++) {
      const prefix: Tuple = [tuples[i]![0]]
      const lo = encodeIndexKey(prefix)
      const hi = prefixSuccessor(lo)
      for (const t of tuples) {
        const k = encodeIndexKey(t)
        const inRange = Buffer.compare(k, lo) >= 0 && Buffer.compare(k, hi) < 0
        expect(inRange).toBe(compareValues(t[0], prefix[0]) === 0)
      }
    }
  })

  test('NUL-containing strings: "a" prefix range excludes "a\\0b"; Gt "a" includes it', () => {
    const a = encodeIndexKey(['a'])
    const a0b = encodeIndexKey(['a\0b', 1n])
    const ab = encodeIndexKey(['ab'])
    expect(Buffer.compare(a0b, prefixSuccessor(a))).toBe(1)
    expect(Buffer.compare(a0b, ab)).toBe(-1)
    // The byte-level successor (the backend's `increment`) would wrongly include it.
    expect(Buffer.compare(a0b, bytesSuccessor(a)!)).toBe(-1)
    expect(bytesSuccessor(Buffer.from([1, 0xff, 0xff]))).toEqual(Buffer.from([2]))
    expect(bytesSuccessor(Buffer.from([0xff]))).toBeNull()
  })

  test('large values grow the scratch buffer', () => {
    const big = 'x'.repeat(100_000)
    const k = encodeIndexKey([big, 'y'])
    expect(k.length).toBe(1 + 100_000 + 1 + 3)
    expect(decodeIndexKey(k)).toEqual([big, 'y'])
  })
})
