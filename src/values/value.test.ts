import { convexToJson, jsonToConvex, type Value as ConvexValue } from 'convex/values'
import { describe, expect, test } from 'vitest'
import {
  base64Decode,
  base64Encode,
  COMMIT_TS,
  decodeTs,
  encodeTs,
  inFieldOrder,
  inFieldOrderText,
  jsonToValue,
  jsonToValueAllowUndefined,
  UNDEFINED,
  valueToJson,
  ValueError,
  type JSONValue,
  type Value,
} from './index.ts'

const bytes = (...b: number[]): ArrayBuffer => new Uint8Array(b).buffer

const SAMPLE: Value[] = [
  null,
  true,
  false,
  0,
  -0,
  1,
  -1.5,
  Math.PI,
  1e300,
  5e-324,
  NaN,
  Infinity,
  -Infinity,
  Number.MAX_SAFE_INTEGER,
  0n,
  1n,
  -1n,
  5n,
  123456789012345678n,
  0x7fffffffffffffffn,
  -0x8000000000000000n,
  '',
  'hello',
  'héllo wörld 😀 \u0000 \n',
  bytes(),
  bytes(1, 2, 3),
  bytes(0, 255, 128, 7, 0),
  [],
  [1, 2n, 'x', null, [true, [NaN, -0]]],
  {},
  { b: 1, a: 2, c: { z: -0, y: [bytes(9)], x: 3n } },
  { '10': 1, '2': 2, b: 3, A: 4, _x: 5, ' sp ace': 6, '~': 7 },
  { nested: { deeper: { deepest: [{ k: Infinity }] } } },
]

describe('valueToJson / jsonToValue agree with convex/values', () => {
  test.each(SAMPLE.map((v, i) => [i, v] as const))('sample %i', (_i, v) => {
    const ours = valueToJson(v)
    const theirs = convexToJson(v as ConvexValue)
    // Same structure and the same key order (keys sorted on encode).
    expect(JSON.stringify(ours)).toBe(JSON.stringify(theirs))
    expect(ours).toEqual(theirs)
    // Decoding our wire form gives what convex/values decodes, and the original value back.
    const wire = JSON.parse(JSON.stringify(ours)) as JSONValue
    expect(jsonToValue(wire)).toEqual(jsonToConvex(wire))
    expect(jsonToValue(wire)).toEqual(v)
  })

  test('decoded bytes are standalone ArrayBuffers', () => {
    const v = jsonToValue({ $bytes: 'AQID' })
    expect(v).toBeInstanceOf(ArrayBuffer)
    expect([...new Uint8Array(v as ArrayBuffer)]).toEqual([1, 2, 3])
    expect((v as ArrayBuffer).byteLength).toBe(3)
  })
})

describe('exact encodings', () => {
  test('ints, special floats, bytes', () => {
    expect(valueToJson(1n)).toEqual({ $integer: 'AQAAAAAAAAA=' })
    expect(valueToJson(-1n)).toEqual({ $integer: '//////////8=' })
    expect(valueToJson(5n)).toEqual({ $integer: 'BQAAAAAAAAA=' })
    expect(valueToJson(NaN)).toEqual({ $float: 'AAAAAAAA+H8=' })
    expect(valueToJson(Infinity)).toEqual({ $float: 'AAAAAAAA8H8=' })
    expect(valueToJson(-Infinity)).toEqual({ $float: 'AAAAAAAA8P8=' })
    expect(valueToJson(-0)).toEqual({ $float: 'AAAAAAAAAIA=' })
    expect(valueToJson(0)).toBe(0)
    expect(valueToJson(bytes(1, 2, 3))).toEqual({ $bytes: 'AQID' })
  })

  test('keys sorted, undefined fields dropped, __proto__ kept as a field', () => {
    const obj = JSON.parse('{"b":1,"__proto__":{"x":2},"a":null}') as Record<string, Value>
    const v = jsonToValue(obj as JSONValue) as Record<string, Value>
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype)
    expect(Object.keys(v)).toEqual(['b', '__proto__', 'a'])
    expect(JSON.stringify(valueToJson(v))).toBe('{"__proto__":{"x":2},"a":null,"b":1}')
    expect(JSON.stringify(valueToJson({ z: 1, a: undefined } as unknown as Value))).toBe('{"z":1}')
  })

  test('sentinels', () => {
    expect(jsonToValueAllowUndefined({ $undefined: null })).toBe(UNDEFINED)
    expect(jsonToValueAllowUndefined({ $commitTs: null })).toBe(COMMIT_TS)
    expect(jsonToValueAllowUndefined({ a: { $undefined: null }, t: [{ $commitTs: null }] })).toEqual({ a: UNDEFINED, t: [COMMIT_TS] })
    expect(valueToJson({ a: UNDEFINED, t: COMMIT_TS })).toEqual({ a: { $undefined: null }, t: { $commitTs: null } })
  })

  test('+0 as $float is tolerated (as the backend does)', () => {
    expect(Object.is(jsonToValue({ $float: 'AAAAAAAAAAA=' }), 0)).toBe(true)
  })
})

describe('decoding errors', () => {
  const err = (j: unknown, ext = false): string => {
    try {
      if (ext) jsonToValueAllowUndefined(j as JSONValue)
      else jsonToValue(j as JSONValue)
    } catch (e) {
      expect(e).toBeInstanceOf(ValueError)
      return (e as Error).message
    }
    throw new Error('expected a ValueError')
  }
  test('messages', () => {
    expect(err({ $integer: 'AQID' })).toBe('Int64 must be exactly eight bytes')
    expect(err({ $integer: 5 })).toBe('Malformed $integer: expected a base64 string')
    expect(err({ $float: base64Encode(new Float64Array([1.5]).buffer) })).toBe('Float64 1.5 should be encoded as a number')
    expect(err({ $float: 'AAAA' })).toBe('Float64 must be exactly eight bytes')
    expect(err({ $bytes: 'A' })).toBe('Invalid base64 string "A"')
    expect(err({ $bytes: 'AQ!D' })).toBe('Invalid base64 string "AQ!D"')
    expect(err({ $bytes: 'A=BC' })).toBe('Invalid base64 string "A=BC"')
    expect(err({ $bytes: 1 })).toBe('Malformed $bytes: expected a base64 string')
    expect(err({ $foo: 1 })).toBe("Field name $foo starts with '$', which is reserved.")
    expect(err({ $integer: 'AQAAAAAAAAA=', x: 1 })).toBe("Field name $integer starts with '$', which is reserved.")
    expect(err({ $set: [] })).toBe("Field name $set starts with '$', which is reserved.")
    expect(err({ $undefined: null })).toBe("Field name $undefined starts with '$', which is reserved.")
    expect(err({ $commitTs: null })).toBe("Field name $commitTs starts with '$', which is reserved.")
    expect(err({ $undefined: 1 }, true)).toBe('Malformed $undefined: expected null')
    expect(err({ a: { 'b\n': 1 } })).toBe("Field name b\n has invalid character '\\n': Field names can only contain non-control ASCII characters")
    expect(err({ 'é': 1 })).toBe("Field name é has invalid character 'é': Field names can only contain non-control ASCII characters")
    expect(err({ ['x'.repeat(1025)]: 1 })).toBe('Field name is too long (1025 > maximum 1024)')
    expect(err(undefined)).toBe('Unexpected type of undefined in an encoded Convex value')
    let deep: JSONValue = { a: 1 }
    for (let i = 1; i < 64; i++) deep = [deep]
    expect(jsonToValue(deep)).toBeTruthy()
    expect(err([deep])).toBe('Value is too nested (nested 65 levels deep > maximum nesting 64)')
    let veryDeep: JSONValue = []
    for (let i = 0; i < 100_000; i++) veryDeep = [veryDeep]
    expect(err(veryDeep)).toBe('Value is too nested (nested 65 levels deep > maximum nesting 64)')
  })
  test('encoding errors', () => {
    expect(() => valueToJson(2n ** 63n)).toThrow('BigInt 9223372036854775808 does not fit into a 64-bit signed integer.')
    expect(() => valueToJson([undefined] as unknown as Value)).toThrow('undefined is not a valid Convex value (in an array)')
    expect(() => valueToJson(new Map() as unknown as Value)).toThrow('Map [object Map] is not a supported Convex type.')
    expect(() => valueToJson(new Uint8Array(2) as unknown as Value)).toThrow('Uint8Array 0,0 is not a supported Convex type.')
  })
})

describe('base64 and timestamps', () => {
  test('base64', () => {
    expect(base64Encode(new Uint8Array([251, 255]))).toBe('+/8=')
    expect([...base64Decode('+/8=')]).toEqual([251, 255])
    expect([...base64Decode('-_8=')]).toEqual([251, 255])
    expect([...base64Decode('-_8')]).toEqual([251, 255])
    expect([...base64Decode('')]).toEqual([])
    expect(() => base64Decode('abcde')).toThrow('Invalid base64 string "abcde"')
  })
  test('timestamps are base64 u64 little-endian', () => {
    expect(encodeTs(0n)).toBe('AAAAAAAAAAA=')
    expect(encodeTs(1000n)).toBe('6AMAAAAAAAA=')
    expect(encodeTs(25n)).toBe('GQAAAAAAAAA=')
    expect(encodeTs(2n ** 64n - 1n)).toBe('//////////8=')
    expect(decodeTs('6AMAAAAAAAA=')).toBe(1000n)
    expect(decodeTs('//////////8=')).toBe(2n ** 64n - 1n)
    expect(() => decodeTs('AQID')).toThrow('Timestamp must be exactly eight bytes, got 3')
    expect(() => encodeTs(-1n)).toThrow('Timestamp -1 is out of range for u64')
  })
})

describe('field order', () => {
  test('objects get their fields sorted, at every depth; what is in order already is kept as it is', () => {
    const ordered = { _creationTime: 1, _id: 'x', a: [{ b: 1, c: 2 }], z: null }
    expect(inFieldOrder(ordered)).toBe(ordered)
    const list = [1, { a: 1 }]
    expect(inFieldOrder(list)).toBe(list)
    const out = inFieldOrder({ z: 1, _id: 'x', B: { y: [{ q: 1, p: 2 }], x: 2 }, _creationTime: 1, a: 'k' })
    expect(JSON.stringify(out)).toBe('{"B":{"x":2,"y":[{"p":2,"q":1}]},"_creationTime":1,"_id":"x","a":"k","z":1}')
    // A __proto__ field stays a field.
    const proto = inFieldOrder(JSON.parse('{"z":1,"__proto__":{"b":1,"a":2}}') as JSONValue) as Record<string, JSONValue>
    expect(Object.keys(proto)).toEqual(['__proto__', 'z'])
    expect(Object.getPrototypeOf(proto)).toBe(Object.prototype)
    expect(JSON.stringify(proto)).toBe('{"__proto__":{"a":2,"b":1},"z":1}')
  })

  test('an object whose integer-like names JavaScript keeps in number order counts as in order', () => {
    const numbered = JSON.parse('{"9":1,"10":2,"a":3}') as JSONValue
    expect(inFieldOrder(numbered)).toBe(numbered)
    expect(inFieldOrderText('{"9":1,"10":2,"a":{"y":1,"x":2}}')).toBe('{"9":1,"10":2,"a":{"x":2,"y":1}}')
  })

  test('JSON text is rewritten only when an object is out of order', () => {
    const same = '[{"a":1,"b":{"c":2,"d":3}}]'
    expect(inFieldOrderText(same)).toBe(same)
    expect(inFieldOrderText('"x,{"')).toBe('"x,{"')
    expect(inFieldOrderText('{"b":1}')).toBe('{"b":1}')
    expect(inFieldOrderText('[{"b":1,"a":{"d":1,"c":2}}]')).toBe('[{"a":{"c":2,"d":1},"b":1}]')
  })
})
