import { afterAll, beforeAll, expect, test } from 'vitest'
import { IsolateHost, SandboxError, SYSTEM_TIMEOUT_MESSAGE } from './isolate-host.ts'
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
export const waitsOnSyscalls = {
  async invokeQuery(argsJson) {
    const [{ n }] = JSON.parse(argsJson)
    for (let i = 0; i < n; i++) await Convex.asyncSyscall('test/slow', '{}')
    return JSON.stringify(n)
  },
}
export const burnsInHost = {
  async invokeQuery(argsJson) {
    const [{ n }] = JSON.parse(argsJson)
    for (let i = 0; i < n; i++) await Convex.asyncSyscall('test/burn', '{}')
    return JSON.stringify(n)
  },
}
export const spins = {
  async invokeQuery() {
    await Convex.asyncSyscall('test/echo', '{}')
    for (;;) {}
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
    if (op === 'test/burn') {
      // A syscall whose host work (a read, a nested call's set-up) takes 4 s before it yields.
      now += 4000
      return '{}'
    }
    if (op === 'test/slow') {
      // A syscall that takes 4 s of the injected clock, while the call waits on it.
      await Promise.resolve()
      now += 4000
      return '{}'
    }
    throw Object.assign(new Error('refused "here"\n'), { data: { code: 7, text: 'a "quoted" \\ line' } })
  },
}
const call = (exportName: string, args: unknown): CallSpec => ({ kind: 'query', modulePath: 'lib.js', exportName, argsJson: JSON.stringify([args]), seed: 1, nowMs: Date.now(), snapshotTs: '1', requestId: '' })

let host: IsolateHost
let runtime: string
let now = 0
const clock = () => now
beforeAll(async () => {
  // The runtime as the build inlines it into the server (scripts/build.mjs, untyped).
  const { bundleRuntime } = (await import('../../../scripts/build.mjs' as string)) as { bundleRuntime: () => Promise<string> }
  runtime = await bundleRuntime()
  host = new IsolateHost(runtime, modules, 0, 64)
})
afterAll(() => host.dispose())

test('tens of thousands of syscalls settling at once reach the isolate in one step, each with its own result', async () => {
  // Results are passed as three arguments each; past a bound they go as one JSON array instead
  // (arguments live on the stack, and 120,000 of them overflow it).
  const outcome = await host.run(call('fanOut', { n: 40_000 }), handler, 30_000)
  expect(outcome).toEqual({ ok: true, value: '40000', logLines: [], elapsedMs: expect.any(Number) })
  expect(await host.run(call('fanOut', { n: 3 }), handler, 30_000)).toEqual({ ok: true, value: '3', logLines: [], elapsedMs: expect.any(Number) })
})

test("a syscall's rejection reaches the isolate with its message and data", async () => {
  const outcome = await host.run(call('failing', {}), handler, 30_000)
  expect(outcome).toEqual({ ok: true, value: JSON.stringify({ message: 'refused "here"\n', data: { code: 7, text: 'a "quoted" \\ line' } }), logLines: [], elapsedMs: expect.any(Number) })
})

test("a query's time limit stops while it waits on syscalls, as Convex's user timeout does; the waits have a budget of their own", async () => {
  // Three syscalls of 4 s each in a query with a 1 s limit: 12 s waiting, not running (its
  // running time, by the injected clock, is 0).
  expect(await host.run(call('waitsOnSyscalls', { n: 3 }), handler, 1000, { clock })).toEqual({ ok: true, value: '3', logLines: [], elapsedMs: 0 })
  // Past 15 s of waiting in all, the call fails with Convex's system timeout.
  const failed = await host.run(call('waitsOnSyscalls', { n: 4 }), handler, 1000, { clock }).catch((e: unknown) => e)
  expect(failed).toBeInstanceOf(SandboxError)
  expect((failed as Error).message).toBe(SYSTEM_TIMEOUT_MESSAGE)
  expect(SYSTEM_TIMEOUT_MESSAGE).toBe('Your request timed out performing too many system operations.')
})

test("the host's own work on a syscall, before the syscall yields, is not the call's running time either", async () => {
  expect(await host.run(call('burnsInHost', { n: 3 }), handler, 1000, { clock })).toEqual({ ok: true, value: '3', logLines: [], elapsedMs: 0 })
  const failed = await host.run(call('burnsInHost', { n: 4 }), handler, 1000, { clock }).catch((e: unknown) => e)
  expect((failed as Error).message).toBe(SYSTEM_TIMEOUT_MESSAGE)
})

test('code that runs past the limit is stopped with Convex\'s user timeout', async () => {
  const spinning = new IsolateHost(runtime, modules, 0, 64)
  try {
    const failed = await spinning.run(call('spins', {}), handler, 100).catch((e: unknown) => e)
    expect(failed).toBeInstanceOf(SandboxError)
    expect((failed as Error).message).toBe('Function execution timed out (maximum duration: 100ms)')
  } finally {
    spinning.dispose()
  }
})

test("a module that throws a non-Error while loading is named by the value alone, with no frames of the host's", () => {
  const source = 'throw "boom at load"\nexport const x = 1\n'
  const throwing = new IsolateHost(runtime, new Map([['bad.js', { path: 'bad.js', environment: 'isolate', source, sourceMap: null, hash: '' }]]), 0, 64)
  try {
    const text = (() => {
      try {
        throwing.loadModule('bad.js', 1000)
        return 'loaded'
      } catch (e) {
        return throwing.loadErrorText(e)
      }
    })()
    expect(text).toBe('Uncaught boom at load')
  } finally {
    throwing.dispose()
  }
})

test("an action's import() resolves within its component's modules: a path climbing past their root stays there, and the app doesn't reach a component's", async () => {
  const tryImport = (specifier: string) => `{ async invokeAction() { try { return JSON.stringify((await import(${JSON.stringify(specifier)})).name) } catch (e) { return JSON.stringify(e.message) } } }`
  const record = (path: string, source: string): [string, ModuleRecord] => [path, { path, environment: 'isolate', source, sourceMap: null, hash: '' }]
  const set = new Map<string, ModuleRecord>([
    record('secret.js', 'globalThis.secretLoaded = true; export const name = "the app\'s"'),
    record('app.js', `export const reachComponent = ${tryImport('./_components/c/other.js')}
export const sendsTheOp = { async invokeQuery() { try { await Convex.asyncSyscall('module/import', JSON.stringify({ specifier: './secret.js', referrer: 'app.js' })); return '"imported"' } catch (e) { return JSON.stringify(globalThis.secretLoaded === true ? 'loaded' : 'refused') } } }`),
    record('_components/c/lib.js', `export const climb = ${tryImport('../../secret.js')}\nexport const own = ${tryImport('./other.js')}`),
    record('_components/c/other.js', 'export const name = "the component\'s"'),
  ])
  const scoped = new IsolateHost(runtime, set, 0, 64)
  try {
    const action = (modulePath: string, exportName: string, root: string): CallSpec => ({ kind: 'action', modulePath, root, exportName, argsJson: '[{}]', seed: 1, nowMs: Date.now(), snapshotTs: null, requestId: 'r' })
    expect((await scoped.run(action('_components/c/lib.js', 'climb', '_components/c/'), handler, 30_000)).value).toBe(JSON.stringify("Couldn't find JavaScript module 'secret.js'. Did you forget to run `npx convex dev`?"))
    expect((await scoped.run(action('_components/c/lib.js', 'own', '_components/c/'), handler, 30_000)).value).toBe(JSON.stringify("the component's"))
    expect((await scoped.run(action('app.js', 'reachComponent', ''), handler, 30_000)).value).toBe(JSON.stringify("Couldn't find JavaScript module '_components/c/other.js'. Did you forget to run `npx convex dev`?"))
    // A query that sends the import's op itself gets the host's answer to an op it doesn't serve:
    // no module is evaluated within a query.
    expect((await scoped.run({ kind: 'query', modulePath: 'app.js', root: '', exportName: 'sendsTheOp', argsJson: '[{}]', seed: 1, nowMs: Date.now(), snapshotTs: '1', requestId: '' }, handler, 30_000)).value).toBe(JSON.stringify('refused'))
  } finally {
    scoped.dispose()
  }
})
