import { expect, test } from 'vitest'
import { BODY_PIECE } from '../../runtime/protocol.ts'
import { MAX_STAGED_BYTES, Staging } from './staging.ts'

const bytes = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => i % 251))

test('bytes up to a piece cross inline as base64; larger ones are staged and fetched piece by piece, then let go', () => {
  const staging = new Staging()
  expect(staging.give(Buffer.from('hi'))).toBe('aGk=')
  expect(staging.give(bytes(BODY_PIECE))).toBe(bytes(BODY_PIECE).toString('base64'))
  const big = bytes(2 * BODY_PIECE + 5)
  const ref = staging.give(big)
  expect(ref).toEqual({ staged: 1, length: big.length })
  const piece = (at: number) => Buffer.from((JSON.parse(staging.op('concave/stageGet', { id: 1, at })!) as { chunk: string }).chunk, 'base64')
  const got = Buffer.concat([piece(0), piece(BODY_PIECE), piece(2 * BODY_PIECE)])
  expect(got.equals(big)).toBe(true)
  // The last piece was fetched: the bytes are gone.
  expect(() => staging.op('concave/stageGet', { id: 1, at: 0 })).toThrow('No such staged bytes')
  // A Node action's worker takes everything inline.
  expect(new Staging(true).give(big)).toBe(big.toString('base64'))
  expect(staging.op('1.0/get', {})).toBeUndefined()
})

test('pieces the sandbox sends are taken whole, once, and checked against the length it names', () => {
  const staging = new Staging()
  expect(staging.take('aGk=').toString()).toBe('hi')
  const big = bytes(BODY_PIECE + 7)
  for (const at of [0, BODY_PIECE]) expect(staging.op('concave/stagePut', { id: 4, chunk: big.subarray(at, at + BODY_PIECE).toString('base64') })).toBe('null')
  expect(staging.take({ staged: 4, length: big.length }).equals(big)).toBe(true)
  expect(() => staging.take({ staged: 4, length: big.length })).toThrow(`Expected ${big.length} staged bytes, got 0`)
  staging.op('concave/stagePut', { id: 5, chunk: 'aGk=' })
  expect(() => staging.take({ staged: 5, length: 3 })).toThrow('Expected 3 staged bytes, got 2')
})

test('a call may stage at most MAX_STAGED_BYTES toward the host; what is taken or cleared makes room again', () => {
  const staging = new Staging()
  const piece = Buffer.alloc(BODY_PIECE).toString('base64')
  for (let i = 0; i < MAX_STAGED_BYTES / BODY_PIECE; i++) staging.op('concave/stagePut', { id: 1, chunk: piece })
  expect(() => staging.op('concave/stagePut', { id: 2, chunk: 'AA==' })).toThrow(`More than ${MAX_STAGED_BYTES} bytes staged for the host at once`)
  expect(staging.take({ staged: 1, length: MAX_STAGED_BYTES }).length).toBe(MAX_STAGED_BYTES)
  expect(staging.op('concave/stagePut', { id: 2, chunk: 'AA==' })).toBe('null')
  staging.clear()
  expect(() => staging.take({ staged: 2, length: 1 })).toThrow('Expected 1 staged bytes, got 0')
})
