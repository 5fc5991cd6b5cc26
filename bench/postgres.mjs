// The Postgres benchmark's raw baseline and CPU accounting (the rows are in run.mjs).
import { readdirSync, readFileSync } from 'node:fs'
import pg from 'pg'

/** utime, stime, cutime, cstime (clock ticks) and ppid of a process, or null once it is gone. */
function stat(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
    return { ppid: Number(f[1]), self: Number(f[11]) + Number(f[12]), children: Number(f[13]) + Number(f[14]) }
  } catch {
    return null
  }
}

/**
 * A function giving the CPU seconds the Postgres cluster listening on `port` has used so far: its
 * postmaster, its live server processes (one per connection, WAL writer, checkpointer, ...) and the
 * ones that have exited (the postmaster's reaped children), so the difference of two readings is
 * what the cluster spent between them.
 */
export function postgresCpu(port) {
  const procs = readdirSync('/proc').filter((d) => /^\d+$/.test(d))
  const postmaster = procs.find((pid) => {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
      return argv[0].endsWith('/postgres') && argv.includes('-p') && argv[argv.indexOf('-p') + 1] === String(port)
    } catch {
      return false
    }
  })
  if (postmaster === undefined) throw new Error(`no postgres process listening on port ${port}`)
  return () => {
    const root = stat(postmaster)
    let ticks = root.self + root.children
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue
      const s = stat(pid)
      if (s !== null && s.ppid === Number(postmaster)) ticks += s.self
    }
    return ticks / 100 // clock ticks: 100 per second on Linux
  }
}

/** Refuses to measure unless commits wait for the WAL flush (what "durable" means here). */
export async function assertDurable(url) {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    for (const setting of ['fsync', 'synchronous_commit']) {
      const { rows } = await c.query(`SHOW ${setting}`)
      if (rows[0][setting] !== 'on') throw new Error(`Postgres ${setting} is ${rows[0][setting]}; the benchmark needs it on`)
    }
  } finally {
    await c.end()
  }
}

/**
 * Raw `pg` durable inserts: `concurrency` connections, each inserting one row at a time, each
 * INSERT its own autocommit transaction, for `seconds` after one uncounted second. Returns
 * inserts/s and the CPU per insert of the cluster (`cpu`, see postgresCpu) and of this process.
 */
export async function rawPostgresInserts(url, { concurrency, seconds, cpu }) {
  await assertDurable(url)
  const setup = new pg.Client({ connectionString: url })
  await setup.connect()
  await setup.query('CREATE TABLE IF NOT EXISTS raw_inserts (id bigserial PRIMARY KEY, body text NOT NULL)')
  await setup.end()
  const clients = await Promise.all(
    Array.from({ length: concurrency }, async () => {
      const c = new pg.Client({ connectionString: url })
      await c.connect()
      return c
    }),
  )
  let n = 0
  let store0 = 0
  let client0 = null
  const warm = performance.now() + 1000
  const end = warm + seconds * 1000
  const startCounting = setTimeout(() => {
    store0 = cpu()
    client0 = process.cpuUsage()
  }, 1000)
  try {
    await Promise.all(
      clients.map(async (c, i) => {
        // A named statement: parsed once per connection, as a server's prepared insert would be.
        const insert = { name: 'raw_insert', text: 'INSERT INTO raw_inserts (body) VALUES ($1)' }
        while (performance.now() < end) {
          await c.query({ ...insert, values: [`hello ${i} ${n}`] })
          if (performance.now() > warm) n++
        }
      }),
    )
  } finally {
    clearTimeout(startCounting)
    await Promise.all(clients.map((c) => c.end()))
  }
  const client = process.cpuUsage(client0 ?? undefined)
  return { perSecond: n / seconds, storeCpuUs: ((cpu() - store0) * 1e6) / n, clientCpuUs: (client.user + client.system) / n }
}
