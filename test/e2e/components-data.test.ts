/**
 * Components outside function calls, with the real CLI and clients against the `components`
 * fixture (the app mounts `counter` twice, as `counter` and `counter2`; each mounts `audit`):
 * `npx convex data --component`, `_system/frontend/components:list`, the sync socket's
 * `componentPath`, the log stream's `componentPath`, and snapshot export/import of component
 * tables in Convex's `_components/<name>/` layout.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, test } from 'vitest'
import WebSocket from 'ws'
import { ConvexHttpClient } from 'convex/browser'
import { BaseConvexClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { strToU8, unzipSync, zipSync } from 'fflate'
import { ROOT, cleanup, convexCli, until, useDeployedBackend } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'
import { componentId } from '../../src/functions/components.ts'

let backend: TestBackend
let appDir: string
let client: ConvexHttpClient
let work: string

useDeployedBackend('components', (t) => ({ backend, client, appDir } = t))

const cli = (args: string[]) => convexCli(appDir, args, { CONVEX_SELF_HOSTED_URL: backend.url, CONVEX_SELF_HOSTED_ADMIN_KEY: backend.adminKey })

async function cliFails(args: string[]): Promise<string> {
  try {
    await cli(args)
  } catch (e) {
    const err = e as { stdout: string; stderr: string }
    return `${err.stdout}\n${err.stderr}`
  }
  throw new Error(`convex ${args.join(' ')} succeeded`)
}

function admin(): ConvexHttpClient {
  const c = new ConvexHttpClient(backend.url)
  ;(c as any).setAdminAuth(backend.adminKey)
  return c
}

/** A component's function, called by an admin (`/api/function` with `componentPath`). */
const inComponent = (component: string, fn: string, args: Record<string, unknown>): Promise<any> => (admin() as any).function(fn, component, args)

/** `npx convex data <table> --component X` rows, oldest first, without `_id`/`_creationTime`. */
async function rows(table: string, component?: string): Promise<Record<string, unknown>[]> {
  const { stdout } = await cli(['data', table, '--order', 'asc', '--format', 'jsonl', ...(component === undefined ? [] : ['--component', component])])
  return stdout
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const { _id, _creationTime, ...rest } = JSON.parse(l) as Record<string, unknown>
      return rest
    })
}


beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'concave-components-data-'))
  // Each counter's cron runs once at the push: wait for it, so the tables hold what we expect.
  for (const c of ['counter', 'counter2']) expect(await until(() => inComponent(c, 'counters:get', { name: 'cron' }), (v) => v === 1)).toBe(1)
  expect(await client.mutation('app:add' as any, { name: 'a', by: 2 })).toBe(2)
  expect(await client.mutation('app:addToSecond' as any, { name: 'b', by: 7 })).toBe(7)
}, 60_000)

afterAll(() => cleanup(work))

test('npx convex data lists and shows one component’s tables; the root sees only the app’s', async () => {
  const tables = async (component?: string) => (await cli(['data', ...(component === undefined ? [] : ['--component', component])])).stdout.trim().split('\n')
  expect(await tables()).toEqual(['counters', 'log'])
  expect(await tables('counter')).toEqual(['counters'])
  expect(await tables('counter/audit')).toEqual(['entries'])
  expect(await rows('counters')).toEqual([{ name: 'a', value: -1 }])
  expect(await rows('counters', 'counter')).toEqual([
    { name: 'cron', value: 1 },
    { name: 'a', value: 2 },
  ])
  expect(await rows('counters', 'counter2')).toEqual([
    { name: 'cron', value: 1 },
    { name: 'b', value: 7 },
  ])
  expect(await rows('entries', 'counter/audit')).toEqual([{ what: 'a+2' }])
  expect(await rows('entries', 'counter2/audit')).toEqual([{ what: 'b+7' }])
}, 60_000)

test('_system/frontend/components:list names every component with its id and state', async () => {
  const entry = (path: string, name: string | null, httpPrefix: string | null = null) => ({ id: componentId(path), name, path, args: {}, state: 'active', httpPrefix })
  expect(await admin().query('_system/frontend/components:list' as any, {})).toEqual([
    entry('', null),
    entry('counter', 'counter'),
    entry('counter/audit', 'audit'),
    entry('counter2', 'counter2', '/c2/'),
    entry('counter2/audit', 'audit'),
  ])
  // Admin only, like every system function.
  await expect(client.query('_system/frontend/components:list' as any, {})).rejects.toThrow(/Could not find public function for '_system\/frontend\/components:list'/)
})

test('over the sync socket an admin subscribes to, mutates and acts in a component by its path', async () => {
  const updates: string[] = []
  // Its @internal methods (the CLI's): componentPath on subscribe, mutationInternal, actionInternal.
  const sync: any = new BaseConvexClient(backend.url, (tokens) => updates.push(...tokens), { unsavedChangesWarning: false } as any)
  try {
    sync.setAdminAuth(backend.adminKey)
    const first = sync.subscribe('counters:get', { name: 'a' }, { componentPath: 'counter' })
    // (The client keys its queries by path and args only: the second one asks for another name.)
    const second = sync.subscribe('counters:get', { name: 'b' }, { componentPath: 'counter2' })
    const value = (token: string) => sync.localQueryResultByToken(token)
    expect(await until(async () => value(first.queryToken), (v) => v !== undefined)).toBe(2)
    expect(await until(async () => value(second.queryToken), (v) => v !== undefined)).toBe(7)
    expect(await sync.mutationInternal('counters:add', { name: 'a', by: 5 }, undefined, 'counter')).toMatchObject({ success: true, value: 7 })
    // The subscription follows the component's table.
    expect(await until(async () => value(first.queryToken), (v) => v === 7)).toBe(7)
    expect(await sync.actionInternal('counters:actionAdd', { name: 'a', by: 1 }, 'counter')).toMatchObject({ success: true, value: 8 })
    expect(await until(async () => value(first.queryToken), (v) => v === 8)).toBe(8)
    expect(value(second.queryToken)).toBe(7)
    // An unknown component: the call fails, the socket stays.
    expect(await sync.mutationInternal('counters:add', { name: 'a', by: 1 }, undefined, 'nowhere')).toMatchObject({ success: false, errorMessage: expect.stringMatching(/Component path not found/) })
  } finally {
    await sync.close()
  }
  // Put back what the other tests expect.
  expect(await inComponent('counter', 'counters:add', { name: 'a', by: -6 })).toBe(2)
}, 30_000)

test('npx convex run --watch --component follows a component’s query over the socket', async () => {
  const child = spawn(process.execPath, [join(ROOT, 'node_modules/convex/bin/main.js'), 'run', '--watch', '--component', 'counter2', 'counters:get', '{"name": "b"}'], {
    cwd: appDir,
    env: { ...process.env, CI: '1', CONVEX_DEPLOYMENT: '', CONVEX_DEPLOY_KEY: '', CONVEX_SELF_HOSTED_URL: backend.url, CONVEX_SELF_HOSTED_ADMIN_KEY: backend.adminKey },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()))
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()))
  const values = () => out.split('\n').map((l) => l.trim()).filter((l) => /^-?\d+$/.test(l))
  try {
    expect(await until(async () => values(), (v) => v.length > 0)).toEqual(['7'])
    expect(await inComponent('counter2', 'counters:add', { name: 'b', by: 1 })).toBe(8)
    expect(await until(async () => values(), (v) => v.length > 1)).toEqual(['7', '8'])
  } finally {
    child.kill('SIGKILL')
    await exited
  }
  expect(await inComponent('counter2', 'counters:add', { name: 'b', by: -1 })).toBe(7)
}, 60_000)

/** A raw protocol socket (no auth: an anonymous client). */
async function rawSocket() {
  const ws = new WebSocket(`${backend.url.replace('http', 'ws')}/api/1.48.0/sync`)
  const frames: any[] = []
  ws.on('message', (d) => frames.push(JSON.parse(d.toString())))
  await new Promise((r) => ws.once('open', r))
  const closed = new Promise<{ code: number; reason: string }>((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })))
  ws.send(JSON.stringify({ type: 'Connect', sessionId: crypto.randomUUID(), connectionCount: 0, lastCloseReason: 'InitialConnect' }))
  return { ws, frames, closed, send: (m: unknown) => ws.send(JSON.stringify(m)) }
}

test('anyone but an admin naming a component over the sync socket fails the session (as Convex)', async () => {
  // Convex's internal error (an `ensure!` in its sync worker): nothing said but that.
  const refusal = { code: 1011, reason: 'InternalServerError' }
  const query = await rawSocket()
  query.send({ type: 'ModifyQuerySet', baseVersion: 0, newVersion: 1, modifications: [{ type: 'Add', queryId: 0, udfPath: 'counters:get', args: [{ name: 'a' }], componentPath: 'counter' }] })
  expect(await query.closed).toEqual(refusal)
  const mutation = await rawSocket()
  mutation.send({ type: 'Mutation', requestId: 0, udfPath: 'counters:add', args: [{ name: 'a', by: 1 }], componentPath: 'counter' })
  expect(await mutation.closed).toEqual(refusal)
  const action = await rawSocket()
  action.send({ type: 'Action', requestId: 0, udfPath: 'counters:actionAdd', args: [{ name: 'a', by: 1 }], componentPath: 'counter' })
  expect(await action.closed).toEqual(refusal)
  // Nothing ran.
  expect(await inComponent('counter', 'counters:get', { name: 'a' })).toBe(2)
  // The root's path ('') is anyone's.
  const root = await rawSocket()
  root.send({ type: 'ModifyQuerySet', baseVersion: 0, newVersion: 1, modifications: [{ type: 'Add', queryId: 0, udfPath: 'app:get', args: [{ name: 'a' }], componentPath: '' }] })
  expect(await until(async () => root.frames.find((f) => f.type === 'Transition'), (f) => f !== undefined)).toMatchObject({
    modifications: [{ type: 'QueryUpdated', queryId: 0, value: { first: 2, second: 0, appRows: 1 } }],
  })
  root.ws.close()
})

test('log stream entries name the component of the function (null for the app) and its stripped path', async () => {
  const auth = { authorization: `Convex ${backend.adminKey}` }
  const { newCursor } = (await (await fetch(`${backend.url}/api/stream_function_logs?cursor=0`, { headers: auth })).json()) as { newCursor: number }
  expect(await inComponent('counter2', 'counters:count', {})).toBe(2)
  expect(await client.query('app:logEntries' as any, {})).toEqual([])
  const { entries } = (await (await fetch(`${backend.url}/api/stream_function_logs?cursor=${newCursor}`, { headers: auth })).json()) as { entries: { udfType: string; identifier: string; componentPath: string | null }[] }
  expect(entries.map((e) => [e.udfType, e.identifier, e.componentPath])).toEqual([
    ['Query', 'counters:count', 'counter2'],
    ['Query', 'app:logEntries', null],
  ])
})

test('an export puts each component’s tables under _components/<name>/; an import puts them back', async () => {
  const zip = join(work, 'snapshot.zip')
  await cli(['export', '--path', zip])
  const files = unzipSync(readFileSync(zip))
  const jsonl = (name: string) =>
    Buffer.from(files[name]!)
      .toString('utf8')
      .trim()
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
  const table = (dir: string) => [`${dir}/documents.jsonl`, `${dir}/generated_schema.jsonl`]
  expect(Object.keys(files).sort()).toEqual(
    [
      'README.md',
      '_tables/documents.jsonl',
      ...table('counters'),
      ...table('log'),
      '_components/counter/_tables/documents.jsonl',
      ...table('_components/counter/counters'),
      '_components/counter/_components/audit/_tables/documents.jsonl',
      ...table('_components/counter/_components/audit/entries'),
      '_components/counter2/_tables/documents.jsonl',
      ...table('_components/counter2/counters'),
      '_components/counter2/_components/audit/_tables/documents.jsonl',
      ...table('_components/counter2/_components/audit/entries'),
    ].sort(),
  )
  expect(jsonl('_tables/documents.jsonl').map((t) => t.name)).toEqual(['counters', 'log'])
  expect(jsonl('_components/counter/_tables/documents.jsonl').map((t) => t.name)).toEqual(['counters'])
  expect(jsonl('_components/counter2/_components/audit/_tables/documents.jsonl').map((t) => t.name)).toEqual(['entries'])
  const named = (rows: Record<string, unknown>[]) => rows.map((r) => `${String(r.name)}=${String(r.value)}`).sort()
  expect(named(jsonl('counters/documents.jsonl'))).toEqual(['a=-1'])
  expect(named(jsonl('_components/counter/counters/documents.jsonl'))).toEqual(['a=2', 'cron=1'])
  expect(named(jsonl('_components/counter2/counters/documents.jsonl'))).toEqual(['b=7', 'cron=1'])
  // (The socket tests' calls went through the audits too.)
  const audited = ['a+2', 'a+5', 'a+1', 'a+-6']
  const audited2 = ['b+7', 'b+1', 'b+-1']
  expect(jsonl('_components/counter2/_components/audit/entries/documents.jsonl').map((r) => r.what)).toEqual(audited2)
  expect(jsonl('_components/counter/_components/audit/entries/documents.jsonl').map((r) => r.what)).toEqual(audited)

  // Change every namespace, then import the snapshot over it: each table is back as exported.
  expect(await client.mutation('app:add' as any, { name: 'a', by: 100 })).toBe(102)
  expect(await client.mutation('app:addToSecond' as any, { name: 'b', by: 100 })).toBe(107)
  const { stdout, stderr } = await cli(['import', '--replace', '-y', zip])
  expect(stdout + stderr).toMatch(/Added 12 documents/)
  expect(await client.query('app:get' as any, { name: 'a' })).toEqual({ first: 2, second: 0, appRows: 1 })
  expect(await inComponent('counter2', 'counters:get', { name: 'b' })).toBe(7)
  expect(await inComponent('counter/audit', 'entries:list', {})).toEqual(audited)
  expect(await inComponent('counter2/audit', 'entries:list', {})).toEqual(audited2)
}, 120_000)

test('npx convex import --component writes into that component’s table', async () => {
  const file = join(work, 'rows.jsonl')
  writeFileSync(file, '{"name": "imported", "value": 42}\n')
  await cli(['import', '--component', 'counter2', '--table', 'counters', '--append', '-y', file])
  expect(await inComponent('counter2', 'counters:get', { name: 'imported' })).toBe(42)
  expect(await inComponent('counter', 'counters:get', { name: 'imported' })).toBe(0)
  expect(await rows('counters')).toEqual([{ name: 'a', value: -1 }])
  // A zip's `_components/<name>/` folders are relative to --component.
  const nested = join(work, 'nested.zip')
  writeFileSync(nested, zipSync({ '_components/audit/entries/documents.jsonl': strToU8('{"what": "from a zip"}\n') }))
  await cli(['import', '--component', 'counter2', '--append', '-y', nested])
  expect(await inComponent('counter2/audit', 'entries:list', {})).toEqual(['b+7', 'b+1', 'b+-1', 'from a zip'])
  expect(await inComponent('counter/audit', 'entries:list', {})).toEqual(['a+2', 'a+5', 'a+1', 'a+-6'])
}, 60_000)

test('a snapshot with an invalid component name is refused with Convex’s message', async () => {
  const bad = join(work, 'bad.zip')
  writeFileSync(bad, zipSync({ '_components/bad-name/entries/documents.jsonl': strToU8('{"what": "x"}\n') }))
  expect(await cliFails(['import', '--append', '-y', bad])).toContain(
    "component name 'bad-name' invalid: Identifier bad-name has invalid character '-': Identifiers can only contain alphanumeric characters or underscores",
  )
}, 60_000)

test('an unmounted component is listed as such, and its data can still be looked at', async () => {
  const config = join(appDir, 'convex/convex.config.ts')
  writeFileSync(
    config,
    readFileSync(config, 'utf8')
      .split('\n')
      .filter((l) => !l.includes('counter2'))
      .join('\n'),
  )
  await cli(['deploy', '-y', '--typecheck', 'disable'])
  const entry = (path: string, name: string | null, state: string) => ({ id: componentId(path), name, path, args: {}, state, httpPrefix: null })
  const list = (await admin().query('_system/frontend/components:list' as any, {})) as { path: string }[]
  expect([...list].sort((a, b) => (a.path < b.path ? -1 : 1))).toEqual([
    entry('', null, 'active'),
    entry('counter', 'counter', 'active'),
    entry('counter/audit', 'audit', 'active'),
    entry('counter2', 'counter2', 'unmounted'),
    entry('counter2/audit', 'audit', 'unmounted'),
  ])
  expect((await cli(['data', '--component', 'counter2'])).stdout.trim().split('\n')).toEqual(['counters'])
  expect((await rows('counters', 'counter2')).map((r) => r.name)).toEqual(['cron', 'b', 'imported'])
}, 120_000)

test('a component’s file storage is exported under its prefix and imported back into it', async () => {
  const id = (await inComponent('counter', 'counters:storeText', { text: 'hello' })) as string
  const zip = join(work, 'with-files.zip')
  await cli(['export', '--path', zip, '--include-file-storage'])
  const files = unzipSync(readFileSync(zip))
  const meta = Buffer.from(files['_components/counter/_storage/documents.jsonl']!).toString('utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
  expect(meta.map((m) => [m._id, m.size, m.contentType])).toEqual([[id, 5, 'text/plain']])
  expect(Buffer.from(files[`_components/counter/_storage/${id}.txt`]!).toString('utf8')).toBe('hello')
  // The app has stored no file: it has no `_storage` folder.
  expect(Object.keys(files).filter((f) => f.startsWith('_storage/'))).toEqual([])
  // Import the snapshot over it: the component's file is still there, with its id.
  await cli(['import', '--replace', '-y', zip])
  expect(await inComponent('counter', 'counters:fileInfo', { id })).toMatchObject({ size: 5, files: 1 })
  const url = ((await inComponent('counter', 'counters:fileInfo', { id })) as { url: string }).url
  expect(await (await fetch(url)).text()).toBe('hello')
}, 120_000)
