/**
 * @module FileStorage: `ctx.storage` files, one per `_storage` document, whose bytes a blob store
 * keeps under the document's id (see ../storage/blob-store.ts): `<data dir>/storage/` by default, the
 * Postgres database with `--db-url`.
 *
 * Writing a file: the bytes are stored durably (hashed on the way) under the id the document will
 * have, and only then is the `_storage` document committed — so a committed document always has
 * its file; a failed commit removes the file, and a crash in between leaves at worst an orphan.
 * Deleting: the document goes in the caller's transaction; the file once that commits. Orphans a
 * crash leaves are swept at the next start-up (sweepOrphans).
 */
import { createHash } from 'node:crypto'
import { issueStorageToken, openStorageToken } from '../../keybroker/index.ts'
import type { Readable } from 'node:stream'
import type { BlobStore } from '../storage/blob-store.ts'
import type { Database } from '../database/database.ts'
import type { Transaction } from '../database/transaction.ts'
import { decodeId } from '../values/index.ts'

export const STORAGE_TABLE = '_storage'
/** How long an upload URL stays valid (Convex: one hour). */
const UPLOAD_URL_TTL_MS = 60 * 60 * 1000
/** Largest upload accepted. */
export const MAX_UPLOAD_BYTES = 1024 * 1024 * 1024

export interface StoredFile {
  readonly storageId: string
  /** base64 sha256, as the `_storage` document has it. */
  readonly sha256: string
  readonly size: number
  readonly contentType: string | null
}

export class FileStorageError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

export class FileStorage {
  constructor(
    readonly db: Database,
    /** The data directory (exports and imports are kept there). */
    readonly dataDir: string,
    readonly blobs: BlobStore,
    readonly secret: string,
    readonly cloudUrl: () => string,
    /** Upload URLs name the instance they are for (as Convex's). */
    readonly instanceName = '',
  ) {}

  /**
   * Removes what a crash can leave in the storage directory: upload temp files, and files whose
   * `_storage` document never committed (a crash between rename and commit) or whose deletion
   * committed without the file going (a crash right after). Run at start-up, before serving.
   * Returns how many files went.
   */
  async sweepOrphans(): Promise<number> {
    const txn = await this.db.begin(false)
    txn.system = true
    let removed = 0
    try {
      for await (const { name, ageMs } of this.blobs.list()) {
        // A shared store's recent blobs may be another process's, about to get their document.
        if (ageMs < this.blobs.sweepGraceMs) continue
        try {
          // A file an import moved aside and a crash kept from being put back: it is the right one
          // again if its document (which the import then never replaced) still has its digest.
          if (name.startsWith('.import-kept-')) {
            const id = name.slice('.import-kept-'.length)
            const doc = this.#isStorageDocId(id) ? await txn.read(id) : null
            if (doc !== null && doc.sha256 === (await this.#digest(name))) await this.blobs.rename(name, id)
            else await this.blobs.delete(name)
            removed++
            continue
          }
          // Upload and import temp blobs, and blobs whose document is gone (or never committed).
          const temp = name.startsWith('.upload-') || name.startsWith('.import-')
          if (!temp && (!this.#isStorageDocId(name) || (await txn.read(name)) !== null)) continue
          await this.blobs.delete(name)
          removed++
        } catch {
          // Left for the next start-up; never a reason not to start.
        }
      }
    } finally {
      this.db.end(txn)
    }
    return removed
  }

  /** A blob's base64 sha256, read as a stream (a file may be up to 1 GiB). */
  async #digest(name: string): Promise<string> {
    const hash = createHash('sha256')
    for await (const chunk of (await this.blobs.stream(name)).stream) hash.update(chunk as Buffer)
    return hash.digest('base64')
  }

  #checkId(storageId: string): string {
    if (!/^[0-9a-z]+$/.test(storageId)) throw new FileStorageError(400, 'InvalidStorageId', `Invalid storage id ${JSON.stringify(storageId)}`)
    return storageId
  }

  /**
   * A URL a client can POST files to for an hour (as often as it likes, as in Convex); they go to
   * `component`'s storage. Its token is Convex's (keybroker/storage-token.ts).
   */
  uploadUrl(component = ''): string {
    const token = issueStorageToken(this.secret, { instanceName: this.instanceName, issuedS: Math.floor(Date.now() / 1000), component: component === '' ? null : component })
    return `${this.cloudUrl()}/api/storage/upload?token=${token}`
  }

  /**
   * Checks an upload URL's token as Convex's upload route does (`check_store_file_authorization`):
   * a missing `token` is a 400 `BadQueryArgs`, one not sealed with this instance's secret a 401
   * `StorageTokenInvalid`, one for another instance a 401 `InvalidStorageToken`, one issued an
   * hour ago or more a 401 `StorageTokenExpired`. Returns the component it stores into.
   */
  checkUploadToken(token: string | undefined): { component: string } {
    if (token === undefined) throw new FileStorageError(400, 'BadQueryArgs', 'Failed to deserialize query string: missing field `token`')
    const claims = openStorageToken(this.secret, token)
    if (claims === null || claims.issuedS === 0) throw new FileStorageError(401, 'StorageTokenInvalid', "Couldn't decode the StoreFileAuthorization token")
    // (Convex's text, braces and all: it is not a format string there.)
    if (claims.instanceName !== this.instanceName) throw new FileStorageError(401, 'InvalidStorageToken', 'Storage token is for invalid instance {instance_name}')
    if ((claims.issuedS + UPLOAD_URL_TTL_MS / 1000) * 1000 <= Date.now()) throw new FileStorageError(401, 'StorageTokenExpired', 'Store File Authorization expired')
    if (!claims.storeFile) throw new FileStorageError(401, 'InvalidStorageToken', 'Storage token is for invalid instance {instance_name}')
    return { component: claims.component ?? '' }
  }

  /**
   * The URL a stored file is served at. A component's file names its component (its id, as
   * Convex's `?component=`), so the download reads it in that component's namespace.
   */
  fileUrl(storageId: string, componentId: string | null = null): string {
    return `${this.cloudUrl()}/api/storage/${storageId}${componentId === null ? '' : `?component=${componentId}`}`
  }

  /**
   * Stores a file from a stream; `commit` writes the `_storage` document in a transaction and
   * must use the id given. Returns the id.
   */
  async store(body: AsyncIterable<Uint8Array> | Uint8Array, contentType: string | null, expectedSha256: string | undefined, commit: (id: string, file: Omit<StoredFile, 'storageId'>) => Promise<void>, component = ''): Promise<string> {
    const table = await this.db.ensureTable(STORAGE_TABLE, component)
    const id = this.db.newId(table)
    const stored = await this.blobs.put(this.#checkId(id), body, {
      maxBytes: MAX_UPLOAD_BYTES,
      tooLarge: () => new FileStorageError(413, 'PayloadTooLarge', `The file is larger than ${MAX_UPLOAD_BYTES} bytes`),
      // `expectedSha256` is base64 (an upload's `Digest: sha-256=` header, `ctx.storage.store`'s
      // option); hex is accepted too for `store`. On a mismatch nothing is stored.
      verify: ({ sha256: digest }) => {
        if (expectedSha256 !== undefined && expectedSha256 !== digest.toString('hex') && expectedSha256 !== digest.toString('base64')) {
          const expected = /^[0-9a-f]{64}$/i.test(expectedSha256) ? Buffer.from(expectedSha256, 'hex').toString('base64') : expectedSha256
          throw new FileStorageError(400, 'Sha256Mismatch', `Sha256 mismatch. Expected: ${expected} Actual: ${digest.toString('base64')}`)
        }
      },
    })
    try {
      await commit(id, {
        sha256: stored.sha256.toString('base64'),
        size: stored.size,
        contentType,
      })
    } catch (e) {
      // Not removed if this fails too: the start-up sweep removes a blob with no document.
      await this.blobs.delete(id).catch(() => {})
      throw e
    }
    return id
  }

  /** Removes a stored file's bytes whose `_storage` document never committed. */
  async discard(storageId: string): Promise<void> {
    await this.blobs.delete(this.#checkId(storageId))
  }

  /**
   * Whether `storageId` has the form of a storage id: an id of the `_storage` table, or a UUID (the
   * form older Convex storage ids had; none exist here, so such an id is simply not found).
   */
  isStorageIdFormat(storageId: unknown): boolean {
    const kind = this.storageIdKind(storageId)
    return kind === 'storage' || kind === 'uuid'
  }

  /**
   * What `storageId` is, as Convex parses a storage id: a `_storage` document id, a legacy UUID,
   * a document id of another table (refused by every storage call), or neither.
   */
  storageIdKind(storageId: unknown): 'storage' | 'uuid' | 'otherTable' | 'invalid' {
    if (typeof storageId !== 'string') return 'invalid'
    // Another component's `_storage` id is a storage id too (it names the same table number in
    // this component's namespace, as in Convex): it is simply not found here.
    if (decodeId(storageId) !== null) return this.#isStorageDocId(storageId) ? 'storage' : 'otherTable'
    return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(storageId) ? 'uuid' : 'invalid'
  }

  /**
   * Whether `id` is a document id of a `_storage` table: `component`'s (each component instance
   * has its own file storage), or any's when absent (serving a file by its URL).
   */
  #isStorageDocId(id: string, component?: string): boolean {
    const decoded = decodeId(id)
    if (decoded === null) return false
    if (component !== undefined) return this.db.catalog.tableForId(component, decoded.tableNumber)?.name === STORAGE_TABLE
    return this.db.catalog.tablesForId(decoded.tableNumber).some((t) => t.name === STORAGE_TABLE)
  }

  /** The file's `_storage` document as seen by `txn` (in `component`'s storage, or any), or null. */
  async metadata(txn: Transaction, storageId: string, component?: string): Promise<StoredFile | null> {
    if (!this.#isStorageDocId(storageId, component)) return null
    const doc = await txn.read(storageId, component)
    if (doc === null) return null
    return { storageId, sha256: doc.sha256 as string, size: doc.size as number, contentType: (doc.contentType as string | undefined) ?? null }
  }

  /** Deletes the document in `txn`; the file goes once the transaction commits. */
  async delete(txn: Transaction, storageId: string, component?: string): Promise<void> {
    if ((await this.metadata(txn, storageId, component)) === null) throw new FileStorageError(400, 'StorageIdNotFound', `storage id ${storageId} not found`)
    await txn.removeSystem(storageId, component)
    // A failure here leaves an orphan, which the start-up sweep removes.
    txn.afterCommit(() => this.blobs.delete(this.#checkId(storageId)).catch(() => {}))
  }

  async read(storageId: string): Promise<Buffer> {
    return this.blobs.read(this.#checkId(storageId))
  }

  /** A stream of the file's bytes `[start, end]` (inclusive), and its size. */
  async stream(storageId: string, start?: number, end?: number): Promise<{ stream: Readable; size: number }> {
    return this.blobs.stream(this.#checkId(storageId), start, end)
  }
}

