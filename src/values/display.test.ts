import { expect, test } from 'vitest'
import { displayValue, jsonF64, rustDebugF64, rustDebugStr, rustDisplayF64 } from './index.ts'

test('floats like Rust {:?}', () => {
  const cases: [number, string][] = [
    [0, '0.0'], [-0, '-0.0'], [1, '1.0'], [-2.5, '-2.5'], [123, '123.0'], [0.1, '0.1'], [1e-4, '0.0001'],
    [9.99e-5, '9.99e-5'], [1e15, '1000000000000000.0'], [1e16, '1e16'], [1.5e16, '1.5e16'], [1e-7, '1e-7'],
    [1700000000000.5, '1700000000000.5'], [5e-324, '5e-324'], [1.7976931348623157e308, '1.7976931348623157e308'],
    [NaN, 'NaN'], [Infinity, 'inf'], [-Infinity, '-inf'],
  ]
  for (const [n, s] of cases) expect([n, rustDebugF64(n)]).toEqual([n, s])
})

test('floats like Rust {} and serde_json', () => {
  expect(rustDisplayF64(1)).toBe('1')
  expect(rustDisplayF64(-1.5)).toBe('-1.5')
  expect(rustDisplayF64(1e21)).toBe('1000000000000000000000')
  expect(rustDisplayF64(1e-7)).toBe('0.0000001')
  expect(rustDisplayF64(-0)).toBe('-0')
  expect(jsonF64(1)).toBe('1.0')
  expect(jsonF64(1e16)).toBe('1e16')
  expect(jsonF64(1e15)).toBe('1000000000000000.0')
  expect(jsonF64(1.5e16)).toBe('1.5e16')
  expect(jsonF64(1e-5)).toBe('0.00001')
  expect(jsonF64(1.5e-6)).toBe('1.5e-6')
  expect(jsonF64(-0.5)).toBe('-0.5')
  expect(jsonF64(12.34)).toBe('12.34')
})

test('strings like Rust {:?}', () => {
  expect(rustDebugStr('plain text')).toBe('"plain text"')
  expect(rustDebugStr('a"b\\c\n\t\r\0')).toBe('"a\\"b\\\\c\\n\\t\\r\\0"')
  expect(rustDebugStr("it's")).toBe('"it\'s"')
  expect(rustDebugStr('\u0001\u007f\u00a0é😀')).toBe('"\\u{1}\\u{7f}\\u{a0}é😀"')
  expect(rustDebugStr('e\u0301')).toBe('"e\\u{301}"')
  expect(rustDebugStr('\u200b')).toBe('"\\u{200b}"')
})

test('values like the backend Display', () => {
  expect(displayValue({ b: [1n, 2.5, null, true], a: 'x', c: new Uint8Array([1, 2, 3]).buffer, d: {} })).toBe(
    '{a: "x", b: [1, 2.5, null, true], c: b"AQID", d: {}}',
  )
  expect(displayValue([])).toBe('[]')
  expect(displayValue(-0)).toBe('-0.0')
})
