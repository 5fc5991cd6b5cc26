import { expect, test } from 'vitest'
import { PushError, schemaIndexes } from './schema-indexes.ts'

const vectorIndex = (name: string, more: Record<string, unknown> = {}) => ({ indexDescriptor: name, vectorField: 'embedding', dimensions: 4, filterFields: [], ...more })

function failure(table: Record<string, unknown>, schemaValidation = true): { code: string; message: string } {
  try {
    schemaIndexes({ tableName: 'docs', ...table }, schemaValidation)
  } catch (e) {
    if (e instanceof PushError) return { code: e.code, message: e.message }
    throw e
  }
  throw new Error('accepted')
}

test('every kind of index, staged or not; vector filter fields as a sorted set', () => {
  const indexes = schemaIndexes(
    {
      tableName: 'docs',
      indexes: [{ indexDescriptor: 'by_a', fields: ['a'] }],
      stagedDbIndexes: [{ indexDescriptor: 'by_b', fields: ['b', 'c'] }],
      searchIndexes: [{ indexDescriptor: 's', searchField: 'text', filterFields: ['z', 'a'] }],
      stagedSearchIndexes: [],
      vectorIndexes: [vectorIndex('v', { filterFields: ['z', 'a', 'z'] })],
      stagedVectorIndexes: [vectorIndex('w', { vectorField: 'other', dimensions: 2 })],
      documentType: null,
    },
    true,
  )
  expect(indexes).toEqual([
    { kind: 'database', name: 'by_a', staged: false, fields: ['a'] },
    { kind: 'database', name: 'by_b', staged: true, fields: ['b', 'c'] },
    { kind: 'search', name: 's', staged: false, searchField: 'text', filterFields: ['z', 'a'] },
    { kind: 'vector', name: 'v', staged: false, vectorField: 'embedding', dimensions: 4, filterFields: ['a', 'z'] },
    { kind: 'vector', name: 'w', staged: true, vectorField: 'other', dimensions: 2, filterFields: [] },
  ])
})

test('an index kind this backend does not know fails the push', () => {
  expect(failure({ indexes: [], geoIndexes: [{ indexDescriptor: 'g' }] })).toEqual({
    code: 'UnsupportedIndexType',
    message: 'Table "docs" declares geoIndexes, a kind of index Concave does not support yet. Remove them from schema.ts to push.',
  })
})

test("Convex's checks of vector indexes", () => {
  expect(failure({ vectorIndexes: [vectorIndex('v', { dimensions: 2.5 })] })).toEqual({ code: 'InvalidVectorDimensionError', message: 'Dimensions 2.5 must be between 2 and 4096.' })
  expect(failure({ stagedVectorIndexes: [vectorIndex('v', { dimensions: 4097 })] }).code).toBe('InvalidVectorDimensionError')
  expect(schemaIndexes({ tableName: 'docs', vectorIndexes: [vectorIndex('v', { dimensions: 4096, filterFields: Array.from({ length: 16 }, (_, i) => `f${i}`) })] }, true)).toHaveLength(1)
  expect(failure({ vectorIndexes: [vectorIndex('v', { filterFields: Array.from({ length: 17 }, (_, i) => `f${i}`) })] }).code).toBe('IndexTooManyFilterFields')
  // Same field and dimensions, one of them staged; other dimensions are fine.
  expect(failure({ vectorIndexes: [vectorIndex('b')], stagedVectorIndexes: [vectorIndex('a')] }).message).toContain('In table "docs" vector index "b" and vector index "a" have the same `vectorField`.')
  expect(schemaIndexes({ tableName: 'docs', vectorIndexes: [vectorIndex('b'), vectorIndex('a', { dimensions: 8 })] }, true)).toHaveLength(2)
  expect(failure({ indexes: [{ indexDescriptor: 'x', fields: ['a'] }], vectorIndexes: [vectorIndex('x')] })).toEqual({ code: 'IndexNamesNotUnique', message: 'Table "docs" has two or more definitions of index "x".' })
})

test('the vector field must be able to hold an array of float64 (when the schema is enforced)', () => {
  const object = (fieldType: unknown, optional = false) => ({ type: 'object', value: { embedding: { fieldType, optional } } })
  const ok = (documentType: unknown, field = 'embedding') => schemaIndexes({ tableName: 'docs', vectorIndexes: [vectorIndex('v', { vectorField: field })], documentType: documentType as never }, true).length === 1
  const floats = { type: 'array', value: { type: 'number' } }
  expect(ok(object(floats))).toBe(true)
  expect(ok(object(floats, true))).toBe(true)
  expect(ok(object({ type: 'array', value: { type: 'any' } }))).toBe(true)
  expect(ok(object({ type: 'union', value: [{ type: 'null' }, floats] }))).toBe(true)
  expect(ok(object({ type: 'any' }))).toBe(true)
  expect(ok({ type: 'any' })).toBe(true)
  expect(ok(object(floats), 'undeclared')).toBe(true)
  expect(ok({ type: 'object', value: { nested: { fieldType: object(floats), optional: false } } }, 'nested.embedding')).toBe(true)
  expect(failure({ vectorIndexes: [vectorIndex('v')], documentType: object({ type: 'array', value: { type: 'bigint' } }) })).toEqual({
    code: 'SchemaDefinitionError',
    message: 'In table "docs" the vector index "v" is invalid because it references the field "embedding" that is neither an array of float64 or optional array of float64.',
  })
  expect(failure({ vectorIndexes: [vectorIndex('v')], documentType: object({ type: 'string' }) }).code).toBe('SchemaDefinitionError')
  // Not checked when the schema isn't enforced.
  expect(schemaIndexes({ tableName: 'docs', vectorIndexes: [vectorIndex('v')], documentType: object({ type: 'string' }) as never }, false)).toHaveLength(1)
})
