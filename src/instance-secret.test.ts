import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, expect, test } from 'vitest'
import { resolveInstanceSecret } from './instance-secret.ts'

const dir = mkdtempSync(join(tmpdir(), 'concave-secret-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const file = (name: string, text: string) => {
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
}

test('a file, a flag or a variable; flags before the environment; empty means unset', () => {
  const withNewline = file('a', '  abc123\n')
  expect(resolveInstanceSecret({ secretFile: withNewline }, {})).toEqual({ secret: 'abc123', source: 'flag-file' })
  expect(resolveInstanceSecret({ secret: 'f00' }, { INSTANCE_SECRET: 'e11', INSTANCE_SECRET_FILE: withNewline })).toEqual({ secret: 'f00', source: 'flag' })
  expect(resolveInstanceSecret({}, { INSTANCE_SECRET_FILE: withNewline })).toEqual({ secret: 'abc123', source: 'env-file' })
  expect(resolveInstanceSecret({}, { INSTANCE_SECRET: 'e11' })).toEqual({ secret: 'e11', source: 'env' })
  // docker compose passes unset variables as empty strings.
  expect(resolveInstanceSecret({ secret: '', secretFile: '' }, { INSTANCE_SECRET: '', INSTANCE_SECRET_FILE: '' })).toBeUndefined()
  expect(resolveInstanceSecret({}, { INSTANCE_SECRET: '', INSTANCE_SECRET_FILE: withNewline })).toEqual({ secret: 'abc123', source: 'env-file' })
})

test('two ways at the same level, a missing file and an empty one are refused', () => {
  const path = file('b', 'abc')
  expect(() => resolveInstanceSecret({ secret: 'abc', secretFile: path }, {})).toThrow('Give the instance secret one way: --instance-secret-file or --instance-secret, not both')
  expect(() => resolveInstanceSecret({}, { INSTANCE_SECRET: 'abc', INSTANCE_SECRET_FILE: path })).toThrow('Set the instance secret one way: INSTANCE_SECRET_FILE or INSTANCE_SECRET, not both')
  const missing = join(dir, 'missing')
  expect(() => resolveInstanceSecret({ secretFile: missing }, {})).toThrow(`Could not read the instance secret file ${missing}: ENOENT: no such file or directory, open '${missing}'`)
  const empty = file('c', ' \n')
  expect(() => resolveInstanceSecret({}, { INSTANCE_SECRET_FILE: empty })).toThrow(`The instance secret file ${empty} is empty`)
})
