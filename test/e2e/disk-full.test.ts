/**
 * A storage failure shows and passes: with the data folder's disk full, writes fail with the
 * cause, /health says so, the backend logs it once; once space is back, writes commit again.
 * The data folder is a small tmpfs (the test needs root to mount it, as CI has).
 */
import { execFileSync } from 'node:child_process'
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { cleanup, deploy, startBackend } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'

const api = anyApi as any
const mountPoint = mkdtempSync(join(tmpdir(), 'concave-small-disk-'))
let mounted = false
try {
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', mountPoint], { stdio: 'ignore' })
  mounted = true
} catch {
  // Not root: the test below is skipped (and says why).
}
let backend: TestBackend
let appDir: string | undefined

beforeAll(async () => {
  if (!mounted) return
  mkdirSync(join(mountPoint, 'data'))
  backend = await startBackend({ dataDir: join(mountPoint, 'data') })
  appDir = (await deploy(backend, 'basic')).appDir
})

afterAll(async () => {
  await backend?.stop()
  if (mounted) execFileSync('umount', ['-l', mountPoint])
  rmSync(mountPoint, { recursive: true, force: true })
  cleanup(appDir)
})

/** Fills the disk: a file of zeros written until there is no space left. */
function fill(path: string): void {
  const fd = openSync(path, 'w')
  const chunk = Buffer.alloc(1024 * 1024)
  try {
    for (;;) writeSync(fd, chunk)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e
  } finally {
    closeSync(fd)
  }
}

test.skipIf(!mounted)('a full disk fails writes with the cause and /health says so, once logged; freeing space recovers', async () => {
  const client = new ConvexHttpClient(backend.url)
  const big = 'x'.repeat(900 * 1024)
  await client.mutation(api.messages.send, { author: 'disk', body: 'before' })
  const filler = join(mountPoint, 'filler')
  fill(filler)
  // Writes that need new space now fail (the WAL may still hold a little reusable room).
  let failure: Error | null = null
  for (let i = 0; i < 100 && failure === null; i++) {
    failure = await client.mutation(api.messages.send, { author: 'disk-big', body: big }).then(
      () => null,
      (e: Error) => e,
    )
  }
  expect(failure?.message).toMatch(/\nThe database could not write: database or disk is full\n$/)
  await expect(client.mutation(api.messages.send, { author: 'disk-big', body: big })).rejects.toThrow('The database could not write: database or disk is full')
  const health = await fetch(`${backend.url}/health`)
  expect([health.status, await health.text()]).toEqual([503, 'Unhealthy: The database could not write: database or disk is full'])
  expect(backend.output().split('\n').filter((l) => l.includes('Writes are failing'))).toHaveLength(1)
  // Reads go on meanwhile.
  expect((await client.query(api.messages.list, { author: 'disk' })).map((m: any) => m.body)).toEqual(['before'])

  rmSync(filler)
  await client.mutation(api.messages.send, { author: 'disk', body: 'after' })
  const healthy = await fetch(`${backend.url}/health`)
  expect([healthy.status, await healthy.text()]).toEqual([200, 'OK'])
  expect(backend.output()).toContain('Writes are committing again')
  expect((await client.query(api.messages.list, { author: 'disk' })).map((m: any) => m.body)).toEqual(['before', 'after'])
  // Nothing of the failed writes is in the store.
  await backend.stop('SIGKILL')
  await backend.restart()
  expect((await new ConvexHttpClient(backend.url).query(api.messages.list, { author: 'disk' })).map((m: any) => m.body)).toEqual(['before', 'after'])
})
