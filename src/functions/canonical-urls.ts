/**
 * @module The deployment's canonical URLs, as Convex's `_canonical_urls` keeps them
 * (`POST /api/v1/update_canonical_url`): set, they replace the URLs the backend was started with
 * (`--convex-origin`, `--convex-site`) as functions see them (`CONVEX_CLOUD_URL`,
 * `CONVEX_SITE_URL`), in stored files' URLs and in `get_canonical_urls`. One document per
 * destination in a system table, written through the committer; on a store shared by several
 * processes, each reads them again when another changes them.
 */
import type { Database } from '../database/database.ts'
import type { Transaction } from '../database/transaction.ts'

export const CANONICAL_URLS_TABLE = '_canonical_urls'

/** Convex's RequestDestination, as its JSON names it. */
export type RequestDestination = 'convexCloud' | 'convexSite'
export const REQUEST_DESTINATIONS: readonly RequestDestination[] = ['convexCloud', 'convexSite']

export class CanonicalUrls {
  #urls = new Map<RequestDestination, string>()
  readonly #listeners: (() => void)[] = []

  constructor(readonly db: Database) {}

  /** The URL set for `destination`, or undefined (the backend's own then). */
  get(destination: RequestDestination): string | undefined {
    return this.#urls.get(destination)
  }

  /** Called after each change. */
  onChange(listener: () => void): void {
    this.#listeners.push(listener)
  }

  async load(): Promise<void> {
    await this.db.exclusive(async () => void (await this.db.catalog.ensureTable(CANONICAL_URLS_TABLE)))
    await this.#read()
    if (this.db.persistence.shared !== undefined) {
      const table = this.db.catalog.table('', CANONICAL_URLS_TABLE)!
      const ids = new Set([...table.indexes.values()].map((i) => i.indexId))
      this.db.committer.onCommit((batch) => {
        if (batch.some((c) => c.indexes.some((w) => ids.has(w.indexId)))) void this.#read().catch(() => {})
      })
    }
  }

  #reads: Promise<void> = Promise.resolve()

  #read(): Promise<void> {
    const run = this.#reads.then(async () => {
      const txn = await this.db.begin(false)
      txn.system = true
      try {
        this.#set(await this.#docs(txn))
      } finally {
        this.db.end(txn)
      }
    })
    this.#reads = run.catch(() => {})
    return run
  }

  async #docs(txn: Transaction): Promise<Map<RequestDestination, { _id: string; url: string }>> {
    const out = new Map<RequestDestination, { _id: string; url: string }>()
    for (const doc of await txn.readTable(CANONICAL_URLS_TABLE, '')) {
      const destination = doc.requestDestination as RequestDestination
      if (REQUEST_DESTINATIONS.includes(destination) && typeof doc.url === 'string') out.set(destination, { _id: doc._id as string, url: doc.url })
    }
    return out
  }

  /** Sets (a URL) or unsets (null) the canonical URL of `destination`, as Convex's model does. */
  async set(destination: RequestDestination, url: string | null): Promise<void> {
    const docs = await this.db.mutate(async (txn) => {
      const docs = await this.#docs(txn)
      const existing = docs.get(destination)
      if (existing?.url === url || (existing === undefined && url === null)) return docs
      if (existing !== undefined) await txn.removeSystem(existing._id)
      docs.delete(destination)
      if (url !== null) docs.set(destination, { _id: await txn.insertSystem(CANONICAL_URLS_TABLE, { requestDestination: destination, url }), url })
      return docs
    })
    this.#set(docs)
  }

  #set(docs: Map<RequestDestination, { url: string }>): void {
    const urls = new Map([...docs].map(([d, { url }]) => [d, url] as const))
    if (urls.size === this.#urls.size && [...urls].every(([d, u]) => this.#urls.get(d) === u)) return
    this.#urls = urls
    for (const l of this.#listeners) l()
  }
}
