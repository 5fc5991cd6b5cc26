/** Seeded random Convex values for tests (not part of the barrel). */
import type { Value } from './value.ts'

/** mulberry32: a small deterministic PRNG returning floats in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const INTS = [0n, 1n, -1n, 127n, 128n, -128n, -129n, 255n, 32767n, 32768n, -32768n, -32769n, 2n ** 31n - 1n, 2n ** 31n, -(2n ** 31n), -(2n ** 31n) - 1n, 2n ** 63n - 1n, -(2n ** 63n), 42n, -1000000n]
const FLOATS = [0, -0, 1, -1, 0.5, -0.5, 1e-310, -1e-310, 5e-324, 1e300, -1e300, Infinity, -Infinity, NaN, Math.PI, 2 ** 53, -(2 ** 31), 42]
const STRINGS = ['', 'a', 'b', 'ab', 'a\0', 'a\0b', '\0', 'B', 'é', '\uffff', '\ue000', '😀', '😀a', 'a😀', 'zz', '\u07ff', '\u0800', 'a\u0000\u0000']
const KEYS = ['', 'a', 'b', 'ab', 'A', '_id', 'z']

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!
}

/** A random value with ties likely (small pools) and bounded depth. */
export function randomValue(r: () => number, depth = 0): Value {
  const kind = Math.floor(r() * (depth >= 2 ? 7 : 9))
  switch (kind) {
    case 0: return null
    case 1: return r() < 0.7 ? pick(r, INTS) : BigInt(Math.floor((r() - 0.5) * 2 ** 40))
    case 2: return r() < 0.7 ? pick(r, FLOATS) : (r() - 0.5) * 10 ** Math.floor(r() * 20)
    case 3: return r() < 0.5
    case 4: return pick(r, STRINGS)
    case 5: return pick(r, STRINGS) + pick(r, STRINGS)
    case 6: {
      const n = Math.floor(r() * 4)
      const b = new Uint8Array(n)
      for (let i = 0; i < n; i++) b[i] = pick(r, [0, 1, 0x7f, 0xff])
      return b.buffer
    }
    case 7: {
      const n = Math.floor(r() * 3)
      return Array.from({ length: n }, () => randomValue(r, depth + 1))
    }
    default: {
      const o: Record<string, Value> = {}
      const n = Math.floor(r() * 3)
      for (let i = 0; i < n; i++) o[pick(r, KEYS)] = randomValue(r, depth + 1)
      return o
    }
  }
}
