import yargs from 'yargs'
import { generateInstanceSecret } from './secret.ts'
import { issueAdminKey, verifyAdminKey } from './admin-key.ts'

type InstanceArgs = { instanceName?: string; instanceSecret?: string }

const instanceOptions = {
  'instance-name': {
    type: 'string',
    describe: 'Instance name (default: $INSTANCE_NAME)',
  },
  'instance-secret': {
    type: 'string',
    describe: 'Instance secret, 64 hex chars (default: $INSTANCE_SECRET)',
  },
} as const

/** Resolves the instance name and secret from flags, falling back to the environment. */
function instance(args: InstanceArgs): { name: string; secret: string } {
  const name = args.instanceName || process.env.INSTANCE_NAME
  const secret = args.instanceSecret || process.env.INSTANCE_SECRET
  if (!name) throw new Error('Missing --instance-name (or INSTANCE_NAME)')
  if (!secret) throw new Error('Missing --instance-secret (or INSTANCE_SECRET)')
  return { name, secret }
}

/** A command-line usage error reported by yargs (unknown command, missing argument, ...). */
class UsageError extends Error {}

const out = (line: string) => void process.stdout.write(`${line}\n`)

/** Runs the keybroker CLI on `argv` (without node/script) and resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  let exitCode = 0
  const cli = yargs(argv)
    .scriptName('keybroker')
    .command('generate-secret', 'Print a new random instance secret', {}, () => {
      out(generateInstanceSecret())
    })
    .command('generate-key', 'Print an admin key for the instance', instanceOptions, (args) => {
      const { name, secret } = instance(args)
      out(issueAdminKey(name, secret))
    })
    .command(
      'verify-key <key>',
      'Check an admin key against the instance',
      (y) => y.options(instanceOptions).positional('key', { type: 'string', demandOption: true }),
      (args) => {
        const { name, secret } = instance(args)
        const result = verifyAdminKey(args.key, name, secret)
        out(result.ok ? 'valid' : `invalid: ${result.reason}`)
        if (!result.ok) exitCode = 1
      },
    )
    .demandCommand(1, 'Specify a command')
    .strict()
    .version(false)
    .help()
    .exitProcess(false)
    .fail((msg, err) => {
      // Throwing stops yargs from running the command after a validation error.
      throw err ?? new UsageError(msg)
    })
  try {
    await cli.parseAsync()
  } catch (err) {
    exitCode = 1
    const message = err instanceof Error ? err.message : String(err)
    const hint = err instanceof UsageError ? '\nRun "keybroker --help" for usage.' : ''
    process.stderr.write(`Error: ${message}${hint}\n`)
  }
  return exitCode
}
