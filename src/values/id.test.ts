import { describe, expect, test } from 'vitest'
import { decodeId, encodeId, newInternalId, timeOrderedId } from './index.ts'

function vectorInternalId(): Uint8Array {
  const b = new Uint8Array(16)
  b[0] = 251
  for (let i = 1; i < 16; i++) b[i] = (b[i - 1]! * 251) % 256
  return b
}

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz'

describe('ids', () => {
  test('test vector from id_v6.rs', () => {
    const id = encodeId(1017, vectorInternalId())
    expect(id).toBe('z43zp6c3e75gkmz1kfwj6mbbx5sw281h')
    expect(decodeId(id)).toEqual({ tableNumber: 1017, internalId: vectorInternalId() })
  })

  test('lengths by table number, round trips', () => {
    const iid = vectorInternalId()
    const cases: [number, number][] = [[1, 31], [127, 31], [128, 32], [16383, 32], [16384, 34], [2 ** 21 - 1, 34], [2 ** 21, 36], [2 ** 28, 37], [2 ** 32 - 1, 37]]
    for (const [table, len] of cases) {
      const id = encodeId(table, iid)
      expect([table, id.length]).toEqual([table, len])
      expect(decodeId(id)).toEqual({ tableNumber: table, internalId: iid })
    }
    for (let i = 0; i < 200; i++) {
      const internalId = newInternalId()
      const table = 1 + ((i * 7919) % 20000)
      expect(decodeId(encodeId(table, internalId))).toEqual({ tableNumber: table, internalId })
    }
  })

  test('rejects invalid ids', () => {
    const id = 'z43zp6c3e75gkmz1kfwj6mbbx5sw281h'
    // wrong footer: change the last char
    expect(decodeId(id.slice(0, -1) + 'j')).toBeNull()
    // a flipped character in the middle breaks the checksum
    expect(decodeId(id.slice(0, 10) + (id[10] === 'a' ? 'b' : 'a') + id.slice(11))).toBeNull()
    // characters outside the alphabet (i, l, o, u and uppercase)
    expect(decodeId(id.slice(0, -1) + 'i')).toBeNull()
    expect(decodeId(id.slice(0, -1) + 'u')).toBeNull()
    expect(decodeId(id.toUpperCase())).toBeNull()
    // truncated / too long / empty
    expect(decodeId(id.slice(0, -1))).toBeNull()
    expect(decodeId(id + '0')).toBeNull()
    expect(decodeId('')).toBeNull()
    expect(decodeId('x'.repeat(38))).toBeNull()
    // table number 0: build the bytes by hand (VInt 0, internal id, valid footer)
    const bytes = [0, ...vectorInternalId()]
    let c0 = 0
    let c1 = 0
    for (const b of bytes) {
      c0 = (c0 + b) & 255
      c1 = (c1 + c0) & 255
    }
    expect(decodeId(base32([...bytes, c0, c1]))).toBeNull()
    // a 31-char id (3 padding bits) with non-zero padding bits in the last character
    const short = encodeId(5, vectorInternalId())
    expect(short.length).toBe(31)
    const last = ALPHABET.indexOf(short[30]!)
    const padded = short.slice(0, -1) + ALPHABET[last ^ 1]
    expect(decodeId(padded)).toBeNull()
  })

  test('encodeId argument checks', () => {
    expect(() => encodeId(0, vectorInternalId())).toThrow('Invalid table number 0')
    expect(() => encodeId(1, new Uint8Array(15))).toThrow('Internal id must be 16 bytes, got 15')
  })

  test('time-ordered ids: 6 bytes of milliseconds, then 10 random ones; canonical, distinct, in creation order', () => {
    const ms = 0x0123_4567_89ab
    const seen = new Set<string>()
    for (const table of [1, 128, 2 ** 21, 2 ** 32 - 1]) {
      for (let i = 0; i < 500; i++) {
        const id = timeOrderedId(table, ms + i)
        const decoded = decodeId(id)!
        expect(decoded.tableNumber).toBe(table)
        expect(Buffer.from(decoded.internalId.subarray(0, 6)).readUIntBE(0, 6)).toBe(ms + i)
        expect(encodeId(table, decoded.internalId)).toBe(id)
        seen.add(id)
      }
      const ids = Array.from({ length: 50 }, (_, i) => timeOrderedId(table, ms + 1000 + i))
      expect([...ids].sort()).toEqual(ids)
    }
    expect(seen.size).toBe(2000)
  })
})

function base32(bytes: number[]): string {
  let out = ''
  let acc = 0
  let bits = 0
  for (const b of bytes) {
    acc = (acc << 8) | b
    bits += 8
    while (bits >= 5) {
      bits -= 5
      out += ALPHABET[(acc >> bits) & 31]
    }
    acc &= (1 << bits) - 1
  }
  if (bits > 0) out += ALPHABET[(acc << (5 - bits)) & 31]
  return out
}
