/**
 * @module The host end of an HTTP action's streamed bodies.
 *
 * A request body of unknown length (chunked) is handed to the sandbox chunk by chunk as the action
 * reads `request.body` (`concave/httpRequestRead`), so the action starts before the body has
 * arrived. A response whose body is a stream goes out as it is produced: the sandbox reports the
 * head (`concave/httpResponseHead`), which answers the HTTP request right away with a streaming
 * body, then each chunk (`concave/httpResponseWrite`, answered once the client side wants more, so
 * a slow reader slows the action down instead of filling memory). A client that goes away makes
 * the next write fail, which ends the action.
 *
 * Convex's limit on a response body (20 MiB) is kept as Convex keeps it: a chunk that would take
 * the body past it is dropped, with an error in the action's log, and the action goes on (a later
 * chunk that still fits goes out). A body that is not a stream is one chunk.
 */
import { limitWarning } from '../database/transaction.ts'
import type { BytesRef } from '../../runtime/protocol.ts'
import { Staging } from './staging.ts'

/** The most bytes of body an HTTP action's response sends (Convex's HTTP_ACTION_BODY_LIMIT). */
export const MAX_HTTP_ACTION_RESPONSE = 20 * 1024 * 1024
const RESPONSE_TOO_LARGE = '[ERROR] HttpResponseTooLarge: HTTP actions support responses up to 20 MiB'

export interface ResponseHead {
  status: number
  statusText: string
  headers: [string, string][]
}

export interface WholeResponse extends ResponseHead {
  body: Buffer
}

/** The syscalls an HTTP action's bodies use (see actionSyscalls). */
export interface HttpStreamOps {
  readRequest(): Promise<Uint8Array | null>
  /** Settles when the client goes away before the response is done (never otherwise). */
  aborted(): Promise<void>
  head(head: ResponseHead): void
  write(chunk: Uint8Array): Promise<void>
}

export class HttpActionStreams implements HttpStreamOps {
  readonly #request: ReadableStreamDefaultReader<Uint8Array> | null
  readonly #onHead: (head: ResponseHead, body: ReadableStream<Uint8Array>) => void
  #controller: ReadableStreamDefaultController<Uint8Array> | null = null
  /** Resolves a write that waits for the client side to want more. */
  #wantMore: (() => void) | null = null
  #cancelled: Error | null = null
  /** Bytes of response body sent. */
  #sent = 0
  /** Error lines for chunks the limit dropped. */
  readonly #dropped: string[] = []
  #whole: WholeResponse | null = null
  /** Where the action's bodies and other bytes cross between host and sandbox. */
  readonly staging = new Staging()

  readonly #signal: AbortSignal | undefined

  /** `signal`: aborts when the client goes away before the response is done. */
  constructor(requestBody: ReadableStream<Uint8Array> | null, onHead: (head: ResponseHead, body: ReadableStream<Uint8Array>) => void, signal?: AbortSignal) {
    this.#request = requestBody?.getReader() ?? null
    this.#signal = signal
    this.#onHead = onHead
  }

  /** Whether the response head went out (the outcome then only ends the body). */
  get streaming(): boolean {
    return this.#controller !== null
  }

  async readRequest(): Promise<Uint8Array | null> {
    if (this.#request === null) return null
    const { done, value } = await this.#request.read()
    return done ? null : value
  }

  aborted(): Promise<void> {
    const signal = this.#signal
    if (signal === undefined) return new Promise(() => {})
    if (signal.aborted) return Promise.resolve()
    return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))
  }

  head(head: ResponseHead): void {
    if (this.#controller !== null) throw new Error('The response head was already sent')
    const body = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.#controller = controller
        },
        pull: () => {
          this.#wantMore?.()
          this.#wantMore = null
        },
        cancel: () => {
          this.#cancelled = new Error('The client closed the connection')
          this.#wantMore?.()
          this.#wantMore = null
        },
      },
      { highWaterMark: 1 },
    )
    this.#onHead(head, body)
  }

  async write(chunk: Uint8Array): Promise<void> {
    const controller = this.#controller
    if (controller === null) throw new Error('The response head was not sent')
    if (this.#cancelled !== null) throw this.#cancelled
    if (!this.#fits(chunk.length)) return
    controller.enqueue(chunk)
    if ((controller.desiredSize ?? 0) <= 0) await new Promise<void>((resolve) => (this.#wantMore = resolve))
    if (this.#cancelled !== null) throw this.#cancelled
  }

  /**
   * The action's whole (not streamed) response, from the function's value (read once): its body
   * goes out as one chunk, so past the limit it goes out empty.
   */
  response(value: string): WholeResponse {
    if (this.#whole === null) {
      const r = JSON.parse(value) as ResponseHead & { body: BytesRef }
      const body = this.staging.take(r.body)
      this.#whole = { status: r.status, statusText: r.statusText, headers: r.headers, body: this.#fits(body.length) ? body : Buffer.alloc(0) }
    }
    return this.#whole
  }

  /**
   * The lines the action's log gets for its response body, in Convex's order: an error for each
   * chunk dropped, then the warning for a body near the limit.
   */
  logLines(): string[] {
    const near = limitWarning('Large response returned from an HTTP action', this.#sent, MAX_HTTP_ACTION_RESPONSE, ' bytes')
    return near === null ? [...this.#dropped] : [...this.#dropped, near]
  }

  #fits(n: number): boolean {
    if (this.#sent + n > MAX_HTTP_ACTION_RESPONSE) {
      this.#dropped.push(RESPONSE_TOO_LARGE)
      return false
    }
    this.#sent += n
    return true
  }

  /**
   * Once the action has finished: a streamed response body is closed, ended cleanly even when the
   * action failed after its head went out (as Convex ends it: the failure is the log's), and
   * whatever of the request body it didn't read is let go.
   */
  finish(): void {
    void this.#request?.cancel().catch(() => {})
    // (A request body the action never read is let go with the rest of what was staged.)
    this.staging.clear()
    if (this.#controller === null || this.#cancelled !== null) return
    this.#controller.close()
  }
}
