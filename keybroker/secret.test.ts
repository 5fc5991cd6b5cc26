import { describe, expect, it } from 'vitest'
import { generateInstanceSecret, parseInstanceSecret } from './secret.ts'

const ERROR = 'Instance secret must be 64 hex characters (32 bytes)'

describe('generateInstanceSecret', () => {
  it('returns 64 lowercase hex characters', () => {
    expect(generateInstanceSecret()).toMatch(/^[0-9a-f]{64}$/)
  })

  it('returns a different secret each time', () => {
    expect(generateInstanceSecret()).not.toEqual(generateInstanceSecret())
  })

  it('round-trips through parseInstanceSecret', () => {
    const hex = generateInstanceSecret()
    expect(Buffer.from(parseInstanceSecret(hex)).toString('hex')).toEqual(hex)
  })
})

describe('parseInstanceSecret', () => {
  it('decodes 64 hex characters into 32 bytes', () => {
    const bytes = parseInstanceSecret('00010203' + 'ff'.repeat(28))
    expect(bytes).toBeInstanceOf(Uint8Array)
    expect(Array.from(bytes)).toEqual([0, 1, 2, 3, ...new Array<number>(28).fill(255)])
  })

  it('accepts uppercase hex', () => {
    expect(Array.from(parseInstanceSecret('AB'.repeat(32)))).toEqual(new Array<number>(32).fill(0xab))
  })

  it.each([
    ['empty', ''],
    ['too short', 'ab'.repeat(31)],
    ['too long', 'ab'.repeat(33)],
    ['odd length', 'a'.repeat(63)],
    ['non-hex', 'zz'.repeat(32)],
    ['surrounding whitespace', ` ${'ab'.repeat(31)}a `],
    ['trailing newline', `${'ab'.repeat(32)}\n`],
  ])('rejects %s', (_label, hex) => {
    expect(() => parseInstanceSecret(hex)).toThrow(new Error(ERROR))
  })
})
