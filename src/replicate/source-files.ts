/**
 * @module The source's stored files as a Convex backend serves them to an admin key — the door
 * Convex's own dashboard uses (its Files page), since Convex's streaming export lists user tables
 * only: `_system/frontend/components:list` for the components, then per component
 * `_system/frontend/fileStorageV2:fileMetadata` (paginated, oldest first, optionally from a
 * creation time: a range of `by_creation_time`) and `:numFiles`, called through `/api/query`.
 * Each listed file is its `_storage` document (`_id`, `_creationTime`, `sha256` in base64,
 * `size`, `contentType`) plus the `url` its bytes are served at (`ctx.storage.getUrl`'s: in
 * Convex `/api/storage/<uuid>[?component=<id>]`, not the document id).
 *
 * Deletions are not listed anywhere: a file deleted at the source is one a listing no longer
 * has. `filePageRange` gives the part of the creation-time order a page answers for, so the
 * replicator can tell which of its files the source no longer has (see replicator.ts).
 */
import type { JSONValue } from '../values/index.ts'

/** A component of the source: its `components:list` id (null for the app itself) and path. */
export interface SourceComponent {
  readonly id: string | null
  readonly path: string
}

/** A stored file as `fileMetadata` lists it. */
export type SourceFile = Record<string, JSONValue> & { _id: string; _creationTime: number; sha256: string; url: string }

export interface FilePage {
  readonly page: readonly SourceFile[]
  readonly isDone: boolean
  readonly continueCursor: string
}

export type SourceQuery = (path: string, args: Record<string, JSONValue>) => Promise<JSONValue>

/** Files per `fileMetadata` page (each with its URL). */
export const FILE_PAGE = 256

/** Every component of the source, the app ('' path) first, then by path. */
export async function sourceComponents(query: SourceQuery): Promise<SourceComponent[]> {
  const listed = (await query('_system/frontend/components:list', {})) as { id: string; path: string }[]
  const children = listed
    .filter((c) => c.path !== '')
    .map((c) => ({ id: c.id, path: c.path }))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  // The app's own files: no componentId (the function runs in the app).
  return [{ id: null, path: '' }, ...children]
}

/** One page of a component's files, oldest first, from creation time `from` (inclusive) if given. */
export async function filePage(query: SourceQuery, component: SourceComponent, from: number | null, cursor: string | null): Promise<FilePage> {
  const page = (await query('_system/frontend/fileStorageV2:fileMetadata', {
    paginationOpts: { numItems: FILE_PAGE, cursor },
    filters: from === null ? { order: 'asc' } : { minCreationTime: from, order: 'asc' },
    componentId: component.id,
  })) as unknown as FilePage
  for (const f of page.page) {
    if (typeof f._id !== 'string' || typeof f._creationTime !== 'number' || typeof f.sha256 !== 'string' || typeof f.url !== 'string') {
      throw new Error(`The source listed a file without an id, creation time, sha256 or URL: ${JSON.stringify(f).slice(0, 300)}`)
    }
  }
  return page
}

export async function numFiles(query: SourceQuery, component: SourceComponent): Promise<number> {
  return (await query('_system/frontend/fileStorageV2:numFiles', { componentId: component.id })) as number
}

/**
 * The part of the creation-time order a page of a pass answers for, and the files it holds there:
 * every file the source had in `[from, to)` (null: unbounded) when the page was read is in `seen`
 * (`check` null: the page answers for nothing, it listed no file). Files at the page's last
 * creation time are left to the next page (the source may order ties differently), carried in
 * `carry` so the next page counts them as seen.
 *
 * `lower`/`carry`: where the pass is (the previous pages' `lower` and `carry`; at its start, the
 * pass's `from` and []). Returns the same for the next page.
 */
export function filePageRange(lower: number | null, carry: readonly string[], page: FilePage): { check: { from: number | null; to: number | null } | null; seen: Set<string>; lower: number | null; carry: string[] } {
  const seen = new Set<string>([...carry, ...page.page.map((f) => f._id)])
  if (page.isDone) return { check: { from: lower, to: null }, seen, lower: null, carry: [] }
  if (page.page.length === 0) return { check: null, seen, lower, carry: [...carry] }
  const last = page.page[page.page.length - 1]!._creationTime
  const atLast = page.page.filter((f) => f._creationTime === last).map((f) => f._id)
  return { check: last === lower ? null : { from: lower, to: last }, seen, lower: last, carry: last === lower ? [...carry, ...atLast] : atLast }
}
