/**
 * @module BlobStore: where the bytes of stored files live, under a name (a `_storage` id, or a
 * dot-prefixed working name such as `.import-kept-<id>`). FileStorage keeps the `_storage`
 * documents and the rules (durable before the document commits, removed once its deletion
 * commits, orphans swept at start-up); a blob store only keeps bytes.
 *
 * Two stores: FolderBlobStore (a folder of the data directory, one file per blob: the embedded
 * default) and PostgresBlobStore (../storage/postgres/postgres-blob-store.ts: chunks in the
 * database given by `--db-url`, so that every process on that database sees every file).
 */
import { createHash, randomUUID } from 'node:crypto'
import { createReadStream, createWriteStream, mkdirSync } from 'node:fs'
import { open, readdir, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'

export interface BlobInfo {
  readonly size: number
  /** The bytes' SHA-256. */
  readonly sha256: Buffer
}

export interface PutOptions {
  /** The source is refused (with `tooLarge()`'s error) once it passes this many bytes. */
  readonly maxBytes?: number
  /** Called once every byte is in, before the blob becomes visible; throwing stores nothing. */
  readonly verify?: (info: BlobInfo) => void
  /** Error thrown when the source passes `maxBytes`. */
  readonly tooLarge?: () => Error
}

export interface BlobStore {
  /**
   * Stores the source's bytes under `name`, replacing any blob of that name, all at once: when it
   * resolves the blob is durable (survives a crash); when it rejects nothing was stored.
   */
  put(name: string, source: AsyncIterable<Uint8Array> | Uint8Array, options?: PutOptions): Promise<BlobInfo>
  /** The whole blob; rejects when there is none. */
  read(name: string): Promise<Buffer>
  /** The blob's bytes `[start, end]` (inclusive; all when absent) as a stream, and its size; rejects when there is none. */
  stream(name: string, start?: number, end?: number): Promise<{ stream: Readable; size: number }>
  /** Whether a blob of this name exists. */
  exists(name: string): Promise<boolean>
  /** Renames a blob at once, replacing any at `to`. */
  rename(from: string, to: string): Promise<void>
  /** Removes the blob (nothing if there is none). */
  delete(name: string): Promise<void>
  /**
   * Every blob's name, with how long ago it was stored (for the orphan sweep); `ageMs` is
   * Infinity where the store can't tell.
   */
  list(): AsyncIterable<{ name: string; ageMs: number }>
  /**
   * How old an orphan must be for the start-up sweep to remove it: 0 for a store only this
   * process uses; more for a shared store, where another process may be between storing a blob
   * and committing its document.
   */
  readonly sweepGraceMs: number
}

/** Blob names: storage ids, and dot-prefixed working names. */
export function checkBlobName(name: string): string {
  if (!/^\.?[0-9a-z][0-9a-z-]*$/.test(name)) throw new Error(`Invalid blob name ${JSON.stringify(name)}`)
  return name
}

/**
 * Passes `source` through, counting and hashing it, failing once it passes `maxBytes`. `done`
 * gives the size and digest once the source is exhausted.
 */
export function measured(source: AsyncIterable<Uint8Array> | Uint8Array, options: PutOptions = {}): { chunks: AsyncIterable<Uint8Array>; done: () => BlobInfo } {
  const hash = createHash('sha256')
  let size = 0
  let digest: Buffer | null = null
  const max = options.maxBytes ?? Infinity
  async function* chunks(): AsyncIterable<Uint8Array> {
    const input = source instanceof Uint8Array ? [source] : source
    for await (const chunk of input) {
      size += chunk.byteLength
      if (size > max) throw options.tooLarge?.() ?? new Error(`The blob is larger than ${max} bytes`)
      hash.update(chunk)
      yield chunk
    }
    digest = hash.digest()
  }
  return {
    chunks: chunks(),
    done: () => {
      if (digest === null) throw new Error('The source was not read to its end')
      return { size, sha256: digest }
    },
  }
}

/**
 * Blobs as files of one folder (`<data dir>/storage/`), named by the blob's name. A blob is
 * written to a `.upload-<uuid>` temp file, fsynced, then renamed into place.
 */
export class FolderBlobStore implements BlobStore {
  readonly sweepGraceMs = 0

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true })
  }

  #path(name: string): string {
    return join(this.dir, checkBlobName(name))
  }

  async put(name: string, source: AsyncIterable<Uint8Array> | Uint8Array, options: PutOptions = {}): Promise<BlobInfo> {
    const target = this.#path(name)
    const temp = join(this.dir, `.upload-${randomUUID()}`)
    try {
      const { chunks, done } = measured(source, options)
      await pipeline(Readable.from(chunks), createWriteStream(temp))
      const fh = await open(temp, 'r')
      try {
        await fh.sync()
      } finally {
        await fh.close()
      }
      const info = done()
      options.verify?.(info)
      await rename(temp, target)
      return info
    } finally {
      await rm(temp, { force: true })
    }
  }

  async read(name: string): Promise<Buffer> {
    const fh = await open(this.#path(name), 'r')
    try {
      return await fh.readFile()
    } finally {
      await fh.close()
    }
  }

  async stream(name: string, start?: number, end?: number): Promise<{ stream: Readable; size: number }> {
    const path = this.#path(name)
    const { size } = await stat(path)
    return { stream: createReadStream(path, start === undefined ? {} : { start, end }), size }
  }

  async exists(name: string): Promise<boolean> {
    try {
      return (await stat(this.#path(name))).isFile()
    } catch {
      return false
    }
  }

  async rename(from: string, to: string): Promise<void> {
    await rename(this.#path(from), this.#path(to))
  }

  async delete(name: string): Promise<void> {
    await rm(this.#path(name), { force: true })
  }

  async *list(): AsyncIterable<{ name: string; ageMs: number }> {
    for (const entry of await readdir(this.dir, { withFileTypes: true })) {
      if (entry.isFile() && /^\.?[0-9a-z][0-9a-z-]*$/.test(entry.name)) yield { name: entry.name, ageMs: Infinity }
    }
  }
}
