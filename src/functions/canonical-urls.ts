/**
 * @module The deployment's canonical URLs, as Convex's `_canonical_urls` keeps them
 * (`POST /api/v1/update_canonical_url`): set, they replace the URLs the backend was started with
 * (`--convex-origin`, `--convex-site`) as functions see them (`CONVEX_CLOUD_URL`,
 * `CONVEX_SITE_URL`), in stored files' URLs and in `get_canonical_urls`. One document per
 * destination in a system table, written through the committer, followed by every process
 * (followed-table.ts).
 */
import type { Database } from '../database/database.ts'
import type { Transaction } from '../database/transaction.ts'
import { FollowedTable } from '../database/followed-table.ts'

export const CANONICAL_URLS_TABLE = '_canonical_urls'

/** Convex's RequestDestination, as its JSON names it. */
export type RequestDestination = 'convexCloud' | 'convexSite'
export const REQUEST_DESTINATIONS: readonly RequestDestination[] = ['convexCloud', 'convexSite']

export class CanonicalUrls {
  #urls = new Map<RequestDestination, string>()
  readonly #listeners: (() => void)[] = []

  constructor(readonly db: Database) {
    this.#table = new FollowedTable(db, CANONICAL_URLS_TABLE, async (txn) => this.#set(await this.#docs(txn)))
  }

  /** The URL set for `destination`, or undefined (the backend's own then). */
  get(destination: RequestDestination): string | undefined {
    return this.#urls.get(destination)
  }

  /** Called after each change. */
  onChange(listener: () => void): void {
    this.#listeners.push(listener)
  }

  readonly #table: FollowedTable

  /** Reads the URLs (and, on a shared store, follows other processes' changes of them). */
  load(): Promise<void> {
    return this.#table.load()
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
