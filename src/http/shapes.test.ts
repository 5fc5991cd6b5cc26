import { expect, test } from 'vitest'
import { tableShape } from './shapes.ts'
import { encodeId } from '../values/index.ts'

const names = new Map([[10001, 'users'], [10002, 'posts']])
const tableName = (n: number) => names.get(n)
const id = (table: number, seed: number) => encodeId(table, new Uint8Array(16).fill(seed))

test('an empty table is Never; documents merge into one object with optional fields, ids and unions', () => {
  expect(tableShape([], tableName)).toEqual({ type: 'Never' })
  const shape = tableShape(
    [
      { _id: id(10002, 1), _creationTime: 1.5, title: 'a', author: id(10001, 2), n: { $integer: 'AQAAAAAAAAA=' }, tags: ['x'] },
      { _id: id(10002, 3), _creationTime: 2.5, title: null, extra: { $bytes: 'AA==' }, tags: [], score: { $float: 'AAAAAAAA+H8=' } },
    ],
    tableName,
  )
  expect(shape).toEqual({
    type: 'Object',
    fields: [
      { fieldName: '_creationTime', optional: false, shape: { type: 'Float64', float64Range: { hasSpecialValues: false } } },
      { fieldName: '_id', optional: false, shape: { type: 'Id', tableName: 'posts' } },
      { fieldName: 'author', optional: true, shape: { type: 'Id', tableName: 'users' } },
      { fieldName: 'extra', optional: true, shape: { type: 'Bytes' } },
      { fieldName: 'n', optional: true, shape: { type: 'Int64' } },
      { fieldName: 'score', optional: true, shape: { type: 'Float64', float64Range: { hasSpecialValues: true } } },
      { fieldName: 'tags', optional: false, shape: { type: 'Array', shape: { type: 'String' } } },
      { fieldName: 'title', optional: false, shape: { type: 'Union', shapes: [{ type: 'Null' }, { type: 'String' }] } },
    ],
  })
  // An id of no existing table is a string; an empty array's elements are Never.
  expect(tableShape([{ x: id(99999, 1), y: [] }], tableName)).toEqual({
    type: 'Object',
    fields: [
      { fieldName: 'x', optional: false, shape: { type: 'String' } },
      { fieldName: 'y', optional: false, shape: { type: 'Array', shape: { type: 'Never' } } },
    ],
  })
})
