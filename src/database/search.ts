/**
 * @module Full-text search indexes, as Convex has them.
 *
 * A search index (`defineTable(…).searchIndex(name, {searchField, filterFields})`) keeps, for each
 * document of its table, an entry: the search field's terms and one key per filter field. The
 * committer writes entries with the commit that changes a document, so the index is always in step
 * with the documents of any snapshot. Entries are computed here and stored behind
 * `Persistence` (SQLite: an FTS5 table); the store matches them and reports term statistics, and
 * the ranking is done here, so that a mutation's own uncommitted writes rank the same way.
 *
 * Semantics (those of Convex's search, built on Tantivy):
 * - Terms: runs of Unicode alphanumerics, lowercased; a term of 32 or more UTF-8 bytes is dropped.
 * - A query's first 16 terms count. All but the last match exactly; the last also matches as a
 *   prefix (the 16 smallest terms starting with it; boosted half as much as an exact match).
 * - A document matches if it contains any query term and passes every `eq` filter (a missing
 *   field equals `undefined`). An empty search string matches nothing.
 * - Results are in BM25 order (k1 = 1.2, b = 0.75, idf = ln(1 + (N − n + 0.5) / (n + 0.5))), then
 *   newest first, then by id; at most 1024 per query, and reading past the 1024th is an error.
 * - A mutation's searches see its own inserts, patches and deletes (statistics included).
 *
 * Reactivity and OCC: a search records a read of its whole table (`by_creation_time`, every key),
 * so any write to the table re-runs a subscribed search and conflicts with a mutation that
 * searched it. Simple and safe; finer read sets (by term and filter) are possible later.
 *
 * Where the store's search picks candidates beyond 1024 matches, it uses its own ranking (FTS5's
 * bm25) to choose which 1024 are ranked here; below that limit the order is exactly the above.
 */
import { createHash } from 'node:crypto'
import type { KeyInterval, SearchEntry, SearchIndexConfig, SearchQuery, SearchResult, Snapshot, StoredDocument } from '../storage/persistence.ts'
import { encodeIndexKey, jsonToValueAllowUndefined, UNDEFINED } from '../values/index.ts'
import type { JSONValue, Value } from '../values/index.ts'
import { BY_CREATION_TIME, fieldValue } from './catalog.ts'
import type { IndexInfo, TableInfo } from './catalog.ts'
import { DatabaseError } from './errors.ts'
import type { Transaction } from './transaction.ts'

type Doc = Record<string, JSONValue>

/** How many terms of a query count (Convex: MAX_QUERY_TERMS). */
export const MAX_QUERY_TERMS = 16
/** Terms this long (UTF-8 bytes) or longer are dropped (Convex: MAX_TEXT_TERM_LENGTH, Tantivy's RemoveLongFilter). */
export const MAX_TERM_BYTES = 32
/** Most results a search produces (Convex: MAX_CANDIDATE_REVISIONS). */
export const MAX_CANDIDATES = 1024
/** Most `eq` filters in one search (Convex: MAX_FILTER_CONDITIONS). */
export const MAX_FILTER_CONDITIONS = 8
/** Most terms the last (prefix) query term expands to (Convex: MAX_PREFIX_MATCHES_PER_QUERY_TERM). */
export const MAX_PREFIX_TERMS = 16

const K1 = 1.2
const B = 0.75
const PREFIX_BOOST = 0.5

/** Characters of a term: Rust's `char::is_alphanumeric` (Alphabetic or Numeric), like Tantivy's SimpleTokenizer. */
const TERM = /[\p{Alphabetic}\p{N}]+/gu
const ASCII = /^[\x00-\x7f]*$/

/** Splits text into search terms, as Convex's `convex_en` analyzer does. */
export function tokenize(text: string): string[] {
  const terms: string[] = []
  for (const [token] of text.matchAll(TERM)) {
    if (Buffer.byteLength(token) >= MAX_TERM_BYTES) continue
    // Lowercased character by character, like Tantivy's LowerCaser (no final-sigma rule).
    terms.push(ASCII.test(token) ? token.toLowerCase() : Array.from(token, (c) => c.toLowerCase()).join(''))
  }
  return terms
}

/** The key an `eq` filter compares: a digest of the value's index encoding (`undefined` included). */
export function filterKey(value: Value | undefined): string {
  return createHash('sha256').update(encodeIndexKey([value])).digest('hex').slice(0, 32)
}

/** A document's entry in a search index. A search field that isn't a string has no terms. */
export function searchEntry(config: SearchIndexConfig, doc: Doc): SearchEntry {
  const text = fieldValue(doc, config.searchField)
  return { terms: typeof text === 'string' ? tokenize(text) : [], filterKeys: config.filterFields.map((f) => filterKey(fieldValue(doc, f))) }
}

export function sameEntry(a: SearchEntry, b: SearchEntry): boolean {
  return a.terms.length === b.terms.length && a.filterKeys.length === b.filterKeys.length && a.terms.every((t, i) => t === b.terms[i]) && a.filterKeys.every((k, i) => k === b.filterKeys[i])
}

/** A search query checked against its index, ready to run. */
export interface CompiledSearch {
  /** Terms matched exactly (all query terms but the last), without duplicates. */
  readonly terms: readonly string[]
  /** The last query term, matched exactly and as a prefix; null when the query has no terms. */
  readonly prefix: string | null
  readonly filters: readonly { readonly field: number; readonly key: string }[]
}

interface FilterExpr {
  type: 'Search' | 'Eq'
  fieldPath: string
  value: JSONValue
}

/**
 * Checks `withSearchIndex` filters against the index as Convex does (same messages) and
 * tokenizes the search text. Null: the search string is empty, so nothing matches.
 */
export function compileSearch(index: IndexInfo, rawFilters: unknown): CompiledSearch | null {
  const config = index.search!
  const name = `${index.tableName}.${index.name}`
  if (!Array.isArray(rawFilters) || !rawFilters.every((f) => f !== null && typeof f === 'object' && (f.type === 'Search' || f.type === 'Eq') && typeof f.fieldPath === 'string')) {
    throw new DatabaseError(`Invalid search query against ${name}: expected a list of search and equality filters`)
  }
  const filters = rawFilters as FilterExpr[]
  const first = filters.find((f) => f.type === 'Search')
  if (first === undefined) {
    throw new DatabaseError(`Search query against ${name} does not contain any search filters. You must include a search filter like \`q.search("field", searchText)\`.`)
  }
  if (first.value === '') return null
  let text: string | undefined
  const eqs: { field: number; key: string }[] = []
  for (const f of filters) {
    if (f.type === 'Search') {
      if (f.fieldPath !== config.searchField) {
        throw new DatabaseError(`Search query against ${name} contains a search filter against "${f.fieldPath}", which doesn't match the indexed \`searchField\` "${config.searchField}".`)
      }
      if (text !== undefined) throw new DatabaseError(`Search query against ${name} contains multiple search filters against "${f.fieldPath}". Only one is allowed.`)
      if (typeof f.value !== 'string') throw new DatabaseError(`Search query against ${name}: the search text for "${f.fieldPath}" must be a string`)
      text = f.value
    } else {
      const field = config.filterFields.indexOf(f.fieldPath)
      if (field < 0) {
        throw new DatabaseError(`Search query against ${name} contains an equality filter on "${f.fieldPath}" but that field isn't indexed for filtering in \`filterFields\`.`)
      }
      let value: Value | undefined
      try {
        const v = jsonToValueAllowUndefined(f.value)
        value = v === UNDEFINED ? undefined : (v as Value)
      } catch (e) {
        throw new DatabaseError((e as Error).message)
      }
      eqs.push({ field, key: filterKey(value) })
    }
  }
  const tokens = tokenize(text!).slice(0, MAX_QUERY_TERMS)
  if (eqs.length > MAX_FILTER_CONDITIONS) {
    throw new DatabaseError(`Search query against ${name} has too many filter conditions. Max: ${MAX_FILTER_CONDITIONS} Actual: ${eqs.length}`)
  }
  return { terms: [...new Set(tokens.slice(0, -1))], prefix: tokens.length === 0 ? null : tokens[tokens.length - 1]!, filters: eqs }
}

/**
 * A planned search, in place of an index in a query plan: the index (null when its table doesn't
 * exist yet, so there is nothing to find) and the compiled query (null: matches nothing).
 */
export class SearchPlan {
  #hits: Promise<SearchHit[]> | null = null
  constructor(
    readonly index: IndexInfo | null,
    readonly table: TableInfo | null,
    readonly query: CompiledSearch | null,
  ) {}

  /** The ranked results, computed once per plan (a page and its end-of-results probe share them). */
  hits(txn: Transaction): Promise<SearchHit[]> {
    this.#hits ??= runSearch(txn, this)
    return this.#hits
  }
}

/** One search result: its position key (relevance order is ascending key order) and JSON text. */
export interface SearchHit {
  readonly key: Buffer
  readonly json: string
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b))
}

/**
 * Runs a search in a transaction: the store's matches, minus the documents this transaction
 * changed, plus their current versions; ranked, in relevance order, at most MAX_CANDIDATES.
 */
export async function runSearch(txn: Transaction, plan: SearchPlan): Promise<SearchHit[]> {
  const { index, table, query } = plan
  if (index === null || table === null) return []
  const byCreationTime = table.indexes.get(BY_CREATION_TIME)
  if (byCreationTime !== undefined) txn.readSet.add(byCreationTime.indexId, { lo: Buffer.alloc(0), hi: null })
  if (query === null || query.prefix === null) return []
  const config = index.search!
  const own = [...txn.writes.values()].filter((w) => w.table.tableNumber === index.tableNumber && !(w.base === null && w.doc === null))
  const storeQuery: SearchQuery = { terms: query.terms, prefix: query.prefix, maxPrefixTerms: MAX_PREFIX_TERMS, filters: query.filters, limit: MAX_CANDIDATES + own.length }
  const stored = txn.snapshot.search !== undefined ? await txn.snapshot.search(index.indexId, storeQuery) : await scanSearch(txn.snapshot, table, config, storeQuery)

  // Statistics as of this transaction: its own writes replace the stored versions.
  let documentCount = stored.documentCount
  let termCount = stored.termCount
  const frequencyDelta = new Map<string, number>()
  const prefixTerms = new Set(stored.prefixTerms)
  const candidates: { doc: Doc; json: string | null; entry: SearchEntry }[] = []
  const written = new Set<string>()
  for (const w of own) {
    written.add(w.id)
    if (w.base !== null) {
      const old = searchEntry(config, w.base)
      documentCount--
      termCount -= old.terms.length
      for (const t of new Set(old.terms)) frequencyDelta.set(t, (frequencyDelta.get(t) ?? 0) - 1)
    }
    if (w.doc !== null) {
      const entry = searchEntry(config, w.doc)
      documentCount++
      termCount += entry.terms.length
      for (const t of new Set(entry.terms)) {
        frequencyDelta.set(t, (frequencyDelta.get(t) ?? 0) + 1)
        if (t.startsWith(query.prefix)) prefixTerms.add(t)
      }
      candidates.push({ doc: w.doc, json: null, entry })
    }
  }
  for (const d of stored.documents) {
    if (written.has(d.id)) continue
    const doc = JSON.parse(d.json) as Doc
    candidates.push({ doc, json: d.json, entry: searchEntry(config, doc) })
  }

  // The query's terms and their weights: exact terms (the last one too) count fully, other
  // completions of the last term half.
  const exact = new Set([...query.terms, query.prefix])
  const weights = new Map<string, number>()
  for (const t of query.terms) weights.set(t, 1)
  for (const t of [...prefixTerms].sort(byteOrder).slice(0, MAX_PREFIX_TERMS)) weights.set(t, exact.has(t) ? 1 : PREFIX_BOOST)
  const n = Math.max(1, documentCount)
  const averageLength = termCount > 0 ? termCount / n : 1
  const idf = new Map<string, number>()
  for (const t of weights.keys()) {
    const frequency = Math.max(0, (stored.documentFrequency.get(t) ?? 0) + (frequencyDelta.get(t) ?? 0))
    idf.set(t, Math.log(1 + (n - frequency + 0.5) / (frequency + 0.5)))
  }

  const hits: SearchHit[] = []
  for (const c of candidates) {
    if (!query.filters.every((f) => c.entry.filterKeys[f.field] === f.key)) continue
    const tf = new Map<string, number>()
    for (const t of c.entry.terms) if (weights.has(t)) tf.set(t, (tf.get(t) ?? 0) + 1)
    if (tf.size === 0) continue
    const norm = K1 * (1 - B + (B * c.entry.terms.length) / averageLength)
    let score = 0
    for (const [t, weight] of weights) {
      const f = tf.get(t)
      if (f !== undefined) score += (weight * idf.get(t)! * (f * (K1 + 1))) / (f + norm)
    }
    const creationTime = typeof c.doc._creationTime === 'number' ? c.doc._creationTime : 0
    hits.push({ key: encodeIndexKey([-score, -creationTime, String(c.doc._id)]), json: c.json ?? JSON.stringify(c.doc) })
  }
  hits.sort((a, b) => Buffer.compare(a.key, b.key))
  return hits.slice(0, MAX_CANDIDATES)
}

/**
 * A search over a snapshot without its own (the historical view of `/api/query_at_ts`): reads
 * the whole table through its `by_creation_time` index and matches every document here. Returns
 * every match (not only `limit`): the caller ranks them all.
 */
async function scanSearch(snapshot: Snapshot, table: TableInfo, config: SearchIndexConfig, query: SearchQuery): Promise<SearchResult> {
  const byCreationTime = table.indexes.get(BY_CREATION_TIME)!
  const all = new Set<string>()
  const documentFrequency = new Map<string, number>()
  const documents: StoredDocument[] = []
  let documentCount = 0
  let termCount = 0
  const wanted = new Set(query.terms)
  const entries: { doc: StoredDocument; entry: SearchEntry }[] = []
  let interval: KeyInterval = { lo: Buffer.alloc(0), hi: null }
  for (;;) {
    const rows = await snapshot.scan(byCreationTime.indexId, interval, 'asc', 1024)
    for (const row of rows) {
      const entry = searchEntry(config, JSON.parse(row.doc.json) as Doc)
      documentCount++
      termCount += entry.terms.length
      for (const t of entry.terms) all.add(t)
      entries.push({ doc: row.doc, entry })
    }
    const last = rows[rows.length - 1]
    if (rows.length < 1024 || last === undefined) break
    interval = { lo: Buffer.concat([last.key, Buffer.from([0])]), hi: null }
  }
  const prefixTerms = query.prefix === null ? [] : [...all].filter((t) => t.startsWith(query.prefix!)).sort(byteOrder).slice(0, query.maxPrefixTerms)
  for (const t of prefixTerms) wanted.add(t)
  for (const { doc, entry } of entries) {
    const terms = new Set(entry.terms)
    let matches = false
    for (const t of wanted) {
      // Frequencies count every document with the term, filtered out or not.
      if (!terms.has(t)) continue
      matches = true
      documentFrequency.set(t, (documentFrequency.get(t) ?? 0) + 1)
    }
    if (matches && query.filters.every((f) => entry.filterKeys[f.field] === f.key)) documents.push(doc)
  }
  return { prefixTerms, documentCount, termCount, documentFrequency, documents }
}
