import { describe, expect, test } from 'vitest'
import { CursorCodec, queryFingerprint } from './cursors.ts'

const SECRET_A = '4361726e697461732c206c69746572616c6c79206d65616e696e6720226c6974'
const SECRET_B = '0000000000000000000000000000000000000000000000000000000000000001'

describe('database/cursors', () => {
  const a = new CursorCodec(SECRET_A)
  const fp = queryFingerprint({ source: { type: 'IndexRange', indexName: 'by_x' } }, ['x', '_creationTime', '_id'])

  test('a cursor opens to the fingerprint and position it was sealed with', () => {
    const key = Buffer.from([1, 2, 3, 250])
    expect(a.decode(a.encode(fp, key))).toEqual({ fingerprint: fp, position: key })
    expect(a.decode(a.encode(fp, 'end'))).toEqual({ fingerprint: fp, position: 'end' })
  })

  test('the same position of the same query is the same text (a re-run page is unchanged)', () => {
    expect(a.encode(fp, Buffer.from('k'))).toBe(a.encode(fp, Buffer.from('k')))
    expect(a.encode(fp, Buffer.from('k'))).not.toBe(a.encode(fp, Buffer.from('l')))
  })

  test("another deployment's cursor, a changed byte, or a bare key does not parse", () => {
    const cursor = new CursorCodec(SECRET_B).encode(fp, Buffer.from('k'))
    expect(() => a.decode(cursor)).toThrow('Failed to parse cursor')
    const mine = Buffer.from(a.encode(fp, Buffer.from('k')), 'base64url')
    for (let i = 0; i < mine.length; i++) {
      const flipped = Buffer.from(mine)
      flipped[i]! ^= 1
      expect(() => a.decode(flipped.toString('base64url'))).toThrow('Failed to parse cursor')
    }
    for (const bad of ['', 'not a cursor', Buffer.from('k').toString('base64url'), 42, null]) expect(() => a.decode(bad)).toThrow('Failed to parse cursor')
  })

  test('fingerprints differ by query and by the index fields read', () => {
    expect(queryFingerprint({ q: 1 }, ['a'])).not.toEqual(queryFingerprint({ q: 2 }, ['a']))
    expect(queryFingerprint({ q: 1 }, ['a'])).not.toEqual(queryFingerprint({ q: 1 }, ['b']))
  })
})
