/**
 * @module HistoryRetention: deletes the write log's old revisions in the background.
 *
 * What reads the write log: only historical views (`/api/query_at_ts`, `HistoricalSnapshot`),
 * once, while they open. Everything else reads the latest documents: transactions, pagination
 * (a cursor is a position in an index, read again at the latest commit) and exports read through
 * SQLite snapshots, whose view SQLite itself keeps whatever the writer deletes meanwhile; the
 * committer checks conflicts against the recent commits it keeps in memory.
 *
 * So the horizon (see `Persistence.pruneHistory`) may move up to the oldest of: now minus the
 * retention window, the latest published commit, and the timestamp of any historical view being
 * opened. A `query_at_ts` before the horizon is refused (Convex's out-of-retention error).
 *
 * Deletion runs in small batches, one short SQLite transaction per macrotask, so commits go on
 * in between; a pass starts a second after start-up or a commit, and is repeated while revisions
 * remain that will leave the window (when the oldest of them does: at least a second and at most
 * a minute later).
 */
import type { Persistence } from '../storage/persistence.ts'

/**
 * The default window: Convex keeps index history readable (INDEX_RETENTION_DELAY) for 4 minutes,
 * and answers a `query_at_ts` further back than its transaction window (10 s) as out of retention.
 */
export const DEFAULT_HISTORY_RETENTION_MS = 4 * 60 * 1000

/** Revisions examined per transaction (each deletes at most two): a millisecond or two of writer time. */
const BATCH = 256
const MIN_DELAY_MS = 1000
const MAX_DELAY_MS = 60_000

export interface HistoryRetentionOptions {
  /** Revisions stay at least this long (ms) after they were superseded. */
  readonly windowMs: number
  /** The wall clock in ms (injected by tests). */
  readonly now?: () => number
  /** Revisions examined per batch. */
  readonly batch?: number
  /** Called when a pass fails (it is retried a minute later). */
  readonly onError?: (e: unknown) => void
}

export class HistoryRetention {
  readonly windowMs: number
  readonly #now: () => number
  readonly #batch: number
  readonly #onError: (e: unknown) => void
  #timer: NodeJS.Timeout | null = null
  #running: Promise<bigint | null> | null = null
  #closed = false
  /** Revisions deleted since start. */
  deleted = 0

  constructor(
    readonly persistence: Persistence,
    /** The oldest timestamp a historical view being opened reads at (undefined: none). */
    readonly readers: () => bigint | undefined,
    /** The latest published commit timestamp. */
    readonly latest: () => bigint,
    opts: HistoryRetentionOptions,
  ) {
    this.windowMs = opts.windowMs
    this.#now = opts.now ?? Date.now
    this.#batch = opts.batch ?? BATCH
    this.#onError = opts.onError ?? (() => {})
  }

  /** The horizon the store may move to now. */
  target(): bigint {
    let target = BigInt(Math.floor(this.#now() - this.windowMs)) * 1_000_000n
    const latest = this.latest()
    if (latest < target) target = latest
    const reader = this.readers()
    if (reader !== undefined && reader < target) target = reader
    return target < 0n ? 0n : target
  }

  /**
   * Prunes up to the target, one batch per macrotask (the target is taken again before each),
   * and resolves with the timestamp of the oldest revision left to examine (null: none). A pass
   * already running is joined.
   */
  run(): Promise<bigint | null> {
    this.#running ??= this.#pass().finally(() => (this.#running = null))
    return this.#running
  }

  async #pass(): Promise<bigint | null> {
    for (;;) {
      if (this.#closed) return null
      const target = this.target()
      const r = await this.persistence.pruneHistory(target, this.#batch)
      this.deleted += r.deleted
      if (r.pending === null || r.pending > target) return r.pending
      await new Promise<void>((resolve) => setImmediate(resolve))
    }
  }

  #paused = false

  /**
   * Pauses or resumes pruning: on a store shared by several processes, one of them prunes (the
   * one holding the background lease).
   */
  setPaused(paused: boolean): void {
    this.#paused = paused
    if (paused && this.#timer !== null) {
      clearTimeout(this.#timer)
      this.#timer = null
    }
    if (!paused) this.committed()
  }

  /** A batch was committed: a pass starts a second later, unless one is already due. */
  committed(): void {
    if (this.#paused) return
    if (this.#timer === null && this.#running === null) this.#schedule(MIN_DELAY_MS)
  }

  #schedule(ms: number): void {
    if (this.#closed) return
    this.#timer = setTimeout(() => void this.#tick(), ms)
    this.#timer.unref()
  }

  async #tick(): Promise<void> {
    this.#timer = null
    let next: number | null
    try {
      const pending = await this.run()
      // When the oldest revision left leaves the window (sooner if a reader held it back).
      next = pending === null ? null : Number(pending / 1_000_000n) + this.windowMs - this.#now()
    } catch (e) {
      this.#onError(e)
      next = MAX_DELAY_MS
    }
    if (next !== null && this.#timer === null && !this.#paused) this.#schedule(Math.min(MAX_DELAY_MS, Math.max(MIN_DELAY_MS, next)))
  }

  /** Stops: no batch starts after the one in flight, which this waits for. */
  async close(): Promise<void> {
    this.#closed = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    await this.#running?.catch(() => {})
  }
}
