import { describe, expect, test } from 'vitest'
import { parseAuthorizationHeader } from './auth-header.ts'
import { HttpError } from '../util/http-error.ts'

/** The 400 a header is refused with, as [status, code, message]. */
function refusal(header: string): [number, string, string] {
  try {
    parseAuthorizationHeader(header)
  } catch (e) {
    if (e instanceof HttpError) return [e.status, e.code, e.message]
    throw e
  }
  throw new Error(`${JSON.stringify(header)} was accepted`)
}

describe('parseAuthorizationHeader', () => {
  test('no header is no one', () => {
    expect(parseAuthorizationHeader(undefined)).toEqual({ kind: 'none' })
  })

  test('`Convex ` and `Bearer ` are matched without regard to case', () => {
    expect(parseAuthorizationHeader('Convex name|key')).toEqual({ kind: 'admin', value: 'name|key' })
    expect(parseAuthorizationHeader('cOnVeX name|key:aWQ=')).toEqual({ kind: 'admin', value: 'name|key:aWQ=' })
    expect(parseAuthorizationHeader('Bearer a.b.c')).toEqual({ kind: 'user', token: 'a.b.c' })
    expect(parseAuthorizationHeader('bearer  a.b.c ')).toEqual({ kind: 'user', token: 'a.b.c' })
    expect(parseAuthorizationHeader('BEARER x')).toEqual({ kind: 'user', token: 'x' })
  })

  test('a header shorter than 7 characters is an invalid authentication header', () => {
    for (const h of ['', 'a', 'Bearer', 'Convex']) expect(refusal(h)).toEqual([400, 'InvalidHeaderFailure', 'Invalid authentication header'])
  })

  test('any other scheme, or a bare `Bearer `, is an invalid admin key (as Convex calls it)', () => {
    for (const h of ['Basic dXNlcjpwYXNz', 'Token abc', 'Bearer ', 'Bearer:abc', 'Convex:abc']) expect(refusal(h)).toEqual([400, 'InvalidAdminKey', 'Invalid admin key'])
  })

  test('a value that is not visible ASCII cannot be parsed', () => {
    expect(refusal('Bearer caf\u00e9 "x"')).toEqual([400, 'HeaderParseFailure', 'Failed to parse header "Bearer caf\\xe9 \\"x\\""'])
  })
})
