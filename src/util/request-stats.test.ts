import { expect, test } from 'vitest'
import { RequestStats } from './request-stats.ts'

test('counts each answered request and its time to a response, failed ones too', async () => {
  const stats = new RequestStats()
  let release = () => {}
  const gate = new Promise<void>((r) => (release = r))
  const fetch = stats.counting(async (req: Request) => {
    if (req.url.endsWith('/slow')) await gate
    if (req.url.endsWith('/fail')) throw new Error('no')
    return new Response('ok')
  })
  expect(await (await fetch(new Request('http://x/a'))).text()).toBe('ok')
  expect(stats.requests).toBe(1)
  const slow = fetch(new Request('http://x/slow'))
  // Not counted before it is answered.
  await Promise.resolve()
  expect(stats.requests).toBe(1)
  await expect(fetch(new Request('http://x/fail'))).rejects.toThrow('no')
  expect(stats.requests).toBe(2)
  const before = stats.requestMs
  await new Promise((r) => setTimeout(r, 20))
  release()
  await slow
  expect(stats.requests).toBe(3)
  expect(stats.requestMs - before).toBeGreaterThanOrEqual(19)
})
