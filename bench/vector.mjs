// The vector search benchmark (run by run.mjs): loads `count` random `dims`-dimension vectors
// through mutations, then times `ctx.vectorSearch` (limit 10) from an action through
// ConvexHttpClient, and checks each answer against an exact brute-force scan in this process
// (recall@10), whose time per query is the baseline.
import { ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { vectorAt } from './app/convex/vectorData.ts'

const api = anyApi

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}

function normalized(v) {
  let n = 0
  for (const x of v) n += x * x
  n = Math.sqrt(n)
  return v.map((x) => x / n)
}

/** The exact top `k` of `data` (normalized rows) by cosine similarity to `query`: row numbers, best first. */
function bruteForce(data, count, dims, query, k) {
  const q = normalized(query)
  const best = [] // [score, row], ascending
  for (let r = 0; r < count; r++) {
    let dot = 0
    const base = r * dims
    for (let d = 0; d < dims; d++) dot += data[base + d] * q[d]
    if (best.length < k || dot > best[0][0]) {
      best.push([dot, r])
      best.sort((a, b) => a[0] - b[0])
      if (best.length > k) best.shift()
    }
  }
  return best.reverse().map(([, r]) => r)
}

export async function vectorBench(url, { count = 100_000, dims = 768, queries = 100, batch = 100 } = {}) {
  const c = new ConvexHttpClient(url)
  const t0 = performance.now()
  for (let start = 0; start < count; start += batch) {
    // A batch may pass the 1 s function limit on a busy machine: it wrote nothing, so send it again.
    for (let attempt = 1; ; attempt++) {
      try {
        await c.mutation(api.vectors.seed, { start, count: Math.min(batch, count - start), dims })
        break
      } catch (e) {
        if (attempt >= 5 || !String(e).includes('timed out')) throw e
      }
    }
  }
  const loadSeconds = (performance.now() - t0) / 1000
  const data = new Float64Array(count * dims)
  for (let i = 0; i < count; i++) data.set(normalized(vectorAt(i, dims)), i * dims)

  for (let w = 0; w < 3; w++) await c.action(api.vectors.search, { vector: vectorAt(2_000_000_000 + w, dims) })
  const latencies = []
  const scans = []
  let found = 0
  for (let n = 0; n < queries; n++) {
    const vector = vectorAt(1_000_000_000 + n, dims)
    const t = performance.now()
    const hits = await c.action(api.vectors.search, { vector })
    latencies.push(performance.now() - t)
    const got = await c.query(api.vectors.positions, { ids: hits.map((h) => h._id) })
    const t2 = performance.now()
    const truth = bruteForce(data, count, dims, vector, 10)
    scans.push(performance.now() - t2)
    const want = new Set(truth)
    found += got.filter((i) => want.has(i)).length
  }
  latencies.sort((a, b) => a - b)
  scans.sort((a, b) => a - b)
  return { count, dims, queries, loadSeconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99), scanP50: percentile(scans, 50), recall: found / (queries * 10) }
}
