import yargs from 'yargs'
import { generateInstanceSecret } from './secret.ts'
import { issueAdminKey, verifyAdminKey } from './admin-key.ts'

type InstanceArgs = { instanceName?: string; instanceSecret?: string; name?: string; secret?: string }

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
  if (args.name && args.instanceName && args.name !== args.instanceName) throw new Error('The instance name is given twice, differently')
  if (args.secret && args.instanceSecret && args.secret !== args.instanceSecret) throw new Error('The instance secret is given twice, differently')
  const name = args.name || args.instanceName || process.env.INSTANCE_NAME
  const secret = args.secret || args.instanceSecret || process.env.INSTANCE_SECRET
  if (!name) throw new Error('Missing --instance-name (or INSTANCE_NAME)')
  if (!secret) throw new Error('Missing --instance-secret (or INSTANCE_SECRET)')
  return { name, secret }
}

function memberIdOf(value: string): bigint {
  if (!/^\d+$/.test(value)) throw new Error(`--member-id must be a non-negative integer, not ${JSON.stringify(value)}`)
  return BigInt(value)
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
    .command(
      'generate-key [name] [secret]',
      "Print an admin key for the instance, in Convex's format. NAME and SECRET may be given as Convex's generate_key takes them (the secret is then visible in `ps`)",
      (y) =>
        y
          .options(instanceOptions)
          .positional('name', { type: 'string', describe: 'Instance name (as --instance-name)' })
          .positional('secret', { type: 'string', describe: 'Instance secret (as --instance-secret)' })
          .option('system-key', { type: 'boolean', describe: 'Print a system key (an operation "by Convex itself") instead of an admin key' })
          .option('read-only', { type: 'boolean', describe: 'Print a read-only admin key: it may query and read, not push or write' })
          .option('member-id', { type: 'string', describe: 'Member ID the admin key is for (default 0: no member in particular)' })
          .conflicts('system-key', ['member-id', 'read-only']),
      (args) => {
        const { name, secret } = instance(args)
        const memberId = args.memberId === undefined ? undefined : memberIdOf(args.memberId)
        out(issueAdminKey(name, secret, { kind: args.systemKey ? 'system' : args.readOnly ? 'read-only' : 'admin', memberId }))
      },
    )
    .command(
      'verify-key <key>',
      'Check an admin key against the instance',
      (y) => y.options(instanceOptions).positional('key', { type: 'string', demandOption: true }),
      (args) => {
        const { name, secret } = instance(args)
        const result = verifyAdminKey(args.key, name, secret)
        out(result.ok ? `valid${result.kind === 'admin' ? '' : ` (${result.kind === 'system' ? 'system key' : 'read-only'})`}` : `invalid: ${result.reason}`)
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
