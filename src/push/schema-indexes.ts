/**
 * @module The indexes a pushed schema declares, checked as Convex checks them at push.
 *
 * A table definition (the `convex` package's `TableDefinition.export()`) lists database, search
 * and vector indexes, each kind also in a `staged` list (`staged: true`: built and kept current,
 * but not queryable until a later push drops the flag). Every kind is supported; a table
 * definition listing an index kind this backend doesn't know (a newer `convex` package) is
 * refused, so that a push never lands with indexes that would fail at their first use.
 */
import type { ValidatorJSON } from '../values/index.ts'
import { MAX_VECTOR_DIMENSIONS, MAX_VECTOR_FILTER_FIELDS, MIN_VECTOR_DIMENSIONS } from '../database/vector.ts'

/** A failure the CLI should show the user: answered as HTTP 400 `{code, message}`. */
export class PushError extends Error {
  constructor(
    readonly code: string,
    message: string,
    /** The HTTP status it is answered with (Convex's: 400 but for what is not found). */
    readonly status: 400 | 404 = 400,
  ) {
    super(message)
  }
}

/** An index as the schema wants it, for comparison with the catalog's. */
export type WantedIndex = { name: string; staged: boolean } & (
  | { kind: 'database'; fields: string[] }
  | { kind: 'search'; searchField: string; filterFields: string[] }
  | { kind: 'vector'; vectorField: string; dimensions: number; filterFields: string[] }
)

interface TableDefinitionJSON {
  tableName: string
  documentType?: ValidatorJSON | null
  [list: string]: unknown
}

interface RawIndex {
  indexDescriptor: string
  fields?: string[]
  searchField?: string
  vectorField?: string
  dimensions?: number
  filterFields?: string[]
}

/** The index lists a table definition may hold, and the kind of index in each. */
const INDEX_LISTS = {
  indexes: { kind: 'database', staged: false },
  stagedDbIndexes: { kind: 'database', staged: true },
  searchIndexes: { kind: 'search', staged: false },
  stagedSearchIndexes: { kind: 'search', staged: true },
  vectorIndexes: { kind: 'vector', staged: false },
  stagedVectorIndexes: { kind: 'vector', staged: true },
} as const

/** Filter fields as Convex keeps them: a set, in order. */
function fieldSet(fields: readonly string[] | undefined): string[] {
  return [...new Set(fields ?? [])].sort()
}

/**
 * A vector field must be able to hold an array of float64 (Convex's
 * `overlaps_with_array_float64`): a field the validator doesn't describe, `v.any()`, or an
 * array of `v.float64()`/`v.any()`, possibly optional or in a union.
 */
function canHoldVector(validator: ValidatorJSON, path: readonly string[]): boolean {
  if (path.length === 0) {
    if (validator.type === 'array') return validator.value.type === 'number' || validator.value.type === 'any'
    if (validator.type === 'union') return validator.value.some((v) => canHoldVector(v, path))
    return validator.type === 'any'
  }
  if (validator.type === 'any') return true
  if (validator.type === 'union') return validator.value.some((v) => canHoldVector(v, path))
  if (validator.type === 'object') {
    const field = validator.value[path[0]!]
    return field === undefined || canHoldVector(field.fieldType, path.slice(1))
  }
  return false
}

/** The indexes a schema table declares, checked with Convex's rules and messages. */
export function schemaIndexes(table: TableDefinitionJSON, schemaValidation: boolean): WantedIndex[] {
  const tableName = table.tableName
  for (const key of Object.keys(table)) {
    if (/indexes$/i.test(key) && !(key in INDEX_LISTS)) {
      throw new PushError('UnsupportedIndexType', `Table "${tableName}" declares ${key}, a kind of index Concave does not support yet. Remove them from schema.ts to push.`)
    }
  }
  const out: WantedIndex[] = []
  for (const [list, { kind, staged }] of Object.entries(INDEX_LISTS)) {
    const raw = table[list]
    if (raw === undefined || raw === null) continue
    if (!Array.isArray(raw)) throw new PushError('InvalidSchema', `Table "${tableName}": ${list} must be a list`)
    for (const i of raw as RawIndex[]) {
      const name = i.indexDescriptor
      if (kind === 'database') out.push({ kind, name, staged, fields: [...(i.fields ?? [])] })
      else if (kind === 'search') out.push({ kind, name, staged, searchField: String(i.searchField), filterFields: [...(i.filterFields ?? [])] })
      else {
        const filterFields = fieldSet(i.filterFields)
        if (filterFields.length > MAX_VECTOR_FILTER_FIELDS) throw new PushError('IndexTooManyFilterFields', `Search indexes may have up to ${MAX_VECTOR_FILTER_FIELDS} filter fields.`)
        const dimensions = i.dimensions
        if (typeof dimensions !== 'number' || !Number.isInteger(dimensions) || dimensions < MIN_VECTOR_DIMENSIONS || dimensions > MAX_VECTOR_DIMENSIONS) {
          throw new PushError('InvalidVectorDimensionError', `Dimensions ${String(dimensions)} must be between ${MIN_VECTOR_DIMENSIONS} and ${MAX_VECTOR_DIMENSIONS}.`)
        }
        out.push({ kind, name, staged, vectorField: String(i.vectorField), dimensions, filterFields })
      }
    }
  }
  // Two vector indexes on the same field and dimensions (Convex compares them in name order).
  const vectors = out.filter((i): i is Extract<WantedIndex, { kind: 'vector' }> => i.kind === 'vector').sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  const seen = new Map<string, string>()
  for (const v of vectors) {
    const other = seen.get(`${v.vectorField}\u0000${v.dimensions}`)
    if (other !== undefined) {
      throw new PushError(
        'VectorIndexFieldNotUnique',
        `In table "${tableName}" vector index "${v.name}" and vector index "${other}" have the same \`vectorField\`. Vector index fields must be unique within a table. You should combine the\n             indexes with the same \`vectorField\` into one index containing all \`filterField\`s and then use different subsets of the \`filterField\`s at query time.`,
      )
    }
    seen.set(`${v.vectorField}\u0000${v.dimensions}`, v.name)
  }
  const names = new Set<string>()
  for (const i of out) {
    if (names.has(i.name)) throw new PushError('IndexNamesNotUnique', `Table "${tableName}" has two or more definitions of index "${i.name}".`)
    names.add(i.name)
  }
  if (schemaValidation && table.documentType !== undefined && table.documentType !== null) {
    for (const v of vectors) {
      if (!canHoldVector(table.documentType, v.vectorField.split('.'))) {
        throw new PushError(
          'SchemaDefinitionError',
          `In table "${tableName}" the vector index "${v.name}" is invalid because it references the field "${v.vectorField}" that is neither an array of float64 or optional array of float64.`,
        )
      }
    }
  }
  return out
}
