import { expect, test } from 'vitest'
import { Semaphore } from './semaphore.ts'

const turn = () => new Promise((r) => setImmediate(r))

test('freed slots go to the waiting sources in turn, each source in arrival order', async () => {
  const slots = new Semaphore(1)
  const first = await slots.acquire('http')
  const order: string[] = []
  const take = (source: string, name: string) => slots.acquire(source).then((release) => (order.push(name), release()))
  // One source floods before the others arrive.
  const waiters = [take('sync', 's1'), take('sync', 's2'), take('sync', 's3'), take('http', 'h1'), take('http', 'h2'), take('scheduler', 'j1')]
  expect(slots.waiting).toBe(6)
  first()
  await Promise.all(waiters)
  expect(order).toEqual(['s1', 'h1', 'j1', 's2', 'h2', 's3'])
  expect(slots.waiting).toBe(0)
})

test('a freed slot is handed over from the event loop, not the releasing promise chain', async () => {
  const slots = new Semaphore(1)
  const release = await slots.acquire()
  let got = false
  void slots.acquire().then(() => (got = true))
  release()
  await Promise.resolve()
  await Promise.resolve()
  expect(got).toBe(false)
  await turn()
  await Promise.resolve()
  expect(got).toBe(true)
})

test('at most size holders; a slot given back twice counts once', async () => {
  const slots = new Semaphore(2)
  const a = await slots.acquire()
  await slots.acquire()
  let third = false
  void slots.acquire().then(() => (third = true))
  a()
  a()
  await turn()
  await Promise.resolve()
  expect(third).toBe(true)
  let fourth = false
  void slots.acquire().then(() => (fourth = true))
  await turn()
  expect(fourth).toBe(false)
})
