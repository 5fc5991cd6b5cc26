import { expect, test } from 'vitest'
import { LIMITS } from '../database/transaction.ts'
import { parseTransactionLimits } from './syscalls.ts'

test('transactionLimits are read as serde reads TransactionLimits', () => {
  expect(parseTransactionLimits(undefined)).toBeUndefined()
  expect(parseTransactionLimits(null)).toBeUndefined()
  // Left-out fields take the default limits; unknown ones (filesRead, …) are ignored.
  expect(parseTransactionLimits({ documentsRead: 5, filesRead: 3 })).toEqual({ ...LIMITS, documentsRead: 5 })
  expect(parseTransactionLimits({ bytesWritten: 0 })).toEqual({ ...LIMITS, bytesWritten: 0 })
  const error = (raw: unknown) => {
    try {
      parseTransactionLimits(raw)
    } catch (e) {
      return (e as Error).message
    }
    return null
  }
  const prefix = 'Invalid arguments for `runUdf`: '
  expect(error({ documentsRead: -1 })).toBe(`${prefix}invalid value: integer \`-1\`, expected usize`)
  expect(error({ documentsRead: 1.5 })).toBe(`${prefix}invalid type: floating point \`1.5\`, expected usize`)
  expect(error({ documentsRead: '5' })).toBe(`${prefix}invalid type: string "5", expected usize`)
  expect(error({ documentsRead: null })).toBe(`${prefix}invalid type: null, expected usize`)
  expect(error({ documentsRead: true })).toBe(`${prefix}invalid type: boolean \`true\`, expected usize`)
  expect(error({ documentsRead: [] })).toBe(`${prefix}invalid type: sequence, expected usize`)
  expect(error(5)).toBe(`${prefix}invalid type: integer \`5\`, expected struct TransactionLimits`)
})
