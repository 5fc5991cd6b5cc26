/**
 * @convex-dev/workflow (test/fixtures/workflow) on two backend processes sharing one Postgres:
 * workflows started through either process run to the end once, each mutation step applied once,
 * however the component's scheduled work falls between the processes; and when the process
 * running scheduled functions is killed with -9, the other takes the work over and workflows
 * waiting for an event finish once it comes.
 */
import { beforeAll, expect, test } from 'vitest'
import type { ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { until } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'
import { useTwoProcessesOnPostgres } from '../helpers/postgres.ts'

const api = anyApi as any
let a: TestBackend
let b: TestBackend
let viaA: ConvexHttpClient
let viaB: ConvexHttpClient

// As in workflow.test.ts: room for the component's batches of step actions on a busy machine.
useTwoProcessesOnPostgres('workflow', (t) => ({ a, b, viaA, viaB } = t), { env: { CONCAVE_ACTION_TIMEOUT_MS: '60000' } })
beforeAll(async () => {
  // `a` follows the push through the commit log: it serves it a moment later.
  await until(() => viaA.query(api.flows.outcome, { workflowId: 'none' }).catch((e: Error) => e), (r) => Array.isArray(r))
})

const outcome = (client: ConvexHttpClient, workflowId: string): Promise<{ kind: string; value: unknown; context: unknown }[]> => client.query(api.flows.outcome, { workflowId })

test('workflows started through both processes each finish once, every mutation step applied once', async () => {
  const tags = Array.from({ length: 6 }, (_, i) => `pg${i}`)
  const ids: string[] = await Promise.all(tags.map((tag, i) => (i % 2 === 0 ? viaA : viaB).mutation(api.flows.startMain, { tag })))
  for (const [i, id] of ids.entries()) {
    const done = await until(() => outcome(i % 2 === 0 ? viaB : viaA, id), (o) => o.length > 0, 60_000)
    expect(done).toEqual([{ kind: 'success', value: expect.objectContaining({ total: 12, steps: expect.arrayContaining([41]) }), context: { tag: tags[i] } }])
  }
  for (const tag of tags) {
    expect(await viaB.query(api.flows.ledger, { tag })).toEqual([5, 7])
    expect(await viaA.query(api.flows.attemptsOf, { key: tag })).toBe(2)
  }
}, 120_000)

test('kill -9 of the process running scheduled work: the other takes it over, and waiting workflows finish once their events come', async () => {
  const ids: string[] = []
  for (let i = 0; i < 3; i++) ids.push(await viaB.mutation(api.flows.startWaiting, {}))
  for (const id of ids) await until(() => viaB.query(api.flows.status, { workflowId: id }), (s) => s.type === 'inProgress' && s.running.length === 1, 30_000)
  expect(await a.stop('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' })
  for (const [i, id] of ids.entries()) await viaB.mutation(api.flows.approve, { workflowId: id, by: `approver ${i}` })
  for (const [i, id] of ids.entries()) {
    expect(await until(() => outcome(viaB, id), (o) => o.length > 0, 60_000)).toEqual([{ kind: 'success', value: `approved by approver ${i}`, context: 'waiting' }])
  }
  expect(b.output()).toContain('Running scheduled functions and crons in this process')
  // And new work runs on the survivor alone.
  const next: string = await viaB.mutation(api.flows.startMain, { tag: 'survivor' })
  expect(await until(() => outcome(viaB, next), (o) => o.length > 0, 60_000)).toEqual([{ kind: 'success', value: expect.objectContaining({ total: 12 }), context: { tag: 'survivor' } }])
  expect(await viaB.query(api.flows.ledger, { tag: 'survivor' })).toEqual([5, 7])
}, 180_000)
