/**
 * The dashboard's component selector, in a real browser against the `components` fixture (the app
 * mounts `counter` and `counter2`, each mounting `audit`): the Data page shows, follows and edits
 * the chosen component's tables, and the Functions page lists and runs its functions — each
 * through the system functions' `componentId` and the calls' `componentPath`.
 */
import { beforeAll, afterAll, expect, test } from 'vitest'
import { ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import type { Browser, Page } from 'playwright-core'
import { freePort, useDeployedBackend } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'
import { launchBrowser, openPage } from '../helpers/browser.ts'

const api = anyApi as any
let backend: TestBackend
let client: ConvexHttpClient
let admin: ConvexHttpClient
let browser: Browser
let page: Page
let problems: string[]
const options: { args: string[] } = { args: [] }
let dashboard: string

// The dashboard's port, chosen before the backend starts (the hooks run in this order).
beforeAll(async () => {
  const port = await freePort()
  dashboard = `http://127.0.0.1:${port}`
  options.args = ['--dashboard-port', String(port)]
})
useDeployedBackend('components', (t) => ({ backend, client } = t), options)
beforeAll(async () => {
  admin = new ConvexHttpClient(backend.url)
  ;(admin as any).setAdminAuth(backend.adminKey)
  browser = await launchBrowser()
  ;({ page, problems } = await openPage(browser))
  // Signed in: the admin key in the tab's storage, as after a sign-in.
  await page.addInitScript((key) => sessionStorage.setItem('concave.adminKey', key), backend.adminKey)
})
afterAll(async () => {
  await browser?.close()
})

const poll = <T>(read: () => Promise<T> | T) => expect.poll(read, { timeout: 15_000, interval: 50 })
/** A component's function called by an admin (`/api/function` with `componentPath`). */
const inComponent = (component: string, fn: string, args: Record<string, unknown>): Promise<any> => (admin as any).function(fn, component, args)
const tables = () => page.locator('button.table-link').evaluateAll((els) => els.map((e: any) => e.dataset.table))
/** The shown documents (newest first) as `name=value`. */
const values = () => page.locator('tr[data-id]').evaluateAll((rows) => rows.map((r: any) => `${JSON.parse(r.querySelector('td[data-field="name"]').textContent)}=${r.querySelector('td[data-field="value"]').textContent}`))

test('Data: the selector lists the components; each shows its own tables and documents, live', async () => {
  await client.mutation(api.app.add, { name: 'a', by: 2 })
  await page.goto(`${dashboard}/#/data`)
  const picker = page.locator('select[name=component]')
  await poll(() => picker.locator('option').allTextContents()).toEqual(['app', 'counter', 'counter/audit', 'counter2', 'counter2/audit'])
  // The app's own tables, and its own `counters` (the app writes -1 there).
  await poll(tables).toEqual(['counters', 'log'])
  await page.locator('button.table-link[data-table="counters"]').click()
  await poll(values).toEqual(['a=-1'])

  await picker.selectOption('counter')
  await poll(tables).toEqual(['counters'])
  // Its cron ran once at the push (`cron`), then the app's call (`a`).
  await poll(values).toEqual(['a=2', 'cron=1'])
  await poll(() => page.getByTestId('count-counters').textContent()).toBe('2')
  // A write into the component shows without a reload.
  await client.mutation(api.app.add, { name: 'a', by: 3 })
  await poll(values).toEqual(['a=5', 'cron=1'])

  await picker.selectOption('counter/audit')
  await poll(tables).toEqual(['entries'])
  await poll(() => page.getByTestId('count-entries').textContent()).toBe('2')

  // The second instance of the same definition has its own table: only its cron's row.
  await picker.selectOption('counter2')
  await poll(tables).toEqual(['counters'])
  await poll(values).toEqual(['cron=1'])
})

test('Data: a document added in a component goes into that component only', async () => {
  await page.locator('select[name=component]').selectOption('counter')
  await poll(values).toEqual(['a=5', 'cron=1'])
  await page.getByRole('button', { name: 'Add document' }).click()
  await page.locator('.editor textarea[name=document]').fill('{"name": "z", "value": 9}')
  await page.locator('.editor').getByRole('button', { name: 'Save' }).click()
  await poll(values).toEqual(['z=9', 'a=5', 'cron=1'])
  // Sorted by the component's own index.
  await page.locator('select[name=sortIndex]').selectOption('by_name')
  await page.locator('select[name=order]').selectOption('asc')
  await poll(values).toEqual(['a=5', 'cron=1', 'z=9'])
  await page.locator('select[name=sortIndex]').selectOption('')
  await page.locator('select[name=order]').selectOption('desc')
  expect(await inComponent('counter', 'counters:get', { name: 'z' })).toBe(9)
  expect(await inComponent('counter2', 'counters:get', { name: 'z' })).toBe(0)
  // The app's own `counters` has only the app's two rows.
  expect(await admin.query('_system/frontend/tableSize:default' as any, { tableName: 'counters' })).toBe(2)
  // A schema error is the component's schema's.
  await page.getByRole('button', { name: 'Add document' }).click()
  await page.locator('.editor textarea[name=document]').fill('{"name": "bad"}')
  await page.locator('.editor').getByRole('button', { name: 'Save' }).click()
  expect(await page.locator('.editor [role=alert]').textContent()).toContain('Object is missing the required field `value`')
  await page.locator('.editor').getByRole('button', { name: 'Cancel' }).click()
})

test("Functions: the chosen component's functions are listed and run in it", async () => {
  await page.locator('nav.sidebar').getByRole('link', { name: 'Functions', exact: true }).click()
  // The choice is kept across pages.
  await poll(() => page.locator('select[name=component]').inputValue()).toBe('counter')
  await page.locator('button.fn-link[data-function="counters:add"]').waitFor()
  expect(await page.locator('button.fn-link[data-function="app:add"]').count()).toBe(0)
  await page.locator('button.fn-link[data-function="counters:get"]').click()
  await poll(() => page.getByTestId('args-validator').textContent()).toBe('v.object({ name: v.string() })')
  await page.locator('textarea[name=args]').fill('{"name": "a"}')
  await page.getByRole('button', { name: 'Run query' }).click()
  await poll(() => page.getByTestId('run-result').textContent()).toBe('5')

  await page.locator('button.fn-link[data-function="counters:add"]').click()
  await page.locator('textarea[name=args]').fill('{"name": "b", "by": 7}')
  await page.getByRole('button', { name: 'Run mutation' }).click()
  await poll(() => page.getByTestId('run-result').textContent()).toBe('7')
  expect(await inComponent('counter', 'counters:get', { name: 'b' })).toBe(7)
  expect(await inComponent('counter2', 'counters:get', { name: 'b' })).toBe(0)

  await page.locator('select[name=component]').selectOption('')
  await page.locator('button.fn-link[data-function="app:add"]').waitFor()
  expect(await page.locator('button.fn-link[data-function="counters:add"]').count()).toBe(0)
})

test('the page threw no error and logged none', () => {
  expect(problems).toEqual([])
})
