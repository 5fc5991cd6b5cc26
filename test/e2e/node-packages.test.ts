/**
 * External packages of Node actions (`node.externalPackages` in convex.json): the real CLI leaves
 * them out of the bundle and lists them in the push; the backend installs them from the npm
 * registry into its data dir, once per package list, and the actions load them from there.
 */
import { createHash } from 'node:crypto'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { cleanup, convexCli, errorOf, prepareFixture, ROOT, startBackend } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'

const api = anyApi as any
let backend: TestBackend
let appDir: string
let client: ConvexHttpClient

const deployApp = (dir: string) => convexCli(dir, ['deploy', '--url', backend.url, '--admin-key', backend.adminKey, '-y'])
/** Marks `names` external in the app at `dir` (each must be among its dependencies). */
function useExternal(dir: string, dependencies: Record<string, string>): void {
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ ...pkg, dependencies: { ...pkg.dependencies, ...dependencies } }))
  writeFileSync(join(dir, 'convex.json'), JSON.stringify({ node: { externalPackages: Object.keys(dependencies) } }))
}
const packagesRoot = () => join(backend.dataDir, 'node-packages')
const count = (text: string, part: string) => text.split(part).length - 1

beforeAll(async () => {
  backend = await startBackend()
  appDir = prepareFixture('node')
  // tweetnacl 1.0.3: a small pure-JS package from the registry (the app has it in node_modules).
  useExternal(appDir, { tweetnacl: '1.0.3' })
  await deployApp(appDir)
  client = new ConvexHttpClient(backend.url)
}, 180_000)

afterAll(async () => {
  await backend?.stop()
  cleanup(backend?.dataDir)
  cleanup(appDir)
})

test('a push with external packages installs them from the registry, and the actions load them from there', async () => {
  expect(await client.action(api.nacl.hashAndRandom, { text: 'abc' })).toEqual({ sha512: createHash('sha512').update('abc').digest('hex'), random: 8 })
  const [folder, ...others] = readdirSync(packagesRoot())
  expect(others).toEqual([])
  const installed = join(realpathSync(packagesRoot()), folder!)
  expect(await client.action(api.nacl.naclLocation, {})).toBe(join(installed, 'node_modules/tweetnacl/nacl-fast.js'))
  expect(JSON.parse(readFileSync(join(installed, 'package-lock.json'), 'utf8')).packages['node_modules/tweetnacl'].version).toBe('1.0.3')
  expect(count(backend.output(), 'Installed external packages for Node.js actions')).toBe(1)
})

test('a push with the same packages installs nothing; a restart keeps them', async () => {
  const [folder] = readdirSync(packagesRoot())
  const mtime = statSync(join(packagesRoot(), folder!)).mtimeMs
  writeFileSync(join(appDir, 'convex/extra.ts'), `"use node";\nimport { action } from "./_generated/server";\nexport const extra = action({ args: {}, handler: async () => "extra" });\n`)
  await deployApp(appDir)
  expect(await client.action(api.extra.extra, {})).toBe('extra')
  expect(await client.action(api.nacl.hashAndRandom, { text: 'again' })).toEqual({ sha512: createHash('sha512').update('again').digest('hex'), random: 8 })
  expect(readdirSync(packagesRoot())).toEqual([folder])
  expect(statSync(join(packagesRoot(), folder!)).mtimeMs).toBe(mtime)
  expect(count(backend.output(), 'Installing external packages for Node.js actions')).toBe(1)

  await backend.stop()
  await backend.restart()
  expect(await new ConvexHttpClient(backend.url).action(api.nacl.hashAndRandom, { text: 'x' })).toEqual({ sha512: createHash('sha512').update('x').digest('hex'), random: 8 })
  expect(readdirSync(packagesRoot())).toEqual([folder])
  expect(count(backend.output(), 'Installing external packages for Node.js actions')).toBe(1)
}, 120_000)

test("a package npm can't install fails the push with npm's error; the deployment keeps its functions", async () => {
  // An app whose node_modules has a package the registry doesn't have.
  const dir = mkdtempSync(join(tmpdir(), 'concave-app-node-missing-'))
  try {
    cpSync(join(ROOT, 'test/fixtures/node'), dir, { recursive: true })
    mkdirSync(join(dir, 'node_modules'))
    for (const name of readdirSync(join(ROOT, 'node_modules'))) symlinkSync(join(ROOT, 'node_modules', name), join(dir, 'node_modules', name), 'dir')
    mkdirSync(join(dir, 'node_modules/concave-test-missing-pkg'))
    writeFileSync(join(dir, 'node_modules/concave-test-missing-pkg/package.json'), JSON.stringify({ name: 'concave-test-missing-pkg', version: '1.0.0', main: 'index.js' }))
    writeFileSync(join(dir, 'node_modules/concave-test-missing-pkg/index.js'), 'module.exports = 1\n')
    writeFileSync(join(dir, 'convex/missing.ts'), `"use node";\nimport one from "concave-test-missing-pkg";\nimport { action } from "./_generated/server";\nexport const one_ = action({ args: {}, handler: async () => one });\n`)
    useExternal(dir, { 'concave-test-missing-pkg': '1.0.0', tweetnacl: '1.0.3' })
    const err = await errorOf(deployApp(dir))
    expect(err.message).toContain('Loading the pushed modules encountered the following error:\nInstalling the external packages of Node.js actions (concave-test-missing-pkg@1.0.0, tweetnacl@1.0.3) failed: npm install exited with code 1\ncode E404\n404 Not Found - GET https://registry.npmjs.org/concave-test-missing-pkg')
    expect(err.message).not.toContain('debug-0.log')
    expect(readdirSync(packagesRoot())).toHaveLength(1)
    expect(await client.action(api.nacl.hashAndRandom, { text: 'kept' })).toEqual({ sha512: createHash('sha512').update('kept').digest('hex'), random: 8 })
  } finally {
    cleanup(dir)
  }
}, 120_000)

test("npm runs with the backend's Node first on PATH and without the backend's secrets or its npm-run context", async () => {
  // An `npm` of our own, first on PATH: it notes what it was given and fails.
  const bin = mkdtempSync(join(tmpdir(), 'concave-fake-npm-'))
  const envFile = join(bin, 'env.json')
  writeFileSync(join(bin, 'npm'), `#!/bin/sh\nnode -e 'require("fs").writeFileSync(process.argv[1], JSON.stringify({ env: process.env, args: process.argv.slice(2), node: process.execPath }))' ${envFile} "$@"\necho "npm error fake npm says no" >&2\nexit 7\n`, { mode: 0o755 })
  const other = await startBackend({ env: { PATH: `${bin}:${process.env.PATH}`, INSTANCE_SECRET: 'not for npm', CONCAVE_SOMETHING: 'not for npm either', npm_package_json: '/somewhere/package.json', npm_config_local_prefix: '/somewhere' } })
  try {
    const err = await errorOf(convexCli(appDir, ['deploy', '--url', other.url, '--admin-key', other.adminKey, '-y']))
    expect(err.message).toContain('Installing the external packages of Node.js actions (tweetnacl@1.0.3) failed: npm install exited with code 7\nfake npm says no')
    const seen = JSON.parse(readFileSync(envFile, 'utf8')) as { env: Record<string, string>; args: string[]; node: string }
    expect(seen.args).toEqual(['install', '--no-audit', '--no-fund', '--loglevel=error'])
    expect(seen.node).toBe(process.execPath)
    expect(Object.keys(seen.env).filter((k) => /^(INSTANCE_|CONCAVE_|CONVEX_)|^npm_package_json$|^npm_config_local_prefix$/.test(k))).toEqual([])
    expect(existsSync(join(other.dataDir, 'node-packages'))).toBe(true)
    expect(readdirSync(join(other.dataDir, 'node-packages'))).toEqual([])
  } finally {
    await other.stop()
    cleanup(other.dataDir)
    cleanup(bin)
  }
}, 120_000)
