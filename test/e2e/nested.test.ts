import { describe, expect, test } from 'vitest'
import { ConvexClient, ConvexHttpClient } from 'convex/browser'
import { errorOf, until, useDeployedBackend } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'
import { timeOrderedId } from '../../src/values/index.ts'

let backend: TestBackend
let appDir: string | undefined
let client: ConvexHttpClient

// 16,000 writes in one mutation take most of a second on a busy 2-core machine: the limits test
// is about Convex's counts, not the time limit, so give it room.
useDeployedBackend('nested', (t) => ({ backend, appDir, client } = t), { env: { CONCAVE_FUNCTION_TIMEOUT_MS: '20000' } })

test('nested queries running at once each see their own results', async () => {
  await client.mutation('nested:seed' as any, { table: 'qa', count: 2 })
  await client.mutation('nested:seed' as any, { table: 'qb', count: 3 })
  expect(await client.query('nested:parallelQueries' as any, {})).toEqual({ a: ['qa0', 'qa1'], b: ['qb0', 'qb1', 'qb2'] })
})

test('useStaleSnapshot: a mutation\'s snapshot query reads the snapshot the mutation began on, without its writes', async () => {
  await client.mutation('nested:seed' as any, { table: 'stale', count: 2 })
  expect(await client.mutation('nested:staleVersusFresh' as any, { table: 'stale' })).toEqual({ stale: ['stale0', 'stale1'], fresh: ['stale0', 'stale1', 'new'] })
  // The insert itself committed.
  expect(await client.mutation('nested:staleVersusFresh' as any, { table: 'stale' })).toEqual({ stale: ['stale0', 'stale1', 'new'], fresh: ['stale0', 'stale1', 'new', 'new'] })
  // Queries can't ask for it: the convex package refuses before any syscall.
  expect((await errorOf(client.query('nested:staleFromQuery' as any, {}))).message).toContain('Uncaught Error: `useStaleSnapshot` is only supported in mutations, not queries.')
})

test('db.query(table).count() counts what the transaction sees, its own writes included; an unknown table counts 0', async () => {
  await client.mutation('nested:seed' as any, { table: 'counted', count: 3 })
  expect(await client.query('nested:countOf' as any, { table: 'counted' })).toBe(3)
  expect(await client.mutation('nested:countAround' as any, { table: 'counted' })).toEqual({ before: 3, afterInserts: 5, afterDelete: 4 })
  expect(await client.query('nested:countOf' as any, { table: 'counted' })).toBe(4)
  expect(await client.query('nested:countOf' as any, { table: 'neverWritten' })).toBe(0)
  // A table the mutation itself creates.
  expect(await client.mutation('nested:countAround' as any, { table: 'brandNew' })).toEqual({ before: 0, afterInserts: 2, afterDelete: 1 })
  // A name that is no table name: Convex's argument error.
  expect((await errorOf(client.query('nested:countOf' as any, { table: 'not a table' }))).message).toContain("Uncaught Error: Invalid argument `table` for `db.count`: Identifier not a table has invalid character ' ': Identifiers can only contain alphanumeric characters or underscores")
})

test("an insert into a name that is no table's, or a system table's, fails with Convex's words", async () => {
  const insertError = async (table: string) => (await errorOf(client.mutation('nested:seed' as any, { table, count: 1 }))).message.split('\n')[1]
  expect(await insertError('9lives')).toBe("Uncaught Error: Invalid argument `table` for `db.insert`: Invalid first character '9' in 9lives: Identifiers must start with an alphabetic character or underscore")
  expect(await insertError('bad-name')).toBe("Uncaught Error: Invalid argument `table` for `db.insert`: Identifier bad-name has invalid character '-': Identifiers can only contain alphanumeric characters or underscores")
  expect(await insertError('t'.repeat(65))).toBe('Uncaught Error: Invalid argument `table` for `db.insert`: Identifier is too long (65 > maximum 64)')
  // A leading underscore the convex package refuses itself, before asking the backend.
  expect(await insertError('_storage')).toBe('Uncaught Error: System tables (prefixed with `_`) are read-only.')
  expect(await insertError('___')).toBe('Uncaught Error: System tables (prefixed with `_`) are read-only.')
  // 64 characters is a name.
  expect(await client.mutation('nested:seed' as any, { table: 'x'.repeat(64), count: 1 })).toBe(null)
  expect(await client.query('nested:countOf' as any, { table: 'x'.repeat(64) })).toBe(1)
})

test('a nested mutation that throws has its writes rolled back', async () => {
  expect(await client.mutation('nested:parentCatches' as any, {})).toEqual(['parent'])
  expect(await client.mutation('nested:parentCatches' as any, {})).toEqual(['parent', 'parent'])
})

test('a stream still yields a document the transaction patched ahead of it', async () => {
  await client.mutation('nested:seed' as any, { table: 'many', count: 300 })
  expect(await client.mutation('nested:patchAheadWhileIterating' as any, {})).toEqual({ seen: 300, sawLast: true })
})

test('one mutation can create two tables at once', async () => {
  expect(await client.mutation('nested:twoNewTables' as any, { suffix: 'x' })).toEqual(['string', 'string'])
})

test('an index range may continue on the implicit _creationTime', async () => {
  expect(await client.query('nested:since' as any, { t: 0 })).toBe(300)
  expect(await client.query('nested:since' as any, { t: Date.now() + 60_000 })).toBe(0)
})

test('a live query of a table that does not exist yet updates when the table is created', async () => {
  const live = new ConvexClient(backend.url, { unsavedChangesWarning: false } as any)
  try {
    const seen: unknown[] = []
    let notify: () => void = () => {}
    live.onUpdate('nested:listPublic' as any, { table: 'later' }, (v: unknown) => {
      seen.push(v)
      notify()
    })
    const waitFor = (pred: () => boolean) =>
      new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`timed out; saw ${JSON.stringify(seen)}`)), 10_000)
        notify = () => pred() && (clearTimeout(t), resolve())
        notify()
      })
    await waitFor(() => seen.length === 1)
    expect(seen).toEqual([[]])
    await client.mutation('nested:seed' as any, { table: 'later', count: 2 })
    await waitFor(() => seen.length === 2)
    expect(seen[1]).toEqual(['later0', 'later1'])
  } finally {
    await live.close()
  }
})

test('transaction limits: writes and reads past Convex limits fail with its messages and write nothing', async () => {
  const tooMany = await client.mutation('nested:seed' as any, { table: 'bulk', count: 16_001 }).catch((e: Error) => e)
  expect((tooMany as Error).message).toContain('Too many writes in a single function execution (limit: 16000)')
  expect(await client.query('nested:countAll' as any, { table: 'bulk' })).toBe(0)
  await client.mutation('nested:seed' as any, { table: 'bulk', count: 16_000 })
  await client.mutation('nested:seed' as any, { table: 'bulk', count: 16_000 })
  await client.mutation('nested:seed' as any, { table: 'bulk', count: 1 })
  const tooManyReads = await client.query('nested:countAll' as any, { table: 'bulk' }).catch((e: Error) => e)
  expect((tooManyReads as Error).message).toContain('Too many documents read in a single function execution (limit: 32000). Consider using smaller limits in your queries')
}, 120_000)

test("index order across types is Convex's: missing < null < int64 < float64 < boolean < string < bytes < array < object", async () => {
  const values: [string, unknown][] = [
    ['object', { a: 1 }],
    ['array', [1, 2]],
    ['bytes', new Uint8Array([1]).buffer],
    ['string-b', 'b'],
    ['string-a', 'a'],
    ['true', true],
    ['false', false],
    ['float-1.5', 1.5],
    ['float-neg', -2],
    ['int', 5n],
    ['null', null],
    ['missing', undefined],
  ]
  for (const [label, value] of values) await client.mutation('nested:insertMixed' as any, value === undefined ? { label } : { label, value })
  const expected = ['missing', 'null', 'int', 'float-neg', 'float-1.5', 'false', 'true', 'string-a', 'string-b', 'bytes', 'array', 'object']
  expect(await client.query('nested:mixedOrder' as any, { order: 'asc' })).toEqual(expected)
  expect(await client.query('nested:mixedOrder' as any, { order: 'desc' })).toEqual([...expected].reverse())
  expect(await client.query('nested:mixedRange' as any, {})).toEqual({
    gtOneHalf: ['false', 'true', 'string-a', 'string-b', 'bytes', 'array', 'object'],
    ltTrue: ['missing', 'null', 'int', 'float-neg', 'float-1.5', 'false'],
    eqNull: ['null'],
    filterGt: ['array', 'bytes', 'object', 'string-b'],
  })
})

test('filters: arithmetic, or, not, int64 and missing fields', async () => {
  await client.mutation('nested:seedNumbers' as any, {})
  expect(await client.query('nested:filtered' as any, {})).toEqual({
    add: [3],
    sub: [5, 10],
    mul: [3],
    div: [1],
    mod: [1, 3, 5],
    neg: [-2],
    or: [1, 10],
    not: [5, 10],
    int64: [3, 5, 10],
    missing: [1, 3, 5, -2, 10],
  })
})

test('document limits: nesting depth and field names, with Convex messages', async () => {
  let deep: unknown = 'leaf'
  for (let i = 0; i < 20; i++) deep = { d: deep }
  const tooDeep = await client.mutation('nested:insertRaw' as any, { value: { deep } }).catch((e: Error) => e)
  expect((tooDeep as Error).message).toContain('nest')
  const reserved = await client.mutation('nested:insertRaw' as any, { value: { _secret: 1 } }).catch((e: Error) => e)
  expect((reserved as Error).message).toContain('_secret')
  const ok = await client.mutation('nested:insertRaw' as any, { value: { fine: { nested: [1, 2, { x: 'y' }] } } })
  expect(typeof ok).toBe('string')
})

test("nested calls go 8 down at most, as Convex's: the ninth fails with Convex's message, which the caller may catch", async () => {
  expect(await client.query('nested:recursive' as any, { depth: 8 })).toBe(8)
  const limit = 'Cross component call depth limit exceeded. Do you have an infinite loop in your app?'
  expect((await errorOf(client.query('nested:recursive' as any, { depth: 9 }))).message).toContain(limit)
  // The function 8 calls down asked for a ninth: it is the one that gets the error.
  expect(await client.query('nested:recursive' as any, { depth: 9, catchAt: 1 })).toBe(`caught at 1: ${limit}`)
})

test("a nested query's Date.now() is its caller's, as in Convex", async () => {
  const r = (await client.query('nested:nowAcrossCalls' as any, {})) as { before: number; inner: number; spun: boolean }
  expect(r.inner).toBe(r.before)
})

describe('tables are created with the commit of the mutation that creates them', () => {
  const tables = async () => {
    const admin = new ConvexHttpClient(backend.url)
    ;(admin as any).setAdminAuth(backend.adminKey)
    return ((await admin.query('_system/cli/tables' as any, { paginationOpts: { numItems: 1000, cursor: null } })) as { page: { name: string }[] }).page.map((t) => t.name)
  }

  test('a mutation that fails leaves no table behind, nor does a nested one that fails', async () => {
    expect((await errorOf(client.mutation('nested:createThenFail' as any, { table: 'doomed' }))).message).toContain('changed my mind')
    await client.mutation('nested:nestedCreateThenFail' as any, { table: 'doomed2' })
    const names = await tables()
    expect(names).not.toContain('doomed')
    expect(names).not.toContain('doomed2')
    expect(names).toContain('qa')
    expect(await client.query('nested:count' as any, { table: 'doomed' })).toBe(0)
  })

  test('mutations creating one table at once all land in it', async () => {
    await Promise.all(Array.from({ length: 12 }, () => client.mutation('nested:seed' as any, { table: 'racy', count: 1 })))
    expect(await client.query('nested:count' as any, { table: 'racy' })).toBe(12)
    expect((await tables()).filter((n) => n === 'racy')).toEqual(['racy'])
  })
})

test("system fields a new document names, and an id of no table: Convex's messages", async () => {
  const insertError = async (doc: unknown) => (await errorOf(client.mutation('nested:insertDoc' as any, { table: 'named', doc }))).message.split('\n')[1]
  expect(await insertError({ _id: 'mine', x: 1 })).toMatch(/^Uncaught Error: Provided document ID "[0-9a-z]{32}" doesn't match '_id' field "mine"$/)
  expect(await insertError({ _creationTime: 5, x: 1 })).toMatch(/^Uncaught Error: Provided creation time \d+(\.\d+)? doesn't match '_creationTime' field in \{_creationTime: 5(\.0)?, _id: "[0-9a-z]{32}", x: 1(\.0)?\}$/)
  expect(await insertError({ _secret: 1 })).toBe("Uncaught Error: Field '_secret' starts with an underscore, which is only allowed for system fields like '_id'")
  // Half an emoji (a lone surrogate) is no JSON Convex's backend reads; a whole one is.
  expect(await insertError({ body: '\ud83c...' })).toMatch(/^Uncaught Error: Received invalid json: lone leading surrogate in hex escape at line 1 column \d+$/)
  expect(await insertError({ body: '...\udf89' })).toMatch(/^Uncaught Error: Received invalid json: lone trailing surrogate in hex escape at line 1 column \d+$/)
  const whole = await client.mutation('nested:insertDoc' as any, { table: 'named', doc: { body: '\ud83c\udf89 \\ud83c' } })
  expect(whole).toMatch(/^[0-9a-z]{32}$/)
  const noTable = timeOrderedId(9000)
  expect((await errorOf(client.mutation('nested:removeId' as any, { id: noTable }))).message.split('\n')[1]).toBe(`Uncaught Error: Table for ID "${noTable}" not found`)
})

test("a patch or replacement naming another _id or _creationTime: Convex's messages; its own are fine", async () => {
  const id = (await client.mutation('nested:insertDoc' as any, { table: 'named', doc: { x: 1 } })) as string
  const doc = (await client.mutation('nested:changeDoc' as any, { id, value: {}, replace: false })) as { _creationTime: number }
  const changeError = async (value: unknown, replace: boolean) => (await errorOf(client.mutation('nested:changeDoc' as any, { id, value, replace }))).message.split('\n')[1]
  for (const replace of [false, true]) {
    expect(await changeError({ _creationTime: 1017, x: 2 }, replace)).toBe(`Uncaught Error: Provided creation time ${doc._creationTime} doesn't match '_creationTime' field in {_creationTime: 1017.0, _id: "${id}", x: 2.0}`)
    expect(await changeError({ _id: 'other' }, replace)).toBe(`Uncaught Error: Provided document ID "${id}" doesn't match '_id' field "other"`)
  }
  expect(await client.mutation('nested:changeDoc' as any, { id, value: { _id: id, _creationTime: doc._creationTime, x: 3 }, replace: true })).toEqual({ _creationTime: doc._creationTime, _id: id, x: 3 })
})

describe("the system's failures (Convex's throwOcc and throwOverloaded test syscalls)", () => {
  test('over HTTP: 503 with the code, even when the function catches the error', async () => {
    const occ = '{"code":"OptimisticConcurrencyControlFailure","message":"Documents read from or written to this mutation changed while it was being run and on every subsequent retry. A concurrent call to \\"nested:systemFailure\\" or another mutation changed them. See https://docs.convex.dev/error#1"}'
    for (const catchIt of [false, true]) {
      expect((await errorOf(client.mutation('nested:systemFailure' as any, { op: 'throwOcc', catchIt }))).message).toBe(occ)
      expect((await errorOf(client.mutation('nested:systemFailure' as any, { op: 'throwOverloaded', catchIt }))).message).toBe(`{"code":"Busy","message":"I'm a bit busy."}`)
    }
  })

  test('a query that meets a conflict: 503 with the code, as Convex answers it', async () => {
    expect((await errorOf(client.query('nested:queryOcc' as any, {}))).message).toBe('{"code":"OptimisticConcurrencyControlFailure","message":"Documents read from or written to this mutation changed while it was being run and on every subsequent retry. A concurrent call to \\"nested:queryOcc\\" or another mutation changed them. See https://docs.convex.dev/error#1"}')
  })

  test('an action catches the failure of a mutation it runs, and the isolate serves the next call', async () => {
    expect(await client.action('nested:catchSystemFailure' as any, {})).toMatch(/^caught: .*Documents read from or written to this mutation changed while it was being run and on every subsequent retry/)
    for (let i = 0; i < 3; i++) expect(await client.query('nested:countOf' as any, { table: 'counted' })).toBe(4)
  })

  test('over a socket: the socket closes, the client connects again and re-sends until the mutation goes through', async () => {
    const socket = new ConvexClient(backend.url)
    try {
      const pending = [socket.mutation('nested:systemFailure' as any, { op: 'throwOcc', catchIt: true }), socket.mutation('nested:systemFailure' as any, { op: 'throwOverloaded', catchIt: false })]
      // Closed by the backend at least once (each failure), re-sent on each new connection.
      await until(() => socket.connectionState().connectionCount, (n) => n >= 2)
      await client.mutation('nested:openGate' as any, {})
      expect(await Promise.all(pending)).toEqual(['through', 'through'])
    } finally {
      await socket.close()
    }
  })
})

describe("log lines, as Convex keeps them", () => {
  const logLinesOf = async (kind: string, path: string, args: unknown) => {
    const res = await fetch(`${backend.url}/api/${kind}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path, args, format: 'json' }) })
    return ((await res.json()) as { logLines?: string[] }).logLines ?? []
  }
  const lines = (tag: string, from: number, to: number) => Array.from({ length: to - from }, (_, i) => `[LOG] '${tag}' ${from + i}`)
  const OVERFLOW = '[ERROR] Log overflow (maximum 256). Remaining log lines omitted.'

  test("a nested query's or mutation's lines join the caller's where it returns, whether it succeeded or not", async () => {
    expect(await logLinesOf('mutation', 'nested:logsAround', { before: 1, nested: 2, nestedFails: false, after: 1 })).toEqual([...lines('before', 0, 1), ...lines('inner', 0, 2), ...lines('after', 0, 1)])
    expect(await logLinesOf('mutation', 'nested:logsAround', { before: 1, nested: 1, nestedFails: true, after: 0 })).toEqual([...lines('before', 0, 1), ...lines('inner', 0, 1), "[LOG] 'caught'"])
    // The function log has the caller's execution with them, and none of the nested call's own.
    const logs = (await (await fetch(`${backend.url}/api/stream_function_logs?cursor=0`, { headers: { authorization: `Convex ${backend.adminKey}` } })).json()) as { entries: { identifier: string; logLines: { messages: string[] }[] }[] }
    const entries = logs.entries.filter((e) => e.identifier.startsWith('nested:logs'))
    expect(entries.map((e) => [e.identifier, e.logLines.map((l) => l.messages.join(' '))])).toEqual([
      ['nested:logsAround', ["'before' 0", "'inner' 0", "'inner' 1", "'after' 0"]],
      ['nested:logsAround', ["'before' 0", "'inner' 0", "'caught'"]],
    ])
  })

  test("past 255 lines one says so and the rest are dropped; a nested call's lines count one by one, as Convex's flattened count", async () => {
    expect(await logLinesOf('mutation', 'nested:logsAround', { before: 300, nested: 3, nestedFails: false, after: 3 })).toEqual([...lines('before', 0, 255), OVERFLOW])
    // 250 lines, then the 5 of the nested call's 10 that fit and the overflow; nothing after.
    expect(await logLinesOf('mutation', 'nested:logsAround', { before: 250, nested: 10, nestedFails: false, after: 5 })).toEqual([...lines('before', 0, 250), ...lines('inner', 0, 5), OVERFLOW])
    // Convex's adversarial:consoleLoopFromSubfunction: 200 nested lines, one of the caller's, 54 of the next 100 nested, the overflow.
    expect(await logLinesOf('mutation', 'nested:logsAround', { before: 0, nested: 200, nestedFails: false, after: 1 })).toEqual([...lines('inner', 0, 200), ...lines('after', 0, 1)])
    expect(await logLinesOf('mutation', 'nested:logsAround', { before: 201, nested: 100, nestedFails: false, after: 1 })).toEqual([...lines('before', 0, 201), ...lines('inner', 0, 54), OVERFLOW])
    // Nested lines that fill the room exactly: the caller's next line is the overflow.
    expect(await logLinesOf('mutation', 'nested:logsAround', { before: 250, nested: 5, nestedFails: false, after: 10 })).toEqual([...lines('before', 0, 250), ...lines('inner', 0, 5), OVERFLOW])
  })

  test('a line past 32768 bytes is cut and says so', async () => {
    expect(await logLinesOf('query', 'nested:longLine', { size: 32766 })).toEqual([`[LOG] '${'x'.repeat(32766)}'`])
    expect(await logLinesOf('query', 'nested:longLine', { size: 40_000 })).toEqual([`[LOG] '${'x'.repeat(32767)} (truncated due to length)`])
  })
})
