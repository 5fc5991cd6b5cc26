/**
 * @module Vector indexes, as Convex has them.
 *
 * A vector index (`defineTable(…).vectorIndex(name, {vectorField, dimensions, filterFields})`)
 * keeps, for each document whose vector field is an array of exactly `dimensions` float64s, an
 * entry: the vector (as 32-bit floats) and one key per filter field (the same keys as full-text
 * search filters, `undefined` included). Any other document has no entry. The committer writes
 * entries with the commit that changes a document; the store (SQLite: sqlite-vec) finds the
 * nearest ones.
 *
 * `ctx.vectorSearch(table, index, {vector, limit, filter})` exists in actions only (V8 and Node),
 * and, as in Convex, reads the latest commit (no transaction, no read set). Semantics:
 * - score: cosine similarity in [-1, 1], results `{_id, _score}` best first; `limit` 10 by
 *   default, at most 256 (0 gives none);
 * - `filter`: `q.eq(field, value)` on declared filter fields, combined with `q.or` (at most 64
 *   values in all); values of one field are an IN, and an OR across fields passes a document
 *   that matches any of them;
 * - a table that doesn't exist yet gives []; a missing, staged or non-vector index is an error.
 * Errors and checks are Convex's, in Convex's order.
 */
import type { VectorEntry, VectorIndexConfig, VectorQuery } from '../storage/persistence.ts'
import { jsonToValueAllowUndefined, UNDEFINED } from '../values/index.ts'
import type { JSONValue, Value } from '../values/index.ts'
import { fieldValue } from './catalog.ts'
import type { IndexInfo } from './catalog.ts'
import type { Database } from './database.ts'
import { DatabaseError, stagedIndex } from './errors.ts'
import { filterKey } from './search.ts'

/** Most results one vector search returns (Convex: MAX_VECTOR_RESULTS). */
export const MAX_VECTOR_RESULTS = 256
/** Results when `limit` isn't given (Convex: DEFAULT_VECTOR_LIMIT). */
export const DEFAULT_VECTOR_LIMIT = 10
/** Most values a filter may compare against, across all its `q.eq`s (Convex: MAX_FILTER_LENGTH). */
export const MAX_FILTER_VALUES = 64
/** Allowed `dimensions` of a vector index (Convex: MIN/MAX_VECTOR_DIMENSIONS). */
export const MIN_VECTOR_DIMENSIONS = 2
export const MAX_VECTOR_DIMENSIONS = 4096
/** Most filter fields of a vector index (Convex: MAX_VECTOR_INDEX_FILTER_FIELDS_SIZE). */
export const MAX_VECTOR_FILTER_FIELDS = 16

type Doc = Record<string, JSONValue>

/**
 * A document's entry in a vector index, or null when it has none: its vector field must be an
 * array of exactly `dimensions` float64s (an int64 element, or any other value, leaves the
 * document out, as in Convex).
 */
export function vectorEntry(config: VectorIndexConfig, doc: Doc): VectorEntry | null {
  const value = fieldValue(doc, config.vectorField)
  if (!Array.isArray(value) || value.length !== config.dimensions) return null
  if (!value.every((x) => typeof x === 'number')) return null
  return { vector: Float32Array.from(value as number[]), filterKeys: config.filterFields.map((f) => filterKey(fieldValue(doc, f))) }
}

export function sameVectorEntry(a: VectorEntry | null, b: VectorEntry | null): boolean {
  if (a === null || b === null) return a === b
  if (a.vector.length !== b.vector.length || a.filterKeys.length !== b.filterKeys.length) return false
  for (let i = 0; i < a.vector.length; i++) if (!Object.is(a.vector[i], b.vector[i])) return false
  return a.filterKeys.every((k, i) => k === b.filterKeys[i])
}

function dimensionsMismatch(received: number, expected: number): DatabaseError {
  return new DatabaseError(`Expected a vector with dimensions ${expected}, received ${received}.`)
}

/** The operators of Convex's filter expressions other than `$eq` and `$or`. */
const OTHER_OPERATORS = new Set(['$literal', '$field', '$neq', '$lt', '$lte', '$gt', '$gte', '$add', '$sub', '$mul', '$div', '$mod', '$neg', '$and', '$not'])

/** Gathers `q.or`/`q.eq` into field → values (as Convex does; an OR of fields, an IN per field). */
function gatherFilter(expr: unknown, into: Map<string, Map<string, Value | undefined>>): void {
  const [op, ...rest] = expr !== null && typeof expr === 'object' && !Array.isArray(expr) ? Object.keys(expr) : []
  const arg = op === undefined ? undefined : (expr as Record<string, unknown>)[op]
  if (op === '$or' && rest.length === 0 && Array.isArray(arg)) {
    for (const e of arg) gatherFilter(e, into)
    return
  }
  if (op === '$eq' && rest.length === 0 && Array.isArray(arg) && arg.length === 2) {
    const [left, right] = arg as [Record<string, unknown> | null, Record<string, unknown> | null]
    const field = left !== null && typeof left === 'object' && typeof left.$field === 'string' ? left.$field : null
    if (field === null || right === null || typeof right !== 'object' || !('$literal' in right)) {
      throw new DatabaseError('`q.eq` must take a field path as its first argument and a value as its second')
    }
    let value: Value | undefined
    try {
      const v = jsonToValueAllowUndefined(right.$literal as JSONValue)
      value = v === UNDEFINED ? undefined : (v as Value)
    } catch (e) {
      throw new DatabaseError((e as Error).message)
    }
    let values = into.get(field)
    if (values === undefined) into.set(field, (values = new Map()))
    values.set(filterKey(value), value)
    return
  }
  if (op !== undefined && rest.length === 0 && (OTHER_OPERATORS.has(op) || op === '$eq' || op === '$or')) {
    throw new DatabaseError('Filters should be a combination of `q.eq` and `q.or`.')
  }
  throw new DatabaseError(`Invalid vector search filter: ${JSON.stringify(expr) ?? String(expr)}`)
}

/** The request of `1.0/actions/vectorSearch`, parsed as Convex does before looking anything up. */
interface ParsedVectorSearch {
  tableName: string
  indexName: string
  limit: number | undefined
  vector: number[]
  filter: Map<string, Map<string, Value | undefined>>
}

function parseRequest(raw: unknown): ParsedVectorSearch {
  const query = (raw as { query?: unknown } | null)?.query as Record<string, unknown> | undefined
  if (query === null || typeof query !== 'object') throw new DatabaseError('Invalid vector search: missing `query`')
  const name = typeof query.indexName === 'string' ? query.indexName : ''
  const dot = name.indexOf('.')
  if (dot <= 0 || dot === name.length - 1) throw new DatabaseError(`Invalid index name: "${name}"`)
  const limit = query.limit
  if (limit !== undefined && limit !== null) {
    if (typeof limit !== 'number' || !Number.isInteger(limit)) throw new DatabaseError(`invalid type: floating point \`${String(limit)}\`, expected u32`)
    if (limit < 0 || limit > 0xffff_ffff) throw new DatabaseError(`invalid value: integer \`${limit}\`, expected u32`)
  }
  const vector = query.vector
  if (!Array.isArray(vector) || !vector.every((x) => typeof x === 'number')) throw new DatabaseError('invalid type: `vector` must be an array of numbers, expected f32')
  const filter = new Map<string, Map<string, Value | undefined>>()
  if (query.expressions !== undefined && query.expressions !== null) gatherFilter(query.expressions, filter)
  return { tableName: name.slice(0, dot), indexName: name.slice(dot + 1), limit: limit === null ? undefined : (limit as number | undefined), vector: vector as number[], filter }
}

/** Checks a parsed search against its index (Convex's QdrantSchema::compile, same order and messages). */
export function compileVectorQuery(index: IndexInfo, search: Pick<ParsedVectorSearch, 'limit' | 'vector' | 'filter'>): VectorQuery {
  const config = index.vector!
  const name = `${index.tableName}.${index.name}`
  if (search.vector.length > MAX_VECTOR_DIMENSIONS) throw dimensionsMismatch(search.vector.length, MAX_VECTOR_DIMENSIONS)
  const limit = search.limit ?? DEFAULT_VECTOR_LIMIT
  if (limit > MAX_VECTOR_RESULTS) throw new DatabaseError(`Vector queries can fetch at most ${MAX_VECTOR_RESULTS} results, requested ${limit}.`)
  const filters: { field: number; keys: string[] }[] = []
  let length = 0
  for (const [path, values] of search.filter) {
    const field = config.filterFields.indexOf(path)
    if (field < 0) throw new DatabaseError(`Vector query against ${name} contains a filter on "${path}" but that field isn't indexed for filtering in \`filterFields\`.`)
    filters.push({ field, keys: [...values.keys()] })
    length += values.size
  }
  if (length > MAX_FILTER_VALUES) throw new DatabaseError(`Vector query against ${name} has too many conditions. Max: ${MAX_FILTER_VALUES} Actual: ${length}`)
  if (search.vector.length !== config.dimensions) throw dimensionsMismatch(search.vector.length, config.dimensions)
  return { vector: Float32Array.from(search.vector), limit, filters }
}

/** `ctx.vectorSearch`: the request of the `1.0/actions/vectorSearch` syscall, answered as its JSON result. */
export async function vectorSearch(db: Database, request: unknown, component = ''): Promise<{ results: { _id: string; _score: number }[] }> {
  const search = parseRequest(request)
  const txn = await db.begin(false)
  try {
    const table = db.tableForRead(search.tableName, component)
    if (table === undefined) return { results: [] }
    const index = table.indexes.get(search.indexName)
    const name = `${search.tableName}.${search.indexName}`
    if (index === undefined || index.building === true) throw new DatabaseError(`Index ${name} not found.`)
    if (index.staged === true) throw stagedIndex(name)
    if (index.vector === undefined) throw new DatabaseError(`Index ${name} is not a vector index`)
    const query = compileVectorQuery(index, search)
    const hits = await txn.snapshot.vectorSearch!(index.indexId, query)
    return { results: hits.map((h) => ({ _id: h.id, _score: h.score })) }
  } finally {
    db.end(txn)
  }
}
