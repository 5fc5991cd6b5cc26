/**
 * @module One backend per data folder. The lock is SQLite's own: an exclusive transaction held open
 * on `concave.lock` in the folder for the life of the process. The operating system drops it when
 * the process ends in any way (kill -9 included), so a restart never needs a hand clean-up; a
 * second backend meets the held lock at once and refuses to start, naming the process that holds it
 * (from `concave.lock.json`, written by the holder).
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import Sqlite from 'better-sqlite3'

export const LOCK_FILE = 'concave.lock'
const HOLDER_FILE = 'concave.lock.json'

/** Another process holds the folder. */
export class DataDirLockedError extends Error {}

export interface DataDirLock {
  release(): void
}

export function lockDataDir(dir: string, about: Record<string, unknown> = {}): DataDirLock {
  const db = new Sqlite(join(dir, LOCK_FILE), { timeout: 0 })
  try {
    db.pragma('locking_mode = EXCLUSIVE')
    db.exec('BEGIN EXCLUSIVE')
  } catch (e) {
    db.close()
    if ((e as { code?: string }).code !== 'SQLITE_BUSY') throw e
    throw new DataDirLockedError(`Another Concave backend${holderDescription(dir)} is using the data directory ${dir}. Stop it first, or give this one another directory (--local-storage).`)
  }
  writeFileSync(join(dir, HOLDER_FILE), `${JSON.stringify({ pid: process.pid, startedAt: new Date().toISOString(), ...about })}\n`)
  let released = false
  return {
    release() {
      if (released) return
      released = true
      db.close()
    },
  }
}

/** " (pid N, started …)" from the holder's note, when it can be read. */
function holderDescription(dir: string): string {
  try {
    const holder = JSON.parse(readFileSync(join(dir, HOLDER_FILE), 'utf8')) as { pid?: unknown; startedAt?: unknown; port?: unknown }
    const parts = [typeof holder.pid === 'number' ? `pid ${holder.pid}` : null, typeof holder.port === 'number' ? `port ${holder.port}` : null, typeof holder.startedAt === 'string' ? `started ${holder.startedAt}` : null].filter((p) => p !== null)
    return parts.length === 0 ? '' : ` (${parts.join(', ')})`
  } catch {
    return ''
  }
}
