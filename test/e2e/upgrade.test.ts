/**
 * Starting the backend on data it must upgrade or refuse, and its command line and log formats.
 */
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, expect, test } from 'vitest'
import { ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { MIGRATIONS } from '../../src/storage/sqlite/migrations.ts'
import { SqlitePersistence } from '../../src/storage/sqlite/sqlite-persistence.ts'
import { decodeId, encodeId, encodeIndexKey } from '../../src/values/index.ts'
import { cleanup, deploy, freePort, ROOT, startBackend, TEST_INSTANCE, TEST_SECRET } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'

const api = anyApi as any
const DATABASE_FILE = 'concave_local_backend.sqlite3'
const dirs: string[] = []
const backends: TestBackend[] = []

afterEach(async () => {
  for (const b of backends.splice(0)) await b.stop()
  for (const d of dirs.splice(0)) cleanup(d)
})

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'concave-upgrade-'))
  dirs.push(dir)
  return dir
}

/** A data directory whose SQLite file is at format version `version`, with migration 1's tables. */
function dataDirAtVersion(version: number): { dir: string; file: string } {
  const dir = tempDir()
  const file = join(dir, DATABASE_FILE)
  const db = new Database(file)
  db.exec('CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)')
  db.exec(MIGRATIONS[0]!)
  db.prepare("INSERT INTO meta (key, value) VALUES ('format_version', ?)").run(String(version))
  db.close()
  return { dir, file }
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex')

/** Runs the built backend until it exits (or `timeoutMs`); resolves with its exit code and output. */
async function runToExit(args: string[], timeoutMs = 15_000): Promise<{ code: number | null; output: string }> {
  const port = await freePort()
  const sitePort = await freePort()
  const child = spawn(process.execPath, [join(ROOT, 'dist/backend.js'), '--port', String(port), '--site-proxy-port', String(sitePort), '--interface', '127.0.0.1', '--instance-name', TEST_INSTANCE, '--instance-secret', TEST_SECRET, ...args], {
    env: { ...process.env, DASHBOARD_PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()))
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()))
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)))
  clearTimeout(timer)
  return { code, output }
}

test('a format version 1 data file is migrated at start, then served', async () => {
  const { dir, file } = dataDirAtVersion(1)
  const backend = await startBackend({ dataDir: dir })
  backends.push(backend)
  expect(backend.output()).toContain('Executing migration 2/4')
  expect(backend.output()).toContain('MigrationComplete(4)')
  expect((await fetch(`${backend.url}/health`)).status).toBe(200)
  const { appDir } = await deploy(backend, 'basic')
  dirs.push(appDir)
  const client = new ConvexHttpClient(backend.url)
  await client.mutation(api.messages.send, { author: 'ada', body: 'after the upgrade' })
  expect((await client.query(api.messages.list, {})).map((m: { body: string }) => m.body)).toEqual(['after the upgrade'])
  await backend.stop()
  const db = new Database(file, { readonly: true })
  expect(db.prepare("SELECT value FROM meta WHERE key = 'format_version'").pluck().get()).toBe('4')
  db.close()
  // A second start has nothing to migrate.
  await backend.restart()
  expect(backend.output().match(/Executing migration/g)).toHaveLength(3)
}, 120_000)

/**
 * A data folder as builds before per-component table numbers (format 3) left it: one numbering
 * for every table, the app's and its component's (`shelf`, of the `numbers` fixture), each with
 * a document.
 */
async function dataDirWithGlobalNumbers(): Promise<{ dir: string; note: string; book: string }> {
  const dir = tempDir()
  const file = join(dir, DATABASE_FILE)
  const p = SqlitePersistence.open(file)
  const ids: string[] = []
  let indexId = 1
  let ts = BigInt(Date.now() - 60_000) * 1_000_000n
  for (const [tableNumber, stored, fields] of [[10001, 'notes', { text: 'old note' }], [10002, 'shelf:books', { title: 'old book' }]] as const) {
    await p.createTable(stored, tableNumber)
    const byId = { indexId: indexId++, tableNumber, name: 'by_id', fields: ['_id'] }
    const byCreation = { indexId: indexId++, tableNumber, name: 'by_creation_time', fields: ['_creationTime'] }
    await p.createIndex(byId, [])
    await p.createIndex(byCreation, [])
    const id = encodeId(tableNumber, new Uint8Array(16).fill(tableNumber % 256))
    const creationTime = Date.now() - 60_000
    ts += 1000n
    await p.write([{ ts, documents: [{ id, tableNumber, json: JSON.stringify({ _id: id, _creationTime: creationTime, ...fields }) }], indexes: [{ indexId: byId.indexId, key: encodeIndexKey([id]), id }, { indexId: byCreation.indexId, key: encodeIndexKey([creationTime, id]), id }] }])
    ids.push(id)
  }
  await p.close()
  const db = new Database(file)
  db.exec("ALTER TABLE tables DROP COLUMN id_number; UPDATE meta SET value = '3' WHERE key = 'format_version'")
  db.close()
  return { dir, note: ids[0]!, book: ids[1]! }
}

test('a data folder from before per-component table numbers keeps its ids; new tables are numbered per component', async () => {
  const { dir, note, book } = await dataDirWithGlobalNumbers()
  const backend = await startBackend({ dataDir: dir })
  backends.push(backend)
  expect(backend.output()).toContain('Executing migration 4/4')
  expect(backend.output()).toContain('MigrationComplete(4)')
  dirs.push((await deploy(backend, 'numbers')).appDir)
  const client = new ConvexHttpClient(backend.url)
  const check = async () => {
    // The ids handed out before resolve as they did, each in its own component.
    expect(await client.query(api.app.probe, { id: note })).toMatchObject({ normalized: note, doc: { _id: note, text: 'old note' } })
    expect(await client.query(api.app.probeBook, { id: book })).toMatchObject({ normalized: book, doc: { _id: book, title: 'old book' } })
    expect(await client.query(api.app.probe, { id: book })).toEqual({ normalized: null, doc: null })
    expect(await client.query(api.app.probeBook, { id: note })).toEqual({ normalized: null, doc: null })
  }
  await check()
  // The existing tables keep their numbers; new ones take the component's own numbering.
  expect(decodeId((await client.mutation(api.app.add, { text: 'new note' })) as string)?.tableNumber).toBe(10001)
  expect(decodeId((await client.mutation(api.app.addBook, { title: 'new book' })) as string)?.tableNumber).toBe(10002)
  expect(decodeId((await client.action(api.app.storeText, { text: 'file' })) as string)?.tableNumber).toBe(540)
  expect(decodeId((await client.action(api.app.storeBookText, { text: 'file' })) as string)?.tableNumber).toBe(540)
  await backend.stop()
  await backend.restart()
  expect(backend.output().match(/Executing migration/g)).toHaveLength(1)
  await check()
  expect((await client.query(api.app.notes, {})).map((n: { text: string }) => n.text)).toEqual(['old note', 'new note'])
  expect((await client.query(api.app.books, {})).map((n: { title: string }) => n.title)).toEqual(['old book', 'new book'])
}, 120_000)

test('a data file from a newer version is refused at start and left untouched', async () => {
  const { dir, file } = dataDirAtVersion(999)
  const before = sha256(file)
  const { code, output } = await runToExit(['--local-storage', dir])
  expect(code).not.toBe(0)
  expect(output).toContain('The data file has format version 999, newer than this build supports (4). Upgrade Concave to open it.')
  expect(sha256(file)).toBe(before)
})

test('a file that is not a SQLite database is refused at start and left untouched', async () => {
  for (const bytes of [Buffer.from('this is not a database, just some text that happens to be here\n'.repeat(100)), readFileSync(dataDirAtVersion(2).file).subarray(0, 60)]) {
    const dir = tempDir()
    const file = join(dir, DATABASE_FILE)
    writeFileSync(file, bytes)
    const { code, output } = await runToExit(['--local-storage', dir])
    expect(code).not.toBe(0)
    expect(output).toContain(`${file} is not a Concave data file (SQLite database)`)
    expect(readFileSync(file).equals(bytes)).toBe(true)
  }
})

test('an unknown flag exits non-zero with yargs’ message', async () => {
  const { code, output } = await runToExit(['--local-storage', tempDir(), '--bogus-flag', '1'])
  expect(code).not.toBe(0)
  expect(output).toContain('Unknown arguments: bogus-flag')
})

test('--log-format json writes one JSON object per line; pretty writes none', async () => {
  const json = await startBackend({ args: ['--log-format', 'json'] })
  backends.push(json)
  dirs.push(json.dataDir)
  await fetch(`${json.url}/health`)
  await json.stop()
  const jsonLines = json.output().split('\n').filter((l) => l !== '')
  expect(jsonLines.length).toBeGreaterThanOrEqual(2)
  for (const line of jsonLines) {
    const entry = JSON.parse(line) as Record<string, unknown>
    expect(Object.keys(entry).slice(0, 3)).toEqual(['level', 'time', 'message'])
    expect(['debug', 'info', 'warn', 'error']).toContain(entry.level)
    expect(new Date(entry.time as string).toISOString()).toBe(entry.time)
  }
  expect(jsonLines.map((l) => JSON.parse(l).message)).toEqual(expect.arrayContaining(['Concave backend started', 'Concave backend stopped']))

  const pretty = await startBackend({ args: ['--log-format', 'pretty'] })
  backends.push(pretty)
  dirs.push(pretty.dataDir)
  await pretty.stop()
  const prettyLines = pretty.output().split('\n').filter((l) => l !== '')
  expect(prettyLines.length).toBeGreaterThanOrEqual(2)
  for (const line of prettyLines) {
    expect(line).not.toMatch(/^\s*[{[]/)
    expect(line).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INFO |WARN |ERROR|DEBUG) \S/)
  }
  expect(prettyLines.some((l) => l.includes('INFO  Concave backend started'))).toBe(true)
}, 60_000)
