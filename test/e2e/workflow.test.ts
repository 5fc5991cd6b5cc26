/**
 * @convex-dev/workflow 0.5.0, installed in test/fixtures/workflow as its README shows. A workflow is
 * a mutation the component's workpool runs again after each step, replaying its journal: it
 * exercises components three deep (workflow → workpool → batch-worker), the scheduler, function
 * handles, ConvexError data crossing component boundaries, and exactly-once mutation steps.
 *
 * The workflow's peer range wants workpool ^0.4.16; package.json overrides it to the 0.5.0 the
 * other component tests use.
 */
import { expect, test } from 'vitest'
import type { ConvexHttpClient } from 'convex/browser'
import type { TestBackend } from '../helpers/test-backend.ts'
import { anyApi } from 'convex/server'
import { until, useDeployedBackend } from '../helpers/test-backend.ts'

const api = anyApi as any
let client: ConvexHttpClient
let backend: TestBackend

// The component runs a batch of step actions as one action: on a busy machine that takes longer
// than the 2 s the test backends give an action, and a step action without retries would fail.
useDeployedBackend('workflow', (t) => ({ client, backend } = t), { env: { CONCAVE_ACTION_TIMEOUT_MS: '60000' } })

const outcome = (workflowId: string): Promise<{ kind: string; value: unknown; context: unknown }[]> => client.query(api.flows.outcome, { workflowId })

test('a workflow runs its steps in order: mutations once each, a retried action, parallel actions, a sleep, a nested workflow, a caught ConvexError', async () => {
  const id: string = await client.mutation(api.flows.startMain, { tag: 'a' })
  const done = await until(() => outcome(id), (o) => o.length > 0, 30_000)
  expect(done).toEqual([
    {
      kind: 'success',
      value: { steps: ['a+5', 'a+7', 'ok after 2', [2, 4, 6], 41, { convexError: { code: 'REFUSED', reason: 'no' } }], total: 12 },
      context: { tag: 'a' },
    },
  ])
  expect(await client.query(api.flows.status, { workflowId: id })).toEqual({ type: 'completed', result: done[0]!.value })
  // Each mutation step wrote exactly once; the flaky action ran twice (one failure, one retry).
  expect(await client.query(api.flows.ledger, { tag: 'a' })).toEqual([5, 7])
  expect(await client.query(api.flows.attemptsOf, { key: 'a' })).toBe(2)
  const fn = (name: string, n: number, result = 'success') => ({ kind: 'function', name: `flows:${name}`, n, result })
  expect(await client.query(api.flows.steps, { workflowId: id })).toEqual([
    fn('record', 0),
    fn('record', 1),
    fn('flaky', 2),
    fn('double', 3),
    fn('double', 4),
    fn('double', 5),
    { kind: 'sleep', name: 'nap', n: 6, result: 'success' },
    { kind: 'workflow', name: 'flows:child', n: 7, result: 'success' },
    fn('refuse', 8, 'failed'),
    fn('lookup', 9),
  ])
})

test('a workflow waits for an event: in progress until a mutation sends it, then it completes with the value', async () => {
  const id: string = await client.mutation(api.flows.startWaiting, {})
  await until(() => client.query(api.flows.status, { workflowId: id }), (s) => s.type === 'inProgress' && s.running.length === 1)
  expect(await client.query(api.flows.status, { workflowId: id })).toEqual({ type: 'inProgress', running: ['approval'] })
  expect(await outcome(id)).toEqual([])
  await client.mutation(api.flows.approve, { workflowId: id, by: 'ana' })
  expect(await until(() => outcome(id), (o) => o.length > 0)).toEqual([{ kind: 'success', value: 'approved by ana', context: 'waiting' }])
  expect(await client.query(api.flows.steps, { workflowId: id })).toEqual([{ kind: 'event', name: 'approval', n: 0, result: 'success' }])
})

test('a canceled workflow reports canceled to onComplete and to its status', async () => {
  const id: string = await client.mutation(api.flows.startWaiting, {})
  await until(() => client.query(api.flows.status, { workflowId: id }), (s) => s.type === 'inProgress' && s.running.length === 1)
  await client.mutation(api.flows.stop, { workflowId: id })
  expect(await until(() => outcome(id), (o) => o.length > 0)).toEqual([{ kind: 'canceled', value: null, context: 'waiting' }])
  expect(await client.query(api.flows.status, { workflowId: id })).toEqual({ type: 'canceled' })
})

test('a workflow whose handler throws reports the error to onComplete', async () => {
  const id: string = await client.mutation(api.flows.startFailing, {})
  const done = await until(() => outcome(id), (o) => o.length > 0)
  expect(done).toEqual([{ kind: 'failed', value: expect.any(String), context: 'failing' }])
  // The error and its stack, which Convex gives without a header line: the handler's frame first,
  // mapped to the app's source.
  const lines = (done[0]!.value as string).split('\n')
  expect(lines.slice(0, 2)).toEqual(['Error: the workflow gives up', '    at handler [as handler] (../convex/flows.ts:110:10)'])
  expect(lines.slice(2).every((l) => /^    at async \w+ \(.*node_modules\/@convex-dev\/workflow\/src\/client\/workflowMutation\.ts:\d+:\d+\)$/.test(l))).toBe(true)
  expect(await client.query(api.flows.status, { workflowId: id })).toEqual({ type: 'failed', error: done[0]!.value })
})

test('twelve workflows started at once each finish once, with each mutation step applied once', async () => {
  const tags = Array.from({ length: 12 }, (_, i) => `many${i}`)
  const ids: string[] = await Promise.all(tags.map((tag) => client.mutation(api.flows.startMain, { tag })))
  expect(new Set(ids).size).toBe(12)
  for (const [i, id] of ids.entries()) {
    const done = await until(() => outcome(id), (o) => o.length > 0, 30_000)
    expect(done).toEqual([{ kind: 'success', value: expect.objectContaining({ total: 12 }), context: { tag: tags[i] } }])
  }
  for (const tag of tags) {
    expect(await client.query(api.flows.ledger, { tag })).toEqual([5, 7])
    expect(await client.query(api.flows.attemptsOf, { key: tag })).toBe(2)
  }
})

test('a workflow waiting for an event outlives kill -9 of the backend; after the restart it takes the event and finishes, and new ones run', async () => {
  const id: string = await client.mutation(api.flows.startWaiting, {})
  await until(() => client.query(api.flows.status, { workflowId: id }), (s) => s.type === 'inProgress' && s.running.length === 1)
  expect(await backend.stop('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' })
  await backend.restart()
  expect(await client.query(api.flows.status, { workflowId: id })).toEqual({ type: 'inProgress', running: ['approval'] })
  await client.mutation(api.flows.approve, { workflowId: id, by: 'bo' })
  expect(await until(() => outcome(id), (o) => o.length > 0, 30_000)).toEqual([{ kind: 'success', value: 'approved by bo', context: 'waiting' }])
  // The component's loops run again after the restart.
  const next: string = await client.mutation(api.flows.startMain, { tag: 'after' })
  expect(await until(() => outcome(next), (o) => o.length > 0, 30_000)).toEqual([{ kind: 'success', value: expect.objectContaining({ total: 12 }), context: { tag: 'after' } }])
  expect(await client.query(api.flows.ledger, { tag: 'after' })).toEqual([5, 7])
})
