// History retention benchmark: the write log's size after 100,000 updates of 100 documents, with
// history kept (a retention window longer than the run) and once pruned (window 0), and the data
// file's size after another 100,000 updates with pruning on (freed pages are reused).
import { statSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'

const api = anyApi
const FILE = 'concave_local_backend.sqlite3'

/** The write log's rows and bytes (its table and index pages), the file's size and free pages. */
export function writeLogSize(dataDir) {
  const path = join(dataDir, FILE)
  const db = new Database(path, { readonly: true, fileMustExist: true })
  try {
    const rows = db.prepare('SELECT count(*) FROM write_log').pluck().get()
    const bytes = db.prepare("SELECT sum(pgsize) FROM dbstat WHERE name IN ('write_log', 'write_log_by_id')").pluck().get()
    const pageSize = db.pragma('page_size', { simple: true })
    const freeBytes = db.pragma('freelist_count', { simple: true }) * pageSize
    const wal = (() => {
      try {
        return statSync(`${path}-wal`).size
      } catch {
        return 0
      }
    })()
    return { rows, bytes, fileBytes: statSync(path).size + wal, freeBytes }
  } finally {
    db.close()
  }
}

async function update(url, documents, rounds) {
  const c = new ConvexHttpClient(url)
  const t = performance.now()
  for (let r = 0; r < rounds; r++) await c.mutation(api.bench.touchDocs, {})
  return (documents * rounds) / ((performance.now() - t) / 1000)
}

async function prunedTo(dataDir, rows) {
  const deadline = Date.now() + 300_000
  while (writeLogSize(dataDir).rows > rows) {
    if (Date.now() > deadline) throw new Error('the write log was not pruned within 5 minutes')
    await new Promise((r) => setTimeout(r, 50))
  }
}

/**
 * `start(env, dataDir?)` starts a backend (on `dataDir` if given) and resolves with
 * `{ url, dataDir, ... }`; `stop(b)` stops it gracefully, keeping its data; `push(b)` deploys bench/app.
 */
export async function historyBench({ start, stop, push, documents = 100, updates = 100_000 }) {
  const rounds = Math.ceil(updates / documents)
  // A mutation writes 100 documents: on a loaded machine it may take longer than the default 1 s.
  const env = (retention) => ({ CONCAVE_HISTORY_RETENTION_MS: retention, CONCAVE_FUNCTION_TIMEOUT_MS: '10000' })
  const keep = await start(env(String(10 * 365 * 24 * 3600 * 1000)))
  push(keep)
  await new ConvexHttpClient(keep.url).mutation(api.bench.seedDocs, { count: documents })
  const keptRate = await update(keep.url, documents, rounds)
  await stop(keep)
  const kept = writeLogSize(keep.dataDir)

  // The same file with a window of 0: the pass after start-up prunes it.
  const t = performance.now()
  const prune = await start(env('0'), keep.dataDir)
  await prunedTo(prune.dataDir, documents)
  const pruneSeconds = (performance.now() - t) / 1000
  await stop(prune)
  const pruned = writeLogSize(prune.dataDir)

  // As many updates again, pruned as they go.
  const again = await start(env('0'), keep.dataDir)
  const prunedRate = await update(again.url, documents, rounds)
  await prunedTo(again.dataDir, documents)
  await stop(again)
  const more = writeLogSize(again.dataDir)
  return { documents, updates: rounds * documents, kept, keptRate, pruneSeconds, pruned, prunedRate, more }
}
