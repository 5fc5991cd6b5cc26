import { afterAll, beforeAll, expect, test } from 'vitest'
import { IsolateHost } from './isolate-host.ts'
import type { CallSpec, SyscallHandler } from './isolate-host.ts'
import type { ModuleRecord } from '../../storage/persistence.ts'

// The call protocol between IsolateHost and the sandbox runtime, with a module that speaks the
// runtime's syscall ABI directly (what the `convex` package's wrappers do inside a function).
const source = `
export const fanOut = {
  async invokeQuery(argsJson) {
    const [{ n }] = JSON.parse(argsJson)
    const results = await Promise.all(Array.from({ length: n }, (_, i) => Convex.asyncSyscall('test/echo', JSON.stringify({ i }))))
    return JSON.stringify(results.every((r, i) => JSON.parse(r).i === i) ? results.length : 'mismatch')
  },
}
export const failing = {
  async invokeQuery() {
    try {
      await Convex.asyncSyscall('test/fail', '{}')
      return '"resolved"'
    } catch (e) {
      return JSON.stringify({ message: e.message, data: e.data })
    }
  },
}
`
const modules = new Map<string, ModuleRecord>([['lib.js', { path: 'lib.js', environment: 'isolate', source, sourceMap: null, hash: '' }]])
const handler: SyscallHandler = {
  sync(op) {
    throw new Error(`Unknown operation ${op}`)
  },
  async async(op, argsJson) {
    if (op === 'test/echo') return argsJson
    throw Object.assign(new Error('refused "here"\n'), { data: { code: 7, text: 'a "quoted" \\ line' } })
  },
}
const call = (exportName: string, args: unknown): CallSpec => ({ kind: 'query', modulePath: 'lib.js', exportName, argsJson: JSON.stringify([args]), seed: 1, nowMs: Date.now(), snapshotTs: '1', requestId: '' })

let host: IsolateHost
beforeAll(async () => {
  // The runtime as the build inlines it into the server (scripts/build.mjs, untyped).
  const { bundleRuntime } = (await import('../../../scripts/build.mjs' as string)) as { bundleRuntime: () => Promise<string> }
  host = new IsolateHost(await bundleRuntime(), modules, 0, 64)
})
afterAll(() => host.dispose())

test('tens of thousands of syscalls settling at once reach the isolate in one step, each with its own result', async () => {
  // Results are passed as three arguments each; past a bound they go as one JSON array instead
  // (arguments live on the stack, and 120,000 of them overflow it).
  const outcome = await host.run(call('fanOut', { n: 40_000 }), handler, 30_000)
  expect(outcome).toEqual({ ok: true, value: '40000', logLines: [] })
  expect(await host.run(call('fanOut', { n: 3 }), handler, 30_000)).toEqual({ ok: true, value: '3', logLines: [] })
})

test("a syscall's rejection reaches the isolate with its message and data", async () => {
  const outcome = await host.run(call('failing', {}), handler, 30_000)
  expect(outcome).toEqual({ ok: true, value: JSON.stringify({ message: 'refused "here"\n', data: { code: 7, text: 'a "quoted" \\ line' } }), logLines: [] })
})
