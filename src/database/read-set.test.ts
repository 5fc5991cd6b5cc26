import { describe, expect, test } from 'vitest'
import { FrozenReadSet, keyString, ReadSet } from './read-set.ts'

/** A deterministic byte source, so a failure is reproducible. */
function bytes(seed: number): () => Buffer {
  let x = seed
  const next = () => (x = (x * 1103515245 + 12345) >>> 0) >>> 16
  // Short keys over a few byte values (0x00, 0x7f, 0x80, 0xff among them) make equal prefixes common.
  const alphabet = [0x00, 0x01, 0x7f, 0x80, 0xc3, 0xff]
  return () => Buffer.from(Array.from({ length: next() % 5 }, () => alphabet[next() % alphabet.length]!))
}

describe('FrozenReadSet', () => {
  test('answers exactly as the ReadSet it was made from, for keys of any bytes', () => {
    const key = bytes(42)
    for (let round = 0; round < 200; round++) {
      const readSet = new ReadSet()
      for (let i = 0; i < 1 + (round % 4); i++) {
        const a = key()
        const b = key()
        const [lo, hi] = Buffer.compare(a, b) <= 0 ? [a, b] : [b, a]
        readSet.add(round % 3, { lo, hi: i === 2 ? null : hi })
      }
      const frozen = new FrozenReadSet(readSet)
      expect([...frozen.indexIds].sort()).toEqual([...readSet.intervals.keys()].sort())
      for (let k = 0; k < 50; k++) {
        const written = key()
        for (const indexId of [0, 1, 2]) expect(frozen.contains(indexId, keyString(written))).toBe(readSet.contains(indexId, written))
      }
    }
  })

  test('an empty lower bound with no upper bound holds every key of that index only', () => {
    const readSet = new ReadSet()
    readSet.add(7, { lo: Buffer.alloc(0), hi: null })
    const frozen = new FrozenReadSet(readSet)
    expect(frozen.contains(7, keyString(Buffer.from([0xff, 0xff])))).toBe(true)
    expect(frozen.contains(7, '')).toBe(true)
    expect(frozen.contains(8, '')).toBe(false)
  })
})
