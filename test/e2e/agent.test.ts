/**
 * @convex-dev/agent 0.7.10 (with the AI SDK 7), installed in test/fixtures/agent as its README
 * shows and driven by the agent's own mock language model (no network): threads, generateText,
 * streamText with its deltas saved, a tool that reads the app's tables, messages saved by hand,
 * and a ConvexClient following a thread's messages as the agent writes them.
 */
import { afterAll, expect, test } from 'vitest'
import { ConvexClient } from 'convex/browser'
import type { ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { until, useDeployedBackend } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'

const api = anyApi as any
let client: ConvexHttpClient
let backend: TestBackend
const live: ConvexClient[] = []

// Not a test of time limits: actions get a minute, not the test backends' 2 s, on a busy machine.
useDeployedBackend('agent', (t) => ({ client, backend } = t), { env: { CONCAVE_ACTION_TIMEOUT_MS: '60000' } })
afterAll(async () => {
  await Promise.all(live.map((c) => c.close()))
})

interface Row {
  order: number
  stepOrder: number
  role: string | null
  text: string | null
  status: string
  tool: boolean
  agentName: string | null
}
const messages = (threadId: string): Promise<Row[]> => client.query(api.chat.messages, { threadId })

test('a thread: the prompt and the model\'s answer are saved as its messages, in order', async () => {
  const threadId: string = await client.mutation(api.chat.newThread, { userId: 'ada', title: 'First' })
  expect(await client.query(api.chat.thread, { threadId })).toEqual({ title: 'First', userId: 'ada', status: 'active' })
  expect(await client.action(api.chat.ask, { threadId, prompt: 'Say hello' })).toBe('Hello from the mock model.')
  const user = (order: number, text: string): Row => ({ order, stepOrder: 0, role: 'user', text, status: 'success', tool: false, agentName: null })
  const answer = (order: number): Row => ({ order, stepOrder: 1, role: 'assistant', text: 'Hello from the mock model.', status: 'success', tool: false, agentName: 'plain' })
  expect(await messages(threadId)).toEqual([user(0, 'Say hello'), answer(0)])
  // The next exchange continues the thread (the model is given the history as context).
  expect(await client.action(api.chat.ask, { threadId, prompt: 'Again' })).toBe('Hello from the mock model.')
  expect(await messages(threadId)).toEqual([user(0, 'Say hello'), answer(0), user(1, 'Again'), answer(1)])
})

test('streamText with its deltas saved: the stream is recorded, and the answer lands as a message', async () => {
  const threadId: string = await client.mutation(api.chat.newThread, { userId: 'ada', title: 'Streaming' })
  expect(await client.action(api.chat.askStreaming, { threadId, prompt: 'Stream it' })).toBe('Hello from the mock model.')
  expect(await messages(threadId)).toEqual([
    { order: 0, stepOrder: 0, role: 'user', text: 'Stream it', status: 'success', tool: false, agentName: null },
    { order: 0, stepOrder: 1, role: 'assistant', text: 'Hello from the mock model.', status: 'success', tool: false, agentName: 'plain' },
  ])
  // The stream its deltas went to, finished (the component deletes it later, on a schedule).
  expect(await client.query(api.chat.streams, { threadId })).toEqual([{ status: 'finished', order: 0, agentName: 'plain' }])
})

test('a tool call: the model asks for a fact, the tool reads it from the app\'s table, the model answers', async () => {
  await client.mutation(api.chat.addFact, { key: 'answer', value: '42' })
  const threadId: string = await client.mutation(api.chat.newThread, { userId: 'bo', title: 'Tools' })
  expect(await client.action(api.chat.research, { threadId, prompt: 'What is the answer?' })).toEqual({ text: 'The answer is in the database.', steps: 2, toolResults: ['42'] })
  // The tool call and its result are messages of their own, between the prompt and the answer.
  expect((await messages(threadId)).map((r) => [r.stepOrder, r.role, r.text, r.tool, r.agentName])).toEqual([
    [0, 'user', 'What is the answer?', false, null],
    [1, 'assistant', null, true, 'researcher'],
    [2, 'tool', null, true, 'researcher'],
    [3, 'assistant', 'The answer is in the database.', false, 'researcher'],
  ])
})

test('a ConvexClient following a thread sees a message saved by a mutation and the agent\'s answer', async () => {
  const threadId: string = await client.mutation(api.chat.newThread, { userId: 'cy', title: 'Live' })
  const watcher = new ConvexClient(backend.url)
  live.push(watcher)
  const seen: Row[][] = []
  watcher.onUpdate(api.chat.messages, { threadId }, (rows: Row[]) => seen.push(rows))
  await until(() => seen.length, (n) => n >= 1)
  expect(seen[0]).toEqual([])
  await client.mutation(api.chat.note, { threadId, text: 'A note' })
  await until(() => seen.at(-1)!.length, (n) => n === 1)
  await client.action(api.chat.ask, { threadId, prompt: 'Then answer' })
  const last = await until(() => seen.at(-1)!, (rows) => rows.length === 3 && rows[2]!.status === 'success')
  expect(last.map((r) => [r.order, r.stepOrder, r.role, r.text])).toEqual([
    [0, 0, 'user', 'A note'],
    [1, 0, 'user', 'Then answer'],
    [1, 1, 'assistant', 'Hello from the mock model.'],
  ])
})
