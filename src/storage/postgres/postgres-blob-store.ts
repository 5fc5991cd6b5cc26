/**
 * @module PostgresBlobStore: stored files' bytes in the Postgres database of `--db-url`, so that
 * every process on that database serves every file (see ../blob-store.ts).
 *
 * A blob is a row of `file_blobs` (name, size, when stored) and its bytes in `file_chunks`, in
 * pieces of CHUNK_BYTES (the last one shorter, none for an empty blob), all written in one
 * transaction: a blob is there whole, durable once COMMIT returns, or not at all. Chunks are kept
 * uncompressed (STORAGE EXTERNAL): files are often compressed already, and a range read then
 * fetches only the chunks it needs.
 */
import type { Pool, PoolClient } from 'pg'
import { Readable } from 'node:stream'
import type { BlobInfo, BlobStore, PutOptions } from '../blob-store.ts'
import { checkBlobName, measured } from '../blob-store.ts'
import { inTransaction } from './transaction.ts'

/** Size of every chunk but a blob's last. Never change it: a range read relies on it. */
export const CHUNK_BYTES = 1024 * 1024

/**
 * A blob with no `_storage` document may be one another process stored an instant ago and is
 * about to commit the document of: the start-up sweep leaves orphans younger than this.
 */
const SWEEP_GRACE_MS = 60 * 60 * 1000

export class PostgresBlobStore implements BlobStore {
  readonly sweepGraceMs = SWEEP_GRACE_MS

  constructor(readonly pool: Pool) {}

  #transaction<R>(body: (db: PoolClient) => Promise<R>): Promise<R> {
    return inTransaction(this.pool, body)
  }

  async put(name: string, source: AsyncIterable<Uint8Array> | Uint8Array, options: PutOptions = {}): Promise<BlobInfo> {
    checkBlobName(name)
    const { chunks, done } = measured(source, options)
    return this.#transaction(async (db) => {
      await db.query('DELETE FROM file_chunks WHERE id = $1', [name])
      await db.query('DELETE FROM file_blobs WHERE id = $1', [name])
      let n = 0
      let pending: Buffer[] = []
      let pendingBytes = 0
      const flush = async (bytes: Buffer): Promise<void> => {
        await db.query('INSERT INTO file_chunks (id, n, data) VALUES ($1, $2, $3)', [name, n++, bytes])
      }
      for await (const chunk of chunks) {
        let piece = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
        while (pendingBytes + piece.length >= CHUNK_BYTES) {
          const take = CHUNK_BYTES - pendingBytes
          pending.push(piece.subarray(0, take))
          await flush(Buffer.concat(pending))
          piece = piece.subarray(take)
          pending = []
          pendingBytes = 0
        }
        if (piece.length > 0) {
          // Copied: the source may reuse its buffer for the next chunk.
          pending.push(Buffer.from(piece))
          pendingBytes += piece.length
        }
      }
      if (pendingBytes > 0) await flush(Buffer.concat(pending))
      const info = done()
      options.verify?.(info)
      await db.query('INSERT INTO file_blobs (id, size, stored_at) VALUES ($1, $2, now())', [name, info.size])
      return info
    })
  }

  async #size(name: string): Promise<number> {
    const result = await this.pool.query<{ size: bigint | string }>('SELECT size FROM file_blobs WHERE id = $1', [checkBlobName(name)])
    const row = result.rows[0]
    if (row === undefined) throw Object.assign(new Error(`No stored file ${name}`), { code: 'ENOENT' })
    return Number(row.size)
  }

  async read(name: string): Promise<Buffer> {
    const { stream } = await this.stream(name)
    const parts: Buffer[] = []
    for await (const part of stream) parts.push(part as Buffer)
    return Buffer.concat(parts)
  }

  async stream(name: string, start?: number, end?: number): Promise<{ stream: Readable; size: number }> {
    const size = await this.#size(name)
    const from = start ?? 0
    const to = Math.min(end ?? size - 1, size - 1)
    const pool = this.pool
    async function* bytes(): AsyncIterable<Buffer> {
      if (to < from) return
      // One chunk per query: a slow reader holds no connection between chunks.
      for (let n = Math.floor(from / CHUNK_BYTES); n <= Math.floor(to / CHUNK_BYTES); n++) {
        const result = await pool.query<{ data: Buffer }>('SELECT data FROM file_chunks WHERE id = $1 AND n = $2', [name, n])
        const data = result.rows[0]?.data
        if (data === undefined) throw new Error(`Stored file ${name} was removed while it was being read`)
        const base = n * CHUNK_BYTES
        yield data.subarray(Math.max(0, from - base), Math.min(data.length, to - base + 1))
      }
    }
    return { stream: Readable.from(bytes()), size }
  }

  async exists(name: string): Promise<boolean> {
    const result = await this.pool.query('SELECT 1 FROM file_blobs WHERE id = $1', [checkBlobName(name)])
    return result.rows.length > 0
  }

  async rename(from: string, to: string): Promise<void> {
    checkBlobName(from)
    checkBlobName(to)
    await this.#transaction(async (db) => {
      await db.query('DELETE FROM file_chunks WHERE id = $1', [to])
      await db.query('DELETE FROM file_blobs WHERE id = $1', [to])
      const moved = await db.query('UPDATE file_blobs SET id = $2, stored_at = now() WHERE id = $1', [from, to])
      if (moved.rowCount === 0) throw Object.assign(new Error(`No stored file ${from}`), { code: 'ENOENT' })
      await db.query('UPDATE file_chunks SET id = $2 WHERE id = $1', [from, to])
    })
  }

  async delete(name: string): Promise<void> {
    checkBlobName(name)
    await this.#transaction(async (db) => {
      await db.query('DELETE FROM file_blobs WHERE id = $1', [name])
      await db.query('DELETE FROM file_chunks WHERE id = $1', [name])
    })
  }

  async *list(): AsyncIterable<{ name: string; ageMs: number }> {
    // Chunks without a blob row can't exist (one transaction writes both); blob rows are the list.
    const result = await this.pool.query<{ id: string; age_ms: number }>('SELECT id, (extract(epoch FROM now() - stored_at) * 1000)::float8 AS age_ms FROM file_blobs ORDER BY id')
    for (const row of result.rows) yield { name: row.id, ageMs: row.age_ms }
  }
}
