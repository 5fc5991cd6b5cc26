import { getConvexSize, type Value as ConvexValue } from 'convex/values'
import { describe, expect, test } from 'vitest'
import {
  checkArgs,
  checkDocumentLimits,
  checkResultSize,
  checkValueLimits,
  COMMIT_TS,
  encodeId,
  formatBytes,
  formatSize,
  jsonTextSize,
  jsonValueSize,
  valueNesting,
  valueSize,
  valueToJson,
  type Value,
} from './index.ts'
import { prng, randomValue } from './test-helpers.ts'

const id = encodeId(1017, new Uint8Array(16).fill(1)) // 32 chars
const base = { _id: id, _creationTime: 1700000000000.5 }

function nest(depth: number): Value {
  let v: Value = {}
  for (let i = 1; i < depth; i++) v = { a: v }
  return v
}

describe('valueSize', () => {
  test('matches convex/values getConvexSize on random values', () => {
    const r = prng(3)
    for (let i = 0; i < 500; i++) {
      const x = randomValue(r)
      expect(valueSize(x)).toBe(getConvexSize(x as ConvexValue))
    }
  })
  test('formula', () => {
    expect(valueSize(null)).toBe(1)
    expect(valueSize(true)).toBe(1)
    expect(valueSize(1n)).toBe(9)
    expect(valueSize(1.5)).toBe(9)
    expect(valueSize(COMMIT_TS)).toBe(9)
    expect(valueSize('héllo😀')).toBe(2 + 10)
    expect(valueSize(new ArrayBuffer(5))).toBe(7)
    expect(valueSize([1, 'a'])).toBe(2 + 9 + 3)
    expect(valueSize({ ab: null })).toBe(2 + 3 + 1)
    expect(valueSize({ ...base })).toBe(2 + (3 + 1 + 34) + (13 + 1 + 9))
    expect(valueNesting(5)).toBe(0)
    expect(valueNesting([[], { a: [1] }])).toBe(3)
  })
})

describe('checkDocumentLimits', () => {
  test('valid document', () => {
    expect(checkDocumentLimits({ ...base, a: nest(15), Big: 'x', z: [1n] })).toBeNull()
  })

  test('too large (1 MiB including system fields)', () => {
    const ok = 'x'.repeat((1 << 20) - 67)
    expect(valueSize({ ...base, s: ok })).toBe(1 << 20)
    expect(checkDocumentLimits({ ...base, s: ok })).toBeNull()
    expect(checkDocumentLimits({ ...base, s: ok + 'x' })).toBe('Value is too large (1.00 MiB > maximum size 1 MiB)')
    expect(checkDocumentLimits({ ...base, s: 'x'.repeat(1 << 21) })).toBe('Value is too large (2.00 MiB > maximum size 1 MiB)')
  })

  test('too nested (document limit 16)', () => {
    expect(checkDocumentLimits({ ...base, a: nest(15) })).toBeNull()
    const doc = { ...base, a: nest(16) }
    const shown = '{_creationTime: 1700000000000.5, _id: "' + id + '", a: ' + '{a: '.repeat(15) + '{}' + '}'.repeat(15) + '}'
    expect(checkDocumentLimits(doc)).toBe(
      `Document(value: ${shown}) isn't a valid document: Document is too nested (nested 17 levels deep > maximum nesting 16)`,
    )
  })

  test('system fields and several violations', () => {
    expect(checkDocumentLimits({ ...base, _foo: 1, ok: 2 })).toBe(
      `Document(value: {_creationTime: 1700000000000.5, _foo: 1.0, _id: "${id}", ok: 2.0}) isn't a valid document: ` +
        "Field '_foo' starts with an underscore, which is only allowed for system fields like '_id'",
    )
    expect(checkDocumentLimits({ _id: 5n, _creationTime: -1, _a: null, _b: null })).toBe(
      "Document(value: {_a: null, _b: null, _creationTime: -1.0, _id: 5}) isn't a valid document: The '_id' field 5 must be an Id\n" +
        " The '_creationTime' field should be a timestamp in milliseconds, is -1\n" +
        " Field '_a' starts with an underscore, which is only allowed for system fields like '_id'\n" +
        " Field '_b' starts with an underscore, which is only allowed for system fields like '_id'",
    )
    expect(checkDocumentLimits({ x: 1 })).toBe(
      "Document(value: {x: 1.0}) isn't a valid document: The '_id' field is missing\n The '_creationTime' field is missing",
    )
    expect(checkDocumentLimits({ ...base, _creationTime: 'now' })).toBe(
      `Document(value: {_creationTime: "now", _id: "${id}"}) isn't a valid document: The '_creationTime' field should be a float, is "now"`,
    )
  })

  test('value limits come first', () => {
    expect(checkDocumentLimits({ ...base, a: Array.from({ length: 8193 }, () => null) })).toBe('Array length is too long (8193 > maximum length 8192)')
    const wide: Record<string, Value> = { ...base }
    for (let i = 0; i < 1023; i++) wide[`f${i}`] = null
    expect(checkDocumentLimits(wide)).toBe('Object has too many fields (1025 > maximum number 1024)')
    expect(checkDocumentLimits({ ...base, $x: 1 })).toBe("Field name $x starts with '$', which is reserved.")
  })
})

describe('checkValueLimits', () => {
  test('nesting 64 and field names', () => {
    let deep: Value = []
    for (let i = 1; i < 64; i++) deep = [deep]
    expect(checkValueLimits(deep)).toBeNull()
    expect(checkValueLimits([deep])).toBe('Value is too nested (nested 65 levels deep > maximum nesting 64)')
    expect(checkValueLimits({ a: { 'b\u0001': 1 } })).toBe(
      "Field name b\u0001 has invalid character '\\u{1}': Field names can only contain non-control ASCII characters",
    )
    expect(checkValueLimits({ ok: 'x'.repeat(1 << 25) })).toBe('Value is too large (32.00 MiB > maximum size 32 MiB)')
  })
})

test('formatSize (humansize BINARY)', () => {
  expect(formatSize(0)).toBe('0 B')
  expect(formatSize(512)).toBe('512 B')
  expect(formatSize(1024)).toBe('1 KiB')
  expect(formatSize(1536)).toBe('1.50 KiB')
  expect(formatSize(1152)).toBe('1.12 KiB') // 1.125 rounds half to even
  expect(formatSize(1 << 20)).toBe('1 MiB')
  expect(formatSize(16 * 1024 * 1024 + 1)).toBe('16.00 MiB')
})

test('checkArgs', () => {
  expect(checkArgs('messages.js:send', [{ body: 'hi' }])).toBeNull()
  expect(checkArgs('messages.js:send', [{ body: 'x'.repeat(1 << 24) }])).toBe(
    'Arguments for messages.js:send are too large (actual: 16.00 MiB, limit: 16 MiB)',
  )  // A value's limits first, the arguments' own array counting as a level of nesting.
  expect(checkArgs('messages.js:send', [{ list: Array.from({ length: 9000 }, () => 1) }])).toBe('Invalid arguments for messages.js:send: Array length is too long (9000 > maximum length 8192)')
})

describe('sizes of values in their JSON form (what reads and writes are charged)', () => {
  test('jsonValueSize and jsonTextSize match valueSize on random values', () => {
    const r = prng(7)
    for (let i = 0; i < 1000; i++) {
      const x = randomValue(r)
      const json = valueToJson(x)
      expect(jsonValueSize(json)).toBe(valueSize(x))
      expect(jsonTextSize(JSON.stringify(json))).toBe(valueSize(x))
    }
  })
  test('escapes, surrogate pairs and lone surrogates count their UTF-8 bytes', () => {
    for (const s of ['a"b\\c\n', '\u0001\u001f', 'é€😀', '\ud800x', 'x\udc00', 'é'.repeat(300), '😀'.repeat(200)]) {
      const text = JSON.stringify({ s, [s.length > 5 ? 'k' : 'kk']: [s, { inner: s }] })
      const expected = valueSize(JSON.parse(text) as Value)
      expect(jsonTextSize(text)).toBe(expected)
      expect(jsonTextSize(JSON.stringify(JSON.parse(text), null, 2))).toBe(expected)
    }
  })
  test('encoded scalars', () => {
    expect(jsonTextSize('{"a":{"$integer":"AQAAAAAAAAA="},"b":{"$float":"AAAAAAAA+H8="},"c":{"$bytes":"AQID"},"d":{"$bytes":"AQI="},"e":{"$bytes":""}}')).toBe(
      2 + (2 + 9) + (2 + 9) + (2 + 5) + (2 + 4) + (2 + 2),
    )
    expect(jsonValueSize({ c: { $bytes: 'AQ==' } })).toBe(2 + 2 + 3)
  })
})

test("formatBytes (Convex's format_bytes)", () => {
  expect(formatBytes(8_388_608)).toBe('8 MiB')
  expect(formatBytes(1534)).toBe('1534 bytes')
  expect(formatBytes(1024)).toBe('1 KiB')
  expect(formatBytes(1000)).toBe('1 KB')
  expect(formatBytes(0)).toBe('0 bytes')
  expect(formatBytes(4_718_592)).toBe('4.5 MiB')
  expect(formatBytes(16 * 2 ** 20)).toBe('16 MiB')
})

test('checkResultSize: a value nested past 64 levels is invalid; encoded scalars are no level', () => {
  const deep = (n: number, leaf: unknown) => {
    let v: unknown = leaf
    for (let i = 0; i < n; i++) v = [v]
    return JSON.stringify(v)
  }
  expect(checkResultSize('m.js:f', deep(64, 1))).toBeNull()
  expect(checkResultSize('m.js:f', deep(63, { $integer: 'AQAAAAAAAAA=' }))).toBeNull()
  expect(checkResultSize('m.js:f', deep(63, '[[[[')) ).toBeNull()
  expect(checkResultSize('m.js:f', deep(65, 1))).toBe('Function m.js:f return value invalid: Value is too nested (nested 65 levels deep > maximum nesting 64)')
})

test("checkResultSize: an array past 8192 elements or an object past 1024 fields is invalid, as Convex reads a value (commas in strings don't count)", () => {
  const array = (n: number) => JSON.stringify(Array.from({ length: n }, () => 1))
  const object = (n: number) => JSON.stringify(Object.fromEntries(Array.from({ length: n }, (_, i) => [`f${i}`, 'a,b,c'])))
  expect(checkResultSize('m.js:f', array(8192))).toBeNull()
  expect(checkResultSize('m.js:f', array(8193))).toBe('Function m.js:f return value invalid: Array length is too long (8193 > maximum length 8192)')
  expect(checkResultSize('m.js:f', JSON.stringify([[1, 2], JSON.parse(array(9000))]))).toBe('Function m.js:f return value invalid: Array length is too long (9000 > maximum length 8192)')
  expect(checkResultSize('m.js:f', object(1024))).toBeNull()
  expect(checkResultSize('m.js:f', object(1025))).toBe('Function m.js:f return value invalid: Object has too many fields (1025 > maximum number 1024)')
  // Many commas inside strings: one element.
  expect(checkResultSize('m.js:f', JSON.stringify([','.repeat(20_000)]))).toBeNull()
})

test('checkResultSize: the value size of the convex-encoded JSON, short results not parsed', () => {
  const limit = 1000
  // 200 zeros: 402 characters of JSON, a value of 2 + 200 * 9 bytes.
  const zeros = JSON.stringify(Array.from({ length: 200 }, () => 0))
  expect(checkResultSize('m.js:f', zeros, limit)).toBe('Function m.js:f return value is too large (actual: 1.76 KiB, limit: 1000 B)')
  expect(checkResultSize('m.js:f', JSON.stringify('x'.repeat(998)), limit)).toBeNull()
  expect(checkResultSize('m.js:f', JSON.stringify('x'.repeat(999)), limit)).toBe('Function m.js:f return value is too large (actual: 1001 B, limit: 1000 B)')
  // An int64 is 9 bytes however long its encoding.
  expect(checkResultSize('m.js:f', JSON.stringify(Array.from({ length: 100 }, () => ({ $integer: 'AQAAAAAAAAA=' }))), limit)).toBeNull()
  expect(checkResultSize('m.js:f', JSON.stringify('x'.repeat((1 << 24) - 1)))).toBe('Function m.js:f return value is too large (actual: 16.00 MiB, limit: 16 MiB)')
})
