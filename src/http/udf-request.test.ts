import { expect, test } from 'vitest'
import { requestShapeError, UDF_POST_REQUEST, UDF_POST_REQUEST_ARGS_ONLY } from './udf-request.ts'
import { functionPathError } from '../functions/registry.ts'

const check = (text: string) => requestShapeError(text, JSON.parse(text), UDF_POST_REQUEST)
const data = (message: string) => `Failed to deserialize the JSON body into the target type: ${message}`

test('a body that deserializes is let through', () => {
  expect(check('{"path":"messages:list","args":{},"format":"json","extra":[1]}')).toBeNull()
  expect(check('{"path":"m:f","args":null,"format":null}')).toBeNull()
  expect(requestShapeError('{"args":[{}]}', { args: [{}] }, UDF_POST_REQUEST_ARGS_ONLY)).toBeNull()
})

test("a missing field is named with serde's position: past the object's closing brace", () => {
  expect(check('{}')).toBe(data('missing field `path` at line 1 column 2'))
  expect(check('{"path":"a:b"}')).toBe(data('missing field `args` at line 1 column 14'))
  expect(check('{\n  "args": {}\n}')).toBe(data('missing field `path` at line 3 column 1'))
  // Columns count bytes.
  expect(check('{"ä":1}')).toBe(data('missing field `path` at line 1 column 8'))
})

test("a field of the wrong type is named with serde's words, at the first in the body's order", () => {
  expect(check('{"path":5,"args":{}}')).toBe(data('path: invalid type: integer `5`, expected a string at line 1 column 9'))
  expect(check('{"path":{},"args":{}}')).toBe(data('path: invalid type: map, expected a string at line 1 column 8'))
  expect(check('{"path": [1],"args":{}}')).toBe(data('path: invalid type: sequence, expected a string at line 1 column 9'))
  expect(check('{"args":{},"path":null}')).toBe(data('path: invalid type: null, expected a string at line 1 column 22'))
  expect(check('{"path":"a:b","args":{},"format":7}')).toBe(data('format: invalid type: integer `7`, expected a string at line 1 column 34'))
  expect(check('{"format":true,"path":1.5}')).toBe(data('format: invalid type: boolean `true`, expected a string at line 1 column 14'))
  expect(check('{"path":1e3}')).toBe(data('path: invalid type: floating point `1000.0`, expected a string at line 1 column 11'))
  expect(check('5')).toBe(data('invalid type: integer `5`, expected struct UdfPostRequest at line 1 column 1'))
  expect(check(' "x"')).toBe(data('invalid type: string "x", expected struct UdfPostRequest at line 1 column 4'))
})

test("function paths are parsed as Convex's UdfPath", () => {
  for (const ok of ['messages:list', 'messages', 'dir/sub/m.js:f', 'a//b:c', 'a/./b:c', '_system/x:y', '..js:f']) expect([ok, functionPathError(ok)]).toEqual([ok, null])
  expect(functionPathError('')).toBe("Module path  doesn't have a filename.")
  expect(functionPathError('a/..:f')).toBe("Module path a/.. doesn't have a filename.")
  expect(functionPathError('messages.ts:list')).toBe("Module path (messages.ts) has an extension that isn't 'js'.")
  expect(functionPathError('m.:f')).toBe("Module path (m.) has an extension that isn't 'js'.")
  expect(functionPathError('/abs:f')).toBe('Module paths must be relative (/abs is absolute).')
  expect(functionPathError('../x:y')).toBe('Invalid path component ParentDir in ../x.')
  expect(functionPathError('./x:y')).toBe('Invalid path component CurDir in ./x.')
  expect(functionPathError('my-module:f')).toBe('Path component my-module.js can only contain alphanumeric characters, underscores, or periods.')
  expect(functionPathError('__/m:f')).toBe('Path component __ must have at least one alphanumeric character.')
  expect(functionPathError(`${'a'.repeat(62)}:f`)).toBe(`Path component is too long (65 > maximum 64): ${'a'.repeat(62)}.j...`)
  expect(functionPathError('a:b:c')).toBe('Path component a:b.js can only contain alphanumeric characters, underscores, or periods.')
  expect(functionPathError('m:')).toBe('Identifier cannot be empty')
  expect(functionPathError('m:1f')).toBe("Invalid first character '1' in 1f: Identifiers must start with an alphabetic character or underscore")
})

test('within a larger body, the path names the element and the field, and no position is given', () => {
  const q = { path: 3, args: {} }
  expect(requestShapeError(() => JSON.stringify(q), q, UDF_POST_REQUEST, 'queries[2]')).toBe(data('queries[2].path: invalid type: integer `3`, expected a string'))
  expect(requestShapeError(() => '{}', {}, UDF_POST_REQUEST, 'queries[0]')).toBe(data('queries[0]: missing field `path`'))
})
