/**
 * The first minutes of a new user: `node dist/backend.js` on a machine whose own Node.js is too
 * old says what to run instead; a dev start ends its output with the URLs and the admin key.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, test } from 'vitest'
import { cleanup, ROOT, startBackend } from '../helpers/test-backend.ts'

// The machine's own Node.js (v20 here): older than the backend needs.
const SYSTEM_NODE = '/usr/bin/node'
const systemVersion = existsSync(SYSTEM_NODE) ? execFileSync(SYSTEM_NODE, ['-p', 'process.versions.node'], { encoding: 'utf8' }).trim() : null

test.skipIf(systemVersion === null || Number(systemVersion.split('.')[0]) >= 24)('on a Node.js older than 24, dist/backend.js says what to run instead and exits with 1, before loading anything', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'concave-old-node-'))
  try {
    const run = spawnSync(SYSTEM_NODE, [join(ROOT, 'dist/backend.js'), '--port', '0'], { cwd, encoding: 'utf8', env: { ...process.env, PATH: '/usr/bin:/bin' } })
    expect(run.status).toBe(1)
    expect(run.stdout).toBe('')
    expect(run.stderr).toBe(
      [
        `Concave needs Node.js 24 or newer, but this is Node.js ${systemVersion} (${SYSTEM_NODE}).`,
        '`npm install` put Node.js 24 in node_modules; run the backend with it:',
        '  npm start                                   (builds, then starts the backend)',
        '  npx node dist/backend.js [options]          (or node_modules/.bin/node dist/backend.js [options])',
        'or build the single executable, which needs no Node.js: npm run package, then dist/concave-backend [options].',
        '',
      ].join('\n'),
    )
    // Nothing started: no database, no credentials.
    expect(readdirSync(cwd)).toEqual([])
  } finally {
    cleanup(cwd)
  }
})

test('a dev start (no secret given) prints the start-up log lines first and ends with the URLs and the admin key', async () => {
  const backend = await startBackend({ withSecret: false, args: ['--log-format', 'pretty'] })
  try {
    const deadline = Date.now() + 10_000
    while (!backend.output().includes('  Admin key:') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    const banner = `\nConcave is running.\n  Deployment URL:   ${backend.url}\n  HTTP actions URL: ${backend.siteUrl}\n  Admin key:        convex-self-hosted|`
    const output = backend.output()
    const lines = output.slice(0, output.indexOf(banner)).split('\n').filter((l) => l !== '')
    expect(lines.map((l) => l.replace(/^\S+ /, '').replace(/ .*/, ''))).toEqual(['INFO'])
    expect(lines[0]).toContain('INFO  Concave backend started instanceName=convex-self-hosted')
    expect(output.slice(output.indexOf(banner))).toMatch(new RegExp(`^${banner.replace(/[.|]/g, '\\$&')}[0-9a-f]+\\n\\n$`))
  } finally {
    await backend.stop()
    cleanup(backend.dataDir)
  }
})
