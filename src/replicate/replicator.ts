/**
 * @module Live replication into this deployment from another one — a Concave, or a Convex
 * deployment — through its streaming export API (`--replicate-from URL`, with an admin key of
 * the source).
 *
 * First the source's snapshot (`list_snapshot`, page by page), then its changes as they commit
 * (`document_deltas` from the snapshot's timestamp), each page written here as ONE commit
 * together with the replication's state (the source's cursor, in the system table
 * `_replication`): a page is applied exactly once, and a restart of either side resumes where
 * the last commit left off. Documents keep their ids and `_creationTime`; tables are created with
 * the source's table numbers, each in its component's own numbering (so ids stay valid). Stored files come along when the source is a
 * Concave (`includeStorage`: its `_storage` records): the bytes are fetched from the source's
 * `/api/storage/<id>` and stored under the same id before their record commits.
 *
 * The replica should be a fresh deployment that nothing else writes to until clients switch over
 * (its own writes to replicated documents would be overwritten, or would conflict with the
 * source's table numbers). `status()` reports the lag: the source's revisions not yet applied
 * (read from the source, up to LAG_PAGES pages) and how long the oldest of them has waited.
 */
import { createHash } from 'node:crypto'
import type { Database } from '../database/database.ts'
import type { FileStorage } from '../files/file-storage.ts'
import { decodeId, encodeId } from '../values/index.ts'
import type { JSONValue } from '../values/index.ts'
import type { Logger } from '../util/log.ts'
import { parseStreamingResponse } from './streaming-export.ts'

export const REPLICATION_TABLE = '_replication'
/** A Concave system table number (see SYSTEM_TABLE_NUMBERS): never one of the source's tables. */
const REPLICATION_TABLE_NUMBER = 9990
const STATE_ID = encodeId(REPLICATION_TABLE_NUMBER, new Uint8Array(16).fill(1))
const STORAGE = '_storage'
/** How often a cursor that moved without documents is stored (see #step). */
const STORE_CURSOR_EVERY_MS = 60_000
/** How long to wait for new commits once caught up. */
const POLL_MS = 100
/** At most this many pages of deltas are read to tell the lag. */
const LAG_PAGES = 20

export interface ReplicationSource {
  readonly url: string
  readonly adminKey: string
}

/** What `_replication` holds: where the source's stream is at, as of the last page applied. */
interface ReplicationState {
  readonly source: string
  readonly phase: 'snapshot' | 'deltas'
  /** The snapshot's timestamp (snapshot phase; null before the first page). */
  readonly snapshotTs: string | null
  /** list_snapshot's cursor (snapshot phase). */
  readonly snapshotCursor: string | null
  /** document_deltas's cursor: revisions up to it are applied (deltas phase). */
  readonly deltaCursor: string | null
  /** Documents (revisions) applied so far. */
  readonly applied: number
}

type Value = Record<string, JSONValue> & { _id: string; _table: string; _component: string; _ts: bigint; _deleted?: boolean }

export class ReplicationError extends Error {}

export class Replicator {
  #stopped = false
  #running: Promise<void> | null = null
  #wake: (() => void) | null = null
  #state: ReplicationState | null = null
  #lastError: string | null = null
  /** The newest source timestamp known to be applied (deltas phase), in memory ahead of `_replication`. */
  #cursor: bigint | null = null
  #caughtUp = false

  constructor(
    readonly db: Database,
    readonly files: FileStorage,
    readonly source: ReplicationSource,
    readonly log: Logger,
  ) {}

  start(): void {
    this.log.info('Replicating from another deployment', { source: this.source.url })
    this.#running = this.#loop()
  }

  async stop(): Promise<void> {
    this.#stopped = true
    this.#wake?.()
    await this.#running
  }

  async #loop(): Promise<void> {
    let failures = 0
    while (!this.#stopped) {
      try {
        const idle = await this.#step()
        failures = 0
        if (this.#lastError !== null) this.log.info('Replication resumed', { source: this.source.url })
        this.#lastError = null
        if (idle) await this.#sleep(POLL_MS)
      } catch (e) {
        failures++
        const message = (e as Error)?.message ?? String(e)
        if (message !== this.#lastError) this.log.warn('Replication step failed; retrying', { source: this.source.url, error: message })
        this.#lastError = message
        await this.#sleep(Math.min(5000, 100 * 2 ** Math.min(failures, 6)))
      }
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms)
      function done() {
        clearTimeout(timer)
        resolve()
      }
      this.#wake = done
    })
  }

  async #post(path: string, body: Record<string, unknown>): Promise<string> {
    const text = JSON.stringify(body, (_k, v: unknown) => (typeof v === 'bigint' ? `@@${v}@@` : v)).replace(/"@@(-?\d+)@@"/g, '$1')
    const res = await fetch(new URL(path, this.source.url), {
      method: 'POST',
      headers: { authorization: `Convex ${this.source.adminKey}`, 'content-type': 'application/json', 'convex-client': 'concave-replicate-0.1.0' },
      body: text,
      signal: AbortSignal.timeout(60_000),
    })
    const answer = await res.text()
    if (!res.ok) throw new ReplicationError(`${path} on ${this.source.url} answered ${res.status}: ${answer.slice(0, 500)}`)
    return answer
  }

  async #readState(): Promise<ReplicationState | null> {
    if (this.#state !== null) return this.#state
    const txn = await this.db.begin(false)
    try {
      const doc = this.db.catalog.tableForId('', REPLICATION_TABLE_NUMBER) === undefined ? null : await txn.read(STATE_ID, '')
      this.#state = doc === null ? null : (doc.state as unknown as ReplicationState)
    } finally {
      this.db.end(txn)
    }
    return this.#state
  }

  /** One page read and applied; true when there was nothing new (caught up). */
  async #step(): Promise<boolean> {
    let state = await this.#readState()
    if (state !== null && state.source !== this.source.url) {
      throw new ReplicationError(`This deployment already replicates ${state.source}; replicating another source (${this.source.url}) into it would mix the two`)
    }
    state ??= { source: this.source.url, phase: 'snapshot', snapshotTs: null, snapshotCursor: null, deltaCursor: null, applied: 0 }
    const args = { format: 'convex_encoded_json', includeStorage: true }
    if (state.phase === 'snapshot') {
      const page = parseStreamingResponse<{ values: Value[]; snapshot: bigint; cursor: string | null; hasMore: boolean }>(
        await this.#post('/api/list_snapshot', { ...args, ...(state.snapshotTs === null ? {} : { snapshot: BigInt(state.snapshotTs) }), ...(state.snapshotCursor === null ? {} : { cursor: state.snapshotCursor }) }),
      )
      const next: ReplicationState = page.hasMore
        ? { ...state, snapshotTs: String(page.snapshot), snapshotCursor: page.cursor, applied: state.applied + page.values.length }
        : { ...state, phase: 'deltas', snapshotTs: String(page.snapshot), snapshotCursor: null, deltaCursor: String(page.snapshot), applied: state.applied + page.values.length }
      await this.#apply(page.values, next)
      if (!page.hasMore) {
        this.#cursor = page.snapshot
        this.log.info('Replication: snapshot copied; following changes', { source: this.source.url, documents: next.applied, snapshotTs: String(page.snapshot) })
      }
      return false
    }
    const cursor = this.#cursor ?? BigInt(state.deltaCursor!)
    const page = parseStreamingResponse<{ values: Value[]; cursor: bigint; hasMore: boolean }>(await this.#post('/api/document_deltas', { ...args, cursor }))
    // Nothing selected changed: the cursor moves on in memory only (reading that range again after
    // a restart is harmless); it is stored with the next page that has documents.
    if (page.values.length > 0) await this.#apply(page.values, { ...state, deltaCursor: String(page.cursor), applied: state.applied + page.values.length })
    // A source busy only with its system tables (crons, scheduled jobs) still moves the stored
    // cursor now and then, so a restart resumes from within the source's history.
    else if (page.cursor > BigInt(state.deltaCursor!) && Date.now() - this.#stored > STORE_CURSOR_EVERY_MS) await this.#apply([], { ...state, deltaCursor: String(page.cursor) })
    if (page.cursor > cursor) this.#cursor = page.cursor
    this.#caughtUp = !page.hasMore
    return !page.hasMore
  }

  /** When the state was last stored (ms since the epoch). */
  #stored = 0

  /** Writes a page of the source's documents, and the state after it, as one commit. */
  async #apply(values: readonly Value[], next: ReplicationState): Promise<void> {
    this.#stored = Date.now()
    const latest = new Map<string, Value>()
    for (const v of values) latest.set(v._id, v)
    // Tables first, with the source's numbers in their component (catalog changes, outside the
    // commit). The app and each component number their tables on their own, as in Convex: only a
    // replica that has tables of its own can hold a source's number already.
    await this.db.ensureTable(REPLICATION_TABLE, '', REPLICATION_TABLE_NUMBER)
    for (const v of latest.values()) {
      const decoded = decodeId(v._id)
      if (decoded === null) throw new ReplicationError(`The source sent a document with an invalid _id ${JSON.stringify(v._id)}`)
      const existing = this.db.catalog.table(v._component, v._table)
      if (existing === undefined && v._deleted === true) continue
      const table = existing ?? (await this.db.ensureTable(v._table, v._component, decoded.tableNumber))
      if (table.idNumber !== decoded.tableNumber) {
        const holder = this.db.catalog.tableForId(v._component, decoded.tableNumber)
        throw new ReplicationError(
          `Table ${JSON.stringify(v._table)}${v._component === '' ? '' : ` of component ${v._component}`} is number ${decoded.tableNumber} in the source, but ${holder === undefined ? `${table.idNumber} here` : `that number is taken here by ${JSON.stringify(holder.name)}`}: replicate into a new deployment`,
        )
      }
    }
    // Stored files: their bytes before their records (a committed record always has its file).
    const fetched: string[] = []
    const skipped = new Set<string>()
    try {
      for (const v of latest.values()) {
        if (v._table !== STORAGE || v._deleted === true) continue
        if (await this.#haveFile(v)) continue
        if (!(await this.#copyFile(v))) skipped.add(v._id)
        else fetched.push(v._id)
      }
      await this.db.mutate(
        async (txn) => {
          for (const v of latest.values()) {
            if (skipped.has(v._id)) continue
            if (this.db.catalog.table(v._component, v._table) === undefined) continue
            await txn.restoreSystem(v._id, v._deleted === true ? null : documentOf(v), v._component)
          }
          await txn.restoreSystem(STATE_ID, { _id: STATE_ID, _creationTime: 0, state: next as unknown as JSONValue }, '')
        },
        { system: true },
      )
    } catch (e) {
      for (const id of fetched) await this.files.blobs.delete(id).catch(() => {})
      throw e
    }
    this.#state = next
    // Files whose records went: their bytes too (a crash first leaves them to the start-up sweep).
    for (const v of latest.values()) if (v._table === STORAGE && v._deleted === true) await this.files.blobs.delete(v._id).catch(() => {})
  }

  /** Whether this deployment has the file already, with the same digest. */
  async #haveFile(v: Value): Promise<boolean> {
    if (!(await this.files.blobs.exists(v._id))) return false
    const txn = await this.db.begin(false)
    try {
      const doc = this.db.catalog.tableForId(v._component, decodeId(v._id)!.tableNumber) === undefined ? null : await txn.read(v._id, v._component)
      return doc !== null && doc.sha256 === v.sha256
    } finally {
      this.db.end(txn)
    }
  }

  /** Copies a file's bytes from the source; false if the source has it no more (its deletion follows). */
  async #copyFile(v: Value): Promise<boolean> {
    const res = await fetch(new URL(`/api/storage/${v._id}`, this.source.url), { signal: AbortSignal.timeout(600_000) })
    if (res.status === 404) {
      await res.body?.cancel()
      return false
    }
    if (!res.ok) throw new ReplicationError(`Fetching file ${v._id} from ${this.source.url} answered ${res.status}`)
    const bytes = new Uint8Array(await res.arrayBuffer())
    const digest = createHash('sha256').update(bytes).digest('base64')
    if (typeof v.sha256 === 'string' && digest !== v.sha256) throw new ReplicationError(`File ${v._id} from ${this.source.url} does not match its sha256`)
    await this.files.blobs.put(v._id, bytes)
    return true
  }

  /**
   * Where replication stands: the phase, revisions applied, and the lag — the source's revisions
   * not applied yet and how long (source time) the oldest of them has waited; null while the
   * snapshot is still being copied.
   */
  async status(): Promise<Record<string, unknown>> {
    const state = await this.#readState()
    const base = { source: this.source.url, phase: state?.phase ?? 'snapshot', applied: state?.applied ?? 0, error: this.#lastError }
    if (state === null || state.phase === 'snapshot') return { ...base, snapshotTs: state?.snapshotTs ?? null, lag: null }
    let cursor = this.#cursor ?? BigInt(state.deltaCursor!)
    const applied = cursor
    let documents = 0
    let oldest: bigint | null = null
    let head = cursor
    let complete = false
    try {
      for (let i = 0; i < LAG_PAGES; i++) {
        const page = parseStreamingResponse<{ values: Value[]; cursor: bigint; hasMore: boolean }>(await this.#post('/api/document_deltas', { format: 'convex_encoded_json', includeStorage: true, cursor }))
        documents += page.values.length
        if (oldest === null && page.values.length > 0) oldest = page.values[0]!._ts
        head = page.cursor
        cursor = page.cursor
        if (!page.hasMore) {
          complete = true
          break
        }
      }
    } catch (e) {
      // The source can't be asked now: the lag is unknown.
      return { ...base, error: this.#lastError ?? (e as Error)?.message ?? String(e), cursor: String(applied), lag: null }
    }
    return {
      ...base,
      cursor: String(applied),
      sourceTs: String(head),
      caughtUp: this.#caughtUp && documents === 0,
      lag: { documents, complete, seconds: oldest === null ? 0 : Number(head - oldest) / 1e9 },
    }
  }
}

/** A value of the stream as a document (its fields, without the stream's `_component` & co.). */
function documentOf(v: Value): Record<string, JSONValue> {
  const doc: Record<string, JSONValue> = {}
  for (const [k, x] of Object.entries(v)) if (k !== '_component' && k !== '_table' && k !== '_ts' && k !== '_deleted') doc[k] = x as JSONValue
  return doc
}
