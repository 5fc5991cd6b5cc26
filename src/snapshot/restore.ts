/**
 * @module Point-in-time restore: puts tables back as they were at an earlier commit timestamp,
 * within the history retention (`CONCAVE_HISTORY_RETENTION_MS`), in place, as ONE new commit —
 * live queries see the restore as one ordinary change, and it can itself be undone the same way.
 *
 * Every document written after `ts` (the write log says which) is set to its revision at `ts`:
 * deleted if it didn't exist then, recreated (same id, same `_creationTime`) if it has been
 * deleted since. User tables only: system tables (scheduled functions, stored files' records,
 * …) keep their present state, since what they describe (jobs run, bytes deleted) can't be undone.
 */
import type { Database } from '../database/database.ts'
import { OutOfRetentionError } from '../database/errors.ts'
import type { JSONValue } from '../values/index.ts'
import type { LogEntry, Persistence } from '../storage/persistence.ts'

export class RestoreError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

export interface RestoreResult {
  /** The restore's commit timestamp (the current one if nothing changed since `ts`). */
  readonly ts: bigint
  /** Documents put back, recreated or deleted. */
  readonly documents: number
}

/** What is restored: the user tables of a component ('' the app), all of them or `tables`. */
export interface RestoreOptions {
  readonly tables?: readonly string[]
  readonly component?: string
}

/** Refuses a time after the latest commit or before the history retention, and system tables. */
export function checkRestoreRequest(db: Database, ts: bigint, opts: RestoreOptions): void {
  if (ts > db.committer.publishedTs) throw new RestoreError('InvalidTimestamp', `Cannot restore to ${ts}: it is after the latest commit (${db.committer.publishedTs})`)
  if (ts < db.persistence.historyHorizon()) throw new OutOfRetentionError(ts)
  for (const name of opts.tables ?? []) {
    if (typeof name !== 'string' || name.startsWith('_')) throw new RestoreError('InvalidTableName', `Cannot restore table ${JSON.stringify(name)}: only user tables are restored`)
  }
}

/**
 * Restores the user tables of a component ('' the app) — all of them, or `tables` — to their
 * state at commit timestamp `ts` (nanoseconds), in place. (Into a new deployment: restore-into.ts.)
 */
export async function restoreAt(db: Database, ts: bigint, opts: RestoreOptions = {}): Promise<RestoreResult> {
  const component = opts.component ?? ''
  // Caught up first (a shared store): the time may be that of another process's commit, and the
  // mutation below reads the write log up to its snapshot, outside what its commit is checked on,
  // so its snapshot must not be older than what any process acknowledged before the call.
  await db.committer.sync()
  checkRestoreRequest(db, ts, opts)
  const wanted = (tableNumber: number): boolean => {
    const table = db.catalog.byNumber.get(tableNumber)
    if (table === undefined || table.component !== component || table.name.startsWith('_')) return false
    return opts.tables === undefined || opts.tables.includes(table.name)
  }
  return db.readingHistoryAt(ts, async () => {
    const { value: documents, ts: commitTs } = await db.mutateAt(async (txn) => {
      let n = 0
      const changed = new Set<string>()
      for (const e of await wholeLog(db.persistence, ts, txn.snapshotTs)) if (wanted(e.tableNumber)) changed.add(e.id)
      const then = await db.persistence.documentsAt([...changed], ts)
      for (const id of changed) {
        const revision = then.get(id)
        const doc = revision === undefined || revision.json === null ? null : (JSON.parse(revision.json) as Record<string, JSONValue>)
        if (await txn.restoreSystem(id, doc, component)) n++
      }
      return n
    })
    return { ts: commitTs, documents }
  })
}

/** Every revision written after `afterTs` up to `upToTs`, oldest first. */
export async function wholeLog(persistence: Persistence, afterTs: bigint, upToTs: bigint): Promise<LogEntry[]> {
  const out: LogEntry[] = []
  const PAGE = 50_000
  let from = afterTs
  for (;;) {
    const page = await persistence.loadLog(from, upToTs, PAGE)
    if (page.length < PAGE) return [...out, ...page]
    // The page may end inside a commit: its last timestamp is read again whole with the next page.
    const last = page[page.length - 1]!.ts
    const whole = page.filter((e) => e.ts !== last)
    if (whole.length === 0) return [...out, ...(await persistence.loadLog(from, upToTs, Number.MAX_SAFE_INTEGER))]
    out.push(...whole)
    from = whole[whole.length - 1]!.ts
  }
}
