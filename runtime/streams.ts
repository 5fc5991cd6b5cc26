/**
 * @module Streams (the WHATWG Streams standard, without byte streams): ReadableStream,
 * WritableStream, TransformStream, and the TextEncoderStream/TextDecoderStream built on them.
 */
import { AbortControllerPolyfill, type AbortSignalPolyfill } from './dom.ts'
import { TextDecoderPolyfill, TextEncoderPolyfill } from './polyfills.ts'

type StreamSource = {
  start?: (controller: StreamController) => unknown
  pull?: (controller: StreamController) => unknown
  cancel?: (reason?: unknown) => unknown
}
type StreamController = { enqueue(chunk: unknown): void; close(): void; error(e?: unknown): void; readonly desiredSize: number | null }
/** A queuing strategy: how much may wait in a queue (`highWaterMark`), counted by `size`. */
export type QueuingStrategy = { highWaterMark?: number; size?: (chunk: any) => number }

function strategyOf(strategy: QueuingStrategy | undefined, defaultHighWaterMark: number): { hwm: number; size: (chunk: unknown) => number } {
  const hwm = strategy?.highWaterMark === undefined ? defaultHighWaterMark : Number(strategy.highWaterMark)
  if (Number.isNaN(hwm) || hwm < 0) throw new RangeError('Invalid highWaterMark')
  const size = strategy?.size
  return { hwm, size: typeof size === 'function' ? (chunk) => Number(size(chunk)) : () => 1 }
}

type Reader = { read(): Promise<{ done: boolean; value: any }>; releaseLock(): void; cancel(reason?: unknown): Promise<void>; readonly closed: Promise<void> }
type PipeOptions = { preventClose?: boolean; preventAbort?: boolean; preventCancel?: boolean; signal?: AbortSignalPolyfill }

/**
 * A WHATWG ReadableStream without byte streams: an underlying source's start/pull/cancel, a
 * queuing strategy (for `desiredSize`), a default reader, async iteration, tee, pipeTo and
 * pipeThrough. The source is pulled while a read waits for a chunk (one pull at a time).
 */
export class ReadableStreamPolyfill {
  #queue: unknown[] = []
  #queueSize = 0
  readonly #strategy: { hwm: number; size: (chunk: unknown) => number }
  #closedWaiters: { resolve: () => void; reject: (e: unknown) => void }[] = []
  #state: 'readable' | 'closed' | 'errored' = 'readable'
  #error: unknown
  #waiting: { resolve: (r: { done: boolean; value: unknown }) => void; reject: (e: unknown) => void }[] = []
  #pulling = false
  #started: Promise<void>
  #locked = false
  #source: StreamSource
  #controller: StreamController
  constructor(source: StreamSource = {}, strategy?: QueuingStrategy) {
    this.#source = source ?? {}
    this.#strategy = strategyOf(strategy, 1)
    const self = this
    this.#controller = {
      enqueue(chunk) {
        if (self.#state !== 'readable') throw new TypeError('The stream is not in a state that permits enqueue')
        const waiter = self.#waiting.shift()
        if (waiter !== undefined) waiter.resolve({ done: false, value: chunk })
        else {
          self.#queue.push(chunk)
          self.#queueSize += self.#strategy.size(chunk)
        }
      },
      close() {
        if (self.#state !== 'readable') throw new TypeError('The stream is not in a state that permits close')
        self.#state = 'closed'
        for (const w of self.#waiting.splice(0)) w.resolve({ done: true, value: undefined })
        for (const w of self.#closedWaiters.splice(0)) w.resolve()
      },
      error(e) {
        if (self.#state !== 'readable') return
        self.#state = 'errored'
        self.#error = e
        self.#queue = []
        self.#queueSize = 0
        for (const w of self.#waiting.splice(0)) w.reject(e)
        for (const w of self.#closedWaiters.splice(0)) w.reject(e)
      },
      get desiredSize() {
        return self.#state === 'errored' ? null : self.#state === 'closed' ? 0 : self.#strategy.hwm - self.#queueSize
      },
    }
    // start runs synchronously, as in the standard (a source may keep its controller from it).
    let started: unknown
    try {
      started = source.start?.(this.#controller)
    } catch (e) {
      this.#controller.error(e)
    }
    this.#started = Promise.resolve(started).then(
      () => undefined,
      (e) => this.#controller.error(e),
    )
  }
  get locked(): boolean {
    return this.#locked
  }
  /** @internal Whether anything has read from (or cancelled) the stream. */
  _disturbed = false
  /** @internal */
  async _read(): Promise<{ done: boolean; value: unknown }> {
    this._disturbed = true
    await this.#started
    if (this.#queue.length > 0) {
      const value = this.#queue.shift()
      this.#queueSize = this.#queue.length === 0 ? 0 : this.#queueSize - this.#strategy.size(value)
      return { done: false, value }
    }
    if (this.#state === 'closed') return { done: true, value: undefined }
    if (this.#state === 'errored') throw this.#error
    const next = new Promise<{ done: boolean; value: unknown }>((resolve, reject) => this.#waiting.push({ resolve, reject }))
    void this.#pullWhileWaiting()
    return next
  }
  /** Calls the source's `pull` one at a time for as long as a read is waiting for a chunk. */
  async #pullWhileWaiting(): Promise<void> {
    if (this.#pulling || this.#source.pull === undefined) return
    this.#pulling = true
    try {
      while (this.#waiting.length > 0 && this.#state === 'readable') await this.#source.pull(this.#controller)
    } catch (e) {
      this.#controller.error(e)
    } finally {
      this.#pulling = false
    }
  }
  /** @internal */
  async _cancel(reason?: unknown): Promise<void> {
    this._disturbed = true
    if (this.#state !== 'readable') return
    this.#state = 'closed'
    this.#queue = []
    this.#queueSize = 0
    for (const w of this.#waiting.splice(0)) w.resolve({ done: true, value: undefined })
    for (const w of this.#closedWaiters.splice(0)) w.resolve()
    await this.#source.cancel?.(reason)
  }
  /** @internal Settles when the stream closes or errors. */
  _closed(): Promise<void> {
    if (this.#state === 'closed') return Promise.resolve()
    if (this.#state === 'errored') return Promise.reject(this.#error)
    return new Promise<void>((resolve, reject) => this.#closedWaiters.push({ resolve, reject }))
  }
  getReader(options?: { mode?: string }): Reader {
    if (options?.mode !== undefined) throw new TypeError(`Byte streams are not supported: getReader({ mode: '${String(options.mode)}' })`)
    if (this.#locked) throw new TypeError('ReadableStream is locked')
    this.#locked = true
    let released = false
    const check = () => {
      if (released) throw new TypeError('The reader has been released')
    }
    const closed = this._closed()
    closed.catch(() => {})
    return {
      closed,
      read: async () => {
        check()
        return this._read()
      },
      releaseLock: () => {
        released = true
        this.#locked = false
      },
      cancel: async (reason?: unknown) => {
        check()
        await this._cancel(reason)
      },
    }
  }
  async cancel(reason?: unknown): Promise<void> {
    if (this.#locked) throw new TypeError('Cannot cancel a locked ReadableStream')
    await this._cancel(reason)
  }
  async *[Symbol.asyncIterator](): AsyncGenerator<any> {
    const reader = this.getReader()
    try {
      while (true) {
        const { done, value } = await reader.read()
        if (done) return
        yield value
      }
    } finally {
      reader.releaseLock()
    }
  }
  values(): AsyncGenerator<any> {
    return this[Symbol.asyncIterator]()
  }
  /** A stream of an iterable's (or async iterable's) values. */
  static from(iterable: Iterable<unknown> | AsyncIterable<unknown>): ReadableStreamPolyfill {
    const asyncIt = (iterable as AsyncIterable<unknown>)?.[Symbol.asyncIterator]
    const syncIt = (iterable as Iterable<unknown>)?.[Symbol.iterator]
    if (typeof asyncIt !== 'function' && typeof syncIt !== 'function') throw new TypeError('ReadableStream.from: the argument is not iterable')
    const it = typeof asyncIt === 'function' ? (asyncIt.call(iterable) as AsyncIterator<unknown>) : (syncIt!.call(iterable) as Iterator<unknown>)
    return new ReadableStreamPolyfill(
      {
        async pull(controller) {
          const r = await it.next()
          if (r.done === true) controller.close()
          else controller.enqueue(await r.value)
        },
        async cancel(reason) {
          await it.return?.(reason)
        },
      },
      { highWaterMark: 0 },
    )
  }
  /**
   * Writes every chunk to `dest` and closes it at the end; an error on either side aborts the
   * other (unless prevented), and `signal` stops the pipe with its reason.
   */
  pipeTo(dest: WritableStreamPolyfill, options: PipeOptions = {}): Promise<void> {
    if (this.#locked) return Promise.reject(new TypeError('Cannot pipe a locked ReadableStream'))
    if (!(dest instanceof WritableStreamPolyfill)) return Promise.reject(new TypeError("Failed to execute 'pipeTo' on 'ReadableStream': parameter 1 is not of type 'WritableStream'."))
    if (dest.locked) return Promise.reject(new TypeError('Cannot pipe to a locked WritableStream'))
    const { preventClose = false, preventAbort = false, preventCancel = false, signal } = options ?? {}
    const reader = this.getReader()
    const writer = dest.getWriter()
    return new Promise<void>((resolve, reject) => {
      let settled = false
      const onAbort = (): void => {
        const reason = signal!.reason
        const undo: Promise<unknown>[] = []
        if (!preventAbort) undo.push(writer.abort(reason))
        if (!preventCancel) undo.push(reader.cancel(reason))
        void Promise.allSettled(undo).then(() => settle(reason, true))
      }
      const settle = (error: unknown, failed: boolean): void => {
        if (settled) return
        settled = true
        signal?.removeEventListener('abort', onAbort)
        reader.releaseLock()
        writer.releaseLock()
        if (failed) reject(error)
        else resolve()
      }
      if (signal !== undefined) {
        if (signal.aborted) return onAbort()
        signal.addEventListener('abort', onAbort)
      }
      void (async () => {
        for (;;) {
          let next: { done: boolean; value: unknown }
          try {
            next = await reader.read()
          } catch (e) {
            if (settled) return
            if (!preventAbort) await writer.abort(e).catch(() => {})
            return settle(e, true)
          }
          if (settled) return
          if (next.done) {
            if (!preventClose) {
              try {
                await writer.close()
              } catch (e) {
                return settle(e, true)
              }
            }
            return settle(undefined, false)
          }
          try {
            await writer.ready
            await writer.write(next.value)
          } catch (e) {
            if (settled) return
            if (!preventCancel) await reader.cancel(e).catch(() => {})
            return settle(e, true)
          }
        }
      })()
    })
  }
  /** Pipes this stream into `transform.writable` and returns `transform.readable`. */
  pipeThrough<T extends { writable: WritableStreamPolyfill; readable: ReadableStreamPolyfill }>(transform: T, options?: PipeOptions): T['readable'] {
    if (this.#locked) throw new TypeError('Cannot pipe a locked ReadableStream')
    if (transform?.writable?.locked === true) throw new TypeError('Cannot pipe to a locked WritableStream')
    this.pipeTo(transform.writable, options).catch(() => {})
    return transform.readable
  }
  get [Symbol.toStringTag](): string {
    return 'ReadableStream'
  }
  /** Two streams that each get every chunk of this one (which is then locked to them). */
  tee(): [ReadableStreamPolyfill, ReadableStreamPolyfill] {
    const reader = this.getReader()
    const controllers: StreamController[] = []
    const cancelled = [false, false]
    let reading: Promise<void> | null = null
    const each = (f: (c: StreamController) => void) => {
      controllers.forEach((c, i) => {
        if (cancelled[i]) return
        try {
          f(c)
        } catch {
          // A branch that was closed or errored meanwhile.
        }
      })
    }
    // One read of the source feeds both branches; the slower one queues what it hasn't read yet.
    const pull = () =>
      (reading ??= reader.read().then(
        ({ done, value }) => {
          reading = null
          each((c) => (done ? c.close() : c.enqueue(value)))
        },
        (e: unknown) => {
          reading = null
          each((c) => c.error(e))
        },
      ))
    const branch = (i: number) =>
      new ReadableStreamPolyfill({
        start: (c) => {
          controllers[i] = c
        },
        pull,
        cancel: (reason) => {
          cancelled[i] = true
          if (cancelled[0] && cancelled[1]) return reader.cancel(reason)
        },
      })
    return [branch(0), branch(1)]
  }
}


type Deferred<T = void> = { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void }
function deferred<T = void>(): Deferred<T> {
  let resolve!: (v: T) => void
  let reject!: (e: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  // A writer's `ready`/`closed` may reject with nobody listening: that is not an unhandled error.
  promise.catch(() => {})
  return { promise, resolve, reject }
}

type Sink = {
  start?: (controller: SinkController) => unknown
  write?: (chunk: any, controller: SinkController) => unknown
  close?: () => unknown
  abort?: (reason?: unknown) => unknown
}
type SinkController = { error(e?: unknown): void; readonly signal: AbortSignalPolyfill }
type Write = { chunk: unknown; size: number; done: Deferred }

/**
 * A WHATWG WritableStream: an underlying sink's start/write/close/abort called one at a time in
 * order, a queue bounded by the queuing strategy (the writer's `ready` waits while it is full),
 * and `close`/`abort`, through a writer or on the stream itself.
 */
export class WritableStreamPolyfill {
  #state: 'writable' | 'erroring' | 'errored' | 'closing' | 'closed' = 'writable'
  #storedError: unknown
  readonly #sink: Sink
  readonly #strategy: { hwm: number; size: (chunk: unknown) => number }
  readonly #queue: Write[] = []
  #queueSize = 0
  #closeRequest: Deferred | null = null
  #abortRequest: { reason: unknown; done: Deferred } | null = null
  #inFlight = false
  #started = false
  readonly #abort = new AbortControllerPolyfill()
  readonly #controller: SinkController
  #writer: WritableStreamWriter | null = null
  /** The writer's promises, kept here so a new writer sees the stream's state. */
  #ready: Deferred = deferred()
  #closed: Deferred = deferred()

  constructor(sink: Sink = {}, strategy?: QueuingStrategy) {
    this.#sink = sink ?? {}
    this.#strategy = strategyOf(strategy, 1)
    this.#ready.resolve()
    const self = this
    this.#controller = {
      error(e) {
        if (self.#state === 'writable') self.#startErroring(e)
      },
      get signal() {
        return self.#abort.signal
      },
    }
    let started: unknown
    try {
      started = this.#sink.start?.(this.#controller)
    } catch (e) {
      this.#startErroring(e)
    }
    Promise.resolve(started).then(
      () => {
        this.#started = true
        this.#advance()
      },
      (e: unknown) => {
        this.#started = true
        if (this.#state === 'writable' || this.#state === 'erroring') {
          if (this.#state === 'writable') this.#startErroring(e)
          this.#advance()
        }
      },
    )
  }

  get locked(): boolean {
    return this.#writer !== null
  }

  getWriter(): WritableStreamWriter {
    if (this.#writer !== null) throw new TypeError('WritableStream is locked')
    this.#writer = new WritableStreamWriter(this, WRITER_KEY)
    return this.#writer
  }

  abort(reason?: unknown): Promise<void> {
    if (this.#writer !== null) return Promise.reject(new TypeError('Cannot abort a locked WritableStream'))
    return this._abort(reason)
  }

  close(): Promise<void> {
    if (this.#writer !== null) return Promise.reject(new TypeError('Cannot close a locked WritableStream'))
    return this._close()
  }

  /** @internal */
  _release(writer: WritableStreamWriter): void {
    if (this.#writer === writer) this.#writer = null
  }
  /** @internal */
  _readyPromise(): Promise<void> {
    return this.#ready.promise
  }
  /** @internal */
  _closedPromise(): Promise<void> {
    return this.#closed.promise
  }
  /** @internal */
  _desiredSize(): number | null {
    if (this.#state === 'errored' || this.#state === 'erroring') return null
    if (this.#state === 'closed') return 0
    return this.#strategy.hwm - this.#queueSize
  }

  /** @internal */
  _write(chunk: unknown): Promise<void> {
    if (this.#state === 'errored' || this.#state === 'erroring') return Promise.reject(this.#storedError)
    if (this.#state !== 'writable' || this.#closeRequest !== null) return Promise.reject(new TypeError('Cannot write to a closing or closed WritableStream'))
    let size: number
    try {
      size = this.#strategy.size(chunk)
    } catch (e) {
      this.#startErroring(e)
      return Promise.reject(e)
    }
    const write: Write = { chunk, size, done: deferred() }
    this.#queue.push(write)
    this.#queueSize += size
    this.#updateBackpressure()
    this.#advance()
    return write.done.promise
  }

  /** @internal */
  _close(): Promise<void> {
    if (this.#state === 'closed' || this.#state === 'errored') return Promise.reject(new TypeError('Cannot close a closed or errored WritableStream'))
    if (this.#closeRequest !== null) return Promise.reject(new TypeError('Cannot close a WritableStream that is already closing'))
    this.#closeRequest = deferred()
    if (this.#state === 'writable') this.#ready.resolve()
    this.#advance()
    return this.#closeRequest.promise
  }

  /** @internal */
  _abort(reason: unknown): Promise<void> {
    if (this.#state === 'closed' || this.#state === 'errored') return Promise.resolve()
    this.#abort.abort(reason)
    if (this.#abortRequest !== null) return this.#abortRequest.done.promise
    const done = deferred()
    this.#abortRequest = { reason, done }
    if (this.#state === 'writable' || this.#state === 'closing') this.#startErroring(reason)
    this.#advance()
    return done.promise
  }

  #updateBackpressure(): void {
    if (this.#state !== 'writable' || this.#closeRequest !== null) return
    const full = this.#strategy.hwm - this.#queueSize <= 0
    const waiting = this.#readyPending
    if (full && !waiting) {
      this.#ready = deferred()
      this.#readyPending = true
    } else if (!full && waiting) {
      this.#readyPending = false
      this.#ready.resolve()
    }
  }
  #readyPending = false

  #startErroring(reason: unknown): void {
    this.#storedError = reason
    this.#state = 'erroring'
    if (this.#readyPending) this.#ready.reject(reason)
    else {
      this.#ready = deferred()
      this.#ready.reject(reason)
    }
    this.#readyPending = false
    this.#advance()
  }

  /** Runs the next sink operation once the one before it (and start) has finished. */
  #advance(): void {
    if (!this.#started || this.#inFlight) return
    if (this.#state === 'erroring') return void this.#finishErroring()
    if (this.#state !== 'writable') return
    const next = this.#queue[0]
    if (next !== undefined) {
      this.#inFlight = true
      void (async () => {
        try {
          await this.#sink.write?.(next.chunk, this.#controller)
          this.#queue.shift()
          this.#queueSize = this.#queue.length === 0 ? 0 : this.#queueSize - next.size
          next.done.resolve()
          this.#inFlight = false
          this.#updateBackpressure()
        } catch (e) {
          this.#queue.shift()
          next.done.reject(e)
          this.#inFlight = false
          if (this.#state === 'writable') this.#startErroring(e)
        }
        this.#advance()
      })()
      return
    }
    const close = this.#closeRequest
    if (close !== null) {
      this.#inFlight = true
      this.#state = 'closing'
      void (async () => {
        try {
          await this.#sink.close?.()
          this.#inFlight = false
          this.#state = 'closed'
          close.resolve()
          this.#closed.resolve()
          this.#abortRequest?.done.resolve()
        } catch (e) {
          this.#inFlight = false
          close.reject(e)
          this.#state = 'writable'
          this.#closeRequest = null
          this.#startErroring(e)
        }
      })()
    }
  }

  async #finishErroring(): Promise<void> {
    this.#state = 'errored'
    const error = this.#storedError
    for (const w of this.#queue.splice(0)) w.done.reject(error)
    this.#queueSize = 0
    this.#closeRequest?.reject(error)
    this.#closed.reject(error)
    const abort = this.#abortRequest
    if (abort === null) return
    try {
      await this.#sink.abort?.(abort.reason)
      abort.done.resolve()
    } catch (e) {
      abort.done.reject(e)
    }
  }

  get [Symbol.toStringTag](): string {
    return 'WritableStream'
  }
}
const WRITER_KEY = Symbol('WritableStreamDefaultWriter')

/** The writer a WritableStream is locked to (`getWriter()`). */
export class WritableStreamWriter {
  #stream: WritableStreamPolyfill | null = null
  constructor(stream: WritableStreamPolyfill, key?: symbol) {
    if (key !== WRITER_KEY) {
      // `new WritableStreamDefaultWriter(stream)` locks the stream like getWriter() does.
      return stream.getWriter()
    }
    this.#stream = stream
  }
  #live(): WritableStreamPolyfill {
    if (this.#stream === null) throw new TypeError('This writer has been released and cannot be used')
    return this.#stream
  }
  get ready(): Promise<void> {
    return this.#stream === null ? Promise.reject(new TypeError('This writer has been released')) : this.#stream._readyPromise()
  }
  get closed(): Promise<void> {
    return this.#stream === null ? Promise.reject(new TypeError('This writer has been released')) : this.#stream._closedPromise()
  }
  get desiredSize(): number | null {
    return this.#live()._desiredSize()
  }
  write(chunk?: unknown): Promise<void> {
    if (this.#stream === null) return Promise.reject(new TypeError('This writer has been released and cannot be used'))
    return this.#stream._write(chunk)
  }
  close(): Promise<void> {
    if (this.#stream === null) return Promise.reject(new TypeError('This writer has been released and cannot be used'))
    return this.#stream._close()
  }
  abort(reason?: unknown): Promise<void> {
    if (this.#stream === null) return Promise.reject(new TypeError('This writer has been released and cannot be used'))
    return this.#stream._abort(reason)
  }
  releaseLock(): void {
    this.#stream?._release(this)
    this.#stream = null
  }
  get [Symbol.toStringTag](): string {
    return 'WritableStreamDefaultWriter'
  }
}

type Transformer = {
  start?: (controller: TransformController) => unknown
  transform?: (chunk: any, controller: TransformController) => unknown
  flush?: (controller: TransformController) => unknown
  cancel?: (reason?: unknown) => unknown
}
type TransformController = { enqueue(chunk?: unknown): void; error(e?: unknown): void; terminate(): void; readonly desiredSize: number | null }

/**
 * A WHATWG TransformStream: what is written to `writable` goes through `transform` into
 * `readable`. A write waits until the readable side wants more (backpressure), so a pipe runs
 * at the pace of its reader.
 */
export class TransformStreamPolyfill {
  readonly readable: ReadableStreamPolyfill
  readonly writable: WritableStreamPolyfill
  constructor(transformer: Transformer = {}, writableStrategy?: QueuingStrategy, readableStrategy?: QueuingStrategy) {
    const t = transformer ?? {}
    let rc!: StreamController
    let readableDone = false
    // Backpressure: true while the readable side holds what it was last given, unread.
    let backpressure = true
    let unblocked: Deferred = deferred()
    let pulled: Deferred | null = null
    let writableController: SinkController | null = null
    const setBackpressure = (value: boolean): void => {
      if (value === backpressure) return
      backpressure = value
      if (!value) unblocked.resolve()
      else unblocked = deferred()
    }
    const errorBoth = (e: unknown): void => {
      if (!readableDone) {
        readableDone = true
        rc.error(e)
      }
      writableController?.error(e)
      setBackpressure(false)
    }
    const controller: TransformController = {
      enqueue(chunk) {
        if (readableDone) throw new TypeError('The readable side of this TransformStream is closed or errored')
        rc.enqueue(chunk)
        pulled?.resolve()
        pulled = null
        setBackpressure((rc.desiredSize ?? 0) <= 0)
      },
      error(e) {
        errorBoth(e)
      },
      terminate() {
        if (!readableDone) {
          readableDone = true
          rc.close()
        }
        pulled?.resolve()
        writableController?.error(new TypeError('The TransformStream has been terminated'))
        setBackpressure(false)
      },
      get desiredSize() {
        return readableDone ? null : rc.desiredSize
      },
    }
    this.readable = new ReadableStreamPolyfill(
      {
        start(c) {
          rc = c
        },
        pull() {
          setBackpressure(false)
          // Resolves once the transform has produced something (or the stream ends).
          pulled ??= deferred()
          return pulled.promise
        },
        async cancel(reason) {
          readableDone = true
          pulled?.resolve()
          writableController?.error(reason)
          setBackpressure(false)
          await t.cancel?.(reason)
        },
      },
      readableStrategy ?? { highWaterMark: 0 },
    )
    const started = deferred()
    this.writable = new WritableStreamPolyfill(
      {
        start(c) {
          writableController = c
          return started.promise
        },
        async write(chunk) {
          while (backpressure && !readableDone) await unblocked.promise
          if (readableDone) throw new TypeError('The readable side of this TransformStream is closed or errored')
          try {
            if (t.transform !== undefined) await t.transform(chunk, controller)
            else controller.enqueue(chunk)
          } catch (e) {
            errorBoth(e)
            throw e
          }
        },
        async close() {
          try {
            await t.flush?.(controller)
          } catch (e) {
            errorBoth(e)
            throw e
          }
          if (!readableDone) {
            readableDone = true
            rc.close()
          }
          pulled?.resolve()
        },
        async abort(reason) {
          if (!readableDone) {
            readableDone = true
            rc.error(reason)
          }
          pulled?.resolve()
          await t.cancel?.(reason)
        },
      },
      writableStrategy,
    )
    try {
      Promise.resolve(t.start?.(controller)).then(() => started.resolve(), started.reject)
    } catch (e) {
      started.reject(e)
    }
  }
  get [Symbol.toStringTag](): string {
    return 'TransformStream'
  }
}

/** Strings in, their UTF-8 bytes out (a surrogate pair split across chunks is kept whole). */
export class TextEncoderStreamPolyfill {
  readonly #transform: TransformStreamPolyfill
  constructor() {
    const encoder = new TextEncoderPolyfill()
    let pendingHigh = ''
    this.#transform = new TransformStreamPolyfill({
      transform(chunk, controller) {
        let s = pendingHigh + String(chunk)
        pendingHigh = ''
        const last = s.charCodeAt(s.length - 1)
        if (last >= 0xd800 && last <= 0xdbff) {
          pendingHigh = s.slice(-1)
          s = s.slice(0, -1)
        }
        if (s !== '') controller.enqueue(encoder.encode(s))
      },
      flush(controller) {
        if (pendingHigh !== '') controller.enqueue(new Uint8Array([0xef, 0xbf, 0xbd]))
      },
    })
  }
  get encoding(): string {
    return 'utf-8'
  }
  get readable(): ReadableStreamPolyfill {
    return this.#transform.readable
  }
  get writable(): WritableStreamPolyfill {
    return this.#transform.writable
  }
  get [Symbol.toStringTag](): string {
    return 'TextEncoderStream'
  }
}

/** Byte chunks in, text out, decoded as one stream (a character split across chunks is kept whole). */
export class TextDecoderStreamPolyfill {
  readonly #transform: TransformStreamPolyfill
  readonly #decoder: TextDecoderPolyfill
  constructor(label = 'utf-8', options: { fatal?: boolean; ignoreBOM?: boolean } = {}) {
    const decoder = (this.#decoder = new TextDecoderPolyfill(label, options))
    this.#transform = new TransformStreamPolyfill({
      transform(chunk, controller) {
        const text = decoder.decode(chunk, { stream: true })
        if (text !== '') controller.enqueue(text)
      },
      flush(controller) {
        const text = decoder.decode()
        if (text !== '') controller.enqueue(text)
      },
    })
  }
  get encoding(): string {
    return this.#decoder.encoding
  }
  get fatal(): boolean {
    return this.#decoder.fatal
  }
  get ignoreBOM(): boolean {
    return this.#decoder.ignoreBOM
  }
  get readable(): ReadableStreamPolyfill {
    return this.#transform.readable
  }
  get writable(): WritableStreamPolyfill {
    return this.#transform.writable
  }
  get [Symbol.toStringTag](): string {
    return 'TextDecoderStream'
  }
}
