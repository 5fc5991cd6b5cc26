/**
 * @module Semaphore: at most `size` holders at once. Waiters are queued by source (HTTP requests,
 * sync sockets, scheduled jobs…) and a freed slot goes to the sources in turn, each source's
 * waiters in arrival order: a source that floods waits behind itself, not in front of the others.
 * A freed slot is handed to the next waiter from the event loop (setImmediate), so a long queue
 * of calls lets I/O in between them instead of running back to back on one promise chain.
 */

export class Semaphore {
  #free: number
  /** Waiting sources in turn order, each with its waiters; a source is here while it has waiters. */
  readonly #queues = new Map<string, (() => void)[]>()
  #waiting = 0

  constructor(readonly size: number) {
    this.#free = size
  }

  /** Waits for a slot; resolves with the function that gives it back. */
  async acquire(source = ''): Promise<() => void> {
    if (this.#free > 0) this.#free--
    else {
      await new Promise<void>((resolve) => {
        const queue = this.#queues.get(source)
        if (queue === undefined) this.#queues.set(source, [resolve])
        else queue.push(resolve)
        this.#waiting++
      })
    }
    let released = false
    return () => {
      if (released) return
      released = true
      this.#handOver()
    }
  }

  #handOver(): void {
    const first = this.#queues.entries().next()
    if (first.done === true) {
      this.#free++
      return
    }
    const [source, queue] = first.value
    const next = queue.shift()!
    this.#waiting--
    // The source goes to the back of the turn order (or leaves it when it has no one waiting).
    this.#queues.delete(source)
    if (queue.length > 0) this.#queues.set(source, queue)
    setImmediate(next)
  }

  /** Calls waiting for a slot, over all sources. */
  get waiting(): number {
    return this.#waiting
  }
}
