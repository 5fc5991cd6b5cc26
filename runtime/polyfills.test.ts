import { expect, test } from 'vitest'
import { TextDecoderPolyfill, TextEncoderPolyfill } from './polyfills.ts'

// Strings whose characters are 1, 2, 3 and 4 bytes, long enough that sequences straddle the
// decoder's 64 KiB windows, and lone surrogates (U+FFFD when encoded).
const samples = ['', 'plain ascii', 'é'.repeat(40_000), '€'.repeat(30_000) + 'x', '🎉'.repeat(20_000) + 'ab', 'a\ud800b\udc00c', ('xé€🎉').repeat(25_000)]

test("TextEncoder writes exactly what Node's does, into bytes of the exact length; encodeInto stops at a whole character", () => {
  for (const s of samples) expect(Buffer.from(new TextEncoderPolyfill().encode(s)).equals(Buffer.from(new TextEncoder().encode(s)))).toBe(true)
  const dest = new Uint8Array(5)
  expect(new TextEncoderPolyfill().encodeInto('ab🎉c', dest)).toEqual({ read: 2, written: 2 })
  expect(new TextEncoderPolyfill().encodeInto('ab€c', dest)).toEqual({ read: 3, written: 5 })
  expect([...dest]).toEqual([0x61, 0x62, 0xe2, 0x82, 0xac])
})

test("TextDecoder reads inputs larger than its window as Node's does: sequences split across windows, a BOM, a truncated tail", () => {
  for (const s of samples) {
    const bytes = new TextEncoder().encode(s)
    expect(new TextDecoderPolyfill().decode(bytes)).toBe(new TextDecoder().decode(bytes))
  }
  const withBom = new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode('é'.repeat(70_000))])
  expect(new TextDecoderPolyfill().decode(withBom)).toBe('é'.repeat(70_000))
  // A tail cut mid-sequence: one U+FFFD, or an error when fatal.
  const cut = new TextEncoder().encode('€'.repeat(30_000)).subarray(0, 89_999)
  expect(new TextDecoderPolyfill().decode(cut)).toBe(new TextDecoder().decode(cut))
  expect(() => new TextDecoderPolyfill('utf-8', { fatal: true }).decode(cut)).toThrow('The encoded data is not valid.')
  // Streamed: the split sequence completes in the next call.
  const d = new TextDecoderPolyfill()
  const all = new TextEncoder().encode('🎉'.repeat(20_000))
  expect(d.decode(all.subarray(0, 65_537), { stream: true }) + d.decode(all.subarray(65_537))).toBe('🎉'.repeat(20_000))
})

test('a fatal decode that fails in a later window leaves the decoder as new: the next input may start with a BOM', () => {
  const d = new TextDecoderPolyfill('utf-8', { fatal: true })
  const bad = new Uint8Array(200_000).fill(0x61)
  bad[150_000] = 0xff
  expect(() => d.decode(bad)).toThrow('The encoded data is not valid.')
  expect(d.decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x61]))).toBe('a')
})
