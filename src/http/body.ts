/**
 * @module Reading request bodies with a size limit, chunk by chunk, so an oversized body is
 * refused as soon as it passes the limit instead of after it is all in memory; and the budget
 * that bounds how many bytes of request bodies the process holds at once.
 */
import { HttpError } from './errors.ts'

/**
 * Bytes of request bodies held at once, over every request that buffers its body (function calls,
 * HTTP actions). A request takes its body's bytes before reading it (its declared length, or
 * chunk by chunk) and gives them back when it has been answered; one that does not fit is
 * answered 503 with Retry-After. A body alone always fits, so a budget smaller than the largest
 * body allowed still lets it through when nothing else is held.
 */
export class BodyBudget {
  #used = 0

  constructor(readonly limit: number) {}

  /** Bytes held now. */
  get used(): number {
    return this.#used
  }

  /** A hold for one request: what it takes is given back by `release()`. */
  hold(): BodyHold {
    return new BodyHold(this)
  }

  /** @internal */
  take(n: number): boolean {
    if (this.#used > 0 && this.#used + n > this.limit) return false
    this.#used += n
    return true
  }

  /** @internal */
  give(n: number): void {
    this.#used -= n
  }
}

/** What one request holds of the budget. */
export class BodyHold {
  #held = 0

  constructor(readonly budget: BodyBudget) {}

  /** Takes `n` more bytes, or throws the 503 when they do not fit. */
  take(n: number): void {
    if (n <= 0) return
    if (!this.budget.take(n)) throw overBudget(this.budget.limit)
    this.#held += n
  }

  release(): void {
    this.budget.give(this.#held)
    this.#held = 0
  }
}

/**
 * The answer to a request whose body does not fit in the budget: 503, to be retried shortly. The
 * body is read and dropped first when it is within its limit (`drained`), so that the client
 * reads the answer rather than a reset connection, and the connection stays open.
 */
export class BodyBudgetError extends HttpError {
  readonly retryAfterSeconds = 1
  drained = false
}

function overBudget(limit: number): BodyBudgetError {
  const mb = Math.round((limit / (1024 * 1024)) * 100) / 100
  return new BodyBudgetError(503, 'Overloaded', `The server is holding as many request bodies as it may at once (${mb} MiB, CONCAVE_REQUEST_BODY_BUDGET_MB); try again shortly`)
}

/** Reads the rest of `chunks` and drops it, up to `limit` bytes: whether it ended within them. */
async function drop(chunks: AsyncIterator<Uint8Array>, limit: number): Promise<boolean> {
  let size = 0
  for (;;) {
    const { done, value } = await chunks.next()
    if (done === true) return true
    size += value.byteLength
    if (size > limit) {
      await chunks.return?.()
      return false
    }
  }
}

/** Reads and drops the body (up to `limit` bytes), then throws `refused`. */
export async function refuseBody(stream: ReadableStream<Uint8Array> | null, limit: number, refused: BodyBudgetError): Promise<never> {
  refused.drained = stream === null || (await drop(stream[Symbol.asyncIterator](), limit))
  throw refused
}

/**
 * The whole stream as one Buffer (empty for no body), or null once it passes `limit` bytes. Each
 * chunk is taken from `hold` as it arrives (throwing its 503 when the budget is spent).
 */
export async function readLimited(stream: ReadableStream<Uint8Array> | null, limit: number, hold?: BodyHold): Promise<Buffer | null> {
  const chunks: Buffer[] = []
  let size = 0
  if (stream !== null) {
    const reader = stream[Symbol.asyncIterator]()
    for (;;) {
      const { done, value: chunk } = await reader.next()
      if (done === true) break
      size += chunk.byteLength
      if (size > limit) {
        await reader.return?.()
        return null
      }
      try {
        hold?.take(chunk.byteLength)
      } catch (e) {
        if (!(e instanceof BodyBudgetError)) throw e
        chunks.length = 0
        e.drained = await drop(reader, limit - size)
        throw e
      }
      chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))
    }
  }
  return Buffer.concat(chunks, size)
}
