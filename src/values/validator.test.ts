import { v } from 'convex/values'
import { describe, expect, test } from 'vitest'
import {
  COMMIT_TS,
  displayValidator,
  encodeId,
  formatValidatorError,
  validateArgs,
  validateDocument,
  validateReturns,
  validateValue,
  type Value,
  type ValidatorContext,
  type ValidatorJSON,
} from './index.ts'

const TABLES: Record<string, number> = { users: 1, messages: 2, _storage: 3 }
const NAMES = new Map(Object.entries(TABLES).map(([k, n]) => [n, k]))
const ctx: ValidatorContext = { tableNumberForName: (n) => TABLES[n], tableNameForNumber: (n) => NAMES.get(n) }
const ctxNumbersOnly: ValidatorContext = { tableNumberForName: (n) => TABLES[n] }

const iid = new Uint8Array(16).fill(7)
const userId = encodeId(1, iid)
const messageId = encodeId(2, iid)
const storageId = encodeId(3, iid)
const unknownTableId = encodeId(9, iid)

// `.json` is how convex/values validators export themselves (marked internal in its typings).
const J = (x: unknown): ValidatorJSON => (x as { json: ValidatorJSON }).json
const check = (validator: unknown, value: Value | undefined, c = ctx): string | null => validateValue(J(validator), value, c)

describe('validateValue: primitives', () => {
  test('accepts matching values', () => {
    expect(check(v.null(), null)).toBeNull()
    expect(check(v.number(), 1.5)).toBeNull()
    expect(check(v.float64(), NaN)).toBeNull()
    expect(check(v.int64(), 5n)).toBeNull()
    expect(check(v.boolean(), false)).toBeNull()
    expect(check(v.string(), '')).toBeNull()
    expect(check(v.bytes(), new ArrayBuffer(2))).toBeNull()
    expect(check(v.any(), { x: [1n] })).toBeNull()
    expect(check(v.any(), undefined)).toBeNull()
  })

  test('int64 and float64 are strict', () => {
    expect(check(v.int64(), 1)).toBe('Value does not match validator.\n\nValue: 1.0\nValidator: v.int64()')
    expect(check(v.float64(), 1n)).toBe('Value does not match validator.\n\nValue: 1\nValidator: v.float64()')
  })

  test('NoMatch texts per validator kind', () => {
    expect(check(v.string(), 5)).toBe('Value does not match validator.\n\nValue: 5.0\nValidator: v.string()')
    expect(check(v.null(), 'x')).toBe('Value does not match validator.\n\nValue: "x"\nValidator: v.null()')
    expect(check(v.boolean(), null)).toBe('Value does not match validator.\n\nValue: null\nValidator: v.boolean()')
    expect(check(v.bytes(), [1])).toBe('Value does not match validator.\n\nValue: [1.0]\nValidator: v.bytes()')
    expect(check(v.array(v.string()), 'x')).toBe('Value does not match validator.\n\nValue: "x"\nValidator: v.array(v.string())')
    expect(check(v.object({ a: v.string() }), [])).toBe('Value does not match validator.\n\nValue: []\nValidator: v.object({a: v.string()})')
    expect(check(v.record(v.string(), v.number()), 3n)).toBe('Value does not match validator.\n\nValue: 3\nValidator: v.record(v.string(), v.float64())')
    expect(check(v.string(), new Uint8Array([1, 2, 3]).buffer)).toBe('Value does not match validator.\n\nValue: b"AQID"\nValidator: v.string()')
  })

  test('commitTs placeholder validates as an int64 (max)', () => {
    expect(check(v.int64(), COMMIT_TS as unknown as Value)).toBeNull()
    expect(validateValue({ type: 'commitTs' }, COMMIT_TS, ctx)).toBeNull()
    expect(validateValue({ type: 'commitTs' }, 3n, ctx)).toBeNull()
    expect(check(v.float64(), COMMIT_TS as unknown as Value)).toBe('Value does not match validator.\n\nValue: 9223372036854775807\nValidator: v.float64()')
  })
})

describe('validateValue: objects', () => {
  const obj = v.object({ a: v.string(), b: v.optional(v.number()) })

  test('missing required field', () => {
    expect(check(obj, {})).toBe(
      'Object is missing the required field `a`. Consider wrapping the field validator in `v.optional(...)` if this is expected.\n\n' +
        'Object: {}\nValidator: v.object({a: v.string(), b: v.optional(v.float64())})',
    )
  })

  test('extra field (the smallest extra name is reported)', () => {
    expect(check(obj, { a: 'x', z: 1, y: 1n })).toBe(
      'Object contains extra field `y` that is not in the validator.\n\nObject: {a: "x", y: 1, z: 1.0}\nValidator: v.object({a: v.string(), b: v.optional(v.float64())})',
    )
  })

  test('field errors come in field order before extra fields, with a path', () => {
    expect(check(obj, { a: 1, zz: 1 })).toBe('Value does not match validator.\nPath: .a\nValue: 1.0\nValidator: v.string()')
    expect(check(obj, { a: 'x', b: 'y' })).toBe('Value does not match validator.\nPath: .b\nValue: "y"\nValidator: v.float64()')
  })

  test('nested paths through objects and arrays', () => {
    const nested = v.object({ a: v.object({ b: v.array(v.int64()) }) })
    expect(check(nested, { a: { b: [1n, 2] } })).toBe('Value does not match validator.\nPath: .a.b[1]\nValue: 2.0\nValidator: v.int64()')
    expect(check(nested, { a: {} })).toBe(
      'Object is missing the required field `b`. Consider wrapping the field validator in `v.optional(...)` if this is expected.\nPath: .a\n' +
        'Object: {}\nValidator: v.object({b: v.array(v.int64())})',
    )
  })

  test('optional fields may be absent; inherited property names are not fields', () => {
    expect(check(obj, { a: 'x' })).toBeNull()
    expect(check(v.object({ constructor: v.optional(v.string()) }), {})).toBeNull()
    expect(check(v.object({ toString: v.string() }), {})).toBe(
      'Object is missing the required field `toString`. Consider wrapping the field validator in `v.optional(...)` if this is expected.\n\n' +
        'Object: {}\nValidator: v.object({toString: v.string()})',
    )
  })
})

describe('validateValue: literals, unions, records, ids', () => {
  test('literals', () => {
    expect(check(v.literal('x'), 'x')).toBeNull()
    expect(check(v.literal('x'), 'y')).toBe('`"y"` does not match literal validator `v.literal("x")`.')
    expect(check(v.object({ k: v.literal(3) }), { k: 4 })).toBe('`4.0` does not match literal validator `v.literal(3.0)`.Path: .k')
    expect(check(v.literal(3), 3n)).toBe('`3` does not match literal validator `v.literal(3.0)`.')
    expect(check(v.literal(3n), 3n)).toBeNull()
    expect(check(v.literal(3n), 4n)).toBe('`4` does not match literal validator `v.literal(<bigint>)`.')
    expect(check(v.literal(true), false)).toBe('`false` does not match literal validator `v.literal(true)`.')
    expect(check(v.literal(0.1), 0.2)).toBe('`0.2` does not match literal validator `v.literal(0.1)`.')
    expect(check(v.literal(1e21), 1)).toBe('`1.0` does not match literal validator `v.literal(1e21)`.')
    expect(check(v.literal('a"b'), 'c')).toBe('`"c"` does not match literal validator `v.literal("a\\"b")`.')
  })

  test('unions', () => {
    const u = v.union(v.string(), v.null())
    expect(check(u, null)).toBeNull()
    expect(check(u, 'x')).toBeNull()
    expect(check(u, 1)).toBe('Value does not match validator.\n\nValue: 1.0\nValidator: v.union(v.string(), v.null())')
    expect(check(v.object({ u }), { u: false })).toBe('Value does not match validator.\nPath: .u\nValue: false\nValidator: v.union(v.string(), v.null())')
    // A one-member union reports its member's error.
    expect(validateValue({ type: 'union', value: [J(v.object({ a: v.string() }))] }, { a: 1 }, ctx)).toBe(
      'Value does not match validator.\nPath: .a\nValue: 1.0\nValidator: v.string()',
    )
    expect(validateValue({ type: 'union', value: [] }, 1, ctx)).toBe('Value does not match validator.\n\nValue: 1.0\nValidator: v.union()')
  })

  test('records', () => {
    const r = v.record(v.string(), v.number())
    expect(check(r, { a: 1, b: 2 })).toBeNull()
    expect(check(r, { b: 'x', a: 1 })).toBe('Value does not match validator.\nPath: .values()\nValue: "x"\nValidator: v.float64()')
    expect(check(v.record(v.id('users'), v.any()), { foo: 1 })).toBe('Value does not match validator.\nPath: .keys()\nValue: "foo"\nValidator: v.id("users")')
    expect(check(v.record(v.id('users'), v.boolean()), { [userId]: true })).toBeNull()
  })

  test('ids', () => {
    expect(check(v.id('users'), userId)).toBeNull()
    expect(check(v.id('users'), messageId)).toBe(
      `Found ID "${messageId}" from table \`messages\`, which does not match the table name in validator \`v.id("users")\`.`,
    )
    expect(check(v.object({ u: v.id('users') }), { u: storageId })).toBe(
      `Found ID "${storageId}" from a system table, which does not match the table name in validator \`v.id("users")\`.Path: .u`,
    )
    expect(check(v.id('users'), 'not-an-id')).toBe('Value does not match validator.\n\nValue: "not-an-id"\nValidator: v.id("users")')
    expect(check(v.id('users'), unknownTableId)).toBe(`Value does not match validator.\n\nValue: "${unknownTableId}"\nValidator: v.id("users")`)
    expect(check(v.id('users'), 5)).toBe('Value does not match validator.\n\nValue: 5.0\nValidator: v.id("users")')
    // Without a number → name lookup, a wrong table is a plain mismatch.
    expect(check(v.id('users'), userId, ctxNumbersOnly)).toBeNull()
    expect(check(v.id('users'), messageId, ctxNumbersOnly)).toBe(`Value does not match validator.\n\nValue: "${messageId}"\nValidator: v.id("users")`)
  })
})

describe('prefixed errors', () => {
  const args = J(v.object({ body: v.string() }))

  test('arguments', () => {
    expect(validateArgs(args, [{ body: 'hi' }], ctx)).toBeNull()
    expect(validateArgs(null, [1, 2], ctx)).toBeNull()
    expect(validateArgs(J(v.any()), [1, 2], ctx)).toBeNull()
    expect(validateArgs(args, [{}], ctx)).toBe(
      'ArgumentValidationError: Object is missing the required field `body`. Consider wrapping the field validator in `v.optional(...)` if this is expected.\n\n' +
        'Object: {}\nValidator: v.object({body: v.string()})',
    )
    expect(validateArgs(args, [{ body: 'x', extra: null }], ctx)).toBe(
      'ArgumentValidationError: Object contains extra field `extra` that is not in the validator.\n\nObject: {body: "x", extra: null}\nValidator: v.object({body: v.string()})',
    )
    expect(validateArgs(args, [[1]], ctx)).toBe("ArgumentValidationError: Expected to receive an object as the function's argument. Instead received: [1.0]")
    expect(validateArgs(args, [{}, {}], ctx)).toBe(
      "ArgumentValidationError: Expected to receive a single object as the function's argument. Instead received 2 arguments: [{}, {}]",
    )
  })

  test('return values', () => {
    expect(validateReturns(J(v.null()), null, ctx)).toBeNull()
    expect(validateReturns(null, 5, ctx)).toBeNull()
    expect(validateReturns(J(v.null()), 5, ctx)).toBe('ReturnsValidationError: Value does not match validator.\n\nValue: 5.0\nValidator: v.null()')
  })

  test('schema enforcement ignores system fields on both sides', () => {
    const documentType = J(v.object({ _id: v.id('messages'), author: v.string(), body: v.string() }))
    const doc = { _id: messageId, _creationTime: 1700000000000.5, body: 'hi' }
    expect(validateDocument('messages', documentType, { ...doc, author: 'me' }, ctx)).toBeNull()
    expect(validateDocument('messages', documentType, doc, ctx)).toBe(
      'Failed to insert or update a document in table "messages" because it does not match the schema: ' +
        'Object is missing the required field `author`. Consider wrapping the field validator in `v.optional(...)` if this is expected.\n\n' +
        'Object: {body: "hi"}\nValidator: v.object({author: v.string(), body: v.string()})',
    )
    const union = J(v.union(v.object({ kind: v.literal('a') }), v.object({ kind: v.literal('b'), n: v.number() })))
    expect(validateDocument('t', union, { _id: 'x', kind: 'b', n: 1 }, ctx)).toBeNull()
    expect(validateDocument('t', union, { _id: 'x', kind: 'c' }, ctx)).toBe(
      'Failed to insert or update a document in table "t" because it does not match the schema: Value does not match validator.\n\n' +
        'Value: {kind: "c"}\nValidator: v.union(v.object({kind: v.literal("a")}), v.object({kind: v.literal("b"), n: v.float64()}))',
    )
    expect(validateDocument('t', null, { anything: 1 }, ctx)).toBeNull()
    expect(formatValidatorError('schema', 'm', 'x')).toBe('Failed to insert or update a document in table "x" because it does not match the schema: m')
  })
})

test('displayValidator', () => {
  const all = v.object({
    id: v.id('users'),
    n: v.null(),
    f: v.float64(),
    i: v.int64(),
    b: v.boolean(),
    s: v.string(),
    y: v.bytes(),
    a: v.any(),
    l: v.literal('x'),
    arr: v.array(v.union(v.string(), v.literal(-0.5))),
    r: v.record(v.string(), v.number()),
    o: v.optional(v.object({})),
  })
  expect(displayValidator(J(all))).toBe(
    'v.object({a: v.any(), arr: v.array(v.union(v.string(), v.literal(-0.5))), b: v.boolean(), f: v.float64(), i: v.int64(), id: v.id("users"), ' +
      'l: v.literal("x"), n: v.null(), o: v.optional(v.object({})), r: v.record(v.string(), v.float64()), s: v.string(), y: v.bytes()})',
  )
  expect(displayValidator({ type: 'commitTs' })).toBe('v.commitTs()')
})
