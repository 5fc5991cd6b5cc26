// Fairness and memory under a flood (issue 13 items 3 and 4): the latency a steady client sees
// while another floods the backend, beside the same client alone, and the backend's RSS meanwhile.
import { readFileSync } from 'node:fs'
import WebSocket from 'ws'
import { ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'

const api = anyApi

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}

function summary(samples) {
  const s = [...samples].sort((a, b) => a - b)
  return { n: s.length, p50: percentile(s, 50), p99: percentile(s, 99), max: s[s.length - 1] }
}

export function rssMb(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]) / 1024
}

/** The peak RSS of `pid` while `body` runs (sampled every 10 ms). */
async function peakRss(pid, body) {
  let peak = rssMb(pid)
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rssMb(pid))
    } catch {}
  }, 10)
  try {
    const result = await body()
    return { result, peak }
  } finally {
    clearInterval(timer)
  }
}

/**
 * A steady client: one query after another through ConvexHttpClient (a point read of its own
 * counter), and beside it, on its own, one `GET /health` after another, until `until()` says stop
 * (and at least `minSamples` of each). Latencies in ms.
 */
async function steadyClient(url, until, minSamples = 200) {
  const c = new ConvexHttpClient(url)
  const query = []
  const health = []
  const queries = (async () => {
    for (let i = 0; until() === false || i < minSamples; i++) {
      const t = performance.now()
      const v = await c.query(api.bench.counter, { name: 'steady' })
      if (typeof v !== 'number') throw new Error(`steady query returned ${v}`)
      query.push(performance.now() - t)
    }
  })()
  const healths = (async () => {
    for (let i = 0; until() === false || i < minSamples; i++) {
      const t = performance.now()
      const res = await fetch(`${url}/health`)
      await res.text()
      health.push(performance.now() - t)
    }
  })()
  await Promise.all([queries, healths])
  return { query: summary(query), health: summary(health) }
}

async function metrics(url, adminKey) {
  return (await fetch(`${url}/api/concave/metrics`, { headers: { authorization: `Convex ${adminKey}` } })).json()
}

/** The steady client alone, for a fixed number of rounds. */
export async function alone(url) {
  let n = 0
  return steadyClient(url, () => ++n > 500, 500)
}

/**
 * One socket subscribes to `count` distinct queries in one ModifyQuerySet (all run at once); the
 * steady client runs until the flood's Transition has arrived. Then the socket closes: the runs
 * started after that (they should stop at once) are counted.
 */
export async function subscriptionFlood({ url, adminKey }, count = 5000) {
  const ws = new WebSocket(`${url.replace('http', 'ws')}/api/1.48.0/sync`, { perMessageDeflate: false })
  await new Promise((resolve, reject) => {
    ws.once('open', resolve)
    ws.once('error', reject)
  })
  let done = false
  let floodMs = 0
  const started = performance.now()
  ws.on('message', (d) => {
    if (d.toString().startsWith('{"type":"Transition"')) {
      done = true
      floodMs = performance.now() - started
    }
  })
  ws.send(JSON.stringify({ type: 'Connect', sessionId: '20000000-0000-4000-8000-000000000000', connectionCount: 0, lastCloseReason: 'InitialConnect', clientTs: Date.now() }))
  const modifications = Array.from({ length: count }, (_, q) => ({ type: 'Add', queryId: q, udfPath: 'bench:counter', args: [{ name: `flood-${Date.now()}-${q}` }] }))
  ws.send(JSON.stringify({ type: 'ModifyQuerySet', baseVersion: 0, newVersion: 1, modifications }))
  const steady = await steadyClient(url, () => done)
  // A second flood, closed half-way: how many runs start after the close.
  const ws2 = new WebSocket(`${url.replace('http', 'ws')}/api/1.48.0/sync`, { perMessageDeflate: false })
  await new Promise((resolve) => ws2.once('open', resolve))
  ws2.send(JSON.stringify({ type: 'Connect', sessionId: '20000000-0000-4000-8000-000000000001', connectionCount: 0, lastCloseReason: 'InitialConnect', clientTs: Date.now() }))
  const more = Array.from({ length: count }, (_, q) => ({ type: 'Add', queryId: q, udfPath: 'bench:counter', args: [{ name: `closed-${Date.now()}-${q}` }] }))
  ws2.send(JSON.stringify({ type: 'ModifyQuerySet', baseVersion: 0, newVersion: 1, modifications: more }))
  await new Promise((r) => setTimeout(r, 300))
  ws2.terminate()
  ws.terminate()
  await new Promise((r) => setTimeout(r, 200))
  const closedAt = (await metrics(url, adminKey)).subscriptionRuns
  await new Promise((r) => setTimeout(r, 2000))
  const runsAfterClose = (await metrics(url, adminKey)).subscriptionRuns - closedAt
  return { steady, floodMs, runsAfterClose }
}

/** `count` distinct HTTP queries sent at once, while the steady client runs. */
export async function httpFlood(url, count = 2000) {
  let done = false
  const started = performance.now()
  let floodMs = 0
  const flood = Promise.all(
    Array.from({ length: count }, (_, i) =>
      fetch(`${url}/api/query`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: 'bench:counter', args: [{ name: `http-${i}` }], format: 'convex_encoded_json' }) }).then((r) => r.text()),
    ),
  ).then(() => {
    done = true
    floodMs = performance.now() - started
  })
  const steady = await steadyClient(url, () => done, 50)
  await flood
  return { steady, floodMs }
}

/**
 * `concurrency` clients each send 15 MiB mutation bodies, one after another, `rounds` times, while
 * the steady client runs; the backend's peak RSS meanwhile, and how the bodies were answered.
 */
export async function bodyFlood({ url, pid }, concurrency = 32, rounds = 3) {
  const body = JSON.stringify({ path: 'bench:sizeOf', args: [{ body: 'x'.repeat(15 * 1024 * 1024) }], format: 'convex_encoded_json' })
  const statuses = {}
  let done = false
  const before = rssMb(pid)
  const { result: steady, peak } = await peakRss(pid, async () => {
    const flood = Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let r = 0; r < rounds; r++) {
          try {
            const res = await fetch(`${url}/api/mutation`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
            await res.text()
            statuses[res.status] = (statuses[res.status] ?? 0) + 1
          } catch (e) {
            statuses.error = (statuses.error ?? 0) + 1
          }
        }
      }),
    ).then(() => (done = true))
    const s = await steadyClient(url, () => done, 50)
    await flood
    return s
  })
  return { steady, before, peak, statuses }
}
