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
import { cpSync, existsSync, mkdirSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { Database } from '../database/database.ts'
import { CursorCodec } from '../database/cursors.ts'
import { SqlitePersistence } from '../storage/sqlite/sqlite-persistence.ts'
import type { JSONValue } from '../values/index.ts'
import type { LogEntry } from '../storage/persistence.ts'

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

/**
 * Restores the user tables of a component ('' the app) — all of them, or `tables` — to their
 * state at commit timestamp `ts` (nanoseconds).
 */
export async function restoreAt(db: Database, ts: bigint, opts: { tables?: readonly string[]; component?: string } = {}): Promise<RestoreResult> {
  const component = opts.component ?? ''
  if (ts > db.committer.publishedTs) throw new RestoreError('InvalidTimestamp', `Cannot restore to ${ts}: it is after the latest commit (${db.committer.publishedTs})`)
  for (const name of opts.tables ?? []) {
    if (typeof name !== 'string' || name.startsWith('_')) throw new RestoreError('InvalidTableName', `Cannot restore table ${JSON.stringify(name)}: only user tables are restored`)
  }
  const wanted = (tableNumber: number): boolean => {
    const table = db.catalog.byNumber.get(tableNumber)
    if (table === undefined || table.component !== component || table.name.startsWith('_')) return false
    return opts.tables === undefined || opts.tables.includes(table.name)
  }
  return db.readingHistoryAt(ts, async () => {
    const { value: documents, ts: commitTs } = await db.mutateAt(async (txn) => {
      let n = 0
      const changed = new Set<string>()
      for (const e of await wholeLog(db, ts, txn.snapshotTs)) if (wanted(e.tableNumber)) changed.add(e.id)
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
async function wholeLog(db: Database, afterTs: bigint, upToTs: bigint): Promise<LogEntry[]> {
  const out: LogEntry[] = []
  const PAGE = 50_000
  let from = afterTs
  for (;;) {
    const page = await db.persistence.loadLog(from, upToTs, PAGE)
    if (page.length < PAGE) return [...out, ...page]
    // The page may end inside a commit: its last timestamp is read again whole with the next page.
    const last = page[page.length - 1]!.ts
    const whole = page.filter((e) => e.ts !== last)
    if (whole.length === 0) return [...out, ...(await db.persistence.loadLog(from, upToTs, Number.MAX_SAFE_INTEGER))]
    out.push(...whole)
    from = whole[whole.length - 1]!.ts
  }
}

/** Where a data folder keeps what a restore into a new one copies (see src/backend.ts). */
export interface DataFolderLayout {
  readonly databaseFile: string
  /** Files copied as they are (the credentials). */
  readonly files: readonly string[]
  /** Folders copied as they are (stored files' bytes). */
  readonly folders: readonly string[]
}

/**
 * Restores into a new data folder `into` (which must not exist, or be empty): a copy of the
 * SQLite store taken now (online), with the stored files and credentials, in which the tables are
 * then restored to `ts` as `restoreAt` does in place. A backend started on `into` serves the
 * deployment as it was then; the running one is untouched.
 */
export async function restoreInto(db: Database, dataDir: string, layout: DataFolderLayout, into: string, ts: bigint, opts: { tables?: readonly string[]; component?: string } = {}): Promise<RestoreResult> {
  if (!(db.persistence instanceof SqlitePersistence)) throw new RestoreError('Unsupported', 'A restore into a new data folder copies the SQLite store; with --db-url, restore in place or copy the Postgres database with its own tools')
  if (existsSync(into) && readdirSync(into).length > 0) throw new RestoreError('InvalidPath', `Cannot restore into ${into}: it is not empty`)
  if (ts > db.committer.publishedTs) throw new RestoreError('InvalidTimestamp', `Cannot restore to ${ts}: it is after the latest commit (${db.committer.publishedTs})`)
  const persistence = db.persistence
  return db.readingHistoryAt(ts, async () => {
    mkdirSync(into, { recursive: true })
    await persistence.backupTo(join(into, layout.databaseFile))
    for (const f of layout.files) if (existsSync(join(dataDir, f))) cpSync(join(dataDir, f), join(into, f))
    for (const d of layout.folders) if (existsSync(join(dataDir, d))) cpSync(join(dataDir, d), join(into, d), { recursive: true })
    const copy = await Database.open(SqlitePersistence.open(join(into, layout.databaseFile)), new CursorCodec('0'.repeat(64)))
    try {
      return await restoreAt(copy, ts, opts)
    } finally {
      await copy.close()
    }
  })
}
