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
 */

export interface ResponseHead {
  status: number
  statusText: string
  headers: [string, string][]
}

/** The syscalls an HTTP action's bodies use (see actionSyscalls). */
export interface HttpStreamOps {
  readRequest(): Promise<Uint8Array | null>
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

  constructor(requestBody: ReadableStream<Uint8Array> | null, onHead: (head: ResponseHead, body: ReadableStream<Uint8Array>) => void) {
    this.#request = requestBody?.getReader() ?? null
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
    controller.enqueue(chunk)
    if ((controller.desiredSize ?? 0) <= 0) await new Promise<void>((resolve) => (this.#wantMore = resolve))
    if (this.#cancelled !== null) throw this.#cancelled
  }

  /**
   * Once the action has finished: a streamed response body is closed (or errored if it failed),
   * and whatever of the request body it didn't read is let go.
   */
  finish(error: string | null): void {
    void this.#request?.cancel().catch(() => {})
    if (this.#controller === null || this.#cancelled !== null) return
    if (error === null) this.#controller.close()
    else this.#controller.error(new Error(error))
  }
}
