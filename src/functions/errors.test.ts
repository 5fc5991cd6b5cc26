import { expect, test } from 'vitest'
import { rustDuration, timedOutMessage, formatFrame, parseStack } from './errors.ts'
import type { FrameData } from '../../runtime/frames.ts'

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

const frame = (f: Partial<FrameData>): FrameData => ({ typeName: null, functionName: null, methodName: null, fileName: 'a.ts', lineNumber: 3, columnNumber: 4, evalOrigin: null, isEval: false, isNative: false, isConstructor: false, isAsync: false, isPromiseAll: false, promiseIndex: null, ...f })

test('frames print by Convex’s Display rules: every frame but a constructor as a method call', () => {
  expect(formatFrame(frame({}))).toBe('    at <anonymous> (a.ts:3:4)')
  expect(formatFrame(frame({ functionName: 'handler', isAsync: true }))).toBe('    at async handler (a.ts:3:4)')
  // Convex's checks run the other way round from V8's: the type only when the name starts with
  // it, `[as m]` when the name ends with the method.
  expect(formatFrame(frame({ typeName: 'Animal', functionName: 'move', methodName: 'move' }))).toBe('    at move [as move] (a.ts:3:4)')
  expect(formatFrame(frame({ typeName: 'Map', functionName: 'Map.get', methodName: 'fetch' }))).toBe('    at Map.Map.get (a.ts:3:4)')
  expect(formatFrame(frame({ typeName: 'Object', methodName: 'go' }))).toBe('    at Object.go (a.ts:3:4)')
  expect(formatFrame(frame({ isConstructor: true, functionName: 'Checker' }))).toBe('    at new Checker (a.ts:3:4)')
  expect(formatFrame(frame({ isConstructor: true }))).toBe('    at new <anonymous> (a.ts:3:4)')
  expect(formatFrame(frame({ functionName: 'map', fileName: null, lineNumber: null, columnNumber: null }))).toBe('    at map (<anonymous>)')
  expect(formatFrame(frame({ functionName: 'f', isNative: true }))).toBe('    at f (native)')
  expect(formatFrame(frame({ fileName: null, isEval: true, evalOrigin: 'eval at g (a.ts:1:1)' }))).toBe('    at <anonymous> (eval at g (a.ts:1:1), <anonymous>:3:4)')
  expect(formatFrame(frame({ isAsync: true, isPromiseAll: true, promiseIndex: 1, functionName: 'all', typeName: 'Promise', fileName: null, lineNumber: null, columnNumber: null }))).toBe('    at async Promise.all (index 1)all (<anonymous>)')
})

test('V8 stack text reads back as frames when the runtime captured none', () => {
  const stack = 'Error: x\n    at inner (convex:/a.js:1:2)\n    at async convex:/a.js:3:4\n    at new Foo (convex:/a.js:5:6)\n    at Array.map (<anonymous>)'
  expect(parseStack(stack).map(formatFrame)).toEqual(['    at inner (convex:/a.js:1:2)', '    at async <anonymous> (convex:/a.js:3:4)', '    at new Foo (convex:/a.js:5:6)', '    at Array.map (<anonymous>)'])
})
