import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { main } from './cli.ts'
import { verifyAdminKey } from './admin-key.ts'

const NAME = 'cli-test'
const SECRET = 'ab'.repeat(32)

let stdout: string[]
let stderr: string[]
const savedEnv = { name: process.env.INSTANCE_NAME, secret: process.env.INSTANCE_SECRET }

beforeEach(() => {
  delete process.env.INSTANCE_NAME
  delete process.env.INSTANCE_SECRET
  stdout = []
  stderr = []
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    stdout.push(String(chunk))
    return true
  })
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    stderr.push(String(chunk))
    return true
  })
})

afterEach(() => {
  vi.restoreAllMocks()
  for (const [key, value] of [
    ['INSTANCE_NAME', savedEnv.name],
    ['INSTANCE_SECRET', savedEnv.secret],
  ] as const) {
    if (value === undefined) delete process.env[key]
    else process.env[key] = value
  }
})

const lastLine = () => stdout.join('').trimEnd().split('\n').at(-1)

describe('keybroker cli', () => {
  it('generate-secret prints 64 hex chars', async () => {
    expect(await main(['generate-secret'])).toEqual(0)
    expect(stdout.join('')).toMatch(/^[0-9a-f]{64}\n$/)
  })

  it('generate-key output verifies with verify-key', async () => {
    expect(await main(['generate-key', '--instance-name', NAME, '--instance-secret', SECRET])).toEqual(0)
    const key = lastLine()!
    expect(key).toMatch(/^cli-test\|[0-9a-f]+$/)

    stdout = []
    expect(await main(['verify-key', '--instance-name', NAME, '--instance-secret', SECRET, key])).toEqual(0)
    expect(stdout.join('')).toEqual('valid\n')
  })

  it('generate-key and verify-key fall back to INSTANCE_NAME / INSTANCE_SECRET', async () => {
    process.env.INSTANCE_NAME = NAME
    process.env.INSTANCE_SECRET = SECRET
    expect(await main(['generate-key'])).toEqual(0)
    const key = lastLine()!
    stdout = []
    expect(await main(['verify-key', key])).toEqual(0)
    expect(stdout.join('')).toEqual('valid\n')
  })

  it('verify-key rejects a key made with another secret', async () => {
    await main(['generate-key', '--instance-name', NAME, '--instance-secret', 'cd'.repeat(32)])
    const key = lastLine()!
    stdout = []
    expect(await main(['verify-key', '--instance-name', NAME, '--instance-secret', SECRET, key])).toEqual(1)
    expect(stdout.join('')).toEqual('invalid: admin key authentication failed\n')
  })

  it('generate-key without --instance-secret exits 1', async () => {
    expect(await main(['generate-key', '--instance-name', NAME])).toEqual(1)
    expect(stdout).toEqual([])
    expect(stderr.join('')).toEqual('Error: Missing --instance-secret (or INSTANCE_SECRET)\n')
  })

  it('an unknown command exits 1 without output on stdout', async () => {
    expect(await main(['bogus'])).toEqual(1)
    expect(stdout).toEqual([])
    expect(stderr.join('')).toEqual('Error: Unknown argument: bogus\nRun "keybroker --help" for usage.\n')
  })

  it('no command exits 1', async () => {
    expect(await main([])).toEqual(1)
    expect(stderr.join('')).toEqual('Error: Specify a command\nRun "keybroker --help" for usage.\n')
  })

  it('verify-key without a key exits 1 and does not run', async () => {
    expect(await main(['verify-key', '--instance-name', NAME, '--instance-secret', SECRET])).toEqual(1)
    expect(stdout).toEqual([])
  })

  it("generate-key takes Convex's positional form: generate-key NAME SECRET", async () => {
    expect(await main(['generate-key', NAME, SECRET])).toEqual(0)
    const key = lastLine()!
    expect(key).toMatch(/^cli-test\|01[0-9a-f]{72}$/)
    expect(verifyAdminKey(key, NAME, SECRET)).toMatchObject({ ok: true, kind: 'admin', format: 'convex', memberId: '0' })
  })

  it('generate-key --system-key, --read-only and --member-id make keys that mean so', async () => {
    expect(await main(['generate-key', NAME, SECRET, '--system-key'])).toEqual(0)
    expect(verifyAdminKey(lastLine()!, NAME, SECRET)).toMatchObject({ ok: true, kind: 'system', memberId: null })
    stdout = []
    const readOnly = await keyFrom(['generate-key', NAME, SECRET, '--read-only', '--member-id', '42'])
    expect(verifyAdminKey(readOnly, NAME, SECRET)).toMatchObject({ ok: true, kind: 'read-only', memberId: '42' })
    expect(await main(['verify-key', '--instance-name', NAME, '--instance-secret', SECRET, readOnly])).toEqual(0)
    expect(stdout.join('')).toEqual('valid (read-only)\n')
    stdout = []
    expect(await main(['generate-key', NAME, SECRET, '--member-id', '42'])).toEqual(0)
    expect(verifyAdminKey(lastLine()!, NAME, SECRET)).toMatchObject({ ok: true, kind: 'admin', memberId: '42' })
  })

  it('generate-key refuses a system key for a member, a bad member id, or two different names', async () => {
    expect(await main(['generate-key', NAME, SECRET, '--system-key', '--member-id', '3'])).toEqual(1)
    expect(stderr.join('')).toMatch(/^Error: Arguments system-key and member-id are mutually exclusive/)
    stderr = []
    expect(await main(['generate-key', NAME, SECRET, '--member-id', 'x'])).toEqual(1)
    expect(stderr.join('')).toEqual('Error: --member-id must be a non-negative integer, not "x"\n')
    stderr = []
    expect(await main(['generate-key', NAME, SECRET, '--instance-name', 'other'])).toEqual(1)
    expect(stderr.join('')).toEqual('Error: The instance name is given twice, differently\n')
    expect(stdout).toEqual([])
  })
})

/** Runs a command and returns the last line it printed, leaving stdout empty again. */
async function keyFrom(argv: string[]): Promise<string> {
  expect(await main(argv)).toEqual(0)
  const key = lastLine()!
  stdout = []
  return key
}
