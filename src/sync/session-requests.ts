/**
 * @module SessionRequests: what makes a sync-socket mutation run exactly once, across restarts too.
 * As Convex's `_session_requests`: a mutation sent with a (session id, request id) records its
 * result in that system table in the same commit as its writes. When the client re-sends it (after
 * a reconnect, or a restart of the backend), the mutation finds the record in its snapshot and is
 * answered from it instead of running again. A failed mutation records nothing (it wrote nothing,
 * so running it again is harmless). Records go after `retentionMs` (Convex: two weeks).
 */
import { encodeIndexKey, jsonToValue, prefixSuccessor } from '../values/index.ts'
import type { JSONValue } from '../values/index.ts'
import { COMMIT_TS_PLACEHOLDER, holdsCommitTs, resolveCommitTsText } from '../database/committer.ts'
import type { Database } from '../database/database.ts'
import type { IndexInfo, TableInfo } from '../database/catalog.ts'
import { BY_CREATION_TIME } from '../database/catalog.ts'
import type { Transaction } from '../database/transaction.ts'
import type { MutationRecords, RequestKey } from '../functions/function-runner.ts'

export const SESSION_REQUESTS = '_session_requests'
const BY_REQUEST = 'by_session_request'
/** Convex keeps session requests for two weeks (MAX_SESSION_CLEANUP_DURATION_HOURS). */
export const SESSION_REQUEST_RETENTION_MS = 14 * 24 * 3_600_000
const SWEEP_BATCH = 1000

/** Which socket request a mutation answers. */
export type { RequestKey }

/** A recorded result: the mutation's value (Convex-encoded JSON text) and its log lines. */
export interface RecordedOutcome {
  value: string
  logLines: string[]
}

export class SessionRequests implements MutationRecords {
  #table: TableInfo | null = null
  #index: IndexInfo | null = null
  #sweepTimer: NodeJS.Timeout | null = null

  constructor(
    readonly db: Database,
    readonly log: (message: string, fields?: Record<string, unknown>) => void,
    readonly retentionMs = SESSION_REQUEST_RETENTION_MS,
  ) {}

  async start(): Promise<void> {
    await this.db.exclusive(async () => {
      const table = await this.db.catalog.ensureTable(SESSION_REQUESTS)
      this.#index = table.indexes.get(BY_REQUEST) ?? (await this.db.catalog.addIndex(table, BY_REQUEST, ['sessionId', 'requestId']))
      this.#table = table
    })
    this.#sweepTimer = setInterval(() => void this.sweep(Date.now()), Math.max(1000, Math.min(3_600_000, this.retentionMs)))
    this.#sweepTimer.unref()
  }

  stop(): void {
    if (this.#sweepTimer !== null) clearInterval(this.#sweepTimer)
  }

  /** The outcome recorded for `key` in the transaction's snapshot (the read is part of its read set). */
  async find(txn: Transaction, key: RequestKey): Promise<RecordedOutcome | null> {
    const index = this.#index!
    const lo = encodeIndexKey([key.sessionId, key.requestId])
    const interval = { lo, hi: prefixSuccessor(lo) }
    txn.readSet.add(index.indexId, interval)
    const [row] = await txn.snapshot.scan(index.indexId, interval, 'asc', 1)
    if (row === undefined) return null
    const doc = JSON.parse(row.doc.json) as { result: string; logLines: string[]; ts?: JSONValue }
    // The commit-timestamp placeholders of what it returned are its commit's (records from before
    // the commit's timestamp was kept with them keep theirs).
    const ts = doc.ts === undefined ? null : jsonToValue(doc.ts)
    return { value: typeof ts === 'bigint' ? resolveCommitTsText(doc.result, ts) : doc.result, logLines: doc.logLines }
  }

  /** Records a successful mutation's outcome, to commit with its writes (and, when it needs it, its commit's timestamp). */
  async record(txn: Transaction, key: RequestKey, outcome: RecordedOutcome): Promise<void> {
    // (Only a result that holds `db.vars.commitTs` needs its commit's timestamp to resolve it.)
    const record: Record<string, JSONValue> = { sessionId: key.sessionId, requestId: key.requestId, result: outcome.value, logLines: outcome.logLines }
    if (holdsCommitTs(outcome.value)) record.ts = COMMIT_TS_PLACEHOLDER
    await txn.insertSystem(SESSION_REQUESTS, record)
  }

  /** Deletes records older than the retention, a batch per transaction; returns how many went. */
  async sweep(now: number): Promise<number> {
    const table = this.#table
    if (table === null) return 0
    const cutoff = now - this.retentionMs
    const byTime = table.indexes.get(BY_CREATION_TIME)!
    let removed = 0
    try {
      for (;;) {
        const n = await this.db.mutate(async (txn) => {
          const rows = await txn.snapshot.scan(byTime.indexId, { lo: Buffer.alloc(0), hi: encodeIndexKey([cutoff]) }, 'asc', SWEEP_BATCH)
          for (const r of rows) await txn.removeSystem(r.doc.id, '')
          return rows.length
        })
        removed += n
        if (n < SWEEP_BATCH) return removed
      }
    } catch (e) {
      this.log('Removing old session requests failed; trying again later', { error: (e as Error)?.message ?? String(e) })
      return removed
    }
  }
}
