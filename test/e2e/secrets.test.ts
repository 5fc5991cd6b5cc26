/**
 * The instance secret out of reach: given as a file it shows in no command line and no
 * environment; given on the command line it is hidden from `ps` once the backend starts (with a
 * warning); given in the environment it stays in the kernel's copy of the backend's initial
 * environment (/proc/<pid>/environ), which is what remains (docs/architecture.md). Node actions
 * (node-actions.test.ts) run in a process that holds none of it.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, expect, test } from 'vitest'
import { ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { cleanup, deploy, errorOf, startBackend, TEST_INSTANCE, TEST_SECRET } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'

const api = anyApi as any
const dir = mkdtempSync(join(tmpdir(), 'concave-secrets-'))
const secretFile = join(dir, 'instance_secret')
writeFileSync(secretFile, `${TEST_SECRET}\n`, { mode: 0o600 })
afterAll(() => cleanup(dir))

const proc = (pid: number, name: 'cmdline' | 'environ') => readFileSync(`/proc/${pid}/${name}`, 'latin1')

async function withBackend(opts: Parameters<typeof startBackend>[0], body: (backend: TestBackend) => Promise<void>): Promise<void> {
  const backend = await startBackend({ withSecret: false, ...opts })
  try {
    await body(backend)
  } finally {
    await backend.stop()
    cleanup(backend.dataDir)
  }
}

async function metricsStatus(backend: TestBackend): Promise<number> {
  return (await fetch(`${backend.url}/api/concave/metrics`, { headers: { authorization: `Convex ${backend.adminKey}` } })).status
}

test('--instance-secret-file: a push and calls work; the secret is in no command line or environment, the backend’s or its Node action process’s', async () => {
  await withBackend({ args: ['--instance-name', TEST_INSTANCE, '--instance-secret-file', secretFile] }, async (backend) => {
    const { appDir } = await deploy(backend, 'node')
    try {
      const client = new ConvexHttpClient(backend.url)
      expect(await client.action(api.nodeActions.roundTrip, { body: 'keyed by a file' })).toEqual({ bodies: ['keyed by a file'], base64: Buffer.from('keyed by a file').toString('base64'), nodeMajor: 24 })
      const pid = backend.process.pid!
      expect(proc(pid, 'cmdline')).toContain(`--instance-secret-file\0${secretFile}\0`)
      expect(proc(pid, 'cmdline')).not.toContain(TEST_SECRET)
      expect(proc(pid, 'environ')).not.toContain(TEST_SECRET)
      const info = await client.action(api.nodeActions.processInfo, {})
      expect(info.pid).not.toBe(pid)
      expect(info.ppid).toBe(pid)
      for (const text of [info.env, info.environ, info.cmdline]) expect(text).not.toContain(TEST_SECRET)
      expect(backend.output()).not.toContain('--instance-secret puts the secret on the command line')
    } finally {
      cleanup(appDir)
    }
  })
})

test('--instance-secret: works, warns, and is hidden from the command line `ps` shows once the backend has started', async () => {
  await withBackend({ args: ['--instance-name', TEST_INSTANCE, '--instance-secret', TEST_SECRET] }, async (backend) => {
    expect(await metricsStatus(backend)).toBe(200)
    const cmdline = proc(backend.process.pid!, 'cmdline')
    expect(cmdline).not.toContain(TEST_SECRET)
    // The arguments, now one string (libuv writes the new title over them), padded with NULs.
    expect(cmdline.replace(/\0+$/, '')).toMatch(/^\S+ \S+\/dist\/backend\.js --port \d+ .* --instance-name concave-test --instance-secret \*\*\*$/)
    // The process keeps its name (Node calls its main thread MainThread; pgrep and `ps -C` match it).
    expect(readFileSync(`/proc/${backend.process.pid!}/comm`, 'utf8')).toBe('MainThread\n')
    expect(backend.output()).toContain(
      '--instance-secret puts the secret on the command line, where any user of this machine can read it (ps, /proc/<pid>/cmdline), until the backend hid it at start-up. Give it with --instance-secret-file or the INSTANCE_SECRET environment variable instead.',
    )
  })
})

test('INSTANCE_SECRET: works; the kernel keeps it in the backend’s initial environment (/proc/<pid>/environ), as documented', async () => {
  await withBackend({ args: ['--instance-name', TEST_INSTANCE], env: { INSTANCE_SECRET: TEST_SECRET } }, async (backend) => {
    expect(await metricsStatus(backend)).toBe(200)
    expect(proc(backend.process.pid!, 'cmdline')).not.toContain(TEST_SECRET)
    // Deleting it from process.env can't change the kernel's copy: this is what remains.
    expect(proc(backend.process.pid!, 'environ')).toContain(`\0INSTANCE_SECRET=${TEST_SECRET}\0`)
    expect(backend.output()).not.toContain('--instance-secret puts the secret on the command line')
  })
})

test('INSTANCE_SECRET_FILE works like the flag', async () => {
  await withBackend({ args: ['--instance-name', TEST_INSTANCE], env: { INSTANCE_SECRET_FILE: secretFile } }, async (backend) => {
    expect(await metricsStatus(backend)).toBe(200)
    expect(proc(backend.process.pid!, 'environ')).not.toContain(TEST_SECRET)
  })
})

test('a secret given twice, a missing file or one that is not a secret stops the start with the reason', async () => {
  const bad = join(dir, 'not_a_secret')
  writeFileSync(bad, 'hunter2\n')
  const missing = join(dir, 'missing')
  const cases: [Parameters<typeof startBackend>[0], string][] = [
    [{ args: ['--instance-secret', TEST_SECRET, '--instance-secret-file', secretFile] }, 'Give the instance secret one way: --instance-secret-file or --instance-secret, not both'],
    [{ env: { INSTANCE_SECRET: TEST_SECRET, INSTANCE_SECRET_FILE: secretFile } }, 'Set the instance secret one way: INSTANCE_SECRET_FILE or INSTANCE_SECRET, not both'],
    [{ args: ['--instance-secret-file', missing] }, `Could not read the instance secret file ${missing}: ENOENT: no such file or directory, open '${missing}'`],
    [{ args: ['--instance-secret-file', bad] }, 'Instance secret must be 64 hex characters (32 bytes)'],
  ]
  for (const [opts, reason] of cases) {
    const dataDir = mkdtempSync(join(dir, 'data-'))
    const err = await errorOf(startBackend({ withSecret: false, dataDir, ...opts }))
    expect(err.message).toMatch(/^backend exited with 1:\n/)
    const line = err.message.split('\n').find((l) => l.includes('Failed to start'))
    expect(JSON.parse(line!)).toMatchObject({ level: 'error', message: 'Failed to start', error: reason })
  }
})
