// Subscription fan-out: N raw sync-protocol clients subscribe to one query; a mutation changes
// it; we time from the mutation's acknowledgement to the last subscriber's Transition. Beside it,
// a plain ws broadcast of the same payload to N sockets (bench/raw-broadcast.mjs).
import { fork } from 'node:child_process'
import WebSocket from 'ws'

const ROUNDS = Number(process.env.BENCH_FANOUT_ROUNDS ?? 15)

/** The backend's live heap (after a collection; the bench starts it with --expose-gc), in bytes. */
async function liveHeap(url, adminKey) {
  const res = await fetch(`${url}/api/concave/metrics?gc=1`, { headers: { authorization: `Convex ${adminKey}` } })
  return (await res.json()).heapUsedBytes
}

/**
 * Memory is read once the backend has been idle this long (BENCH_SETTLE_MS, default 20 s): the
 * burst of work that sets subscriptions up leaves garbage and allocator slack (V8 pages, C
 * allocator arenas) that is given back only after the process has idled for a while. Read sooner,
 * RSS measures the burst, not the idle subscriptions.
 */
const SETTLE_MS = Number(process.env.BENCH_SETTLE_MS ?? 20_000)
const settle = () => new Promise((r) => setTimeout(r, SETTLE_MS))

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}

async function openAll(n, url, onOpen) {
  const sockets = []
  for (let i = 0; i < n; i += 250) {
    await Promise.all(
      Array.from({ length: Math.min(250, n - i) }, (_, j) => {
        const ws = new WebSocket(url, { perMessageDeflate: false })
        sockets.push(ws)
        return new Promise((resolve, reject) => {
          ws.once('open', () => resolve(onOpen?.(ws, i + j)))
          ws.once('error', reject)
        })
      }),
    )
  }
  return sockets
}

/** Waits until `count()` reaches `target`; returns the time it did. */
function until(count, target, timeoutMs = 60_000) {
  return new Promise((resolve, reject) => {
    const started = performance.now()
    const tick = () => {
      if (count() >= target) return resolve(performance.now())
      if (performance.now() - started > timeoutMs) return reject(new Error(`only ${count()}/${target}`))
      setImmediate(tick)
    }
    tick()
  })
}

export async function fanout({ url, adminKey, pid, rssMb }, n) {
  const wsUrl = `${url.replace('http', 'ws')}/api/1.48.0/sync`
  const name = `fan${n}`
  await fetch(`${url}/api/mutation`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: 'bench:bump', args: [{ name }], format: 'convex_encoded_json' }) })
  let received = 0
  let lastPayload = ''
  // Marginal memory: RSS after the second half of the subscribers minus after the first half
  // (one-time costs, like warming the isolate pool, land in the first half).
  const subscribe = (ws, i) => {
    ws.on('message', (d) => {
      const text = d.toString()
      if (text.startsWith('{"type":"Transition"')) {
        received++
        lastPayload = text
      }
    })
    ws.send(JSON.stringify({ type: 'Connect', sessionId: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, connectionCount: 0, lastCloseReason: 'InitialConnect', clientTs: Date.now() }))
    ws.send(JSON.stringify({ type: 'ModifyQuerySet', baseVersion: 0, newVersion: 1, modifications: [{ type: 'Add', queryId: 0, udfPath: 'bench:counter', args: [{ name }] }] }))
  }
  const half = Math.floor(n / 2)
  const sockets = await openAll(half, wsUrl, subscribe)
  await until(() => received, half)
  await settle()
  const rssBefore = rssMb(pid)
  const heapBefore = await liveHeap(url, adminKey)
  sockets.push(...(await openAll(n - half, wsUrl, (ws, i) => subscribe(ws, half + i))))
  await until(() => received, n)
  await settle()
  const rssAfter = rssMb(pid)
  const heapAfter = await liveHeap(url, adminKey)
  const metrics = async () => (await (await fetch(`${url}/api/concave/metrics`, { headers: { authorization: `Convex ${adminKey}` } })).json())
  // A write outside every read set must re-run nothing.
  const runsBefore = (await metrics()).subscriptionRuns
  await fetch(`${url}/api/mutation`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: 'bench:bump', args: [{ name: `${name}-elsewhere` }], format: 'convex_encoded_json' }) })
  await new Promise((r) => setTimeout(r, 300))
  const unrelatedRuns = (await metrics()).subscriptionRuns - runsBefore
  const samples = []
  const fromRequest = []
  for (let round = 0; round < ROUNDS; round++) {
    const base = received
    const requested = performance.now()
    const res = await fetch(`${url}/api/mutation`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: 'bench:bump', args: [{ name }], format: 'convex_encoded_json' }) })
    await res.text()
    const acked = performance.now()
    const done = await until(() => received, base + n)
    samples.push(done - acked)
    fromRequest.push(done - requested)
  }
  for (const ws of sockets) ws.terminate()
  samples.sort((a, b) => a - b)
  fromRequest.sort((a, b) => a - b)
  return { p50: percentile(samples, 50), p99: percentile(samples, 99), requestP50: percentile(fromRequest, 50), perSubscriptionKb: ((rssAfter - rssBefore) * 1024) / (n - half), perSubscriptionHeapKb: (heapAfter - heapBefore) / 1024 / (n - half), unrelatedRuns, payload: lastPayload }
}

export async function rawBroadcast(n, payload, port, rssMb) {
  const child = fork(new URL('./raw-broadcast.mjs', import.meta.url), [String(port)], { stdio: 'ignore' })
  await new Promise((r) => child.once('message', r))
  try {
    let received = 0
    // Memory per idle socket of the bare ws server, measured as the backend's is.
    const half = Math.floor(n / 2)
    const sockets = await openAll(half, `ws://127.0.0.1:${port}`, (ws) => ws.on('message', () => received++))
    await settle()
    const rssBefore = rssMb(child.pid)
    sockets.push(...(await openAll(n - half, `ws://127.0.0.1:${port}`, (ws) => ws.on('message', () => received++))))
    await settle()
    const perSocketKb = ((rssMb(child.pid) - rssBefore) * 1024) / (n - half)
    const control = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false })
    await new Promise((r) => control.once('open', r))
    const samples = []
    for (let round = 0; round < ROUNDS; round++) {
      const base = received
      const sent = performance.now()
      control.send(payload)
      const done = await until(() => received, base + n)
      samples.push(done - sent)
    }
    for (const ws of [...sockets, control]) ws.terminate()
    samples.sort((a, b) => a - b)
    return { p50: percentile(samples, 50), p99: percentile(samples, 99), perSocketKb }
  } finally {
    child.kill()
  }
}

/** Server memory per idle query subscription when sockets carry many queries (distinct args). */
export async function perQueryMemory({ url, adminKey, pid, rssMb }, sockets = 200, queriesPerSocket = 100) {
  const wsUrl = `${url.replace('http', 'ws')}/api/1.48.0/sync`
  let received = 0
  const subscribe = (ws, i) => {
    ws.on('message', (d) => {
      if (d.toString().startsWith('{"type":"Transition"')) received++
    })
    ws.send(JSON.stringify({ type: 'Connect', sessionId: `10000000-0000-4000-8000-${String(i).padStart(12, '0')}`, connectionCount: 0, lastCloseReason: 'InitialConnect', clientTs: Date.now() }))
    const modifications = Array.from({ length: queriesPerSocket }, (_, q) => ({ type: 'Add', queryId: q, udfPath: 'bench:counter', args: [{ name: `idle-${i}-${q}` }] }))
    ws.send(JSON.stringify({ type: 'ModifyQuerySet', baseVersion: 0, newVersion: 1, modifications }))
  }
  const half = Math.floor(sockets / 2)
  const all = await openAll(half, wsUrl, subscribe)
  await until(() => received, half)
  await settle()
  const before = rssMb(pid)
  const heapBefore = await liveHeap(url, adminKey)
  all.push(...(await openAll(sockets - half, wsUrl, (ws, i) => subscribe(ws, half + i))))
  await until(() => received, sockets)
  await settle()
  const after = rssMb(pid)
  const heapAfter = await liveHeap(url, adminKey)
  for (const ws of all) ws.terminate()
  const count = (sockets - half) * queriesPerSocket
  return { rssKb: ((after - before) * 1024) / count, heapKb: (heapAfter - heapBefore) / 1024 / count }
}
