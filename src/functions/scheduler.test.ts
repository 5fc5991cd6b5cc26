import { afterEach, expect, test, vi } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SqlitePersistence } from '../storage/sqlite/sqlite-persistence.ts'
import { CursorCodec } from '../database/cursors.ts'
import { Database } from '../database/database.ts'
import { OccConflictError } from '../database/errors.ts'
import { Scheduler, SchedulerSet, SCHEDULED_FUNCTIONS } from './scheduler.ts'
import type { JobRunner, ScheduledJob } from './scheduler.ts'

const SECRET = '4361726e697461732c206c69746572616c6c79206d65616e696e6720226c6974'
const cleanup: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c()
})

/** A runner whose every job is a mutation, run by `runMutationJob`. */
function mutationRunner(runMutationJob: JobRunner['runMutationJob']): JobRunner {
  return { schedulingError: () => null, jobKind: () => 'mutation', isPublic: () => true, runMutationJob, runActionJob: () => Promise.reject(new Error('no actions here')) }
}

/** A database in a temp dir, closed and removed after the test. */
async function openDatabase(): Promise<Database> {
  const dir = mkdtempSync(join(tmpdir(), 'concave-scheduler-'))
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }))
  const db = await Database.open(SqlitePersistence.open(join(dir, 'db.sqlite3')), new CursorCodec(SECRET))
  cleanup.push(() => db.close())
  return db
}

test('a job whose run keeps failing in the machinery is tried again after Convex\'s backoffs: 100 ms doubling on conflicts, 500 ms doubling on other failures', async () => {
  const db = await openDatabase()
  const logged: Record<string, unknown>[] = []
  // The jitter pinned at 1%: the waits are a hundredth of the backoff ceilings.
  const scheduler = new Scheduler(db, (_m, fields) => logged.push(fields ?? {}), SCHEDULED_FUNCTIONS, 60_000, '', () => 0.01)
  cleanup.push(() => scheduler.stop())
  const failures: (() => Error)[] = [() => new OccConflictError(), () => new OccConflictError(), () => new Error('store unreachable'), () => new OccConflictError()]
  const runs: string[] = []
  let finished!: () => void
  const done = new Promise<void>((resolve) => (finished = resolve))
  const runner = mutationRunner(async (job: ScheduledJob) => {
    runs.push(job.name)
    const fail = failures.shift()
    if (fail !== undefined) throw fail()
    await db.mutate((txn) => txn.patchSystem(job.id, { state: { kind: 'success' }, completedTime: Date.now() }))
    finished()
  })
  await scheduler.start(runner, true)
  const id = await db.mutate((txn) => scheduler.schedule(txn, 'jobs:work', Date.now() / 1000, {}))
  await done
  expect(runs).toEqual(['jobs.js:work', 'jobs.js:work', 'jobs.js:work', 'jobs.js:work', 'jobs.js:work'])
  // The conflicts' backoff goes on doubling across the other failure (100, 200, 400 ms), which has its own (500 ms).
  expect(logged.map((f) => [f.error, f.retryInMs])).toEqual([
    ['Documents read from or written to this transaction changed while it was being run', 1],
    ['Documents read from or written to this transaction changed while it was being run', 2],
    ['store unreachable', 5],
    ['Documents read from or written to this transaction changed while it was being run', 4],
  ])
  expect(((await db.mutate((txn) => txn.read(id))) as { state: unknown }).state).toEqual({ kind: 'success' })
})

test('a job canceled while it waits out a backoff is forgotten by the scheduler', async () => {
  const db = await openDatabase()
  // Jitter pinned at the top: the backoff after a failure is the full 500 ms, time to cancel the job.
  const scheduler = new Scheduler(db, () => {}, SCHEDULED_FUNCTIONS, 60_000, '', () => 0.9999)
  cleanup.push(() => scheduler.stop())
  let runs = 0
  let failed!: () => void
  const firstFailure = new Promise<void>((resolve) => (failed = resolve))
  const runner = mutationRunner(async () => {
    runs++
    failed()
    throw new Error('store unreachable')
  })
  await scheduler.start(runner, true)
  const id = await db.mutate((txn) => scheduler.schedule(txn, 'jobs:work', Date.now() / 1000, {}))
  await firstFailure
  await vi.waitFor(() => expect(scheduler.retrying).toBe(1))
  await db.mutate((txn) => scheduler.cancel(txn, id))
  await vi.waitFor(() => expect(scheduler.retrying).toBe(0))
  expect(runs).toBe(1)
})

test("a component's scheduler asked for while a push's sync is starting it is handed over once started", async () => {
  const db = await openDatabase()
  const set = new SchedulerSet((component) => new Scheduler(db, () => {}, SCHEDULED_FUNCTIONS, 60_000, component), false)
  cleanup.push(() => set.stop())
  const runner = mutationRunner(() => Promise.resolve())
  // The push's listener starts the sync and doesn't wait; a call comes in at once.
  void set.sync(['', 'widgets'], runner)
  const scheduler = await set.ready('widgets')
  expect(scheduler).toBeDefined()
  // Started: its table exists, so a job can be written.
  const id = await db.mutate((txn) => scheduler!.schedule(txn, 'jobs:work', Date.now() / 1000 + 60, {}))
  expect(((await db.mutate((txn) => txn.read(id, 'widgets'))) as { state: unknown }).state).toEqual({ kind: 'pending' })
  expect(await set.ready('not mounted')).toBeUndefined()
})
