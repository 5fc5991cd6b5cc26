/** @module Semaphore: at most `size` holders at once; the rest wait in arrival order. */

export class Semaphore {
  #free: number
  readonly #waiting: (() => void)[] = []

  constructor(readonly size: number) {
    this.#free = size
  }

  /** Waits for a slot; resolves with the function that gives it back. */
  async acquire(): Promise<() => void> {
    if (this.#free > 0) this.#free--
    else await new Promise<void>((resolve) => this.#waiting.push(resolve))
    let released = false
    return () => {
      if (released) return
      released = true
      const next = this.#waiting.shift()
      if (next !== undefined) next()
      else this.#free++
    }
  }

  get waiting(): number {
    return this.#waiting.length
  }
}
