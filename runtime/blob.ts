/** @module `Blob` and `File` (the File API standard), with their bytes in memory. */
import { TextDecoderPolyfill, TextEncoderPolyfill } from './polyfills.ts'
import { ReadableStreamPolyfill } from './streams.ts'

type BlobPart = BlobPolyfill | ArrayBuffer | ArrayBufferView | string
interface BlobOptions {
  type?: string
  endings?: 'transparent' | 'native'
}

/** A Blob's type: lowercased, or empty if it holds a character outside U+0020–U+007E. */
function normalizeType(type: unknown): string {
  const t = String(type ?? '')
  return /^[\x20-\x7e]*$/.test(t) ? t.toLowerCase() : ''
}

/** The bytes of a body or blob part (strings as UTF-8; anything else as its string). */
export function toBytes(body: unknown): Uint8Array | null {
  if (body === undefined || body === null) return null
  if (body instanceof BlobPolyfill) return body._bytes()
  if (typeof body === 'string') return new TextEncoderPolyfill().encode(body)
  if (body instanceof ArrayBuffer) return new Uint8Array(body)
  if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength)
  return new TextEncoderPolyfill().encode(String(body))
}

/** A `Blob` whose bytes are in memory (all the sandbox needs). */
export class BlobPolyfill {
  #bytes: Uint8Array
  readonly #type: string
  constructor(parts: Iterable<BlobPart> = [], options: BlobOptions = {}) {
    if (parts === null || typeof parts !== 'object' || typeof (parts as { [Symbol.iterator]?: unknown })[Symbol.iterator] !== 'function') {
      throw new TypeError("Failed to construct 'Blob': The provided value cannot be converted to a sequence.")
    }
    const native = options?.endings === 'native'
    const chunks: Uint8Array[] = []
    for (const p of parts) {
      if (typeof p === 'string' && native) chunks.push(toBytes(p.replace(/\r\n?/g, '\n'))!)
      else chunks.push(toBytes(p) ?? new TextEncoderPolyfill().encode(String(p)))
    }
    const size = chunks.reduce((n, c) => n + c.length, 0)
    this.#bytes = new Uint8Array(size)
    let offset = 0
    for (const c of chunks) {
      this.#bytes.set(c, offset)
      offset += c.length
    }
    this.#type = normalizeType(options?.type)
  }
  /** @internal A Blob of bytes no one else holds, taken as they are (not copied). */
  static _adopt(bytes: Uint8Array, type: string): BlobPolyfill {
    const blob = new BlobPolyfill([], { type })
    blob.#bytes = bytes
    return blob
  }
  get size(): number {
    return this.#bytes.length
  }
  get type(): string {
    return this.#type
  }
  /** @internal The blob's own bytes (not a copy: callers must not change them). */
  _bytes(): Uint8Array {
    return this.#bytes
  }
  async arrayBuffer(): Promise<ArrayBuffer> {
    return this.#bytes.slice().buffer
  }
  async bytes(): Promise<Uint8Array> {
    return this.#bytes.slice()
  }
  async text(): Promise<string> {
    return new TextDecoderPolyfill().decode(this.#bytes)
  }
  /** A blob of the bytes from `start` to `end` (negative: from the end); its type is `contentType` or empty. */
  slice(start?: number, end?: number, contentType?: string): BlobPolyfill {
    return new BlobPolyfill([this.#bytes.slice(start, end)], { type: contentType ?? '' })
  }
  /** The bytes as a stream, in chunks of up to 64 KiB. */
  stream(): ReadableStreamPolyfill {
    const bytes = this.#bytes
    let at = 0
    return new ReadableStreamPolyfill({
      pull(controller) {
        if (at >= bytes.length) return controller.close()
        controller.enqueue(bytes.slice(at, at + 65_536))
        at += 65_536
      },
    })
  }
  get [Symbol.toStringTag](): string {
    return 'Blob'
  }
}

/** A named Blob with a modification time (what FormData holds for a file field). */
export class FilePolyfill extends BlobPolyfill {
  readonly #name: string
  readonly #lastModified: number
  constructor(parts: Iterable<BlobPart>, name: string, options: BlobOptions & { lastModified?: number } = {}) {
    if (arguments.length < 2) throw new TypeError(`Failed to construct 'File': 2 arguments required, but only ${arguments.length} present.`)
    super(parts, options)
    this.#name = String(name)
    this.#lastModified = options?.lastModified === undefined ? Date.now() : Math.trunc(Number(options.lastModified)) || 0
  }
  get name(): string {
    return this.#name
  }
  get lastModified(): number {
    return this.#lastModified
  }
  get webkitRelativePath(): string {
    return ''
  }
  override get [Symbol.toStringTag](): string {
    return 'File'
  }
}
