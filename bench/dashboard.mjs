// The dashboard's benchmark (BENCH_ONLY=dashboard; bench/run.mjs `dashboardRows`): its first load in
// headless Chromium (bytes and time to interactive), and what ten open dashboards cost the backend.
import { readdirSync, readFileSync } from 'node:fs'
import { launchBrowser } from '../test/helpers/browser.ts'

const KEY_STORAGE = 'concave.adminKey'

/**
 * In the page, before its own script: the time (ms after navigation start, `performance.now()`)
 * at which each watched selector first matched, kept in `window.__seen`. A MutationObserver, so
 * the moment is the DOM change's, not that of a poll.
 */
function watchSelectors(selectors) {
  window.__seen = {}
  const check = () => {
    for (const s of selectors) if (!(s in window.__seen) && document.querySelector(s) !== null) window.__seen[s] = performance.now()
  }
  new MutationObserver(check).observe(document, { childList: true, subtree: true, characterData: true })
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

/**
 * `runs` first loads, each in a new browser context (empty cache, no cookies or storage): signed
 * out (navigation start → the sign-in form), and signed in (the admin key in the tab's storage, as
 * after a sign-in: navigation start → the Data page's table list with `table` in it, which takes
 * the admin-key check and the first subscription's answer over the sync socket). Bytes are what
 * the network carried for the dashboard's own files (HTML, JS, CSS, icon, config), bodies as sent.
 */
export async function firstLoad({ dashboardUrl, adminKey, table, runs }) {
  const browser = await launchBrowser()
  const signedOut = []
  const signedIn = []
  const toData = []
  let bytes = null
  try {
    // One uncounted pair first: the browser's own first-context start-up is not the page's.
    for (let i = -1; i < runs; i++) {
      for (const withKey of [false, true]) {
        const context = await browser.newContext()
        try {
          const page = await context.newPage()
          page.setDefaultTimeout(30_000)
          const tableSelector = `button.table-link[data-table="${table}"] [data-testid="count-${table}"]`
          await page.addInitScript(watchSelectors, ['input[name=adminKey]', 'nav.sidebar', tableSelector])
          if (withKey) await page.addInitScript(([k, v]) => sessionStorage.setItem(k, v), [KEY_STORAGE, adminKey])
          const files = []
          page.on('requestfinished', async (request) => {
            if (!request.url().startsWith(dashboardUrl)) return
            const sizes = await request.sizes()
            files.push({ url: request.url(), type: (await request.response())?.headers()['content-type'] ?? '', body: sizes.responseBodySize, headers: sizes.responseHeadersSize })
          })
          await page.goto(`${dashboardUrl}/#/data`, { waitUntil: 'load' })
          await page.waitForFunction((s) => window.__seen[s] !== undefined, withKey ? tableSelector : 'input[name=adminKey]')
          const times = await page.evaluate(() => window.__seen)
          if (i < 0) continue
          if (withKey) {
            signedIn.push(times[tableSelector])
            toData.push(times[tableSelector] - times['nav.sidebar'])
          } else {
            signedOut.push(times['input[name=adminKey]'])
            if (bytes === null) bytes = files
          }
        } finally {
          await context.close()
        }
      }
    }
  } finally {
    await browser.close()
  }
  const sum = (pred) => bytes.filter(pred).reduce((s, f) => s + f.body, 0)
  return {
    runs,
    signedOutMs: median(signedOut),
    signedInMs: median(signedIn),
    signedInMax: Math.max(...signedIn),
    sidebarToTableMs: median(toData),
    html: sum((f) => f.type.startsWith('text/html')),
    js: sum((f) => f.type.startsWith('text/javascript')),
    css: sum((f) => f.type.startsWith('text/css')),
    total: bytes.reduce((s, f) => s + f.body + f.headers, 0),
    files: bytes.length,
  }
}

/**
 * `n` dashboards, each its own browser context signed in and on the Data page of `table` (its
 * documents newest first and the tables' counts: live subscriptions). Returns a handle to read
 * each page's count of `table` and to close them.
 */
export async function openDashboards({ dashboardUrl, adminKey, table, n }) {
  const browser = await launchBrowser()
  const pages = []
  try {
    for (let i = 0; i < n; i++) {
      const context = await browser.newContext()
      const page = await context.newPage()
      page.setDefaultTimeout(30_000)
      await page.addInitScript(([k, v]) => sessionStorage.setItem(k, v), [KEY_STORAGE, adminKey])
      await page.goto(`${dashboardUrl}/#/data`)
      await page.locator(`button.table-link[data-table="${table}"]`).click()
      await page.locator('main[data-page="data"] h2', { hasText: table }).waitFor()
      await page.locator('tr[data-id]').first().waitFor()
      pages.push(page)
    }
  } catch (e) {
    await browser.close()
    throw e
  }
  return {
    /** Each page's shown document count of `table`. */
    counts: () => Promise.all(pages.map(async (p) => Number(await p.getByTestId(`count-${table}`).textContent()))),
    close: () => browser.close(),
  }
}

/**
 * CPU seconds (user + system) used so far by the live processes descended from `rootPid`, but not
 * by `exclude` nor its descendants: here, the Chromium processes the bench started.
 */
export function descendantsCpu(rootPid, exclude) {
  const procs = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const fields = readFileSync(`/proc/${name}/stat`, 'utf8').split(') ')[1].split(' ')
      procs.push({ pid: Number(name), ppid: Number(fields[1]), cpu: (Number(fields[11]) + Number(fields[12])) / 100 })
    } catch {
      // gone since the listing
    }
  }
  const children = new Map()
  for (const p of procs) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p])
  let total = 0
  const walk = (pid) => {
    for (const c of children.get(pid) ?? []) {
      if (exclude.includes(c.pid)) continue
      total += c.cpu
      walk(c.pid)
    }
  }
  walk(rootPid)
  return total
}
