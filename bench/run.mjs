// Concave benchmarks: `npm run bench`. Prints one table; every Concave figure sits beside the raw
// baseline measured in the same run (raw better-sqlite3, raw isolated-vm).
import { spawn, execFile, execFileSync } from 'node:child_process'
import { promisify } from 'node:util'
import { cpSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs'
import http from 'node:http'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import ivm from 'isolated-vm'
import { ConvexHttpClient } from 'convex/browser'
import pg from 'pg'
import { anyApi } from 'convex/server'
import { fanout, perQueryMemory, rawBroadcast } from './fanout.mjs'
import { vectorBench } from './vector.mjs'
import { historyBench } from './history.mjs'
import { alone, bodyFlood, httpFlood, subscriptionFlood } from './fairness.mjs'
import { COMPONENT_COUNT, crossCallBench, timedDeploy, writeComponentsApp } from './components.mjs'
import { startPostgres } from '../test/helpers/postgres.ts'
import { assertDurable, postgresCpu, rawPostgresInserts } from './postgres.mjs'
import { spreadFanout } from './multi.mjs'
import { descendantsCpu, firstLoad, openDashboards } from './dashboard.mjs'
import { restoreBench } from './restore.mjs'
import { importBench } from './import.mjs'
import { replicateBench } from './replicate.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3)
/** `BENCH_ONLY=vector`, `history`, `fairness`, `components`, `postgres`, `multi`, `restore`, `import`, `reads`, `replicate` or `dashboard` runs just that benchmark. */
const ONLY = process.env.BENCH_ONLY ?? ''
const VECTORS = Number(process.env.BENCH_VECTORS ?? 100_000)
const api = anyApi
const rows = []
const row = (name, value, unit, baseline, note = '') => rows.push({ name, value, unit, baseline, note })

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}

// ── raw baselines ──
function rawSqliteCommits() {
  const dir = mkdtempSync(join(tmpdir(), 'bench-sqlite-'))
  const db = new Database(join(dir, 'raw.sqlite3'))
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = FULL')
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)')
  const insert = db.prepare('INSERT INTO t (body) VALUES (?)')
  const tx = db.transaction((b) => insert.run(b))
  let n = 0
  const end = performance.now() + SECONDS * 1000
  while (performance.now() < end) {
    tx(`hello ${n}`)
    n++
  }
  db.close()
  rmSync(dir, { recursive: true, force: true })
  return n / SECONDS
}

function rawSqliteRead() {
  const db = new Database(':memory:')
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)')
  db.prepare('INSERT INTO t (v) VALUES (1)').run()
  const get = db.prepare('SELECT v FROM t WHERE id = 1')
  const samples = []
  for (let i = 0; i < 20000; i++) {
    const t = performance.now()
    get.get()
    samples.push(performance.now() - t)
  }
  samples.sort((a, b) => a - b)
  return percentile(samples, 50)
}

function rawIsolateCall() {
  const isolate = new ivm.Isolate({ memoryLimit: 64 })
  const context = isolate.createContextSync()
  context.evalSync('globalThis.f = (x) => x + 1')
  const f = context.global.getSync('f', { reference: true })
  const n = 20000
  const t = performance.now()
  for (let i = 0; i < n; i++) f.applySync(undefined, [i])
  const warm = ((performance.now() - t) * 1000) / n
  const t2 = performance.now()
  for (let i = 0; i < 200; i++) isolate.createContextSync().release()
  const fresh = ((performance.now() - t2) * 1000) / 200
  isolate.dispose()
  return { warm, fresh }
}

// ── Concave ──
async function startBackend(env = {}, dataDir = mkdtempSync(join(tmpdir(), 'bench-concave-')), args = []) {
  const port = await freePort()
  const sitePort = await freePort()
  const secret = '4361726e697461732c206c69746572616c6c79206d65616e696e6720226c6974'
  const t0 = performance.now()
  // --expose-gc lets the memory figures also read the live heap (metrics?gc=1); it changes nothing else.
  const child = spawn(process.execPath, ['--expose-gc', ...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean), join(root, 'dist/backend.js'), '--port', port, '--site-proxy-port', sitePort, '--interface', '127.0.0.1', '--local-storage', dataDir, '--instance-name', 'bench', '--instance-secret', secret, ...args], { stdio: process.env.BENCH_BACKEND_LOG === '1' ? ['ignore', 'inherit', 'inherit'] : 'ignore', env: { ...process.env, DASHBOARD_PORT: '0', ...env } })
  const url = `http://127.0.0.1:${port}`
  for (;;) {
    // A backend that stops at start-up (a bad flag, a refused database) fails the bench, not hangs it.
    if (child.exitCode !== null || child.signalCode !== null) {
      rmSync(dataDir, { recursive: true, force: true })
      throw new Error(`the backend exited at start-up (${child.exitCode ?? child.signalCode}); BENCH_BACKEND_LOG=1 shows its log`)
    }
    try {
      if ((await fetch(`${url}/version`)).ok) break
    } catch {}
    await new Promise((r) => setTimeout(r, 2))
  }
  const startupMs = performance.now() - t0
  const adminKey = execFileSync(process.execPath, [join(root, 'dist/keybroker.js'), 'generate-key', '--instance-name', 'bench', '--instance-secret', secret]).toString().trim().split('\n').pop()
  return { child, url, dataDir, adminKey, startupMs }
}

function rssMb(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]) / 1024
}

/** CPU seconds (user + system) the process `pid` has used so far. */
function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100 // clock ticks: 100 per second on Linux
}

/**
 * A `fetch` for ConvexHttpClient's documented `fetch` option: node:http with a keep-alive agent,
 * answering with a real `Response`. Node's built-in fetch (undici) spends ~200 µs of CPU per
 * request on this machine, which on 2 shared cores caps the load generator below what the
 * server sustains; this one spends ~70 µs, so the figure it gives is the server's.
 */
const leanAgent = new http.Agent({ keepAlive: true, maxSockets: 256 })
function leanFetch(url, init) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: init.method, headers: init.headers, agent: leanAgent }, (res) => {
      const chunks = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () => resolve(new Response(Buffer.concat(chunks), { status: res.statusCode })))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(init.body)
  })
}

/**
 * Mutations/s, and the CPU the server and this load generator each spend per mutation (µs); with
 * `storeCpu` (a function giving CPU seconds so far), also that of the store's processes. `backend`
 * may be an array of backends (processes on one database): the clients are dealt out among them
 * in turn, and the server CPU is theirs summed.
 */
async function mutationsPerSecond(backend, concurrency, indexed, lean = false, storeCpu = null) {
  return throughput(backend, concurrency, storeCpu, (url, i) => {
    const c = new ConvexHttpClient(url, lean ? { fetch: leanFetch } : undefined)
    return (n) => (indexed ? c.mutation(api.bench.send, { author: `bench${i}`, body: 'x', n }) : c.mutation(api.bench.insert, { body: 'x', n }))
  })
}

/**
 * `mutationsPerSecond`'s figure with the cheapest load generator: each of `concurrency` keep-alive
 * node:http connections POSTs the very request ConvexHttpClient sends for `bench:insert` (same
 * path, headers and body), built once, and checks it succeeded. The raw baselines' generators cost
 * ~100 us per operation; ConvexHttpClient's ~500 us, which on a 2-core machine is CPU the server
 * under test doesn't get. So this row says what the server sustains.
 */
async function rawMutationsPerSecond(backend, concurrency, storeCpu = null) {
  const version = JSON.parse(readFileSync(join(root, 'node_modules/convex/package.json'), 'utf8')).version
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency })
  const post = (url, body) =>
    new Promise((resolve, reject) => {
      const req = http.request(`${url}/api/mutation`, { method: 'POST', agent, headers: { 'Content-Type': 'application/json', 'Convex-Client': `npm-${version}`, 'Content-Length': Buffer.byteLength(body) } }, (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (c) => (text += c))
        res.on('end', () => (res.statusCode === 200 && text.startsWith('{"status":"success"') ? resolve() : reject(new Error(`mutation failed: ${res.statusCode} ${text}`))))
        res.on('error', reject)
      })
      req.on('error', reject)
      req.end(body)
    })
  try {
    return await throughput(backend, concurrency, storeCpu, (url, i) => {
      const body = JSON.stringify({ path: 'bench:insert', format: 'convex_encoded_json', args: [{ body: 'x', n: i }] })
      return () => post(url, body)
    })
  } finally {
    agent.destroy()
  }
}

/**
 * Requests/s of the plain hono route (bench/plain-hono.mjs) under rawMutationsPerSecond's load:
 * what an HTTP server that does nothing but parse the request and answer it sustains here.
 */
async function plainHonoPerSecond(concurrency) {
  const port = await freePort()
  const child = spawn(process.execPath, [join(root, 'bench/plain-hono.mjs'), String(port)], { stdio: ['ignore', 'pipe', 'inherit'] })
  try {
    await new Promise((resolve, reject) => {
      child.stdout.once('data', resolve)
      child.once('exit', (code) => reject(new Error(`bench/plain-hono.mjs exited (${code})`)))
    })
    return await rawMutationsPerSecond({ child, url: `http://127.0.0.1:${port}` }, concurrency)
  } finally {
    child.kill('SIGTERM')
  }
}

/**
 * Operations/s of `concurrency` workers (`worker(url, i)` gives one's operation, called in a loop
 * with the count so far) dealt out among `backend` (one or an array), and the CPU per operation of
 * the servers, this process and (`storeCpu`) the store. One uncounted second first: connections
 * opened, code paths warm (steady state is measured).
 */
async function throughput(backend, concurrency, storeCpu, worker) {
  const backends = Array.isArray(backend) ? backend : [backend]
  const serverCpu = () => backends.reduce((sum, b) => sum + cpuSeconds(b.child.pid), 0)
  const ops = Array.from({ length: concurrency }, (_, i) => worker(backends[i % backends.length].url, i))
  let n = 0
  let server0 = 0
  let client0 = null
  let store0 = 0
  const warm = performance.now() + 1000
  const end = warm + SECONDS * 1000
  const startCounting = setTimeout(() => {
    server0 = serverCpu()
    client0 = process.cpuUsage()
    if (storeCpu) store0 = storeCpu()
  }, 1000)
  await Promise.all(
    ops.map(async (op) => {
      while (performance.now() < end) {
        await op(n)
        if (performance.now() > warm) n++
      }
    }),
  )
  clearTimeout(startCounting)
  const client = process.cpuUsage(client0 ?? undefined)
  return {
    perSecond: n / SECONDS,
    serverCpuUs: ((serverCpu() - server0) * 1e6) / n,
    clientCpuUs: (client.user + client.system) / n,
    storeCpuUs: storeCpu ? ((storeCpu() - store0) * 1e6) / n : null,
  }
}

/** Uncounted c=32 inserts spread over `backends` for `ms`: code paths and connections warm. */
async function warmUp(backends, ms = 2000) {
  const end = performance.now() + ms
  await Promise.all(
    Array.from({ length: 32 }, async (_, i) => {
      const c = new ConvexHttpClient(backends[i % backends.length].url, { fetch: leanFetch })
      while (performance.now() < end) await c.mutation(api.bench.insert, { body: 'warm-up', n: i })
    }),
  )
}

async function queryLatency(url) {
  const c = new ConvexHttpClient(url)
  for (let i = 0; i < 200; i++) await c.query(api.bench.counter, { name: 'warm' })
  const samples = []
  for (let i = 0; i < 3000; i++) {
    const t = performance.now()
    await c.query(api.bench.counter, { name: 'warm' })
    samples.push(performance.now() - t)
  }
  samples.sort((a, b) => a - b)
  return { p50: percentile(samples, 50), p99: percentile(samples, 99) }
}

/** Raw better-sqlite3: a 100-row indexed range read, and a 10,000-row scan in 1,000-row pages. */
function rawSqliteReads() {
  const db = new Database(':memory:')
  db.exec('CREATE TABLE rows (id INTEGER PRIMARY KEY, grp TEXT, n REAL, body TEXT); CREATE INDEX by_group ON rows (grp, n)')
  const insert = db.prepare('INSERT INTO rows (grp, n, body) VALUES (?, ?, ?)')
  db.transaction(() => {
    for (let i = 0; i < 10_000; i++) insert.run('g', i, `row ${i} of g`)
  })()
  const range = db.prepare('SELECT * FROM rows WHERE grp = ? AND n >= ? ORDER BY n LIMIT 100')
  const page = db.prepare('SELECT * FROM rows WHERE grp = ? AND n > ? ORDER BY n LIMIT 1000')
  const samples = []
  for (let i = 0; i < 2000; i++) {
    const t = performance.now()
    range.all('g', (i * 37) % 9000)
    samples.push(performance.now() - t)
  }
  samples.sort((a, b) => a - b)
  const first = db.prepare('SELECT * FROM rows WHERE grp = ? ORDER BY n LIMIT 1')
  const t0 = performance.now()
  for (let i = 0; i < 20_000; i++) first.get('g')
  const firstRowUs = ((performance.now() - t0) * 1000) / 20_000
  const scans = []
  for (let r = 0; r < 20; r++) {
    const t = performance.now()
    let last = -1
    for (;;) {
      const rows = page.all('g', last)
      if (rows.length === 0) break
      last = rows[rows.length - 1].n
    }
    scans.push(performance.now() - t)
  }
  scans.sort((a, b) => a - b)
  db.close()
  return { rangeP50: percentile(samples, 50), scanP50: percentile(scans, 50), firstRowUs }
}

/** The read rows: Concave's reads (concaveReads) beside raw better-sqlite3's (rawSqliteReads). */
function readRows(raw, reads) {
  row('raw better-sqlite3 indexed range read, 100 rows, p50', raw.rangeP50 * 1000, 'us', null, '')
  row('indexed range read of 100 rows via ConvexHttpClient, p50', reads.rangeP50 * 1000, 'us', reads.rangeP50 / raw.rangeP50, 'x raw sqlite range read')
  row('raw better-sqlite3 first row of an index range (LIMIT 1)', raw.firstRowUs, 'us', null, '')
  row('a query opened and stopped at its first row (for await + break), inside a function', reads.firstRowUs, 'us', reads.firstRowUs / raw.firstRowUs, 'x raw sqlite LIMIT 1; per read, 2,000 in one query (best of 3)')
  row('raw better-sqlite3 10,000-row scan in 1,000-row pages', raw.scanP50, 'ms', null, '')
  row('10,000-row paginated scan via ConvexHttpClient (1,000/page)', reads.scanP50, 'ms', reads.scanP50 / raw.scanP50, 'x raw sqlite paginated scan')
}

async function concaveReads(url) {
  const c = new ConvexHttpClient(url)
  for (let start = 0; start < 10_000; start += 2000) await c.mutation(api.bench.seedRows, { group: 'g', start, count: 2000 })
  for (let i = 0; i < 50; i++) await c.query(api.bench.range100, { group: 'g', from: i })
  const samples = []
  for (let i = 0; i < 500; i++) {
    const t = performance.now()
    const n = await c.query(api.bench.range100, { group: 'g', from: (i * 37) % 9000 })
    if (n !== 100) throw new Error(`range read returned ${n} rows`)
    samples.push(performance.now() - t)
  }
  samples.sort((a, b) => a - b)
  const scans = []
  for (let r = 0; r < 5; r++) {
    const t = performance.now()
    let cursor = null
    let total = 0
    for (;;) {
      const page = await c.query(api.bench.scanPage, { group: 'g', paginationOpts: { numItems: 1000, cursor } })
      total += page.count
      if (page.isDone) break
      cursor = page.continueCursor
    }
    if (total !== 10_000) throw new Error(`scan read ${total} rows`)
    scans.push(performance.now() - t)
  }
  scans.sort((a, b) => a - b)
  // 2,000 queries opened and stopped at their first row, in one query function (the best of 3).
  let firstRowUs = Infinity
  for (let r = 0; r < 3; r++) {
    const t = performance.now()
    if ((await c.query(api.bench.firstRows, { group: 'g', n: 2000 })) !== 2000) throw new Error('firstRows found too few rows')
    firstRowUs = Math.min(firstRowUs, ((performance.now() - t) * 1000) / 2000)
  }
  return { rangeP50: percentile(samples, 50), scanP50: percentile(scans, 50), firstRowUs }
}

const rawReads = ONLY !== '' ? null : rawSqliteReads()
const rawCommits = ONLY !== '' ? null : rawSqliteCommits()
const rawRead = ONLY !== '' ? null : rawSqliteRead()
const iso = ONLY !== '' ? null : rawIsolateCall()
const app = mkdtempSync(join(tmpdir(), 'bench-app-'))
cpSync(join(root, 'bench/app'), app, { recursive: true })
symlinkSync(join(root, 'node_modules'), join(app, 'node_modules'), 'dir')
const push = (b) => execFileSync(process.execPath, [join(root, 'node_modules/convex/bin/main.js'), 'deploy', '--url', b.url, '--admin-key', b.adminKey, '-y'], { cwd: app, env: { ...process.env, CI: '1' }, stdio: 'ignore' })
async function stopBackend(b, keepData = false) {
  if (b.child.exitCode === null && b.child.signalCode === null) {
    const exited = new Promise((r) => b.child.once('exit', r))
    b.child.kill('SIGTERM')
    await exited
  }
  if (!keepData) rmSync(b.dataDir, { recursive: true, force: true })
}

/** Memory figures come from a backend that has done nothing else (RSS never shrinks back). */
async function onFreshBackend(fn) {
  const b = await startBackend()
  try {
    push(b)
    return await fn(b)
  } finally {
    await stopBackend(b)
  }
}

async function restoreRows() {
  const count = Number(process.env.BENCH_RESTORE_DOCUMENTS ?? 100_000)
  // The write log must still hold the state to restore: a retention longer than the run.
  const b = await startBackend({ CONCAVE_HISTORY_RETENTION_MS: '3600000' })
  try {
    push(b)
    const importCli = (args) => execFileSync(process.execPath, [join(root, 'node_modules/convex/bin/main.js'), ...args, '--url', b.url, '--admin-key', b.adminKey], { cwd: app, env: { ...process.env, CI: '1' }, stdio: 'ignore' })
    const r = await restoreBench({ backend: b, importCli, count })
    const n = count.toLocaleString('en-US')
    row(`point-in-time restore of ${n} changed documents (one commit)`, r.restoreSeconds, 's', r.restoreSeconds / r.replaceSeconds, `x writing the same ${n} documents with npx convex import --replace (${r.replaceSeconds.toFixed(1)} s); ${r.documents.toLocaleString('en-US')} documents put back`)
    row(`  npx convex import of ${n} documents into a new table`, r.importSeconds, 's', null, '')
    row(`point-in-time restore into a new data folder (${n} documents, whole deployment copied)`, r.intoSeconds, 's', r.intoSeconds / r.replaceSeconds, `x the --replace import; ${r.intoDocuments.toLocaleString('en-US')} documents differ from the present`)
  } finally {
    await stopBackend(b)
  }
}

/** Import of a snapshot zip with stored files, beside extracting the zip; the importer's peak RSS growth. */
async function importRows() {
  const files = Number(process.env.BENCH_IMPORT_FILES ?? 64)
  const fileMb = Number(process.env.BENCH_IMPORT_FILE_MB ?? 8)
  const source = await startBackend()
  const target = await startBackend()
  try {
    push(source)
    const run = promisify(execFile)
    const cli = (b, args) => run(process.execPath, [join(root, 'node_modules/convex/bin/main.js'), ...args, '--url', b.url, '--admin-key', b.adminKey], { cwd: app, env: { ...process.env, CI: '1' }, maxBuffer: 1 << 26 })
    const mutation = (b, name, args) => new ConvexHttpClient(b.url).mutation(name, args)
    const r = await importBench({ source, target, cli, mutation, files, fileMb })
    const mb = r.zipMb.toFixed(0)
    row(`npx convex import of a ${mb} MiB snapshot zip (${files} stored files of ${fileMb} MiB)`, r.importSeconds, 's', r.importSeconds / r.rawSeconds, `x extracting the same zip to disk with yauzl (${r.rawSeconds.toFixed(1)} s)`)
    row('  importing backend\'s peak RSS growth during that import', r.peakGrowthMb, 'MB', r.peakGrowthMb / r.zipMb, `x the zip's size (RSS ${r.rssBeforeMb.toFixed(0)} MB before)`)
  } finally {
    await stopBackend(source)
    await stopBackend(target)
  }
}

/** Live replication (#17): the snapshot's copy beside writing it, and the lag under a paced 1,000 mutations/s. */
async function replicateRows() {
  const r = await replicateBench({
    startBackend,
    stopBackend,
    push,
    cpuSeconds,
    fetch: leanFetch,
    count: Number(process.env.BENCH_REPLICATE_DOCUMENTS ?? 20_000),
    rate: Number(process.env.BENCH_REPLICATE_RATE ?? 1000),
    seconds: Number(process.env.BENCH_REPLICATE_SECONDS ?? 10),
    progress: (name, x) => process.stderr.write(`replicate ${name}: ${JSON.stringify(x)}\n`),
  })
  const n = r.count.toLocaleString('en-US')
  const written = r.count / r.loadSeconds
  const copied = r.count / r.snapshotSeconds
  const ms = (x) => (x * 1000).toFixed(0)
  const counted = (x) => `${x.window.toFixed(1)} s counted after 2 s uncounted`
  row(`writing ${n} documents into a fresh backend (${r.batch} per mutation, one after another)`, written, 'docs/s', null, `baseline; ${r.loadSeconds.toFixed(2)} s; bench:seedRows into a table with one index`)
  row(`replica's copy of the same ${n} documents (snapshot until caught up)`, copied, 'docs/s', copied / written, `x writing them; ${r.snapshotSeconds.toFixed(2)} s from the replica's first answered request (start-up ${r.replicaStartupMs.toFixed(0)} ms before it), the same app pushed to it first`)
  const late = (x) => `${(x.lateShare * 100).toFixed(1)}% sent > 10 ms after their due time`
  row(`source alone at a paced ${r.rate}/s (one insert each, ${r.concurrency} clients, no replica)`, r.alone.achieved, '/s', r.alone.achieved / r.rate, `x the target; ${counted(r.alone)}${r.alone.failed > 0 ? `; ${r.alone.failed} failed` : ''}; ${late(r.alone)}; CPU per mutation: source ${r.alone.cpuPerMutationUs.source.toFixed(0)} us, load generator ${r.alone.cpuPerMutationUs.bench.toFixed(0)} us; measured after the next rows`)
  row(`source with the replica following, same paced ${r.rate}/s`, r.achieved, '/s', r.achieved / r.alone.achieved, `x the source alone (${(r.achieved / r.rate).toFixed(2)}x the target); baseline of the next rows; ${counted(r)}${r.failed > 0 ? `; ${r.failed} failed` : ''}; ${late(r)}; CPU per mutation: source ${r.cpuPerMutationUs.source.toFixed(0)} us, replica ${r.cpuPerMutationUs.replica.toFixed(0)} us, load generator and lag sampling ${r.cpuPerMutationUs.bench.toFixed(0)} us`)
  row('  replica applied meanwhile', r.applied, 'docs/s', r.applied / r.achieved, `x the source's mutations/s; caught up ${r.drainSeconds.toFixed(2)} s after the load stopped`)
  row('  replica lag p50 (documents)', r.lagDocs.p50, 'docs', null, `p99 ${r.lagDocs.p99}, max ${r.lagDocs.max}; ${r.samples} samples every 100 ms${r.incomplete > 0 ? `; ${r.incomplete} counted only the first 20 pages (2,560)` : ''}`)
  row('  replica lag p50 (seconds, source time)', r.lagSeconds.p50 * 1000, 'ms', null, `p99 ${ms(r.lagSeconds.p99)} ms, max ${ms(r.lagSeconds.max)} ms: the source's newest commit minus its oldest one not yet applied`)
}

async function vectorRows() {
  const v = await onFreshBackend((b) => vectorBench(b.url, { count: VECTORS, dims: 768, queries: Number(process.env.BENCH_VECTOR_QUERIES ?? 100) }))
  const size = `${v.count.toLocaleString('en-US')} x ${v.dims}-dim`
  row(`vector search (${size}, limit 10) from an action via ConvexHttpClient p50`, v.p50, 'ms', v.p50 / v.scanP50, `x brute-force JS scan p50 (${v.scanP50.toFixed(1)} ms, Float64Array); exact KNN in sqlite-vec`)
  row(`vector search (${size}, limit 10) p99`, v.p99, 'ms', null, '')
  row(`vector search recall@10 (${size})`, v.recall, '', null, `against the brute-force scan, ${v.queries} random queries`)
  row(`loading ${size} vectors through mutations`, v.loadSeconds, 's', null, '100 documents per mutation')
}

async function historyRows() {
  const started = []
  const h = await historyBench({
    start: async (env, dataDir) => {
      const b = await startBackend(env, dataDir)
      started.push(b)
      return b
    },
    stop: (b) => stopBackend(b, true),
    push,
    updates: Number(process.env.BENCH_HISTORY_UPDATES ?? 100_000),
  }).finally(() => rmSync(started[0].dataDir, { recursive: true, force: true }))
  const n = `${h.updates.toLocaleString('en-US')} updates of ${h.documents} documents`
  const mib = (b) => b / 1024 / 1024
  const size = (s) => `${s.rows.toLocaleString('en-US')} rows, ${mib(s.bytes).toFixed(1)} MiB of write-log pages; data file ${mib(s.fileBytes).toFixed(1)} MiB, ${mib(s.freeBytes).toFixed(1)} MiB of it free pages`
  row(`write log after ${n}, history kept`, h.kept.rows, 'rows', null, size(h.kept))
  row(`write log after ${n}, pruned (retention 0)`, h.pruned.rows, 'rows', h.pruned.rows / h.kept.rows, `x kept; ${size(h.pruned)}; pruned ${h.pruneSeconds.toFixed(1)} s after start-up (1 s delay included)`)
  row(`write log after ${n} more, pruned as they go`, h.more.rows, 'rows', h.more.fileBytes / h.pruned.fileBytes, `x the data file before them; ${size(h.more)}`)
  row(`updates, history kept (${h.documents} per mutation, c=1)`, h.keptRate, '/s', null, 'first 100,000 updates of a new file')
  row(`updates, pruned as they go (${h.documents} per mutation, c=1)`, h.prunedRate, '/s', null, 'the next 100,000, into freed pages')
}

/** A steady client's latency while another floods the backend, beside it alone; RSS under large bodies. */
async function fairnessRows() {
  const f = await onFreshBackend(async (b) => {
    const progress = (name, r) => (process.stderr.write(`fairness ${name}: ${JSON.stringify(r)}\n`), r)
    const base = progress('alone', await alone(b.url))
    const subs = progress('subscriptions', await subscriptionFlood({ url: b.url, adminKey: b.adminKey }, Number(process.env.BENCH_FLOOD_SUBSCRIPTIONS ?? 5000)))
    const http = progress('http', await httpFlood(b.url, Number(process.env.BENCH_FLOOD_QUERIES ?? 2000)))
    const bodies = progress('bodies', await bodyFlood({ url: b.url, pid: b.child.pid }, Number(process.env.BENCH_FLOOD_BODIES ?? 32)))
    return { base, subs, http, bodies }
  })
  const ms = (s) => `p50 ${s.p50.toFixed(1)} ms, max ${s.max.toFixed(1)} ms, ${s.n} samples`
  row('steady client alone: query p99', f.base.query.p99, 'ms', null, ms(f.base.query))
  row('steady client alone: /health p99', f.base.health.p99, 'ms', null, ms(f.base.health))
  row('steady query p99 while a socket subscribes to 5,000 distinct queries', f.subs.steady.query.p99, 'ms', f.subs.steady.query.p99 / f.base.query.p99, `x alone; ${ms(f.subs.steady.query)}; the flood's Transition after ${f.subs.floodMs.toFixed(0)} ms`)
  row('steady /health p99 while a socket subscribes to 5,000 distinct queries', f.subs.steady.health.p99, 'ms', f.subs.steady.health.p99 / f.base.health.p99, `x alone; ${ms(f.subs.steady.health)}`)
  row('query runs started 0.2-2.2 s after flooding sockets closed', f.subs.runsAfterClose, '', null, 'target 0')
  row('steady query p99 during 2,000 distinct HTTP queries at once', f.http.steady.query.p99, 'ms', f.http.steady.query.p99 / f.base.query.p99, `x alone; ${ms(f.http.steady.query)}; the flood took ${f.http.floodMs.toFixed(0)} ms`)
  row('steady /health p99 during 2,000 distinct HTTP queries at once', f.http.steady.health.p99, 'ms', f.http.steady.health.p99 / f.base.health.p99, `x alone; ${ms(f.http.steady.health)}`)
  row(`steady query p99 during concurrent 15 MiB mutation bodies (${process.env.BENCH_FLOOD_BODIES ?? 32} clients)`, f.bodies.steady.query.p99, 'ms', f.bodies.steady.query.p99 / f.base.query.p99, `x alone; ${ms(f.bodies.steady.query)}; answers ${JSON.stringify(f.bodies.statuses)}`)
  row('steady /health p99 during concurrent 15 MiB mutation bodies', f.bodies.steady.health.p99, 'ms', f.bodies.steady.health.p99 / f.base.health.p99, `x alone; ${ms(f.bodies.steady.health)}`)
  row('backend peak RSS during concurrent 15 MiB mutation bodies', f.bodies.peak, 'MB', null, `from ${f.bodies.before.toFixed(0)} MB before`)
}

/**
 * Components (#14): a call across a component boundary beside the same call inside the app (the
 * baseline), and the push time of an app with five components beside the same app without them.
 */
async function componentRows() {
  const runs = Number(process.env.BENCH_PUSH_RUNS ?? 3)
  const variants = ['app', 'inlined', 'components']
  const dirs = Object.fromEntries(variants.map((v) => [v, mkdtempSync(join(tmpdir(), `bench-components-${v}-`))]))
  for (const v of variants) writeComponentsApp(dirs[v], v, join(root, 'node_modules'))
  const pushes = Object.fromEntries(variants.map((v) => [v, []]))
  let calls = null
  try {
    // Round-robin over the variants, each push on a fresh backend, so load from elsewhere spreads evenly.
    for (let r = 0; r < runs; r++) {
      for (const v of variants) {
        const b = await startBackend()
        try {
          pushes[v].push(await timedDeploy(b, dirs[v], join(root, 'node_modules/convex/bin/main.js')))
          process.stderr.write(`components push ${v}: ${JSON.stringify(pushes[v].at(-1))}\n`)
          if (v === 'components' && r === runs - 1) {
            calls = await crossCallBench(b, { samples: Number(process.env.BENCH_CALL_SAMPLES ?? 500), seconds: SECONDS, concurrency: 32, fetch: leanFetch, cpuSeconds })
          }
        } finally {
          await stopBackend(b)
        }
      }
    }
  } finally {
    for (const d of Object.values(dirs)) rmSync(d, { recursive: true, force: true })
  }
  const ms = (s) => s.toFixed(2)
  const callRows = (kind, via, inApp, direct, fn, body) => {
    const c = calls[via]
    const a = calls[inApp]
    const d = calls[direct]
    const cpu = (x) => `server CPU per call ${x.serverCpuUs.toFixed(0)} us`
    row(`in-app ctx.${fn}(internal.local.${body}) from a ${kind}, c=1 p50`, a.p50, 'ms', null, `baseline for the component rows below`)
    row(`in-app ctx.${fn}(internal.local.${body}), c=1 p99`, a.p99, 'ms', null, '')
    row(`in-app ctx.${fn}(internal.local.${body}), c=32`, a.perSecond, '/s', null, `${cpu(a)}; node:http transport`)
    row(`component ctx.${fn}(components.ledger.lib.${body}), c=1 p50`, c.p50, 'ms', c.p50 / a.p50, `x in-app (${ms(a.p50)} ms); same body`)
    row(`component ctx.${fn}(components.ledger.lib.${body}), c=1 p99`, c.p99, 'ms', c.p99 / a.p99, `x in-app (${ms(a.p99)} ms)`)
    row(`component ctx.${fn}(components.ledger.lib.${body}), c=32`, c.perSecond, '/s', c.perSecond / a.perSecond, `x in-app (${a.perSecond.toFixed(0)}/s); ${cpu(c)}`)
    row(`  reference: the body inline, no ${fn}, c=1 p50`, d.p50, 'ms', d.p50 / a.p50, `x in-app ${fn}`)
    row(`  reference: the body inline, no ${fn}, c=32`, d.perSecond, '/s', d.perSecond / a.perSecond, `x in-app ${fn}; ${cpu(d)}`)
  }
  callRows('mutation', 'bumpViaComponent', 'bumpInApp', 'bumpDirect', 'runMutation', 'bump: index lookup + 1 patch')
  callRows('query', 'getViaComponent', 'getInApp', 'getDirect', 'runQuery', 'get: index lookup')
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
  const total = (v) => median(pushes[v].map((p) => p.totalMs))
  const server = (v) => median(pushes[v].map((p) => p.serverMs))
  const all = (v) => `runs ${pushes[v].map((p) => p.totalMs.toFixed(0)).join(', ')} ms`
  row(`push (npx convex deploy) of the app's own functions, no components, median of ${runs}`, total('app'), 'ms', null, `baseline; a fresh backend each; ${all('app')}`)
  row(`push of the same app with ${COMPONENT_COUNT} components (${COMPONENT_COUNT} definitions, ${COMPONENT_COUNT} instances)`, total('components'), 'ms', total('components') / total('app'), `x no components; each a schema with an index and 3-4 functions; ${all('components')}`)
  row(`push of the same functions and tables, all in the app`, total('inlined'), 'ms', total('inlined') / total('app'), `x no components; ${all('inlined')}`)
  row(`  of which waiting on the backend: app's own functions`, server('app'), 'ms', null, 'the CLI requests (evaluate_schema, start_push, wait_for_schema, finish_push), median')
  row(`  of which waiting on the backend: ${COMPONENT_COUNT} components`, server('components'), 'ms', server('components') / server('app'), 'x no components')
  row(`  of which waiting on the backend: all in the app`, server('inlined'), 'ms', server('inlined') / server('app'), 'x no components')
}

/**
 * Postgres as the store (#15): a backend on `--db-url` (a fresh database of a throwaway cluster)
 * beside raw `pg` durable inserts into the same cluster, and beside a SQLite backend, in one run.
 */
async function postgresRows() {
  const cluster = await startPostgres()
  const started = []
  try {
    const cpu = postgresCpu(new URL(cluster.url).port)
    const rawUrl = await cluster.newDatabase()
    const dbUrl = await cluster.newDatabase()
    const pgBackend = await startBackend({}, undefined, ['--db-url', dbUrl])
    started.push(pgBackend)
    const sqliteBackend = await startBackend()
    started.push(sqliteBackend)
    push(pgBackend)
    push(sqliteBackend)
    await assertDurable(dbUrl)
    const progress = (name, r) => (process.stderr.write(`postgres ${name}: ${JSON.stringify(r)}\n`), r)
    // Raw inserts before and after the backend's c=32 run, so load from elsewhere falls on both alike.
    const raw1 = progress('raw', await rawPostgresInserts(rawUrl, { concurrency: 32, seconds: SECONDS, cpu }))
    const pg32 = progress('c=32', await mutationsPerSecond(pgBackend, 32, false, true, cpu))
    const pg32lean = progress('c=32 lean', await rawMutationsPerSecond(pgBackend, 32, cpu))
    const raw2 = progress('raw', await rawPostgresInserts(rawUrl, { concurrency: 32, seconds: SECONDS, cpu }))
    const sqlite32 = progress('sqlite c=32', await mutationsPerSecond(sqliteBackend, 32, false, true))
    const sqlite32lean = progress('sqlite c=32 lean', await rawMutationsPerSecond(sqliteBackend, 32))
    const pg1 = progress('c=1', await mutationsPerSecond(pgBackend, 1, false, false, cpu))
    const sqlite1 = progress('sqlite c=1', await mutationsPerSecond(sqliteBackend, 1, false))
    const pgQuery = progress('query', await queryLatency(pgBackend.url))
    const sqliteQuery = progress('sqlite query', await queryLatency(sqliteBackend.url))
    const hono32 = progress('plain hono route c=32', await plainHonoPerSecond(32))
    const raw = (raw1.perSecond + raw2.perSecond) / 2
    const cpuNote = (r) => `CPU per mutation: server ${r.serverCpuUs.toFixed(0)} us${r.storeCpuUs === null ? '' : `, postgres ${r.storeCpuUs.toFixed(0)} us`}, load generator ${r.clientCpuUs.toFixed(0)} us`
    const rawCpu = (r) => `postgres ${r.storeCpuUs.toFixed(0)} us, load generator ${r.clientCpuUs.toFixed(0)} us`
    row('raw pg durable inserts into the same Postgres, c=32', raw, '/s', null, `32 connections, 1 row per autocommit INSERT, synchronous_commit=on, fsync=on; mean of ${raw1.perSecond.toFixed(0)} and ${raw2.perSecond.toFixed(0)}/s (before and after the next row); CPU per insert: ${rawCpu(raw1)} / ${rawCpu(raw2)}`)
    row('mutations on Postgres (--db-url), c=32, node:http transport', pg32.perSecond, '/s', pg32.perSecond / raw, `x raw pg inserts; target >= 0.5; ${(pg32.perSecond / sqlite32.perSecond).toFixed(2)}x SQLite's; ${cpuNote(pg32)}`)
    row('  same on SQLite, same run', sqlite32.perSecond, '/s', null, cpuNote(sqlite32))
    row('mutations on Postgres (--db-url), c=32, lean generator', pg32lean.perSecond, '/s', pg32lean.perSecond / raw, `x raw pg inserts; target >= 0.5; the request ConvexHttpClient sends, pre-built, over keep-alive node:http (what the server sustains); ${(pg32lean.perSecond / sqlite32lean.perSecond).toFixed(2)}x SQLite's; ${cpuNote(pg32lean)}`)
    row('  same on SQLite, same run', sqlite32lean.perSecond, '/s', null, cpuNote(sqlite32lean))
    row('plain hono route, same request and generator as the lean row, c=32', hono32.perSecond, '/s', hono32.perSecond / raw, `x raw pg inserts: the ceiling of any HTTP server on @hono/node-server with this generator on this machine (no function, no store); the lean row is ${(pg32lean.perSecond / hono32.perSecond).toFixed(2)}x this; CPU per request: server ${hono32.serverCpuUs.toFixed(0)} us, load generator ${hono32.clientCpuUs.toFixed(0)} us`)
    row('mutations on Postgres (--db-url), c=1', pg1.perSecond, '/s', null, `${(pg1.perSecond / sqlite1.perSecond).toFixed(2)}x SQLite's; ${cpuNote(pg1)}`)
    row('  same on SQLite, same run', sqlite1.perSecond, '/s', null, cpuNote(sqlite1))
    row('warm query on Postgres (--db-url) p50', pgQuery.p50 * 1000, 'us', null, `${(pgQuery.p50 / sqliteQuery.p50).toFixed(2)}x SQLite's; p99 ${(pgQuery.p99 * 1000).toFixed(0)} us`)
    row('  same on SQLite, same run', sqliteQuery.p50 * 1000, 'us', null, `p99 ${(sqliteQuery.p99 * 1000).toFixed(0)} us`)
  } finally {
    for (const b of started) await stopBackend(b)
    await cluster.stop()
  }
}

/**
 * Several processes on one Postgres database (#15): c=32 mutations/s and fan-out to 1,000
 * subscribers with one backend process, then with two on the same database (each its own data
 * directory and ports, the load and the subscribers split evenly), beside raw `pg` inserts.
 */
async function multiRows() {
  const cluster = await startPostgres()
  const started = []
  const stop = async (b) => {
    started.splice(started.indexOf(b), 1)
    await stopBackend(b)
  }
  try {
    const cpu = postgresCpu(new URL(cluster.url).port)
    const rawUrl = await cluster.newDatabase()
    const dbUrl = await cluster.newDatabase()
    const a = await startBackend({}, undefined, ['--db-url', dbUrl])
    started.push(a)
    push(a)
    await assertDurable(dbUrl)
    const n = Number(process.env.BENCH_MULTI_SUBSCRIBERS ?? 1000)
    const rounds = Number(process.env.BENCH_MULTI_ROUNDS ?? 40)
    const progress = (name, r) => (process.stderr.write(`multi ${name}: ${JSON.stringify(r)}\n`), r)
    // A fresh process spends its first seconds compiling and connecting: not what is compared.
    await warmUp([a])
    // Raw inserts and the one-process run before and after the two-process runs, so load from
    // elsewhere on the machine falls on both alike.
    const raw1 = progress('raw', await rawPostgresInserts(rawUrl, { concurrency: 32, seconds: SECONDS, cpu }))
    const one1 = progress('one process c=32', await mutationsPerSecond(a, 32, false, true, cpu))
    const fanOne = progress('one process fan-out', await spreadFanout({ urls: [a.url], writeUrl: a.url, n, rounds, name: 'multi-one' }))
    const b = await startBackend({}, undefined, ['--db-url', dbUrl])
    started.push(b)
    await warmUp([b])
    const two = progress('two processes c=32', await mutationsPerSecond([a, b], 32, false, true, cpu))
    const fanTwo = progress('two processes fan-out', await spreadFanout({ urls: [a.url, b.url], writeUrl: a.url, n, rounds, name: 'multi-two' }))
    await stop(b)
    const one2 = progress('one process c=32', await mutationsPerSecond(a, 32, false, true, cpu))
    const raw2 = progress('raw', await rawPostgresInserts(rawUrl, { concurrency: 32, seconds: SECONDS, cpu }))
    const raw = (raw1.perSecond + raw2.perSecond) / 2
    const one = (one1.perSecond + one2.perSecond) / 2
    const us = (x) => x.toFixed(0)
    const cpuNote = (r) => `CPU per mutation: server ${us(r.serverCpuUs)} us, postgres ${us(r.storeCpuUs)} us, load generator ${us(r.clientCpuUs)} us`
    const ms = (x) => x.toFixed(1)
    row('raw pg durable inserts into the same Postgres, c=32', raw, '/s', null, `32 connections, 1 row per autocommit INSERT, synchronous_commit=on, fsync=on; mean of ${raw1.perSecond.toFixed(0)} and ${raw2.perSecond.toFixed(0)}/s (first and last)`)
    row('mutations, one process on the database, c=32, node:http transport', one, '/s', null, `the figure the next rows are compared with; mean of ${one1.perSecond.toFixed(0)} and ${one2.perSecond.toFixed(0)}/s (before and after the two-process runs); ${(one / raw).toFixed(2)}x raw pg inserts; ${cpuNote(one1)} / ${cpuNote(one2)}`)
    row('mutations, two processes on the database, c=32 (16 clients each)', two.perSecond, '/s', two.perSecond / one, `x one process; ${(two.perSecond / raw).toFixed(2)}x raw pg inserts; ${cpuNote(two)} (server: both processes)`)
    row(`fan-out to ${n} subscribers, one process, ack → last update p50`, fanOne.p50, 'ms', null, `p99 ${ms(fanOne.p99)} ms; ${rounds} rounds; the figure the next rows are compared with`)
    row(`fan-out to ${n} subscribers on two processes (${n / 2} each), write through one, ack → last update p50`, fanTwo.p50, 'ms', fanTwo.p50 / fanOne.p50, 'x one process p50')
    row(`fan-out to ${n} subscribers on two processes, ack → last update p99`, fanTwo.p99, 'ms', fanTwo.p99 / fanOne.p99, `x one process p99 (${ms(fanOne.p99)} ms)`)
    row('  of which the writing process\'s last subscriber p50', fanTwo.perProcessP50[0], 'ms', fanTwo.perProcessP50[0] / fanOne.p50, `x one process p50; p99 ${ms(fanTwo.perProcessP99[0])} ms`)
    row('  of which the other process\'s last subscriber p50', fanTwo.perProcessP50[1], 'ms', fanTwo.perProcessP50[1] / fanOne.p50, `x one process p50; p99 ${ms(fanTwo.perProcessP99[1])} ms; it learns of the write from the commit log (LISTEN/NOTIFY)`)
  } finally {
    for (const b of started) await stopBackend(b)
    await cluster.stop()
  }
}

/**
 * The dashboard (#16): its first load in headless Chromium (bytes; navigation start → sign-in form,
 * and → the signed-in Data page's table list), and the backend's cost of 10 dashboards open on
 * the Data page of the table receiving c=32 inserts, beside the same load with none open.
 */
async function dashboardRows() {
  const dashboardPort = await freePort()
  const b = await startBackend({ DASHBOARD_PORT: String(dashboardPort) })
  const dashboardUrl = `http://127.0.0.1:${dashboardPort}`
  try {
    push(b)
    const progress = (name, r) => (process.stderr.write(`dashboard ${name}: ${JSON.stringify(r)}\n`), r)
    const seed = new ConvexHttpClient(b.url)
    seed.setAdminAuth(b.adminKey)
    for (let i = 0; i < 100; i++) await seed.mutation(api.bench.insert, { body: 'seed', n: i })
    const load = progress('first load', await firstLoad({ dashboardUrl, adminKey: b.adminKey, table: 'items', runs: Number(process.env.BENCH_DASHBOARD_LOADS ?? 10) }))
    await warmUp([b])
    const n = Number(process.env.BENCH_DASHBOARDS ?? 10)
    // Without dashboards before and after the run with them, so load from elsewhere falls on both alike.
    const none1 = progress('c=32 no dashboards', await mutationsPerSecond(b, 32, false, true))
    const open = await openDashboards({ dashboardUrl, adminKey: b.adminKey, table: 'items', n })
    let withDash
    let shown
    let size
    try {
      const before = await open.counts()
      const chromiumCpu = () => descendantsCpu(process.pid, [b.child.pid])
      withDash = progress(`c=32 with ${n} dashboards`, await mutationsPerSecond(b, 32, false, true, chromiumCpu))
      size = await seed.query('_system/frontend/tableSize:default', { tableName: 'items' })
      // Every dashboard followed the writes (its count moved); the last counts as they show them.
      shown = await open.counts()
      if (shown.some((c, i) => !(c > before[i]))) throw new Error(`a dashboard did not follow the writes: ${before} -> ${shown}`)
      progress('counts shown', { before, after: shown, size })
    } finally {
      await open.close()
    }
    const none2 = progress('c=32 no dashboards', await mutationsPerSecond(b, 32, false, true))
    const none = (none1.perSecond + none2.perSecond) / 2
    const noneCpu = (none1.serverCpuUs + none2.serverCpuUs) / 2
    const kib = (x) => `${(x / 1024).toFixed(1)} KiB`
    const built = ['index.html', 'app.js', 'app.css'].reduce((sum, f) => sum + statSync(join(root, 'dist/dashboard', f)).size, 0)
    row('dashboard first load: bytes over the network (HTML + JS + CSS + icon + config)', load.total / 1024, 'KiB', null, `${load.files} files; HTML ${kib(load.html)}, JS ${kib(load.js)}, CSS ${kib(load.css)} as sent (brotli); headers included in the total; ${kib(built)} of HTML + JS + CSS as built`)
    row('dashboard first load, signed out: navigation start → sign-in form, median', load.signedOutMs, 'ms', null, `${load.runs} loads, each a new browser context (empty cache)`)
    row('dashboard first load, signed in: navigation start → Data page table list with counts, median', load.signedInMs, 'ms', load.signedInMs / load.signedOutMs, `x signed out; max ${load.signedInMax.toFixed(0)} ms; of which ${load.sidebarToTableMs.toFixed(0)} ms from the signed-in frame (admin key checked) to the table list (first subscription answered)`)
    row('mutations, c=32, node:http transport, no dashboard open', none, '/s', null, `the figure the next row is compared with; mean of ${none1.perSecond.toFixed(0)} and ${none2.perSecond.toFixed(0)}/s (before and after); server CPU per mutation ${noneCpu.toFixed(0)} us`)
    row(`mutations, c=32, with ${n} dashboards open on the written table's Data page`, withDash.perSecond, '/s', withDash.perSecond / none, `x none open; server CPU per mutation ${withDash.serverCpuUs.toFixed(0)} us (${(withDash.serverCpuUs / noneCpu).toFixed(2)}x), Chromium ${withDash.storeCpuUs.toFixed(0)} us, load generator ${withDash.clientCpuUs.toFixed(0)} us; counts shown right after ${Math.min(...shown)}-${Math.max(...shown)} of ${size}`)
  } finally {
    await stopBackend(b)
  }
}

if (ONLY === 'dashboard') {
  try {
    await dashboardRows()
  } finally {
    rmSync(app, { recursive: true, force: true })
  }
} else if (ONLY === 'components') {
  try {
    await componentRows()
  } finally {
    rmSync(app, { recursive: true, force: true })
  }
} else if (ONLY === 'fairness') {
  try {
    await fairnessRows()
  } finally {
    rmSync(app, { recursive: true, force: true })
  }
} else if (ONLY === 'multi') {
  try {
    await multiRows()
  } finally {
    rmSync(app, { recursive: true, force: true })
  }
} else if (ONLY === 'replicate') {
  try {
    await replicateRows()
  } finally {
    rmSync(app, { recursive: true, force: true })
  }
} else if (ONLY === 'reads') {
  const b = await startBackend()
  try {
    push(b)
    const raw = rawSqliteReads()
    const reads = await concaveReads(b.url)
    readRows(raw, reads)
  } finally {
    await stopBackend(b)
    rmSync(app, { recursive: true, force: true })
  }
} else if (ONLY === 'import') {
  try {
    await importRows()
  } finally {
    rmSync(app, { recursive: true, force: true })
  }
} else if (ONLY === 'restore') {
  try {
    await restoreRows()
  } finally {
    rmSync(app, { recursive: true, force: true })
  }
} else if (ONLY === 'postgres') {
  try {
    await postgresRows()
  } finally {
    rmSync(app, { recursive: true, force: true })
  }
} else if (ONLY === 'vector' || ONLY === 'history') {
  try {
    await (ONLY === 'vector' ? vectorRows() : historyRows())
  } finally {
    rmSync(app, { recursive: true, force: true })
  }
} else {
const backend = await startBackend()
try {
  push(backend)
  await new Promise((r) => setTimeout(r, 1000))
  const idle = rssMb(backend.child.pid)
  const c1 = await mutationsPerSecond(backend, 1, false)
  const c32 = await mutationsPerSecond(backend, 32, false)
  const c32lean = await mutationsPerSecond(backend, 32, false, true)
  const c32i = await mutationsPerSecond(backend, 32, true)
  const q = await queryLatency(backend.url)
  const reads = await concaveReads(backend.url)
  row('start-up to first answered request', backend.startupMs, 'ms', null, 'target < 300 ms')
  row('idle RSS after push', idle, 'MB', null, 'target < 100 MB')
  row('raw better-sqlite3 durable commits', rawCommits, '/s', null, 'WAL, synchronous=FULL, 1 row per txn')
  const cpu = (r) => `; CPU per mutation: server ${r.serverCpuUs.toFixed(0)} us, load generator ${r.clientCpuUs.toFixed(0)} us`
  row('mutations via ConvexHttpClient, c=1', c1.perSecond, '/s', c1.perSecond / rawCommits, `x raw sqlite commits${cpu(c1)}`)
  row('mutations via ConvexHttpClient, c=32', c32.perSecond, '/s', c32.perSecond / rawCommits, `x raw sqlite commits${cpu(c32)}; Node's built-in fetch`)
  row('mutations via ConvexHttpClient, c=32, node:http transport', c32lean.perSecond, '/s', c32lean.perSecond / rawCommits, `x raw sqlite commits${cpu(c32lean)}; client's fetch option; target >= 5000/s`)
  row('mutations, c=32, table with a secondary index', c32i.perSecond, '/s', c32i.perSecond / rawCommits, `x raw sqlite commits${cpu(c32i)}; 32 distinct index prefixes`)
  row('raw better-sqlite3 point read p50', rawRead * 1000, 'us', null, '')
  row('warm query via ConvexHttpClient p50', q.p50 * 1000, 'us', q.p50 / rawRead, 'x raw sqlite read; target p50 < 1 ms')
  row('warm query via ConvexHttpClient p99', q.p99 * 1000, 'us', null, '')
  readRows(rawReads, reads)
  for (const n of (process.env.BENCH_FANOUT ?? '1000,10000').split(',').map(Number)) {
    const f = await onFreshBackend((b) => fanout({ url: b.url, adminKey: b.adminKey, pid: b.child.pid, rssMb }, n))
    const raw = await rawBroadcast(n, f.payload, await freePort(), rssMb)
    row(`fan-out to ${n} subscribers, ack → last update p50`, f.p50, 'ms', f.p50 / raw.p50, `x plain ws broadcast p50 (${raw.p50.toFixed(1)} ms); target <= 2`)
    row(`fan-out to ${n} subscribers, ack → last update p99`, f.p99, 'ms', f.p99 / raw.p99, `x plain ws broadcast p99 (${raw.p99.toFixed(1)} ms)`)
    row(`fan-out to ${n} subscribers, request → last update p50`, f.requestP50, 'ms', f.requestP50 / raw.p50, 'x plain ws broadcast p50 (trigger → last receipt)')
    row(`server memory per idle subscription (${n}, one per socket)`, f.perSubscriptionKb, 'KB', f.perSubscriptionKb / raw.perSocketKb, `x a bare ws server's idle socket (${raw.perSocketKb.toFixed(2)} KB); marginal RSS over the second half, once idle; target <= 4 KB`)
    row(`  of which live JS heap (${n}, one per socket)`, f.perSubscriptionHeapKb, 'KB', null, 'heap after a full GC: session, socket and subscription objects')
    row(`query re-runs for a write outside every read set (${n})`, f.unrelatedRuns, '', null, 'target 0')
  }
  const perQuery = await onFreshBackend((b) => perQueryMemory({ url: b.url, adminKey: b.adminKey, pid: b.child.pid, rssMb }))
  row('server memory per idle query subscription (200 sockets x 100 queries)', perQuery.rssKb, 'KB', null, 'marginal RSS once idle, each query its own cache entry; target <= 4 KB')
  row('  of which live JS heap (200 sockets x 100 queries)', perQuery.heapKb, 'KB', null, 'heap after a full GC')
  row('raw isolated-vm warm call', iso.warm, 'us', null, 'applySync into a warm context')
  row('raw isolated-vm fresh context', iso.fresh, 'us', null, 'createContext + release')
  await historyRows()
  await fairnessRows()
  await componentRows()
  await postgresRows()
  await multiRows()
  await restoreRows()
  await importRows()
  await replicateRows()
  await vectorRows()
  await dashboardRows()
} finally {
  await stopBackend(backend)
  rmSync(app, { recursive: true, force: true })
}
}

const fmt = (v) => (v >= 100 ? v.toFixed(0) : v.toFixed(2))
console.log(`\nConcave benchmarks (${SECONDS}s per throughput run, node ${process.version})\n`)
console.log('| metric | value | ratio to raw | note |')
console.log('|---|---|---|---|')
for (const r of rows) console.log(`| ${r.name} | ${fmt(r.value)} ${r.unit} | ${r.baseline === null ? '' : `${r.baseline.toFixed(3)}`} | ${r.note} |`)
