import { expect, test } from 'vitest'
import { loneSurrogate } from '../../runtime/json-text.ts'
import { danglingWarning, durationWarning, rustDuration } from './warnings.ts'

test("durations print as Rust's Debug for Duration does (Convex's duration warning)", () => {
  expect(rustDuration(1000)).toBe('1s')
  expect(rustDuration(600_000)).toBe('600s')
  expect(rustDuration(1500)).toBe('1.5s')
  expect(rustDuration(812.345678)).toBe('812.345678ms')
  expect(rustDuration(850)).toBe('850ms')
  expect(rustDuration(1.000001)).toBe('1.000001ms')
  expect(rustDuration(0.03)).toBe('30µs')
  expect(rustDuration(0.0305)).toBe('30.5µs')
  expect(rustDuration(0.000007)).toBe('7ns')
  expect(rustDuration(0)).toBe('0ns')
})

test("an action's unawaited operations are named as Convex names them, each once, sorted; timers and stream reads are not", () => {
  const run = (dangling: string[]) => ({ elapsedMs: 1, limitMs: 1000, dangling })
  expect(danglingWarning(run([]))).toBeNull()
  expect(danglingWarning(run(['concave/sleep', 'concave/fetchRead']))).toBeNull()
  expect(danglingWarning(run(['1.0/actions/mutation']))).toBe(
    '[WARN] 1 unawaited operation: [mutation]. Async operations should be awaited or they might not run. See https://docs.convex.dev/functions/actions#dangling-promises for more information.',
  )
  expect(danglingWarning(run(['concave/fetch', '1.0/actions/schedule', '1.0/storageStore', '1.0/actions/schedule', 'concave/sleep']))).toMatch(/^\[WARN\] 4 unawaited operations: \[fetch, schedule, storage\.store\]\. /)
})

test('the duration warning is past 80% of the limit and not past it', () => {
  expect(durationWarning({ elapsedMs: 800, limitMs: 1000, dangling: [] })).toBeNull()
  expect(durationWarning({ elapsedMs: 800.5, limitMs: 1000, dangling: [] })).toBe('[WARN] Function execution took a long time. (maximum duration: 1s, actual duration: 800.5ms).')
  expect(durationWarning({ elapsedMs: 1000, limitMs: 1000, dangling: [] })).toBe('[WARN] Function execution took a long time. (maximum duration: 1s, actual duration: 1s).')
  expect(durationWarning({ elapsedMs: 1000.5, limitMs: 1000, dangling: [] })).toBeNull()
})

test("serde's column for a lone surrogate counts the UTF-8 bytes before it (what a return value or syscall is refused with)", () => {
  // `{"a":"é🎉` then half an emoji: é is 2 bytes, 🎉 4.
  const json = JSON.stringify({ a: 'é🎉' + '🎉'.slice(0, 1) })
  expect(loneSurrogate(json)).toBe(`lone leading surrogate in hex escape at line 1 column ${6 + 2 + 4 + 6}`)
  expect(loneSurrogate(JSON.stringify({ a: '🎉'.slice(1) }))).toBe('lone trailing surrogate in hex escape at line 1 column 12')
  expect(loneSurrogate(JSON.stringify({ a: '🎉 \\ud83c' }))).toBeNull()
})
