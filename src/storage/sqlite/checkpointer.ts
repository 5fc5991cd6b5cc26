/**
 * @module The WAL checkpointer, run in a worker thread with its own connection so that copying
 * WAL pages into the database file (and its fsync) never blocks the main thread. PASSIVE
 * checkpoints never block the writer or readers; once a checkpoint has copied everything, SQLite
 * starts the WAL over from the beginning on the next write.
 */
import Database from 'better-sqlite3'
import { parentPort, workerData } from 'node:worker_threads'

/** How often to checkpoint, in ms (a checkpoint with nothing new to copy costs next to nothing). */
const INTERVAL_MS = 200

const { path } = workerData as { path: string }
const db = new Database(path)
db.pragma('busy_timeout = 1000')
const timer = setInterval(() => {
  try {
    const [row] = db.pragma('wal_checkpoint(PASSIVE)') as { log: number }[]
    parentPort?.postMessage({ walPages: row?.log ?? 0 })
  } catch {
    // A busy or locked database just means trying again on the next tick.
  }
}, INTERVAL_MS)

parentPort?.on('message', (message: unknown) => {
  if (message === 'stop') {
    clearInterval(timer)
    try {
      db.pragma('wal_checkpoint(PASSIVE)')
    } finally {
      db.close()
      parentPort?.postMessage('stopped')
    }
  }
})
