// The vector benchmark's data: vector i is the same wherever it is computed (in a mutation that
// inserts it, in bench/vector.mjs that scans them all), so nothing large crosses the network.

/** A seeded generator (mulberry32): numbers in [0, 1). */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Vector `i`: `dims` numbers in [-1, 1] with 3 decimals (short documents). */
export function vectorAt(i: number, dims: number): number[] {
  const next = generator(i + 1);
  const out = new Array<number>(dims);
  for (let d = 0; d < dims; d++) out[d] = Math.round((next() * 2 - 1) * 1000) / 1000;
  return out;
}
