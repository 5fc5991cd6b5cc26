import { expect, test } from 'vitest'
import { packagesKey, parseNodeDependencies, summarizeNpmFailure } from './node-packages.ts'

test('nodeDependencies are checked, sorted by name and without repeats', () => {
  expect(parseNodeDependencies(undefined)).toEqual([])
  expect(parseNodeDependencies([{ name: 'ms', version: '2.1.3' }, { name: '@scope/pkg', version: '1.0.0-beta.1' }, { name: 'ms', version: '2.1.3' }])).toEqual([
    { name: '@scope/pkg', version: '1.0.0-beta.1' },
    { name: 'ms', version: '2.1.3' },
  ])
  expect(() => parseNodeDependencies({})).toThrow('nodeDependencies must be an array')
  expect(() => parseNodeDependencies([{ name: 'ms' }])).toThrow('each of nodeDependencies must have a name and a version')
  expect(() => parseNodeDependencies([{ name: '../x', version: '1.0.0' }])).toThrow('"../x" is not an npm package name')
  expect(() => parseNodeDependencies([{ name: '--global', version: '1.0.0' }])).toThrow('"--global" is not an npm package name')
  expect(() => parseNodeDependencies([{ name: 'ms', version: 'file:/etc' }])).toThrow('"file:/etc" (ms) is not an npm version')
})

test('the folder key depends on the list only', () => {
  const a = packagesKey([{ name: 'a', version: '1.0.0' }, { name: 'b', version: '2.0.0' }])
  expect(a).toMatch(/^[0-9a-f]{32}$/)
  expect(packagesKey([{ name: 'a', version: '1.0.0' }, { name: 'b', version: '2.0.0' }])).toBe(a)
  expect(packagesKey([{ name: 'a', version: '1.0.1' }, { name: 'b', version: '2.0.0' }])).not.toBe(a)
})

test("a failed npm install is summed up by npm's error lines, without its debug log's path", () => {
  const output = [
    'npm error code E404',
    'npm error 404 Not Found - GET https://registry.npmjs.org/nope',
    'npm error A complete log of this run can be found in: /root/.npm/_logs/2026-12-03T09_49_10_873Z-debug-0.log',
    '',
  ].join('\n')
  expect(summarizeNpmFailure([{ name: 'nope', version: '1.0.0' }], 1, null, output)).toBe(
    'Installing the external packages of Node.js actions (nope@1.0.0) failed: npm install exited with code 1\ncode E404\n404 Not Found - GET https://registry.npmjs.org/nope',
  )
  expect(summarizeNpmFailure([{ name: 'x', version: '1.0.0' }], null, 'SIGKILL', 'downloading\nstill going\n')).toBe(
    'Installing the external packages of Node.js actions (x@1.0.0) failed: npm install was stopped (SIGKILL)\ndownloading\nstill going',
  )
  const many = Array.from({ length: 25 }, (_, i) => `npm error line ${i}`).join('\n')
  expect(summarizeNpmFailure([{ name: 'x', version: '1.0.0' }], 1, null, many).split('\n').slice(-2)).toEqual(['line 19', '… (5 more lines)'])
})
