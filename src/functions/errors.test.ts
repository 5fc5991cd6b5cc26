import { expect, test } from 'vitest'
import { rustDuration, timedOutMessage } from './errors.ts'

test('time limits print as Rust prints a Duration with {:?}', () => {
  expect(rustDuration(1000)).toBe('1s')
  expect(rustDuration(600_000)).toBe('600s')
  expect(rustDuration(1500)).toBe('1.5s')
  expect(rustDuration(1001)).toBe('1.001s')
  expect(rustDuration(100)).toBe('100ms')
  expect(rustDuration(2.5)).toBe('2.5ms')
  expect(rustDuration(0.25)).toBe('250µs')
  expect(rustDuration(0)).toBe('0ns')
  expect(timedOutMessage(500)).toBe('Function execution timed out (maximum duration: 500ms)')
})
