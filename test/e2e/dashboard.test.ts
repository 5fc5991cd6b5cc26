/**
 * The dashboard on --dashboard-port, in a real browser (headless Chromium through playwright-core)
 * against the built backend with the dashboard fixture pushed by the real CLI: sign-in with the
 * printed admin key (a wrong one refused), live data, edits checked against the schema, the
 * function runner, logs, schedules, environment variables, files and health. Every wait is a locator's or
 * `until`'s deadline.
 */
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { unzipSync } from 'fflate'
import { ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import type { Browser, Page } from 'playwright-core'
import { cleanup, convexCli, errorOf, freePort, prepareFixture, startBackend, until } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'
import { launchBrowser, openPage } from '../helpers/browser.ts'

const api = anyApi as any
let backend: TestBackend
let appDir: string
let dashboard: string
let adminKey: string
let client: ConvexHttpClient
let admin: ConvexHttpClient
let browser: Browser
let page: Page
let problems: string[]

beforeAll(async () => {
  const port = await freePort()
  dashboard = `http://127.0.0.1:${port}`
  // No secret given: the backend makes one and prints its admin key, as for a new user.
  backend = await startBackend({ withSecret: false, args: ['--dashboard-port', String(port)] })
  adminKey = (await until(() => /Admin key: +(\S+)/.exec(backend.output())?.[1], (k) => k !== undefined))!
  appDir = prepareFixture('dashboard')
  await convexCli(appDir, ['deploy', '--url', backend.url, '--admin-key', adminKey, '-y'])
  client = new ConvexHttpClient(backend.url)
  admin = new ConvexHttpClient(backend.url)
  ;(admin as any).setAdminAuth(adminKey)
  browser = await launchBrowser()
  ;({ page, problems } = await openPage(browser))
})

afterAll(async () => {
  await browser?.close()
  await backend?.stop()
  cleanup(backend?.dataDir)
  cleanup(appDir)
})

/** Reads until the value is as expected (a deadline, not a sleep). */
const poll = <T>(read: () => Promise<T> | T) => expect.poll(read, { timeout: 15_000, interval: 50 })

/** The notes as the app's own query returns them, without ids and creation times. */
async function notes(): Promise<Array<Record<string, unknown>>> {
  return ((await client.query(api.notes.list, {})) as Array<Record<string, unknown>>).map(({ _id, _creationTime, ...rest }) => rest)
}

async function signIn(key: string): Promise<void> {
  await page.locator('input[name=adminKey]').fill(key)
  await page.getByRole('button', { name: 'Sign in' }).click()
}

async function goTo(name: string): Promise<void> {
  await page.locator('nav.sidebar').getByRole('link', { name, exact: true }).click()
  await page.locator(`main[data-page="${name.toLowerCase()}"]`).waitFor()
}

test('the port serves the page and its config, from the backend process, with nothing from elsewhere', async () => {
  const index = await fetch(dashboard)
  expect(index.status).toBe(200)
  expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8')
  const html = await index.text()
  // Only its own files: no URL with a host in the page.
  expect(html.match(/(?:src|href)="[^"]*"/g)).toEqual(['href="/favicon.svg"', 'href="/app.css"', 'src="/app.js"'])
  expect((await fetch(`${dashboard}/app.js`)).headers.get('content-type')).toBe('text/javascript; charset=utf-8')
  // A client-side route gets the page too.
  expect(await (await fetch(`${dashboard}/data/notes`)).text()).toBe(html)
  const port = Number(new URL(backend.url).port)
  expect(await (await fetch(`${dashboard}/config.json`)).json()).toEqual({ deploymentUrl: null, apiPort: port, siteUrl: null, sitePort: Number(new URL(backend.siteUrl).port), version: '0.1.0' })
  expect(backend.output()).toContain(`  Dashboard:        ${dashboard}\n`)
})

test('a dashboard port that is taken stops the start with a message that says what to do', async () => {
  const port = Number(new URL(dashboard).port)
  const dataDir = mkdtempSync(join(tmpdir(), 'concave-dashboard-'))
  try {
    const e = await errorOf(startBackend({ dataDir, args: ['--dashboard-port', String(port)] }))
    expect(e.message).toContain(`Failed to start`)
    expect(e.message).toContain(`The dashboard port ${port} is in use: choose another with --dashboard-port (env DASHBOARD_PORT), or 0 to serve no dashboard`)
  } finally {
    cleanup(dataDir)
  }
})

test('a wrong admin key is refused and nothing of the deployment is shown', async () => {
  await page.goto(dashboard)
  await signIn(`${adminKey.slice(0, -4)}0000`)
  await poll(() => page.getByRole('alert').textContent()).toBe('The provided admin key was invalid for this instance')
  expect(await page.locator('nav.sidebar').count()).toBe(0)
  expect(await page.evaluate(() => sessionStorage.getItem('concave.adminKey'))).toBe(null)
  // A wrong key left in the tab's storage is checked again on load, on any page.
  await page.evaluate(() => sessionStorage.setItem('concave.adminKey', 'convex-self-hosted|00'))
  await page.goto(`${dashboard}/#/settings`)
  await page.reload()
  await poll(() => page.getByRole('alert').textContent()).toBe('The provided admin key was invalid for this instance')
  expect(await page.locator('nav.sidebar').count()).toBe(0)
  expect(await page.evaluate(() => sessionStorage.getItem('concave.adminKey'))).toBe(null)
})

test('signs in with the printed admin key, kept for the tab', async () => {
  await page.goto(dashboard)
  await signIn(adminKey)
  await page.locator('nav.sidebar').waitFor()
  expect(await page.evaluate(() => sessionStorage.getItem('concave.adminKey'))).toBe(adminKey)
  // A reload stays signed in.
  await page.reload()
  await page.locator('nav.sidebar').waitFor()
})

test('Data: a mutation from a ConvexHttpClient shows in the table and its count without a reload', async () => {
  await goTo('Data')
  await client.mutation(api.notes.add, { title: 'first', stars: 1 })
  await page.locator('button.table-link[data-table="notes"]').click()
  await page.locator('td[data-field="title"]', { hasText: '"first"' }).waitFor()
  await poll(() => page.getByTestId('count-notes').textContent()).toBe('1')
  await client.mutation(api.notes.add, { title: 'from the client', stars: 2 })
  await page.locator('td[data-field="title"]', { hasText: '"from the client"' }).waitFor()
  await poll(() => page.getByTestId('count-notes').textContent()).toBe('2')
})

test('Data: sorted by an index, ascending and descending, live', async () => {
  const stars = () => page.locator('td[data-field="stars"]').allTextContents()
  // Newest first by default: creation order.
  await poll(stars).toEqual(['2', '1'])
  await page.locator('select[name=sortIndex]').selectOption('by_stars')
  await page.locator('select[name=order]').selectOption('asc')
  await poll(stars).toEqual(['1', '2'])
  // A new note with the fewest stars goes first, though it is the newest.
  await client.mutation(api.notes.add, { title: 'zero', stars: 0 })
  await poll(stars).toEqual(['0', '1', '2'])
  await page.locator('select[name=order]').selectOption('desc')
  await poll(stars).toEqual(['2', '1', '0'])
  const zero = page.locator('tr[data-id]', { has: page.locator('td[data-field="title"]', { hasText: '"zero"' }) })
  await zero.getByRole('button', { name: 'Delete' }).click()
  await poll(stars).toEqual(['2', '1'])
  await page.locator('select[name=sortIndex]').selectOption('')
  await poll(stars).toEqual(['2', '1'])
})

/** Opens the editor of the note titled `title`, writes `json` and saves. */
async function editNote(title: string, json: string): Promise<void> {
  const row = page.locator('tr[data-id]', { has: page.locator('td[data-field="title"]', { hasText: `"${title}"` }) })
  await row.getByRole('button', { name: 'Edit' }).click()
  await page.locator('.editor textarea[name=document]').fill(json)
  await page.locator('.editor').getByRole('button', { name: 'Save' }).click()
}

test('Data: an edit in the page is read back from the client, with Convex value types (int64)', async () => {
  // 5n as Convex's JSON encodes an int64: little-endian bytes, base64.
  const five = Buffer.alloc(8)
  five.writeBigInt64LE(5n)
  await editNote('from the client', JSON.stringify({ title: 'edited', stars: 7, count: { $integer: five.toString('base64') } }))
  await page.locator('.editor').waitFor({ state: 'detached' })
  expect(await until(notes, (n) => n.some((d) => d.title === 'edited'))).toEqual([
    { title: 'first', stars: 1 },
    { title: 'edited', stars: 7, count: 5n },
  ])
  await page.locator('td[data-field="title"]', { hasText: '"edited"' }).waitFor()
})

test('Data: an edit that breaks the schema shows its error and changes nothing', async () => {
  await editNote('first', '{"title": "first", "stars": "many"}')
  const error = await page.locator('.editor [role=alert]').textContent()
  expect(error).toMatch(/^Failed to insert or update a document in table "notes" because it does not match the schema: Value does not match validator\.\nPath: \.stars\nValue: "many"\nValidator: v\.float64\(\)/)
  await page.locator('.editor').getByRole('button', { name: 'Cancel' }).click()
  expect(await notes()).toEqual([
    { title: 'first', stars: 1 },
    { title: 'edited', stars: 7, count: 5n },
  ])
})

test('Data: add and delete documents, create and clear a table', async () => {
  await page.getByRole('button', { name: 'Add document' }).click()
  await page.locator('.editor textarea[name=document]').fill('{"title": "added", "stars": 3}')
  await page.locator('.editor').getByRole('button', { name: 'Save' }).click()
  await until(notes, (n) => n.some((d) => d.title === 'added'))
  const added = page.locator('tr[data-id]', { has: page.locator('td[data-field="title"]', { hasText: '"added"' }) })
  await added.getByRole('button', { name: 'Delete' }).click()
  await added.waitFor({ state: 'detached' })
  expect(await notes()).toEqual([
    { title: 'first', stars: 1 },
    { title: 'edited', stars: 7, count: 5n },
  ])

  await page.getByRole('button', { name: 'Create table' }).click()
  await page.locator('input[name=tableName]').fill('scratch')
  await page.getByRole('button', { name: 'Create', exact: true }).click()
  await poll(() => page.getByTestId('count-scratch').textContent()).toBe('0')
  expect(await admin.query('_system/frontend/tableSize:default' as any, { tableName: 'scratch' })).toBe(0)
  for (const n of [1, 2, 3]) await admin.mutation('_system/frontend/addDocument:default' as any, { table: 'scratch', documents: [{ n }] })
  await poll(() => page.getByTestId('count-scratch').textContent()).toBe('3')
  page.once('dialog', (d) => void d.accept())
  await page.getByRole('button', { name: 'Clear table' }).click()
  await poll(() => page.getByTestId('count-scratch').textContent()).toBe('0')
  expect(await admin.query('_system/frontend/tableSize:default' as any, { tableName: 'scratch' })).toBe(0)
  // The other table is untouched.
  expect(await admin.query('_system/frontend/tableSize:default' as any, { tableName: 'notes' })).toBe(2)

  page.once('dialog', (d) => void d.accept())
  await page.getByRole('button', { name: 'Delete table' }).click()
  await page.locator('button.table-link[data-table="scratch"]').waitFor({ state: 'detached' })
  expect(Object.values(await admin.query('_system/frontend/getTableMapping:default' as any, {})).filter((n) => !(n as string).startsWith('_'))).toEqual(['notes'])
})

test('Functions: lists the modules with kind, visibility and validator; runs a query and shows its result and log line', async () => {
  await goTo('Functions')
  await page.locator('button.fn-link[data-function="notes:addLater"]', { hasText: 'internal' }).waitFor()
  await page.locator('button.fn-link[data-function="notes:greet"]').click()
  await poll(() => page.getByTestId('args-validator').textContent()).toBe('v.object({ name: v.string() })')
  await page.locator('textarea[name=args]').fill('{"name": "Ada"}')
  await page.getByRole('button', { name: 'Run query' }).click()
  expect(await page.getByTestId('run-result').textContent()).toBe('"hello, Ada"')
  expect(await page.getByTestId('run-logs').textContent()).toBe("[LOG] 'greeting' 'Ada'")
  // A mutation's error, as the function threw it.
  await page.locator('button.fn-link[data-function="notes:add"]').click()
  await page.locator('textarea[name=args]').fill('{"title": "x"}')
  await page.getByRole('button', { name: 'Run mutation' }).click()
  expect(await page.getByTestId('run-error').textContent()).toContain('ArgumentValidationError: Object is missing the required field `stars`')
  await page.locator('textarea[name=args]').fill('{"title": "run", "stars": 9}')
  await page.getByRole('button', { name: 'Run mutation' }).click()
  await page.getByTestId('run-result').waitFor()
  expect((await notes()).at(-1)).toEqual({ title: 'run', stars: 9 })
})

test('Functions: runs a query acting as a user identity', async () => {
  await page.locator('button.fn-link[data-function="notes:whoami"]').click()
  await page.getByRole('button', { name: 'Run query' }).click()
  expect(await page.getByTestId('run-result').textContent()).toBe('null')
  await page.getByLabel('Act as a user').check()
  await page.locator('textarea[name=identity]').fill('{"subject": "user-7", "issuer": "https://auth.example.com", "name": "Ada"}')
  await page.getByRole('button', { name: 'Run query' }).click()
  await poll(async () => JSON.parse((await page.getByTestId('run-result').textContent()) ?? 'null')).toMatchObject({ subject: 'user-7', issuer: 'https://auth.example.com', name: 'Ada' })
})

test('Logs: the live tail shows a function call made from the client', async () => {
  await goTo('Logs')
  await client.query(api.notes.greet, { name: 'Logs' })
  const row = page.locator('tr[data-log="notes:greet"]', { hasText: "'Logs'" })
  await row.waitFor()
  expect(await row.locator('td').nth(4).textContent()).toBe("[LOG] 'greeting' 'Logs'")
})

test('Schedules: a scheduled function shows up live and is cancelled from the page; the cron is listed', async () => {
  await goTo('Schedules')
  await page.locator('tr[data-cron="daily note"]', { hasText: 'every 24 h' }).waitFor()
  await page.getByTestId('no-scheduled').waitFor()
  await client.mutation(api.notes.later, { title: 'job' })
  const job = page.locator('tr[data-job]', { hasText: 'notes:addLater' })
  await job.waitFor()
  expect(await job.locator('td').nth(1).textContent()).toBe('{"title":"job"}')
  await job.getByRole('button', { name: 'Cancel' }).click()
  await page.getByTestId('no-scheduled').waitFor()
  const jobs = await admin.query('_system/frontend/paginatedScheduledJobs:default' as any, { paginationOpts: { cursor: null, numItems: 10 } })
  expect(jobs.page).toEqual([])
})

test('Settings: an environment variable set in the page is read by a function; edited; deleted', async () => {
  await goTo('Settings')
  await poll(() => page.getByTestId('cloud-url').textContent()).toBe(backend.url)
  await page.locator('input[name=newEnvName]').fill('GREETING')
  await page.locator('input[name=newEnvValue]').fill('hi')
  await page.getByRole('button', { name: 'Add variable' }).click()
  await page.locator('tr[data-env="GREETING"]', { hasText: 'hi' }).waitFor()
  expect(await until(() => client.query(api.notes.greet, { name: 'Bo' }), (v) => v === 'hi, Bo')).toBe('hi, Bo')

  const row = page.locator('tr[data-env="GREETING"]')
  await row.getByRole('button', { name: 'Edit' }).click()
  await row.locator('input[name=envValue]').fill('hey')
  await row.getByRole('button', { name: 'Save' }).click()
  await page.locator('tr[data-env="GREETING"]', { hasText: 'hey' }).waitFor()
  expect(await client.query(api.notes.greet, { name: 'Bo' })).toBe('hey, Bo')

  page.once('dialog', (d) => void d.accept())
  await row.getByRole('button', { name: 'Delete' }).click()
  await row.waitFor({ state: 'detached' })
  expect(await client.query(api.notes.greet, { name: 'Bo' })).toBe('hello, Bo')
})

test('Settings: pausing the deployment from the page stops its functions; resuming lets them run again', async () => {
  await goTo('Settings')
  await poll(() => page.getByTestId('deployment-state').textContent()).toBe('Running.')
  page.once('dialog', (d) => void d.accept())
  await page.getByRole('button', { name: 'Pause deployment' }).click()
  await poll(() => page.getByTestId('deployment-state').textContent()).toBe('Paused: functions fail, scheduled functions wait, crons are skipped.')
  expect((await errorOf(client.query(api.notes.greet, { name: 'Bo' }))).message).toContain('Cannot run functions while this deployment is paused.')
  await page.getByRole('button', { name: 'Resume deployment' }).click()
  await poll(() => page.getByTestId('deployment-state').textContent()).toBe('Running.')
  expect(await client.query(api.notes.greet, { name: 'Bo' })).toBe('hello, Bo')
})

test('Settings: an export is followed to completed and its download is the snapshot zip', async () => {
  const exportBox = page.getByTestId('export')
  await poll(() => exportBox.getByTestId('export-state').textContent()).toBe('none')
  await exportBox.getByRole('button', { name: 'Export a snapshot' }).click()
  await poll(() => exportBox.getByTestId('export-state').textContent()).toBe('completed')
  const latest = await admin.query('_system/cli/exports:getLatest' as any, {})
  expect(latest.state).toBe('completed')
  const [download] = await Promise.all([page.waitForEvent('download'), exportBox.getByRole('button', { name: 'Download the zip' }).click()])
  expect(download.suggestedFilename()).toBe(`snapshot_${latest.start_ts}.zip`)
  const zip = readFileSync((await download.path())!)
  expect(zip.subarray(0, 4)).toEqual(Buffer.from('PK\x03\x04', 'latin1'))
  const files = unzipSync(zip)
  const exported = new TextDecoder().decode(files['notes/documents.jsonl']).trim().split('\n').map((l) => JSON.parse(l).title)
  expect(exported).toEqual((await notes()).map((n) => n.title))
})

test('Settings: a JSONL import into a new table is uploaded, checked, confirmed, followed to completed; its rows show in the Data page', async () => {
  const importBox = page.getByTestId('import')
  const lines = [{ name: 'ada', n: 1 }, { name: 'bo', n: 2 }, { name: 'cy', n: 3 }].map((d) => JSON.stringify(d)).join('\n')
  await importBox.locator('input[name=importFile]').setInputFiles({ name: 'people.jsonl', mimeType: 'application/jsonl', buffer: Buffer.from(lines) })
  expect(await importBox.locator('select[name=importFormat]').inputValue()).toBe('jsonLines')
  await importBox.locator('input[name=importTable]').fill('people')
  await importBox.getByRole('button', { name: 'Upload' }).click()
  await poll(() => importBox.getByTestId('upload-progress').textContent()).toBe('100%')
  // The deployment has read and checked the file and asks for confirmation, as the CLI's prompt.
  await poll(() => importBox.getByTestId('import-state').textContent()).toBe('waiting for confirmation')
  expect(await importBox.getByTestId('import-summary').textContent()).toContain('people')
  // Nothing is written before the confirmation.
  expect(Object.values(await admin.query('_system/frontend/getTableMapping:default' as any, {}))).not.toContain('people')
  await importBox.getByRole('button', { name: 'Confirm import' }).click()
  await poll(() => importBox.getByTestId('import-state').textContent()).toBe('completed')
  expect(await importBox.getByTestId('import-rows').textContent()).toBe('3')
  await goTo('Data')
  await page.locator('button.table-link[data-table="people"]').click()
  await poll(() => page.getByTestId('count-people').textContent()).toBe('3')
  await poll(() => page.locator('td[data-field="name"]').allTextContents()).toEqual(['"cy"', '"bo"', '"ada"'])
  // A wrong file fails with the deployment's message, and nothing is written.
  await goTo('Settings')
  await importBox.locator('input[name=importFile]').setInputFiles({ name: 'bad.jsonl', mimeType: 'application/jsonl', buffer: Buffer.from('{"a": 1}\nnot json') })
  await importBox.locator('input[name=importTable]').fill('broken')
  await importBox.getByRole('button', { name: 'Upload' }).click()
  await poll(() => importBox.getByTestId('import-state').textContent()).toBe('failed')
  expect(await importBox.getByRole('alert').textContent()).not.toBe('')
  expect(Object.values(await admin.query('_system/frontend/getTableMapping:default' as any, {}))).not.toContain('broken')
})

test('Files: upload a file from the page, see its size, type and sha256, delete it', async () => {
  await goTo('Files')
  const content = Buffer.from('hello from the dashboard')
  await page.locator('input[type=file]').setInputFiles({ name: 'hello.txt', mimeType: 'text/plain', buffer: content })
  const row = page.locator('tr[data-file]')
  await row.waitFor()
  const sha256 = createHash('sha256').update(content).digest('base64')
  expect(await row.locator('td').nth(1).textContent()).toBe('24 B')
  expect(await row.locator('td').nth(2).textContent()).toBe('text/plain')
  expect(await row.locator('td').nth(3).textContent()).toBe(sha256)
  const listed = await admin.query('_system/frontend/fileStorageV2:fileMetadata' as any, { paginationOpts: { cursor: null, numItems: 10 } })
  expect(listed.page.map((f: any) => [f._id, f.size, f.contentType, f.sha256])).toEqual([[await row.getAttribute('data-file'), 24, 'text/plain', sha256]])
  // The download link serves the file itself.
  expect(await (await fetch((await row.getByRole('link', { name: 'Download' }).getAttribute('href'))!)).text()).toBe('hello from the dashboard')
  page.once('dialog', (d) => void d.accept())
  await row.getByRole('button', { name: 'Delete' }).click()
  await row.waitFor({ state: 'detached' })
  expect(await admin.query('_system/frontend/fileStorageV2:numFiles' as any, {})).toBe(0)
})

test('Health: charts the backend\'s metrics, its own socket among the sync sessions', async () => {
  await goTo('Health')
  const sessions = page.locator('figure.chart', { hasText: 'Sync sessions' }).locator('strong')
  await poll(async () => Number(await sessions.textContent())).toBeGreaterThanOrEqual(1)
  expect(await page.locator('figure.chart').count()).toBe(12)
})

test('Health: function executions and requests per second, and their durations, move with calls from a client', async () => {
  const metrics = async () => (await (await fetch(`${backend.url}/api/concave/metrics`, { headers: { authorization: `Convex ${adminKey}` } })).json()) as Record<string, number>
  const chart = (title: string) => page.locator('figure.chart', { hasText: title }).locator('strong')
  // Quiet first: nothing runs functions while the page only samples metrics.
  await poll(() => chart('Function executions per second').textContent()).toBe('0.0')
  const before = await metrics()
  for (let i = 0; i < 10; i++) await client.query(api.notes.greet, { name: `health ${i}` })
  const after = await metrics()
  expect(after.functionExecutions - before.functionExecutions).toBe(10)
  expect(after.functionFailures - before.functionFailures).toBe(0)
  expect(after.functionExecutionMs).toBeGreaterThan(before.functionExecutionMs)
  // The ten queries and the first metrics request, at least (the page samples too).
  expect(after.requests - before.requests).toBeGreaterThanOrEqual(11)
  expect(after.requestMs).toBeGreaterThan(before.requestMs)
  // The next sample charts them: a rate above 0, with a mean duration.
  await poll(async () => Number(await chart('Function executions per second').textContent())).toBeGreaterThan(0)
  await poll(async () => parseFloat((await chart('Mean function duration').textContent()) ?? '')).toBeGreaterThan(0)
  await poll(async () => Number(await chart('Requests per second').textContent())).toBeGreaterThan(2)
  // A failing call is charted as a failure.
  await expect(client.query(api.notes.fail, {})).rejects.toThrow('this query fails')
  await poll(async () => Number(await chart('Function failures per second').textContent())).toBeGreaterThan(0)
  // The database's size, as the metrics give it (the SQLite file and its WAL here).
  expect(after.databaseBytes).toBeGreaterThan(0)
  await poll(async () => (await chart('Database size').textContent()) ?? '').toMatch(/^\d+(\.\d)? (B|KiB|MiB|GiB)$/)
})

test('the page threw no error and logged none', () => {
  expect(problems).toEqual([])
})
