/**
 * The first minutes of a new user: `node dist/backend.js` on a machine whose own Node.js is too
 * old says what to run instead.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, test } from 'vitest'
import { cleanup, ROOT } from '../helpers/test-backend.ts'

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
