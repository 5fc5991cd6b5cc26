// Several processes on one Postgres database (#15): the fan-out half (the rows are in run.mjs).
// N raw sync-protocol clients subscribe to one query, dealt out in turn among the processes; a
// mutation made through one of them changes it; we time from its acknowledgement to the last
// subscriber's update, overall and for the subscribers of each process.
import WebSocket from 'ws'

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}

const post = async (url, path, args) => {
  const res = await fetch(`${url}/api/mutation`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path, args: [args], format: 'convex_encoded_json' }) })
  const body = await res.json()
  if (body.status !== 'success') throw new Error(`${path} failed: ${JSON.stringify(body)}`)
  return body
}

/**
 * `urls`: the processes' API URLs (subscriber i connects to urls[i % urls.length]); the writes go
 * through `writeUrl`. Each round waits for every subscriber to see the counter's new value (so a
 * Transition that changes nothing, or a late one of an earlier round, is not counted).
 */
export async function spreadFanout({ urls, writeUrl, n, rounds, name }) {
  const groups = urls.length
  const size = Array.from({ length: groups }, (_, g) => Math.floor(n / groups) + (g < n % groups ? 1 : 0))
  await post(writeUrl, 'bench:bump', { name })
  const res = await fetch(`${writeUrl}/api/query`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: 'bench:counter', args: [{ name }], format: 'convex_encoded_json' }) })
  // The value every subscriber must see first (another process may answer with an older one
  // before it has followed the write: that one is not counted).
  let target = (await res.json()).value
  let done = new Array(groups).fill(0)
  let doneAt = new Array(groups).fill(0)
  let wake = () => {}
  const sockets = []
  const subscribe = (ws, i) => {
    const g = i % groups
    ws.on('message', (d) => {
      const m = JSON.parse(d.toString())
      if (m.type !== 'Transition') return
      const update = m.modifications.find((x) => x.type === 'QueryUpdated' && x.queryId === 0)
      if (update !== undefined && update.value === target && ++done[g] === size[g]) {
        doneAt[g] = performance.now()
        if (done.every((c, k) => c === size[k])) wake()
      }
    })
    ws.send(JSON.stringify({ type: 'Connect', sessionId: `20000000-0000-4000-8000-${String(i).padStart(12, '0')}`, connectionCount: 0, lastCloseReason: 'InitialConnect', clientTs: Date.now() }))
    ws.send(JSON.stringify({ type: 'ModifyQuerySet', baseVersion: 0, newVersion: 1, modifications: [{ type: 'Add', queryId: 0, udfPath: 'bench:counter', args: [{ name }] }] }))
  }
  const waitFor = (what, ready) =>
    new Promise((resolve, reject) => {
      if (ready()) return resolve()
      const timer = setTimeout(() => reject(new Error(`fan-out: timed out waiting for ${what}`)), 60_000)
      wake = () => {
        clearTimeout(timer)
        resolve()
      }
    })
  try {
    const subscribed = waitFor('the subscriptions', () => false)
    for (let i = 0; i < n; i += 250) {
      await Promise.all(
        Array.from({ length: Math.min(250, n - i) }, (_, j) => {
          const ws = new WebSocket(`${urls[(i + j) % groups].replace('http', 'ws')}/api/1.48.0/sync`, { perMessageDeflate: false })
          sockets.push(ws)
          return new Promise((resolve, reject) => {
            ws.once('open', () => resolve(subscribe(ws, i + j)))
            ws.once('error', reject)
          })
        }),
      )
    }
    await subscribed
    // Every subscriber has the current value.
    const last = []
    const perGroup = Array.from({ length: groups }, () => [])
    for (let round = 0; round < rounds; round++) {
      done = new Array(groups).fill(0)
      doneAt = new Array(groups).fill(0)
      target += 1
      const updated = waitFor(`round ${round}'s updates`, () => false)
      await post(writeUrl, 'bench:bump', { name })
      const acked = performance.now()
      await updated
      // An update can reach the other process's subscribers before the writer's answer does: 0 then.
      for (let g = 0; g < groups; g++) perGroup[g].push(Math.max(0, doneAt[g] - acked))
      last.push(Math.max(0, Math.max(...doneAt) - acked))
    }
    const sorted = (xs) => [...xs].sort((a, b) => a - b)
    return {
      p50: percentile(sorted(last), 50),
      p99: percentile(sorted(last), 99),
      perProcessP50: perGroup.map((xs) => percentile(sorted(xs), 50)),
      perProcessP99: perGroup.map((xs) => percentile(sorted(xs), 99)),
    }
  } finally {
    for (const ws of sockets) ws.terminate()
  }
}
