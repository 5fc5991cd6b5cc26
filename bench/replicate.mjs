// Live replication (`--replicate-from`, issue #17; `BENCH_ONLY=replicate`): the snapshot's copy
// rate beside writing the same documents, and the replica's lag while the source takes a paced
// 1,000 mutations/s.
import { ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'

const api = anyApi
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}

/** The replica's `GET /api/concave/replication`. */
async function replicationStatus(replica) {
  const r = await fetch(`${replica.url}/api/concave/replication`, { headers: { authorization: `Convex ${replica.adminKey}` } })
  if (r.status !== 200) throw new Error(`replication status answered ${r.status}: ${await r.text()}`)
  return r.json()
}

const caughtUp = (s) => s.phase === 'deltas' && s.caughtUp === true && s.lag !== null && s.lag.documents === 0

async function untilCaughtUp(replica, timeoutMs, everyMs = 20) {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const s = await replicationStatus(replica)
    if (caughtUp(s)) return s
    if (performance.now() > deadline) throw new Error(`the replica did not catch up in ${timeoutMs / 1000} s: ${JSON.stringify(s)}`)
    await sleep(everyMs)
  }
}

/** Writes `count` documents into `rows` (index `by_group`) through `bench:seedRows`, `batch` per mutation, one after another. */
async function load(backend, count, batch) {
  const c = new ConvexHttpClient(backend.url)
  const t = performance.now()
  for (let start = 0; start < count; start += batch) await c.mutation(api.bench.seedRows, { group: 'replicate', start, count: Math.min(batch, count - start) })
  return (performance.now() - t) / 1000
}

/**
 * A paced load generator: mutation i (`bench:insert`, one document) is due at i/rate seconds; up
 * to `concurrency` are in flight, each sent at its due time (at once when behind). Runs until
 * `stop()` and counts the mutations answered between `count()` and `stop()`.
 */
function pacedInserts(url, { rate, concurrency, fetch }) {
  const clients = Array.from({ length: concurrency }, () => new ConvexHttpClient(url, fetch === undefined ? undefined : { fetch }))
  let base = performance.now()
  let baseIndex = 0
  let next = 0
  let running = true
  let counting = false
  let answered = 0
  let failed = 0
  let sent = 0
  let late = 0
  const workers = clients.map(async (c) => {
    while (running) {
      const i = next++
      const wait = base + ((i - baseIndex) * 1000) / rate - performance.now()
      if (wait > 0) await sleep(wait)
      if (!running) break
      if (counting) {
        sent++
        // More than 10 ms behind its due time: the generator (or the source) is not keeping up.
        if (wait < -10) late++
      }
      try {
        await c.mutation(api.bench.insert, { body: 'replicated', n: i })
        if (counting && running) answered++
      } catch {
        if (counting) failed++
      }
    }
  })
  return {
    /** Counting starts now, on a fresh schedule: a backlog of the uncounted part is dropped, not sent in a burst. */
    count() {
      base = performance.now()
      baseIndex = next
      counting = true
    },
    async stop() {
      running = false
      await Promise.all(workers)
      return { answered, failed, lateShare: sent === 0 ? 0 : late / sent }
    },
  }
}

/**
 * Starts a source, loads `count` documents into it (the baseline: a fresh backend written by
 * batched mutations), starts a replica and times its copy; then drives the source at `rate`
 * mutations/s for `seconds` while sampling the replica's lag every `sampleMs`; then, the replica
 * stopped, the same load on the source alone.
 */
export async function replicateBench({ startBackend, stopBackend, push, cpuSeconds, fetch, count = 20_000, batch = 1000, rate = 1000, seconds = 10, concurrency = 64, sampleMs = 100, progress = () => {} }) {
  const started = []
  const start = async (...args) => {
    const b = await startBackend(...args)
    started.push(b)
    return b
  }
  const stop = async (b, keepData = false) => {
    started.splice(started.indexOf(b), 1)
    await stopBackend(b, keepData)
  }
  // A 1,000-document mutation can pass the default 1 s limit on a loaded machine.
  const env = { CONCAVE_FUNCTION_TIMEOUT_MS: '10000' }
  try {
    const source = await start(env)
    push(source)
    const loadSeconds = await load(source, count, batch)
    progress('load', { count, loadSeconds })

    // The replica gets the same app first (as README's Moving a deployment says), so it keeps
    // the same indexes as the source while it copies; the same push gives the tables the same
    // numbers. Then it is started again as a replica of the source.
    const fresh = await start(env)
    push(fresh)
    await stop(fresh, true)
    const before = performance.now()
    const replica = await start({ ...env, CONCAVE_REPLICATE_FROM: source.url, CONCAVE_REPLICATE_ADMIN_KEY: source.adminKey }, fresh.dataDir)
    const done = await untilCaughtUp(replica, 600_000)
    // From the replica answering its first request (it starts replicating as it starts listening).
    const snapshotSeconds = (performance.now() - before - replica.startupMs) / 1000
    if (done.applied < count) throw new Error(`the replica caught up with ${done.applied} documents applied, fewer than the ${count} loaded`)
    progress('snapshot', { snapshotSeconds, applied: done.applied })

    // Steady state: a paced load on the source, the replica following.
    const gen = pacedInserts(source.url, { rate, concurrency, fetch })
    await sleep(2000) // uncounted: clients connected, code paths warm, the replica polling
    const first = await replicationStatus(replica)
    gen.count()
    const t0 = performance.now()
    const cpu0 = { source: cpuSeconds(source.child.pid), replica: cpuSeconds(replica.child.pid), bench: process.cpuUsage() }
    const docs = []
    const lagSeconds = []
    let incomplete = 0
    let last = first
    let nextSample = t0
    while (performance.now() - t0 < seconds * 1000) {
      nextSample += sampleMs
      last = await replicationStatus(replica)
      if (last.lag !== null) {
        docs.push(last.lag.documents)
        lagSeconds.push(last.lag.seconds)
        if (!last.lag.complete) incomplete++
      }
      const wait = nextSample - performance.now()
      if (wait > 0) await sleep(wait)
    }
    const window = (performance.now() - t0) / 1000
    const cpu1 = { source: cpuSeconds(source.child.pid), replica: cpuSeconds(replica.child.pid), bench: process.cpuUsage(cpu0.bench) }
    const end = await replicationStatus(replica)
    const sent = await gen.stop()
    const tStop = performance.now()
    const final = await untilCaughtUp(replica, 120_000)
    const drainSeconds = (performance.now() - tStop) / 1000
    // The same paced load on the source with no replica: what following costs the source.
    await stop(replica)
    const solo = pacedInserts(source.url, { rate, concurrency, fetch })
    await sleep(2000)
    solo.count()
    const s0 = performance.now()
    const soloCpu0 = { source: cpuSeconds(source.child.pid), bench: process.cpuUsage() }
    await sleep(seconds * 1000)
    const soloWindow = (performance.now() - s0) / 1000
    const soloCpu1 = { source: cpuSeconds(source.child.pid), bench: process.cpuUsage(soloCpu0.bench) }
    const soloSent = await solo.stop()
    const alone = {
      window: soloWindow,
      achieved: soloSent.answered / soloWindow,
      failed: soloSent.failed,
      lateShare: soloSent.lateShare,
      cpuPerMutationUs: { source: ((soloCpu1.source - soloCpu0.source) * 1e6) / soloSent.answered, bench: (soloCpu1.bench.user + soloCpu1.bench.system) / soloSent.answered },
    }
    docs.sort((a, b) => a - b)
    lagSeconds.sort((a, b) => a - b)
    const r = {
      count,
      batch,
      loadSeconds,
      snapshotSeconds,
      snapshotApplied: done.applied,
      replicaStartupMs: replica.startupMs,
      rate,
      concurrency,
      window,
      achieved: sent.answered / window,
      failed: sent.failed,
      lateShare: sent.lateShare,
      applied: (end.applied - first.applied) / window,
      samples: docs.length,
      incomplete,
      lagDocs: { p50: percentile(docs, 50), p99: percentile(docs, 99), max: docs[docs.length - 1] },
      lagSeconds: { p50: percentile(lagSeconds, 50), p99: percentile(lagSeconds, 99), max: lagSeconds[lagSeconds.length - 1] },
      cpuPerMutationUs: { source: ((cpu1.source - cpu0.source) * 1e6) / sent.answered, replica: ((cpu1.replica - cpu0.replica) * 1e6) / sent.answered, bench: (cpu1.bench.user + cpu1.bench.system) / sent.answered },
      drainSeconds,
      finalApplied: final.applied,
      alone,
    }
    progress('steady', r)
    return r
  } finally {
    for (const b of [...started]) await stopBackend(b)
  }
}
