/**
 * A React app as a Convex user writes one (test/fixtures/react-app), bundled with esbuild, served
 * from an origin of its own and run in a real browser (Chromium): ConvexReactClient over the sync
 * socket with useQuery, useMutation (with an optimistic update) and usePaginatedQuery, and a
 * ConvexHttpClient call across origins. Two tabs see each other's messages live.
 */
import { createServer } from 'node:http'
import type { Server } from 'node:http'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { build } from 'esbuild'
import type { Browser, Page } from 'playwright-core'
import { ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { freePort, useDeployedBackend } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'
import { launchBrowser, openPage } from '../helpers/browser.ts'

const api = anyApi as any
let backend: TestBackend
let appDir: string
let client: ConvexHttpClient
let browser: Browser
let server: Server
let origin = ''
const problems: string[] = []

useDeployedBackend('react-app', (t) => ({ backend, appDir, client } = t))

beforeAll(async () => {
  const bundle = await build({
    entryPoints: [join(appDir, 'src/main.tsx')],
    bundle: true,
    write: false,
    format: 'esm',
    jsx: 'automatic',
    minify: true,
    define: { CONVEX_URL: JSON.stringify(backend.url), 'process.env.NODE_ENV': '"production"' },
    logLevel: 'silent',
  })
  const js = bundle.outputFiles[0]!.contents
  const html = readFileSync(join(appDir, 'src/index.html'))
  const port = await freePort()
  server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname
    if (path === '/main.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(js)
    else res.writeHead(200, { 'content-type': 'text/html' }).end(html)
  })
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  // localhost, where the backend is 127.0.0.1: another origin, so the HTTP client's calls are cross-origin.
  origin = `http://localhost:${port}`
  browser = await launchBrowser()
})
afterAll(async () => {
  await browser?.close()
  await new Promise((r) => server?.close(r))
})

async function tab(author: string): Promise<Page> {
  const { page, problems: seen } = await openPage(browser)
  page.on('close', () => problems.push(...seen))
  await page.goto(`${origin}/?author=${author}`)
  await expect.poll(() => page.getByTestId('loaded').textContent()).toBe('loaded')
  return page
}

const items = (page: Page, list: string) => page.getByTestId(list).locator('li').allTextContents()

test('two tabs: a message sent in one shows in both, live; a failed mutation reports its error', async () => {
  const ada = await tab('ada')
  const bo = await tab('bo')
  expect(await items(ada, 'messages')).toEqual([])

  await ada.getByLabel('message').fill('hello from ada')
  await ada.getByRole('button', { name: 'Send' }).click()
  await expect.poll(() => items(ada, 'messages')).toEqual(['ada: hello from ada'])
  await expect.poll(() => items(bo, 'messages')).toEqual(['ada: hello from ada'])

  await bo.getByLabel('message').fill('hi ada')
  await bo.getByRole('button', { name: 'Send' }).click()
  await expect.poll(() => items(ada, 'messages')).toEqual(['ada: hello from ada', 'bo: hi ada'])

  // A message from outside the browser reaches both tabs too.
  await client.mutation(api.messages.send, { author: 'server', body: 'from node' })
  await expect.poll(() => items(bo, 'messages')).toEqual(['ada: hello from ada', 'bo: hi ada', 'server: from node'])

  // The mutation throws: the optimistic message is rolled back and the error reaches the page.
  await ada.getByLabel('message').fill('   ')
  await ada.getByRole('button', { name: 'Send' }).click()
  await expect.poll(() => ada.getByTestId('error').textContent()).toContain("Uncaught Error: An empty message can't be sent")
  await expect.poll(() => items(ada, 'messages')).toEqual(['ada: hello from ada', 'bo: hi ada', 'server: from node'])
  await ada.close()
  await bo.close()
  expect(problems).toEqual([])
})

test('usePaginatedQuery loads page by page, newest first, and takes in a new message at the top', async () => {
  for (let i = 1; i <= 5; i++) await client.mutation(api.messages.send, { author: 'seed', body: `seed ${i}` })
  const page = await tab('cy')
  await expect.poll(() => items(page, 'page')).toEqual(['seed 5', 'seed 4', 'seed 3'])
  expect(await page.getByTestId('status').textContent()).toBe('CanLoadMore')
  await page.getByRole('button', { name: 'More' }).click()
  await expect.poll(() => items(page, 'page')).toEqual(['seed 5', 'seed 4', 'seed 3', 'seed 2', 'seed 1', 'from node'])
  await client.mutation(api.messages.send, { author: 'seed', body: 'seed 6' })
  await expect.poll(() => items(page, 'page')).toEqual(['seed 6', 'seed 5', 'seed 4', 'seed 3', 'seed 2', 'seed 1', 'from node'])
  // A ConvexHttpClient call from the page's origin (cross-origin: CORS).
  await page.getByRole('button', { name: 'Count' }).click()
  await expect.poll(() => page.getByTestId('count').textContent()).toBe('9')
  await page.close()
  expect(problems).toEqual([])
})

test('convex/nextjs server helpers: fetchMutation, fetchQuery and preloadQuery against the deployment URL', async () => {
  const { fetchMutation, fetchQuery, preloadQuery, preloadedQueryResult } = await import('convex/nextjs')
  const url = backend.url
  const before: number = await client.query(api.messages.count, {})
  await fetchMutation(api.messages.send, { author: 'next', body: 'from a server component' }, { url })
  const listed = (await fetchQuery(api.messages.list, {}, { url })) as { author: string; body: string }[]
  expect(listed.at(-1)).toEqual({ _id: expect.any(String), author: 'next', body: 'from a server component' })
  expect(preloadedQueryResult(await preloadQuery(api.messages.count, {}, { url }))).toBe(before + 1)
  expect(await fetchMutation(api.messages.send, { author: 'next', body: ' ' }, { url }).catch((e: Error) => e.message)).toContain("Uncaught Error: An empty message can't be sent")
})
