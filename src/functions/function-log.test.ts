import { describe, expect, test } from 'vitest'
import { FunctionLog, structuredLogLine } from './function-log.ts'

const execution = (i: number) => ({ udfType: 'Mutation' as const, identifier: 'messages:send', startedMs: 1_000_000 + i, durationMs: 2, logLines: [`[LOG] 'call ${i}'`], error: null })

describe('FunctionLog', () => {
  test('keeps exactly the last `capacity` entries, oldest first, however many were recorded', () => {
    const log = new FunctionLog(3)
    for (let i = 0; i < 5000; i++) log.record(execution(i))
    expect(log.size).toBe(3)
    const { entries, newCursor } = log.since(0)
    expect(entries.map((e) => e.logLines[0]!.messages[0])).toEqual(["'call 4997'", "'call 4998'", "'call 4999'"])
    expect(newCursor).toBe(log.cursor)
    expect(entries[2]).toMatchObject({ kind: 'Completion', udfType: 'Mutation', identifier: 'messages:send', timestamp: 1_005_001 / 1000, executionTime: 0.002, error: null })
    // Each entry keeps its ids from when it was recorded; execution ids are unique.
    const again = log.since(0).entries
    expect(again.map((e) => e.executionId)).toEqual(entries.map((e) => e.executionId))
    expect(new Set(entries.map((e) => e.executionId)).size).toBe(3)
  })

  test('counts every execution, its failures and summed duration, beyond what the ring keeps', () => {
    const log = new FunctionLog(3)
    expect([log.executions, log.failures, log.executionMs]).toEqual([0, 0, 0])
    for (let i = 0; i < 10; i++) log.record({ ...execution(i), durationMs: 1.5, error: i % 4 === 0 ? 'Uncaught Error: no' : null })
    expect([log.executions, log.failures, log.executionMs]).toEqual([10, 3, 15])
  })

  test('since(cursor) returns only newer entries', () => {
    const log = new FunctionLog(10)
    for (let i = 0; i < 4; i++) log.record(execution(i))
    const { newCursor } = log.since(0)
    log.record(execution(4))
    expect(log.since(newCursor).entries.map((e) => e.logLines[0]!.messages[0])).toEqual(["'call 4'"])
    expect(log.since(log.cursor).entries).toEqual([])
  })

  test('an entry names its component: null for the app, the path for a component', () => {
    const log = new FunctionLog(10)
    log.record(execution(0))
    log.record({ ...execution(1), identifier: 'counters:add', component: 'counter/audit' })
    log.record({ ...execution(2), component: '' })
    expect(log.since(0).entries.map((e) => [e.identifier, e.componentPath])).toEqual([
      ['messages:send', null],
      ['counters:add', 'counter/audit'],
      ['messages:send', null],
    ])
  })
})

test("a line cut at Convex's length limit is isTruncated in the log stream, its suffix not a message", () => {
  const cut = `'${'x'.repeat(32767)}`
  expect(structuredLogLine(`[LOG] ${cut} (truncated due to length)`, 5)).toEqual({ messages: [cut], level: 'LOG', timestamp: 5, isTruncated: true })
  // A short line that happens to end so was not cut.
  expect(structuredLogLine('[WARN] done (truncated due to length)', 5)).toEqual({ messages: ['done (truncated due to length)'], level: 'WARN', timestamp: 5, isTruncated: false })
})

test('keeps fewer entries when their log lines come to more than its character budget, the newest always', () => {
  const log = new FunctionLog(100, 1000)
  const big = (i: number) => ({ ...execution(i), logLines: [`[LOG] '${String(i).padEnd(292, '.')}'`] })
  for (let i = 0; i < 5; i++) log.record(big(i))
  // 300 characters each: three fit in 1,000.
  expect(log.since(0).entries.map((e) => e.logLines[0]!.messages[0]!.slice(1, 2))).toEqual(['2', '3', '4'])
  log.record({ ...execution(9), logLines: ['x'.repeat(5000)] })
  expect(log.since(0).entries.map((e) => e.logLines[0]!.messages[0]!.length)).toEqual([5000])
  // The next one pushes it out.
  log.record(execution(10))
  expect(log.since(0).entries.map((e) => e.logLines[0]!.messages[0])).toEqual(["'call 10'"])
})
