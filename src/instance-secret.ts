/**
 * @module Where the instance secret comes from (src/main.ts), and hiding it once read.
 *
 * The secret signs admin keys: whoever reads it can mint them. It can be given as a file
 * (`--instance-secret-file` / INSTANCE_SECRET_FILE, the way to keep it off the command line and out
 * of the environment), as the INSTANCE_SECRET variable, or as `--instance-secret` (which puts it
 * where every user of the machine can read it: `ps`, /proc/<pid>/cmdline). A flag wins over the
 * environment; two ways at the same level are refused rather than one picked silently.
 */
import { readFileSync, writeFileSync } from 'node:fs'

export type SecretSource = 'flag' | 'flag-file' | 'env' | 'env-file'

export interface GivenSecret {
  secret: string
  source: SecretSource
}

const given = (value: string | undefined): value is string => value !== undefined && value !== ''

/**
 * The instance secret from the flags, else from the environment; undefined when none is given
 * (the backend then keeps a generated one in its data directory). A file's content is trimmed of
 * surrounding white space (a trailing newline, as `echo` and most editors leave).
 */
export function resolveInstanceSecret(flags: { secret?: string | undefined; secretFile?: string | undefined }, env: NodeJS.ProcessEnv): GivenSecret | undefined {
  if (given(flags.secret) && given(flags.secretFile)) throw new Error('Give the instance secret one way: --instance-secret-file or --instance-secret, not both')
  if (given(flags.secretFile)) return { secret: readSecretFile(flags.secretFile), source: 'flag-file' }
  if (given(flags.secret)) return { secret: flags.secret, source: 'flag' }
  if (given(env.INSTANCE_SECRET) && given(env.INSTANCE_SECRET_FILE)) throw new Error('Set the instance secret one way: INSTANCE_SECRET_FILE or INSTANCE_SECRET, not both')
  if (given(env.INSTANCE_SECRET_FILE)) return { secret: readSecretFile(env.INSTANCE_SECRET_FILE), source: 'env-file' }
  if (given(env.INSTANCE_SECRET)) return { secret: env.INSTANCE_SECRET, source: 'env' }
  return undefined
}

function readSecretFile(path: string): string {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (e) {
    throw new Error(`Could not read the instance secret file ${path}: ${(e as Error).message}`)
  }
  const secret = text.trim()
  if (secret === '') throw new Error(`The instance secret file ${path} is empty`)
  return secret
}

/**
 * Rewrites this process's command line as `ps` and /proc/<pid>/cmdline show it, with every
 * occurrence of `secret` replaced by `***`. Node's process.title does this on Linux (libuv
 * overwrites the memory the kernel reads the arguments from; the arguments then show as one
 * string); elsewhere it may only rename the process. Returns whether the command line is known to
 * be free of the secret now (false where there is no /proc to check).
 */
export function hideFromCommandLine(secret: string): boolean {
  let args: string[]
  try {
    args = readFileSync('/proc/self/cmdline', 'utf8').split('\0')
    if (args.at(-1) === '') args.pop()
  } catch {
    args = [process.argv0, ...process.argv.slice(1)]
  }
  if (!args.some((a) => a.includes(secret))) return true
  const comm = readOrNull('/proc/self/comm')
  process.title = args.map((a) => a.replaceAll(secret, '***')).join(' ')
  // libuv also renames the process (to the title's first 15 characters): keep the name pgrep and `ps -C` match.
  if (comm !== null) {
    try {
      writeFileSync('/proc/self/comm', comm.trimEnd())
    } catch {
      // the title's start it stays
    }
  }
  try {
    return !readFileSync('/proc/self/cmdline', 'utf8').includes(secret)
  } catch {
    return false
  }
}

function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return null
  }
}
