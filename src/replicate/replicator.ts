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
 * the source's table numbers, each in its component's own numbering (so ids stay valid).
 *
 * Stored files: Convex's streaming export doesn't list them, so they are read through the door
 * Convex's dashboard uses (source-files.ts: `fileStorageV2:fileMetadata` per component, oldest
 * first, each with the URL its bytes are served at), for every source alike. A file keeps its id,
 * sha256, size, content type and creation time; its bytes are fetched, checked against the sha256
 * and stored under the same id before its record commits. Deletions aren't listed anywhere: a
 * page of the listing answers for a range of creation times (filePageRange), and our files in that
 * range it doesn't have were deleted at the source. Files are polled: every FILES_POLL_MS (1 s)
 * the files created since a little before our newest are listed and each component's file count
 * compared with ours; a full listing follows when a count differs (so a deletion shows within
 * about a second) and every FULL_FILES_PASS_MS (5 min) regardless (a deletion masked by an upload
 * between two polls, a file committed out of creation order). A page that changes something is
 * one commit with the listing's position (`filesPass` in `_replication`), so a restart resumes the
 * listing and nothing is copied twice; a page that changes nothing writes nothing.
 *
 * The replica should be a fresh deployment that nothing else writes to until clients switch over
 * (its own writes to replicated documents would be overwritten, or would conflict with the
 * source's table numbers). `status()` reports the lag: the source's revisions not yet applied
 * (read from the source, up to LAG_PAGES pages) and how long the oldest of them has waited, and
 * the stored files here and at the source.
 */
import type { Database } from '../database/database.ts'
import { BY_CREATION_TIME } from '../database/catalog.ts'
import type { FileStorage } from '../files/file-storage.ts'
import { decodeId, encodeId, encodeIndexKey } from '../values/index.ts'
import type { JSONValue } from '../values/index.ts'
import type { Logger } from '../util/log.ts'
import { parseStreamingResponse } from './streaming-export.ts'
import { filePage, filePageRange, numFiles, sourceComponents } from './source-files.ts'
import type { SourceComponent } from './source-files.ts'

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
/** How often the source's newest files are listed (and its file counts compared with ours). */
const FILES_POLL_MS = 1000
/** How often every file of the source is listed, whatever the counts say. */
const FULL_FILES_PASS_MS = 5 * 60_000
/** A poll lists the files created since this long before our newest one (commits land out of creation order). */
const FILES_OVERLAP_MS = 10_000

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
  /** The listing of the source's stored files under way (absent or null: none). */
  readonly filesPass?: FilesPass | null
}

/**
 * A listing of the source's stored files, component after component, each oldest first: a full
 * pass lists every file, a poll those created since `from`. Where the listing is: the source's
 * pagination cursor, and the creation time its pages have answered for up to (`lower`, with
 * `carry`, the files listed at that very time); see filePageRange.
 */
interface FilesPass {
  readonly full: boolean
  readonly component: SourceComponent
  readonly from: number | null
  readonly cursor: string | null
  readonly lower: number | null
  readonly carry: readonly string[]
}

/** Where a file to copy is served, and its component (to ask the source about it). */
interface FileSource {
  readonly url: string
  readonly component: SourceComponent
}

type Value = Record<string, JSONValue> & { _id: string; _table: string; _component: string; _ts: bigint; _deleted?: boolean }

export class ReplicationError extends Error {}

/** A function of the source answered with an error. */
class SourceFunctionError extends ReplicationError {}

export class Replicator {
  #stopped = false
  #running: Promise<void> | null = null
  #wake: (() => void) | null = null
  #state: ReplicationState | null = null
  #lastError: string | null = null
  /** The newest source timestamp known to be applied (deltas phase), in memory ahead of `_replication`. */
  #cursor: bigint | null = null
  #caughtUp = false
  /** The source's components, as listed when the files pass under way began. */
  #components: SourceComponent[] | null = null
  /** When the next poll of the source's files may start, and when a full pass is due (ms since the epoch). */
  #nextFilesPoll = 0
  #nextFullPass = 0
  /** Whether the pass under way found nothing to change and counts that match. */
  #passClean = true
  /** Whether the last files pass found the replica's files the same as the source's. */
  #filesInSync = false
  /** The last failure of the files' replication (null: it works), and when it is retried. */
  #filesError: string | null = null
  #filesFailures = 0
  #filesRetryAt = 0

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

  /** A query function of the source, run with its admin key (`/api/query`), its value Convex-encoded. */
  readonly #query = async (path: string, args: Record<string, JSONValue>): Promise<JSONValue> => {
    const answer = JSON.parse(await this.#post('/api/query', { path, args, format: 'convex_encoded_json' })) as { status: string; value?: JSONValue; errorMessage?: string }
    if (answer.status !== 'success') throw new SourceFunctionError(`${path} on ${this.source.url} failed: ${String(answer.errorMessage).slice(0, 500)}`)
    return answer.value ?? null
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

  /** The replication's state (its start if nothing was applied yet). */
  async #current(): Promise<ReplicationState> {
    const state = await this.#readState()
    if (state !== null && state.source !== this.source.url) {
      throw new ReplicationError(`This deployment already replicates ${state.source}; replicating another source (${this.source.url}) into it would mix the two`)
    }
    return state ?? { source: this.source.url, phase: 'snapshot', snapshotTs: null, snapshotCursor: null, deltaCursor: null, applied: 0 }
  }

  /** A page of documents and one of files read and applied; true when there was nothing new (caught up). */
  async #step(): Promise<boolean> {
    const filesIdle = await this.#filesStepRetried()
    const documentsIdle = await this.#documentsStep()
    return filesIdle && documentsIdle
  }

  /**
   * #filesStep, its failures retried on their own (with a growing pause), so that documents go on
   * being copied meanwhile. A listing the source refuses to go on with (a cursor it no longer
   * takes) starts over.
   */
  async #filesStepRetried(): Promise<boolean> {
    if (Date.now() < this.#filesRetryAt) return true
    try {
      const idle = await this.#filesStep()
      if (this.#filesError !== null) this.log.info('Replication of stored files resumed', { source: this.source.url })
      this.#filesError = null
      this.#filesFailures = 0
      return idle
    } catch (e) {
      const message = (e as Error)?.message ?? String(e)
      if (message !== this.#filesError) this.log.warn('Replication of stored files failed; retrying', { source: this.source.url, error: message })
      this.#filesError = message
      this.#filesFailures++
      this.#filesRetryAt = Date.now() + Math.min(5000, 100 * 2 ** Math.min(this.#filesFailures, 6))
      this.#filesInSync = false
      if (e instanceof SourceFunctionError && this.#state?.filesPass != null) {
        this.#state = { ...this.#state, filesPass: null }
        this.#nextFullPass = 0
      }
      return true
    }
  }

  /** One page of documents read and applied; true when there was nothing new (caught up). */
  async #documentsStep(): Promise<boolean> {
    const state = await this.#current()
    const args = { format: 'convex_encoded_json' }
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

  /**
   * One page of the source's stored files listed and applied (new files copied, files it no
   * longer has removed), with where the listing is, as one commit; nothing is written when the
   * page changes nothing. True when no listing was due.
   */
  async #filesStep(): Promise<boolean> {
    let state = await this.#current()
    let pass = state.filesPass ?? null
    if (pass === null) {
      const now = Date.now()
      const full = now >= this.#nextFullPass
      if (!full && now < this.#nextFilesPoll) return true
      this.#components = await sourceComponents(this.#query)
      this.#passClean = true
      pass = await this.#passOver(this.#components[0]!, full)
    }
    const page = await filePage(this.#query, pass.component, pass.from, pass.cursor)
    const range = filePageRange(pass.lower, pass.carry, page)
    // What the page changes here: files new or different, and ours in its range it no longer has.
    const have = range.check === null ? new Map<string, Record<string, JSONValue>>() : await this.#localFiles(pass.component.path, range.check.from, range.check.to)
    const listed = await this.#localDocuments(page.page.map((f) => f._id))
    const changes: Value[] = []
    const sources = new Map<string, FileSource>()
    for (const f of page.page) {
      const { url, ...doc } = f
      const mine = listed.get(f._id)
      if (mine !== undefined && sameDocument(mine, doc) && (await this.files.blobs.exists(f._id))) continue
      changes.push(fileValue(pass.component.path, doc))
      sources.set(f._id, { url, component: pass.component })
    }
    for (const id of have.keys()) if (!range.seen.has(id)) changes.push(fileValue(pass.component.path, { _id: id }, true))
    let next: FilesPass | null
    if (!page.isDone) next = { ...pass, cursor: page.continueCursor, lower: range.lower, carry: range.carry }
    else {
      const components = this.#components ?? (this.#components = await sourceComponents(this.#query))
      const after = components.find((c) => c.path > pass.component.path)
      next = after === undefined ? null : await this.#passOver(after, pass.full)
    }
    state = { ...state, filesPass: next }
    if (changes.length > 0) {
      this.#passClean = false
      await this.#apply(changes, state, sources)
    } else this.#state = state // nothing to write: a restart lists these again
    if (page.isDone && !pass.full) {
      // A file deleted at the source shows only in a full listing: one is due when the counts differ.
      const here = await this.#countFiles(pass.component.path)
      if (here !== (await numFiles(this.#query, pass.component))) {
        this.#passClean = false
        this.#nextFullPass = 0
      }
    }
    if (next === null) {
      this.#nextFilesPoll = Date.now() + FILES_POLL_MS
      if (pass.full) this.#nextFullPass = Date.now() + FULL_FILES_PASS_MS
      this.#filesInSync = this.#passClean && this.#nextFullPass !== 0
      this.#components = null
    }
    return false
  }

  /** A listing of `component`'s files: all of them, or those created since a little before our newest. */
  async #passOver(component: SourceComponent, full: boolean): Promise<FilesPass> {
    let from: number | null = null
    if (!full) {
      const newest = [...(await this.#localFiles(component.path, null, null, 'desc', 1)).values()][0]
      if (newest !== undefined) from = (newest._creationTime as number) - FILES_OVERLAP_MS
    }
    return { full, component, from, cursor: null, lower: from, carry: [] }
  }

  /** Our files of a component created in `[from, to)` (null: unbounded), by id. */
  async #localFiles(component: string, from: number | null, to: number | null, order: 'asc' | 'desc' = 'asc', limit = Number.MAX_SAFE_INTEGER): Promise<Map<string, Record<string, JSONValue>>> {
    const out = new Map<string, Record<string, JSONValue>>()
    if (from !== null && to !== null && to <= from) return out
    const table = this.db.catalog.table(component, STORAGE)
    const index = table?.indexes.get(BY_CREATION_TIME)
    if (index === undefined) return out
    const txn = await this.db.begin(false)
    try {
      const rows = await txn.snapshot.scan(index.indexId, { lo: from === null ? Buffer.alloc(0) : encodeIndexKey([from]), hi: to === null ? null : encodeIndexKey([to]) }, order, limit)
      for (const row of rows) out.set(row.doc.id, JSON.parse(row.doc.json) as Record<string, JSONValue>)
    } finally {
      this.db.end(txn)
    }
    return out
  }

  /** Our documents of these ids (those we have). */
  async #localDocuments(ids: readonly string[]): Promise<Map<string, Record<string, JSONValue>>> {
    const out = new Map<string, Record<string, JSONValue>>()
    const txn = await this.db.begin(false)
    try {
      for (const id of ids) {
        const decoded = decodeId(id)
        if (decoded === null) throw new ReplicationError(`The source listed a file with an invalid id ${JSON.stringify(id)}`)
        if (this.db.catalog.byNumber.get(decoded.tableNumber) === undefined) continue
        const doc = await txn.read(id)
        if (doc !== null) out.set(id, doc)
      }
    } finally {
      this.db.end(txn)
    }
    return out
  }

  async #countFiles(component: string): Promise<number> {
    const table = this.db.catalog.table(component, STORAGE)
    if (table === undefined) return 0
    const txn = await this.db.begin(false)
    try {
      return await txn.snapshot.countTable(table.tableNumber)
    } finally {
      this.db.end(txn)
    }
  }

  /** Writes a page of the source's documents, and the state after it, as one commit. */
  async #apply(values: readonly Value[], next: ReplicationState, sources: ReadonlyMap<string, FileSource> = new Map()): Promise<void> {
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
        const source = sources.get(v._id)
        if (source === undefined) throw new ReplicationError(`The source sent a stored file's record (${v._id}) without where its bytes are`)
        if (!(await this.#copyFile(v, source))) skipped.add(v._id)
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

  /**
   * Copies a file's bytes from where the source serves them, checked against its sha256 before
   * they are kept; false if the source has the file no more (it was deleted since it was listed).
   */
  async #copyFile(v: Value, source: FileSource): Promise<boolean> {
    const res = await this.#fetchFile(source.url)
    if (res.status === 404) {
      await res.body?.cancel()
      const still = await this.#query('_system/frontend/fileStorageV2:getFile', { storageId: v._id, componentId: source.component.id })
      if (still === null) return false
      throw new ReplicationError(`File ${v._id} of ${this.source.url} is not found at its URL ${source.url}`)
    }
    if (!res.ok || res.body === null) throw new ReplicationError(`Fetching file ${v._id} from ${source.url} answered ${res.status}`)
    await this.files.blobs.put(v._id, res.body as AsyncIterable<Uint8Array>, {
      verify: ({ sha256 }) => {
        if (sha256.toString('base64') !== v.sha256) throw new ReplicationError(`File ${v._id} from ${source.url} does not match its sha256`)
      },
    })
    return true
  }

  /**
   * A file's URL, as the source gave it; if it can't be reached (the source's public origin isn't
   * reachable from here), the same path on the source's URL we were given.
   */
  async #fetchFile(url: string): Promise<Response> {
    const signal = AbortSignal.timeout(600_000)
    try {
      return await fetch(url, { signal })
    } catch (e) {
      const given = new URL(this.source.url)
      const listed = new URL(url)
      if (listed.origin === given.origin || signal.aborted) throw e
      return fetch(new URL(`${listed.pathname}${listed.search}`, given), { signal })
    }
  }

  /**
   * The stored files here and at the source (null when it can't be asked), and whether the last
   * listing of the source's files found them the same as ours.
   */
  async #filesStatus(): Promise<{ replica: number; source: number | null; inSync: boolean }> {
    let replica = 0
    for (const table of this.db.catalog.byNumber.values()) if (table.name === STORAGE) replica += await this.#countFiles(table.component)
    let source: number | null = 0
    try {
      for (const component of await sourceComponents(this.#query)) source += await numFiles(this.#query, component)
    } catch {
      source = null
    }
    return { replica, source, inSync: this.#filesInSync }
  }

  /**
   * Where replication stands: the phase, revisions applied, and the lag — the source's revisions
   * not applied yet and how long (source time) the oldest of them has waited; null while the
   * snapshot is still being copied.
   */
  async status(): Promise<Record<string, unknown>> {
    const state = await this.#readState()
    const base = { source: this.source.url, phase: state?.phase ?? 'snapshot', applied: state?.applied ?? 0, error: this.#lastError ?? this.#filesError, files: await this.#filesStatus() }
    if (state === null || state.phase === 'snapshot') return { ...base, snapshotTs: state?.snapshotTs ?? null, lag: null }
    let cursor = this.#cursor ?? BigInt(state.deltaCursor!)
    const applied = cursor
    let documents = 0
    let oldest: bigint | null = null
    let head = cursor
    let complete = false
    try {
      for (let i = 0; i < LAG_PAGES; i++) {
        const page = parseStreamingResponse<{ values: Value[]; cursor: bigint; hasMore: boolean }>(await this.#post('/api/document_deltas', { format: 'convex_encoded_json', cursor }))
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
      // (The files as `files` reports them: a listing that finished meanwhile counts next time.)
      caughtUp: this.#caughtUp && documents === 0 && base.files.inSync && base.files.source === base.files.replica,
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

/** A stored file's record as a value of the stream (`_ts` unused: files are not read from the write log). */
function fileValue(component: string, doc: Record<string, JSONValue>, deleted = false): Value {
  return { ...doc, _table: STORAGE, _component: component, _ts: 0n, ...(deleted ? { _deleted: true } : {}) } as unknown as Value
}

/** Whether two documents have the same fields and values (in any order). */
function sameDocument(a: Record<string, JSONValue>, b: Record<string, JSONValue>): boolean {
  const keys = Object.keys(a)
  if (keys.length !== Object.keys(b).length) return false
  return keys.every((k) => Object.hasOwn(b, k) && JSON.stringify(canonical(a[k]!)) === JSON.stringify(canonical(b[k]!)))
}

function canonical(v: JSONValue): JSONValue {
  if (Array.isArray(v)) return v.map(canonical)
  if (v === null || typeof v !== 'object') return v
  return Object.fromEntries(
    Object.keys(v)
      .sort()
      .map((k) => [k, canonical(v[k]!)]),
  )
}
