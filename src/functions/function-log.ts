/**
 * @module FunctionLog: a bounded in-memory ring of recent function executions, for
 * `npx convex logs` (`GET /api/stream_function_logs?cursor=N`, long-polled).
 *
 * Each entry gets a cursor: a number that only grows, close to the wall clock in ms (like
 * Convex's), so a CLI that kept its cursor across a backend restart still sees new entries.
 */
import { uniqueHexId } from '../util/unique-id.ts'
import { MAX_LOG_LINE_LENGTH, TRUNCATED_LINE_SUFFIX } from '../../runtime/inspect.ts'

export type UdfType = 'Query' | 'Mutation' | 'Action' | 'HttpAction'

export interface StructuredLogLine {
  messages: string[]
  level: string
  timestamp: number
  isTruncated: boolean
}

/** A Completion entry as the CLI reads it (`timestamp`/`executionTime` in seconds). */
export interface CompletionEntry {
  kind: 'Completion'
  udfType: UdfType
  /** `module:function` without `.js` (Convex's stripped udf path), or `METHOD /path` for an HTTP action. */
  identifier: string
  /** The component the function belongs to: null for the app, else its path (`counter`, `a/b`). */
  componentPath: string | null
  logLines: StructuredLogLine[]
  timestamp: number
  executionTimestamp: number
  executionTime: number
  error: string | null
  success: unknown
  requestId: string
  executionId: string
  caller: string
  environment: 'isolate'
  cachedResult: boolean
  identityType: string
  willRetry: boolean
  usageStats: { databaseReadBytes: number; databaseWriteBytes: number; databaseReadDocuments: number; storageReadBytes: number; storageWriteBytes: number; vectorIndexReadBytes: number; vectorIndexWriteBytes: number; memoryUsedMb: number }
}

export interface Execution {
  udfType: UdfType
  identifier: string
  /** The component's path ('' or absent: the app's own function). */
  component?: string
  /** Wall-clock start, ms. */
  startedMs: number
  /** Duration, ms. */
  durationMs: number
  /** `[LEVEL] message` lines as the isolate reports them. */
  logLines: string[]
  error: string | null
  caller?: string
  requestId?: string
}


/**
 * Splits `[LOG] 'hello'` into level and message (a line cut at the length limit is `isTruncated`,
 * its suffix not part of the message, as Convex's structured line); other text is kept whole at
 * level LOG.
 */
export function structuredLogLine(line: string, timestamp: number): StructuredLogLine {
  const m = /^\[([A-Z]+)\] ([\s\S]*)$/.exec(line)
  if (m === null) return { messages: [line], level: 'LOG', timestamp, isTruncated: false }
  // (A cut line's messages fill the limit to within a character, at most 3 bytes short.)
  const kept = m[2]!.endsWith(TRUNCATED_LINE_SUFFIX) ? m[2]!.slice(0, -TRUNCATED_LINE_SUFFIX.length) : null
  const truncated = kept !== null && Buffer.byteLength(kept) >= MAX_LOG_LINE_LENGTH - 3
  return { messages: [truncated ? kept : m[2]!], level: m[1]!, timestamp, isTruncated: truncated }
}

/** Entries beyond capacity dropped at once, so trimming is not a copy of the whole ring per call. */
const TRIM_SLACK = 1024

interface Recorded {
  cursor: number
  execution: Execution
  requestId: string
  executionId: string
  /** Characters of its log lines and error (what holding it costs). */
  chars: number
}

export class FunctionLog {
  /** Compact records; the CLI's entry objects are built only when someone reads them. */
  readonly #entries: Recorded[] = []
  #last = 0
  #waiters = new Set<() => void>()

  /** Executions recorded since start-up (the Health page's rate: `/api/concave/metrics`). */
  executions = 0
  /** Of which failed. */
  failures = 0
  /** Their durations summed, ms. */
  executionMs = 0

  /** Characters held by the entries kept. */
  #chars = 0

  /**
   * Keeps the last `capacity` entries, and fewer when their log lines come to more than
   * `maxChars` characters in all (the newest is always kept): a function that logs 256 lines of
   * 32 KB each time cannot make the log hold gigabytes.
   */
  constructor(
    readonly capacity = 10_000,
    readonly maxChars = 32 * 1024 * 1024,
  ) {}

  /** The cursor of the newest entry (0 when there is none). */
  get cursor(): number {
    return this.#last
  }

  get size(): number {
    return Math.min(this.#entries.length, this.capacity)
  }

  record(e: Execution): void {
    this.executions++
    if (e.error !== null) this.failures++
    this.executionMs += e.durationMs
    const endMs = e.startedMs + e.durationMs
    this.#last = Math.max(this.#last + 1, Math.floor(endMs))
    let chars = e.error?.length ?? 0
    for (const line of e.logLines) chars += line.length
    this.#entries.push({ cursor: this.#last, execution: e, requestId: e.requestId ?? uniqueHexId(), executionId: uniqueHexId(), chars })
    this.#chars += chars
    let drop = this.#entries.length > this.capacity + TRIM_SLACK ? this.#entries.length - this.capacity : 0
    let held = this.#chars
    for (let i = 0; i < drop; i++) held -= this.#entries[i]!.chars
    while (held > this.maxChars && drop < this.#entries.length - 1) held -= this.#entries[drop++]!.chars
    if (drop > 0) {
      this.#entries.splice(0, drop)
      this.#chars = held
    }
    if (this.#waiters.size === 0) return
    const waiters = [...this.#waiters]
    this.#waiters.clear()
    for (const wake of waiters) wake()
  }

  /** Entries newer than `cursor`, oldest first (at most the last `capacity`). */
  since(cursor: number): { entries: CompletionEntry[]; newCursor: number } {
    const first = Math.max(0, this.#entries.length - this.capacity)
    let i = this.#entries.length
    while (i > first && this.#entries[i - 1]!.cursor > cursor) i--
    const entries = this.#entries.slice(i).map(completionEntry)
    return { entries, newCursor: entries.length > 0 ? this.#last : Math.max(cursor, this.#last) }
  }

  /**
   * Entries newer than `cursor`; if there are none, waits up to `timeoutMs` for some (or for
   * `signal` to abort) and answers whatever is there then.
   */
  async poll(cursor: number, timeoutMs: number, signal?: AbortSignal): Promise<{ entries: CompletionEntry[]; newCursor: number }> {
    const now = this.since(cursor)
    if (now.entries.length > 0 || timeoutMs <= 0 || signal?.aborted === true) return now
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer)
        this.#waiters.delete(done)
        signal?.removeEventListener('abort', done)
        resolve()
      }
      const timer = setTimeout(done, timeoutMs)
      this.#waiters.add(done)
      signal?.addEventListener('abort', done)
    })
    return this.since(cursor)
  }
}

function completionEntry({ execution: e, requestId, executionId }: Recorded): CompletionEntry {
  const endMs = e.startedMs + e.durationMs
  return {
    kind: 'Completion',
    udfType: e.udfType,
    identifier: e.identifier,
    componentPath: e.component === undefined || e.component === '' ? null : e.component,
    logLines: e.logLines.map((l) => structuredLogLine(l, endMs)),
    timestamp: endMs / 1000,
    executionTimestamp: e.startedMs / 1000,
    executionTime: e.durationMs / 1000,
    error: e.error,
    success: null,
    requestId,
    executionId,
    caller: e.caller ?? 'Tester',
    environment: 'isolate',
    cachedResult: false,
    identityType: 'unknown',
    willRetry: false,
    usageStats: { databaseReadBytes: 0, databaseWriteBytes: 0, databaseReadDocuments: 0, storageReadBytes: 0, storageWriteBytes: 0, vectorIndexReadBytes: 0, vectorIndexWriteBytes: 0, memoryUsedMb: 0 },
  }
}
