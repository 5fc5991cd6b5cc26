/**
 * @module A real browser for the dashboard's tests: playwright-core driving the machine's
 * Chromium (Debian's `chromium` package; .ci/run installs it), headless.
 */
import { execFileSync } from 'node:child_process'
import { chromium } from 'playwright-core'
import type { Browser, Page } from 'playwright-core'

/** Where `which chromium` finds it; fails with what to install when it isn't there. */
export function chromiumPath(): string {
  try {
    return execFileSync('which', ['chromium'], { encoding: 'utf8' }).trim()
  } catch {
    throw new Error('No Chromium on this machine: the dashboard tests need Debian\'s (apt-get install -y chromium; .ci/run installs it)')
  }
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath(), headless: true, args: ['--no-sandbox'] })
}

/** A new page whose uncaught errors and console errors are collected, with a default wait of 15 s for every locator. */
export async function openPage(browser: Browser): Promise<{ page: Page; problems: string[] }> {
  const context = await browser.newContext()
  const page = await context.newPage()
  page.setDefaultTimeout(15_000)
  const problems: string[] = []
  page.on('console', (m) => {
    // Not the browser's line for a refused request, nor the convex client's for a function that
    // failed (both are what some tests cause on purpose, and the page shows them).
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource') && !m.text().startsWith('[CONVEX ')) problems.push(`console: ${m.text()}`)
  })
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`))
  return { page, problems }
}
