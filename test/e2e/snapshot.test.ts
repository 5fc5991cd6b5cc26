/**
 * `npx convex export` / `npx convex import` against Concave, with the real CLI: a snapshot of one
 * instance imported into a fresh one keeps every document exactly; replace, append and
 * require-empty modes; bad input fails cleanly and changes nothing; an export is one snapshot
 * while writes continue.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { convexToJson } from 'convex/values'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { strToU8, unzipSync, zipSync } from 'fflate'
import { cleanup, convexCli, deploy, startBackend, until } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'

const api = anyApi as any
const TABLES = ['kinds', 'notes', 'counters', 'ticks']

let a: TestBackend
let b: TestBackend
let appDir: string
let work: string
let clientA: ConvexHttpClient
let clientB: ConvexHttpClient

const cli = (backend: TestBackend, args: string[]) => convexCli(appDir, args, { CONVEX_SELF_HOSTED_URL: backend.url, CONVEX_SELF_HOSTED_ADMIN_KEY: backend.adminKey })

/** Fails with the CLI's output (it exits non-zero). */
async function cliFails(backend: TestBackend, args: string[]): Promise<string> {
  try {
    await cli(backend, args)
  } catch (e) {
    const err = e as { stdout: string; stderr: string }
    return `${err.stdout}\n${err.stderr}`
  }
  throw new Error(`convex ${args.join(' ')} succeeded`)
}

/** Every document of every table as Convex-encoded JSON text (ids, creation times, exact values). */
async function dump(client: ConvexHttpClient, tables = TABLES): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {}
  for (const t of tables) out[t] = ((await client.query(api.data.all, { table: t })) as unknown[]).map((d) => JSON.stringify(convexToJson(d as never)))
  out._storage = ((await client.query(api.data.files, {})) as unknown[]).map((d) => JSON.stringify(convexToJson(d as never)))
  return out
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'concave-snapshot-'))
  ;[a, b] = await Promise.all([startBackend(), startBackend()])
  appDir = (await deploy(a, 'snapshot')).appDir
  await cli(b, ['deploy', '-y'])
  clientA = new ConvexHttpClient(a.url)
  clientB = new ConvexHttpClient(b.url)
  const kind = await clientA.mutation(api.data.insert, {
    table: 'kinds',
    doc: { big: 1234567890123456789n, neg: -5n, bytes: new Uint8Array([0, 1, 2, 254, 255]).buffer, nan: NaN, inf: -Infinity, negZero: -0, f: 1.5, whole: 3, s: '42', nested: { list: [1n, 'x', null, true, { deep: new Uint8Array([9]).buffer }] } },
  })
  await clientA.mutation(api.data.insert, { table: 'kinds', doc: { big: 0n, empty: {} } })
  await clientA.mutation(api.data.insert, { table: 'notes', doc: { kind: kind, text: 'refers to a kind' } })
  for (let i = 0; i < 5; i++) await clientA.mutation(api.data.insert, { table: 'counters', doc: { i, value: 0 } })
  const url = (await clientA.mutation(api.data.uploadUrl, {})) as string
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello, snapshot' })
  const { storageId } = (await res.json()) as { storageId: string }
  await clientA.mutation(api.data.insert, { table: 'notes', doc: { file: storageId, text: 'has a file' } })
}, 120_000)

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()])
  cleanup(appDir)
  cleanup(work)
})

describe('export', () => {
  test('a snapshot zip in Convex format, with file storage', async () => {
    const path = join(work, 'first.zip')
    const { stderr } = await cli(a, ['export', '--path', path, '--include-file-storage'])
    expect(stderr).toMatch(/Created snapshot export at timestamp \d+/)
    const entries = unzipSync(readFileSync(path))
    const text = (name: string) => Buffer.from(entries[name]!).toString('utf8')
    expect(Object.keys(entries)).toEqual(expect.arrayContaining(['README.md', '_tables/documents.jsonl', 'kinds/documents.jsonl', 'kinds/generated_schema.jsonl', '_storage/documents.jsonl']))
    expect(text('kinds/generated_schema.jsonl')).toBe('"uniform"\n')
    expect(text('_tables/documents.jsonl').trim().split('\n').map((l) => JSON.parse(l).name)).toEqual(expect.arrayContaining(['kinds', 'notes', 'counters']))
    const first = text('kinds/documents.jsonl').split('\n')[0]!
    // int64 as a bare integer, floats with a dot, NaN/Infinity and bytes tagged, sorted keys.
    expect(first).toContain('"big":1234567890123456789,')
    expect(first).toContain('"bytes":{"$bytes":"AAEC/v8="}')
    expect(first).toContain('"f":1.5')
    expect(first).toContain('"whole":3.0')
    expect(first).toContain('"negZero":-0.0')
    expect(first).toMatch(/"nan":\{"\$float":"[^"]+"\}/)
    expect(first.indexOf('"_creationTime"')).toBeLessThan(first.indexOf('"_id"'))
    const storageIds = text('_storage/documents.jsonl').trim().split('\n').map((l) => JSON.parse(l)._id as string)
    expect(storageIds).toHaveLength(1)
    const file = Object.keys(entries).find((n) => n.startsWith(`_storage/${storageIds[0]}`))!
    expect(Buffer.from(entries[file]!).toString()).toBe('hello, snapshot')
  }, 60_000)

  test('is one snapshot while writes continue', async () => {
    let stop = false
    let bumps = 0
    const writer = (async () => {
      while (!stop) {
        await clientA.mutation(api.data.bump, {})
        bumps++
      }
    })()
    await new Promise((r) => setTimeout(r, 200))
    const path = join(work, 'busy.zip')
    await cli(a, ['export', '--path', path])
    stop = true
    await writer
    expect(bumps).toBeGreaterThan(5)
    const entries = unzipSync(readFileSync(path))
    const lines = (t: string) => Buffer.from(entries[`${t}/documents.jsonl`] ?? new Uint8Array()).toString().trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l))
    const values = lines('counters').map((c) => c.value as number)
    // Every bump changes all five counters and adds one tick in one transaction: a consistent
    // snapshot has five equal counters and exactly that many ticks.
    expect(values).toHaveLength(5)
    expect(new Set(values).size).toBe(1)
    expect(lines('ticks')).toHaveLength(values[0]!)
    expect(values[0]!).toBeGreaterThan(0)
  }, 60_000)
})

describe('import', () => {
  let snapshot: Record<string, string[]>
  const zip = () => join(work, 'full.zip')

  beforeAll(async () => {
    await cli(a, ['export', '--path', zip(), '--include-file-storage'])
    snapshot = await dump(clientA)
  }, 60_000)

  test('a snapshot into a fresh instance keeps every document exactly', async () => {
    const { stderr } = await cli(b, ['import', zip(), '-y'])
    expect(stderr).toMatch(/Added \d+ documents/)
    expect(await dump(clientB)).toEqual(snapshot)
    const files = (await clientB.query(api.data.files, {})) as { _id: string }[]
    const served = await fetch(`${b.url}/api/storage/${files[0]!._id}`)
    expect(await served.text()).toBe('hello, snapshot')
  }, 60_000)

  test('into a non-empty table without a mode fails and changes nothing', async () => {
    const before = await dump(clientB)
    const out = await cliFails(b, ['import', zip(), '-y'])
    expect(out).toMatch(/Table \w+ already exists/)
    expect(await dump(clientB)).toEqual(before)
    // --append of the same snapshot fails on its first existing id, after its files were written:
    // the file already stored under the zip's file id stays in place.
    const appended = await cliFails(b, ['import', '--append', zip(), '-y'])
    expect(appended).toMatch(/already exists/)
    expect(await dump(clientB)).toEqual(before)
    const files = (await clientB.query(api.data.files, {})) as { _id: string }[]
    expect(await (await fetch(`${b.url}/api/storage/${files[0]!._id}`)).text()).toBe('hello, snapshot')
  }, 60_000)

  test('--replace-all over existing data', async () => {
    await clientB.mutation(api.data.insert, { table: 'notes', doc: { text: 'extra' } })
    await clientB.mutation(api.data.insert, { table: 'other', doc: { gone: true } })
    await cli(b, ['import', '--replace-all', zip(), '-y'])
    expect(await dump(clientB)).toEqual(snapshot)
    expect(await clientB.query(api.data.all, { table: 'other' })).toEqual([])
  }, 60_000)

  test('--table t file.jsonl --append', async () => {
    const file = join(work, 'extra.jsonl')
    writeFileSync(file, '{"text":"one","n":1}\n{"text":"two","big":{"$integer":"BwAAAAAAAAA="}}\n')
    const before = await dump(clientB)
    await cli(b, ['import', '--table', 'notes', '--append', file, '-y'])
    const notes = (await clientB.query(api.data.all, { table: 'notes' })) as Record<string, unknown>[]
    expect(notes).toHaveLength(before.notes!.length + 2)
    expect(notes.slice(-2).map((n) => [n.text, n.n, n.big])).toEqual([['one', 1, undefined], ['two', undefined, 7n]])
    expect(notes.slice(0, -2).map((d) => JSON.stringify(convexToJson(d as never)))).toEqual(before.notes)
  }, 60_000)

  test('bad input fails with a clear error and leaves the data alone', async () => {
    const before = await dump(clientB)
    const corrupt = join(work, 'corrupt.zip')
    writeFileSync(corrupt, Buffer.concat([readFileSync(zip()).subarray(0, 200), Buffer.from('garbage')]))
    expect(await cliFails(b, ['import', '--replace-all', corrupt, '-y'])).toMatch(/invalid zip/i)
    const badTable = join(work, 'bad-table.zip')
    writeFileSync(badTable, zipSync({ 'bad-name/documents.jsonl': strToU8('{"a":1}\n') }))
    expect(await cliFails(b, ['import', '--replace-all', badTable, '-y'])).toMatch(/table name "bad-name" invalid/)
    const badLine = join(work, 'bad.jsonl')
    writeFileSync(badLine, '{"text":"fine"}\n{"text": oops}\n')
    expect(await cliFails(b, ['import', '--table', 'notes', '--replace', badLine, '-y'])).toMatch(/Row 2 wasn't valid JSON: /)
    expect(await dump(clientB)).toEqual(before)
  }, 60_000)

  test("a zip whose stored file's bytes are damaged fails when the file is read; the data and the stored file stay as they were", async () => {
    const before = await dump(clientB)
    const files = (await clientB.query(api.data.files, {})) as { _id: string }[]
    const entries = unzipSync(readFileSync(zip()))
    const fileName = Object.keys(entries).find((n) => /^_storage\/[^/]+$/.test(n) && !n.endsWith('.jsonl'))!
    const { [fileName]: bytes, ...rest } = entries
    // The file first and deflated, so that its compressed bytes sit right after its local header.
    const damaged = Buffer.from(zipSync({ [fileName]: [bytes!, { level: 6 }], ...rest }))
    const dataAt = 30 + Buffer.byteLength(fileName)
    damaged.fill(0, dataAt, dataAt + 4)
    const path = join(work, 'damaged-file.zip')
    writeFileSync(path, damaged)
    // (It fails after the summary was confirmed: the file is read as the import is written.)
    expect(await cliFails(b, ['import', '--replace-all', path, '-y'])).toMatch(/Import change summary:[\s\S]*InvalidZip: invalid zip file: invalid stored block lengths/)
    expect(await dump(clientB)).toEqual(before)
    expect(await (await fetch(`${b.url}/api/storage/${files[0]!._id}`)).text()).toBe('hello, snapshot')
  }, 60_000)

  test("CSV is read as Convex reads it: numbers where Rust parses a float (null if not finite), strings otherwise, quotes and blank lines; a short row fails with its line", async () => {
    const file = join(work, 'rows.csv')
    writeFileSync(file, ' name ,value,note\r\nplain,1,\r\n\r\n"quoted, with ""quotes""",-2.5,x\r\nexp,1e3,.5\r\nsigned,+7,1.\r\nspaced, 12 ,0x10\r\nodd,inf,NaN\r\nbig,1e999,-Infinity\r\nmid"quote,ab"c,\r\n')
    await cli(b, ['import', '--table', 'csvrows', file, '-y'])
    const rows = ((await clientB.query(api.data.all, { table: 'csvrows' })) as Record<string, unknown>[]).map(({ name, value, note }) => ({ name, value, note }))
    expect(rows).toEqual([
      { name: 'plain', value: 1, note: '' },
      { name: 'quoted, with "quotes"', value: -2.5, note: 'x' },
      { name: 'exp', value: 1000, note: 0.5 },
      { name: 'signed', value: 7, note: 1 },
      { name: 'spaced', value: ' 12 ', note: '0x10' },
      { name: 'odd', value: null, note: null },
      { name: 'big', value: null, note: null },
      { name: 'mid"quote', value: 'ab"c', note: '' },
    ])
    const short = join(work, 'short.csv')
    writeFileSync(short, 'a,b\n1,2\n\n"multi\nline"\n')
    expect(await cliFails(b, ['import', '--table', 'csvshort', short, '-y'])).toMatch(/CSV row 4 doesn't have all of the fields in the header/)
    expect(await clientB.query(api.data.all, { table: 'csvshort' })).toEqual([])
  }, 60_000)

  test('a JSON array is imported whole up to 16 MiB; past that it is refused as Convex refuses it', async () => {
    const file = join(work, 'rows.json')
    writeFileSync(file, JSON.stringify([{ n: 1 }, { n: 2, big: { $integer: 'BwAAAAAAAAA=' } }]))
    await cli(b, ['import', '--table', 'jsonrows', '--format', 'jsonArray', file, '-y'])
    expect(((await clientB.query(api.data.all, { table: 'jsonrows' })) as Record<string, unknown>[]).map(({ n, big }) => [n, big])).toEqual([[1, undefined], [2, 7n]])
    // (The CLI strips a byte-order mark before it uploads: one uploaded through the API is refused, as Convex's.)
    const post = async (path: string, body: string | Buffer, type = 'application/json') =>
      (await fetch(`${b.url}${path}`, { method: 'POST', headers: { authorization: `Convex ${b.adminKey}`, 'content-type': type }, body })).json() as Promise<any>
    const { uploadToken } = await post('/api/import/start_upload', '{}')
    const part = await post(`/api/import/upload_part?uploadToken=${uploadToken}&partNumber=1`, Buffer.from('\ufeff[{"n":1}]'), 'application/octet-stream')
    const { importId } = await post('/api/import/finish_upload', JSON.stringify({ uploadToken, partTokens: [part], import: { format: 'jsonArray', mode: 'append', tableName: 'jsonbom' } }))
    const admin = new ConvexHttpClient(b.url)
    ;(admin as any).setAdminAuth(b.adminKey)
    const state = await until(async () => ((await admin.query('_system/cli/queryImport' as any, { importId })) as any).state, (st) => st.state !== 'uploaded')
    expect(state).toEqual({ state: 'failed', error_message: 'UTF-8 BOM is not supported. Please save your file without BOM.' })
    const large = join(work, 'large.json')
    writeFileSync(large, JSON.stringify(Array.from({ length: 1 << 14 }, (_, i) => ({ i, pad: 'x'.repeat(1024) }))))
    expect(await cliFails(b, ['import', '--table', 'jsonlarge', '--format', 'jsonArray', large, '-y'])).toMatch(/Import is too large for JSON \(16777217 bytes > maximum 16 MiB\)\. Consider converting data to JSONLines/)
  }, 60_000)

  test("a zip entry read only in part (a long generated_schema.jsonl) is let go: the upload's file isn't held open after the import", async () => {
    const path = join(work, 'long-schema.zip')
    // (Random, so that the entry's compressed bytes are long too: more than one read of the file.)
    const lines = Array.from({ length: 100_000 }, () => `{"padding":"${randomBytes(24).toString('hex')}"}\n`)
    writeFileSync(path, zipSync({ 'fdnotes/generated_schema.jsonl': strToU8(`"uniform"\n${lines.join('')}`), 'fdnotes/documents.jsonl': strToU8('{"text":"kept"}\n') }))
    await cli(b, ['import', '--append', path, '-y'])
    expect(((await clientB.query(api.data.all, { table: 'fdnotes' })) as { text: string }[]).map((d) => d.text)).toEqual(['kept'])
    const fd = `/proc/${b.process.pid}/fd`
    const heldUploads = () => readdirSync(fd).map((n) => { try { return readlinkSync(join(fd, n)) } catch { return '' } }).filter((target) => target.includes(`${join(b.dataDir, 'imports')}/`))
    // (A file is closed a moment after the import completes; one held stays held.)
    expect(await until(heldUploads, (held) => held.length === 0, 5000)).toEqual([])
  }, 60_000)
})

describe('interrupted imports', () => {
  test('an import cut off by kill -9 is marked failed at the next start and its upload deleted', async () => {
    const post = async (path: string, body: string, type = 'application/json') => {
      const res = await fetch(`${b.url}${path}`, { method: 'POST', headers: { authorization: `Convex ${b.adminKey}`, 'content-type': type }, body })
      expect(res.status).toBe(200)
      return res.json() as Promise<any>
    }
    const { uploadToken } = await post('/api/import/start_upload', '{}')
    const part = await post(`/api/import/upload_part?uploadToken=${uploadToken}&partNumber=1`, '{"text":"never lands"}\n', 'application/octet-stream')
    const { importId } = await post('/api/import/finish_upload', JSON.stringify({ uploadToken, partTokens: [part], import: { format: 'jsonLines', mode: 'append', tableName: 'notes' } }))
    // A second upload, started and never finished.
    await post('/api/import/start_upload', '{}')
    const admin = new ConvexHttpClient(b.url)
    ;(admin as any).setAdminAuth(b.adminKey)
    const deadline = Date.now() + 10_000
    while (((await admin.query('_system/cli/queryImport' as any, { importId })) as any).state.state !== 'waiting_for_confirmation' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    expect(readdirSync(join(b.dataDir, 'imports')).length).toBe(2)
    await b.stop('SIGKILL')
    await b.restart()
    const after = new ConvexHttpClient(b.url)
    ;(after as any).setAdminAuth(b.adminKey)
    expect(((await after.query('_system/cli/queryImport' as any, { importId })) as any).state).toEqual({ state: 'failed', error_message: 'The import was interrupted because the backend restarted. Run it again.' })
    expect(readdirSync(join(b.dataDir, 'imports'))).toEqual([])
  }, 60_000)
})
