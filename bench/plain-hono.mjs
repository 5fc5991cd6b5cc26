// The benchmark's "plain hono route" baseline: a hono app on @hono/node-server (what Concave's API
// listens with) answering `POST /api/mutation` as a mutation answers, reading and parsing the same
// body and writing a success of the same shape, with no function, transaction or store behind it.
// Usage: node bench/plain-hono.mjs PORT (prints "ready" once it listens).
import { serve } from '@hono/node-server'
import { Hono } from 'hono'

const app = new Hono()
app.post('/api/mutation', async (c) => {
  const body = await c.req.json()
  return c.json({ status: 'success', value: body.args?.[0]?.n ?? null })
})
serve({ fetch: app.fetch, port: Number(process.argv[2]), hostname: '127.0.0.1' }, () => process.stdout.write('ready\n'))
