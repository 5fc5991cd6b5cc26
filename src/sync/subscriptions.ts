/**
 * @module SubscriptionManager: the shared query cache behind every live query.
 *
 * An entry is one (function, args, identity); every session subscribed to the same one shares it,
 * so a change costs one run however many clients watch. Each run records its read set (index key
 * intervals); a published commit marks dirty exactly the entries whose read set contains a key it
 * wrote, and dirty entries are re-run on the next pass. A write outside every read set re-runs
 * nothing.
 *
 * Dirty entries wait in one queue per session (the session that first subscribed to the entry),
 * and runs start round-robin across those queues: at most MAX_RUNS_IN_FLIGHT at once, at most
 * MAX_RUNS_IN_FLIGHT_PER_SESSION of them for one session's queue. A session that subscribes to
 * thousands of distinct queries then waits for its own runs, while another session's query starts
 * as soon as a run finishes. Runs start from setImmediate, so I/O (other sockets, HTTP requests)
 * is served between them. An entry whose last subscriber leaves is dropped from its queue.
 *
 * Invariant: an entry that is not dirty is valid at the latest published timestamp, because every
 * published commit has been checked against its read set — including commits published while it
 * was running (checked against `#log` when the run finishes).
 */
import type { Database } from '../database/database.ts'
import type { PublishedCommit } from '../database/committer.ts'
import { FrozenReadSet, keyString } from '../database/read-set.ts'
import type { FunctionRunner, UdfResult } from '../functions/function-runner.ts'
import { errorText } from '../functions/errors.ts'
import type { JSONValue } from '../values/index.ts'
import { inFieldOrder } from '../values/index.ts'
import type { UserIdentity } from '../auth/auth.ts'
import { flatten } from '../util/flatten.ts'

/** Who a query runs as: part of the cache key. */
export interface QueryIdentity {
  readonly key: string
  readonly admin: boolean
  /** A read-only admin key's identity: it may not write. */
  readonly readOnly?: boolean
  /** The user functions see (`ctx.auth.getUserIdentity()`). */
  readonly user: UserIdentity | null
}

export interface Subscriber {
  /** An entry this subscriber holds has a new result, or became clean again. */
  entryUpdated(entry: QueryEntry): void
}

export class QueryEntry {
  result: UdfResult | null = null
  /** Bumped whenever the result (value, error or log lines) changes. */
  version = 0
  readSet: FrozenReadSet | null = null
  /** The query journal (a paginated query's pinned end cursor), sent with every result. */
  journal: string | null
  dirty = true
  running = false
  /** The run queue this entry waits in (null: not queued). */
  queue: RunQueue | null = null
  readonly subscribers = new Set<Subscriber>()

  constructor(
    readonly key: string,
    readonly path: string,
    readonly args: JSONValue,
    readonly identity: QueryIdentity,
    journal: string | null,
    /** The component whose function this is ('' for the app's; a path only admins may name). */
    readonly componentPath = '',
  ) {
    this.journal = journal
  }
}

/** Published commits kept to check runs that straddle them. */
const LOG_LIMIT = 10_000

/**
 * Query runs in flight at once. Twice the execution slots (8, MAX_CONCURRENT_QUERIES_MUTATIONS in
 * function-runner.ts), so slots never wait for the next run to start; a burst of ten thousand
 * dirty entries then queues as entries rather than as ten thousand pending runs, each holding its
 * promises and arguments (memory the heap keeps after).
 */
const MAX_RUNS_IN_FLIGHT = 16

/**
 * Runs in flight at once for one session's queue: half of them, so that a session with thousands
 * of queries to run leaves room for every other session's, and its runs still fill the 8
 * execution slots when no one else needs them.
 */
const MAX_RUNS_IN_FLIGHT_PER_SESSION = MAX_RUNS_IN_FLIGHT / 2

/** The dirty entries waiting to run on behalf of one session, oldest first. */
class RunQueue {
  readonly entries = new Set<QueryEntry>()
  inFlight = 0
  constructor(readonly owner: Subscriber) {}
}

function resultKey(r: UdfResult): string {
  return r.ok ? `ok:${r.value}:${r.logLines.join('\n')}` : `err:${errorText(r)}:${r.data ?? ''}:${r.logLines.join('\n')}`
}

/** How soon a query run that failed in the backend (not in the query) is tried again. */
const RETRY_AFTER_FAILURE_MS = 1000

export class SubscriptionManager {
  readonly #entries = new Map<string, QueryEntry>()
  readonly #byIndex = new Map<number, Set<QueryEntry>>()
  #log: PublishedCommit[] = []
  /** Commits at or below this ts may have been dropped from `#log`. */
  #logFloor: bigint
  #scheduled = false
  /**
   * Dirty entries not running, one queue per session, in round-robin order (a queue that starts a
   * run goes to the back); a queue is here while it holds entries or has runs in flight.
   */
  readonly #queues = new Map<Subscriber, RunQueue>()
  #inFlight = 0
  /** invalidateAll calls so far: a run that straddles one ran the old functions. */
  #pushes = 0
  /** The most query runs ever in flight at once (at most MAX_RUNS_IN_FLIGHT). */
  runsInFlightPeak = 0
  /** Query runs done so far (for tests and benchmarks: a write outside every read set adds none). */
  runs = 0

  constructor(
    readonly db: Database,
    readonly runner: FunctionRunner,
    /** Told of a failure of the manager itself (a user function's errors are results, not this). */
    readonly onError: (e: unknown) => void = () => {},
  ) {
    this.#logFloor = db.committer.publishedTs
    db.committer.onCommit((batch) => this.#onCommit(batch))
  }

  get size(): number {
    return this.#entries.size
  }

  /** Query runs going on now. */
  get runsInFlight(): number {
    return this.#inFlight
  }

  /** Published commits kept for the runs in flight to be checked against (for tests). */
  get loggedCommits(): number {
    return this.#log.length
  }

  /** Dirty entries waiting for a run, over every session's queue. */
  get runsQueued(): number {
    let n = 0
    for (const queue of this.#queues.values()) n += queue.entries.size
    return n
  }

  subscribe(sub: Subscriber, path: string, args: JSONValue, identity: QueryIdentity, journal: string | null = null, componentPath = ''): QueryEntry {
    // (Arguments in field order: the same query whatever order the client wrote them in, as in Convex.)
    const key = `${identity.key}\u0000${componentPath}\u0000${path}\u0000${JSON.stringify(inFieldOrder(args))}\u0000${journal ?? ''}`
    let entry = this.#entries.get(key)
    if (entry === undefined) {
      // Only a key that is kept is worth a flat copy.
      const kept = flatten(key)
      entry = new QueryEntry(kept, path, args, identity, journal, componentPath)
      this.#entries.set(kept, entry)
      entry.subscribers.add(sub)
      this.#markDirty(entry)
    } else entry.subscribers.add(sub)
    return entry
  }

  unsubscribe(sub: Subscriber, entry: QueryEntry): void {
    entry.subscribers.delete(sub)
    if (entry.subscribers.size === 0 && this.#entries.get(entry.key) === entry) {
      this.#entries.delete(entry.key)
      this.#dequeue(entry)
      this.#unindex(entry)
    }
  }

  /** Marks every entry dirty (after a push: the functions themselves may have changed). */
  invalidateAll(): void {
    this.#pushes++
    for (const entry of this.#entries.values()) this.#markDirty(entry)
  }

  #onCommit(batch: readonly PublishedCommit[]): void {
    if (this.#inFlight === 0) {
      // No run is in flight to check against these commits: a run starts later, on a snapshot
      // that already holds them (or, older than the floor, is taken as stale). Keeping them
      // would only hold every commit's keys (up to LOG_LIMIT of them) until the old generation's
      // next collection.
      this.#log.length = 0
      this.#logFloor = batch[batch.length - 1]!.ts
    } else this.#log.push(...batch)
    if (this.#log.length > LOG_LIMIT) {
      const drop = this.#log.length - LOG_LIMIT
      this.#logFloor = this.#log[drop - 1]!.ts
      this.#log = this.#log.slice(drop)
    }
    for (const commit of batch) {
      for (const w of commit.indexes) {
        const candidates = this.#byIndex.get(w.indexId)
        if (candidates === undefined) continue
        const key = keyString(w.key)
        for (const entry of candidates) {
          if (!entry.dirty && entry.readSet!.contains(w.indexId, key)) this.#markDirty(entry)
        }
      }
    }
  }

  #markDirty(entry: QueryEntry): void {
    entry.dirty = true
    if (!entry.running) this.#enqueue(entry)
    this.#schedule()
  }

  /** Queues a dirty entry for the session that subscribed to it first. */
  #enqueue(entry: QueryEntry): void {
    if (entry.queue !== null) return
    const owner = entry.subscribers.values().next().value
    if (owner === undefined) return
    let queue = this.#queues.get(owner)
    if (queue === undefined) this.#queues.set(owner, (queue = new RunQueue(owner)))
    queue.entries.add(entry)
    entry.queue = queue
  }

  #dequeue(entry: QueryEntry): void {
    const queue = entry.queue
    if (queue === null) return
    entry.queue = null
    queue.entries.delete(entry)
    if (queue.entries.size === 0 && queue.inFlight === 0) this.#queues.delete(queue.owner)
  }

  #schedule(): void {
    if (this.#scheduled) return
    this.#scheduled = true
    setImmediate(() => {
      this.#scheduled = false
      this.#pump()
    })
  }

  /**
   * Starts the next run, if fewer than MAX_RUNS_IN_FLIGHT are running: from the next session's
   * queue in turn, skipping a queue with MAX_RUNS_IN_FLIGHT_PER_SESSION in flight.
   */
  #pump(): void {
    // Stops after a full round of queues that could start nothing.
    let idle = 0
    while (this.#inFlight < MAX_RUNS_IN_FLIGHT && idle < this.#queues.size) {
      const queue: RunQueue = this.#queues.values().next().value!
      // To the back of the round (removed below if it ends up empty and idle).
      this.#queues.delete(queue.owner)
      this.#queues.set(queue.owner, queue)
      let entry: QueryEntry | undefined
      if (queue.inFlight < MAX_RUNS_IN_FLIGHT_PER_SESSION) {
        for (const e of queue.entries) {
          queue.entries.delete(e)
          e.queue = null
          if (e.dirty && !e.running) {
            entry = e
            break
          }
        }
      }
      if (entry === undefined) {
        if (queue.entries.size === 0 && queue.inFlight === 0) this.#queues.delete(queue.owner)
        else idle++
        continue
      }
      this.#start(entry, queue)
      // One run per turn of the event loop: a run (or the isolate it first needs) holds the main
      // thread for a while, and I/O waiting meanwhile goes next.
      if (this.#inFlight < MAX_RUNS_IN_FLIGHT) this.#schedule()
      return
    }
  }

  #start(entry: QueryEntry, queue: RunQueue): void {
    this.#inFlight++
    queue.inFlight++
    if (this.#inFlight > this.runsInFlightPeak) this.runsInFlightPeak = this.#inFlight
    void this.#run(entry)
      .catch(this.onError)
      .finally(() => {
        this.#inFlight--
        queue.inFlight--
        if (queue.entries.size === 0 && queue.inFlight === 0 && this.#queues.get(queue.owner) === queue) this.#queues.delete(queue.owner)
        // Dirty again (a commit or push during the run), even if the run failed: queue it, or its
        // sessions would wait for it forever.
        if (entry.dirty && !entry.running && this.#entries.get(entry.key) === entry) this.#enqueue(entry)
        // The next runs start from the event loop, not this run's promise chain: I/O goes first.
        this.#schedule()
      })
  }

  #index(entry: QueryEntry): void {
    if (entry.readSet === null) return
    for (const indexId of entry.readSet.indexIds) {
      let set = this.#byIndex.get(indexId)
      if (set === undefined) this.#byIndex.set(indexId, (set = new Set()))
      set.add(entry)
    }
  }

  #unindex(entry: QueryEntry): void {
    if (entry.readSet === null) return
    for (const indexId of entry.readSet.indexIds) {
      const set = this.#byIndex.get(indexId)
      set?.delete(entry)
      if (set?.size === 0) this.#byIndex.delete(indexId)
    }
  }

  /** Whether a commit published after `ts` wrote into `readSet` (or we can no longer tell). */
  #stale(readSet: FrozenReadSet | null, ts: bigint): boolean {
    if (readSet === null) return false
    if (ts < this.#logFloor) return true
    for (let i = this.#log.length - 1; i >= 0; i--) {
      const c = this.#log[i]!
      if (c.ts <= ts) break
      for (const w of c.indexes) if (readSet.contains(w.indexId, keyString(w.key))) return true
    }
    return false
  }

  async #run(entry: QueryEntry): Promise<void> {
    entry.running = true
    entry.dirty = false
    const pushes = this.#pushes
    this.runs++
    let outcome: Awaited<ReturnType<FunctionRunner['runSubscribedQuery']>>
    try {
      outcome = await this.runner.runSubscribedQuery(entry.path, entry.args, { admin: entry.identity.admin, identity: entry.identity.user, componentPath: entry.componentPath }, entry.journal)
    } catch (e) {
      // Not the query's failure but the backend's (the database unreachable, say): subscribers
      // keep what they have, and the query runs again in a moment.
      entry.running = false
      this.onError(e)
      setTimeout(() => {
        if (this.#entries.get(entry.key) === entry) this.#markDirty(entry)
      }, RETRY_AFTER_FAILURE_MS).unref()
      return
    } finally {
      entry.running = false
    }
    const live = this.#entries.get(entry.key) === entry
    if (live) this.#unindex(entry)
    entry.readSet = outcome.readSet === null ? null : new FrozenReadSet(outcome.readSet)
    if (live) this.#index(entry)
    entry.dirty = pushes !== this.#pushes || this.#stale(entry.readSet, outcome.ts)
    if (entry.result === null || resultKey(entry.result) !== resultKey(outcome.result) || entry.journal !== outcome.journal) {
      entry.journal = outcome.journal
      entry.result = outcome.result
      entry.version++
    }
    for (const sub of entry.subscribers) {
      try {
        sub.entryUpdated(entry)
      } catch (e) {
        this.onError(e) // one session's failure must not keep the others from their update
      }
    }
  }
}
