/**
 * @module `concave-backend replicate …`:
 *
 * - `replicate --from URL --admin-key KEY [backend options]` runs this backend as a live replica
 *   of the deployment at URL (another Concave, or Convex): the same as the backend with
 *   `--replicate-from URL` and `CONCAVE_REPLICATE_ADMIN_KEY=KEY` (see src/replicate/replicator.ts).
 * - `replicate status [--url URL] [--admin-key KEY]` asks a running replica (default
 *   http://127.0.0.1:3210, key from CONVEX_SELF_HOSTED_ADMIN_KEY) how far behind it is, from its
 *   `GET /api/concave/replication`.
 */
import yargs from 'yargs'

/** The backend's arguments for `replicate --from URL --admin-key KEY …`; the key goes in the environment (not `ps`). */
export function replicaArgs(argv: readonly string[], env: NodeJS.ProcessEnv): string[] {
  const out: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined]
    if (flag === '--from' || flag === '--admin-key') {
      const value = inline ?? argv[++i]
      if (value === undefined) throw new Error(`${flag} needs a value`)
      if (flag === '--from') out.push('--replicate-from', value)
      else env.CONCAVE_REPLICATE_ADMIN_KEY = value
      continue
    }
    out.push(a)
  }
  if (!out.includes('--replicate-from') && !out.includes('--help')) throw new Error('Usage: concave-backend replicate --from URL --admin-key KEY [backend options], or concave-backend replicate status')
  return out
}

/** `replicate status`: prints where the replica stands; exit code 0 when caught up (files too), 3 when behind. */
export async function replicateStatus(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const args = await yargs([...argv])
    .scriptName('concave-backend replicate status')
    .option('url', { type: 'string', default: env.CONVEX_SELF_HOSTED_URL ?? 'http://127.0.0.1:3210', describe: "The replica's URL (env CONVEX_SELF_HOSTED_URL)" })
    .option('admin-key', { type: 'string', default: env.CONVEX_SELF_HOSTED_ADMIN_KEY, describe: "The replica's admin key (env CONVEX_SELF_HOSTED_ADMIN_KEY)" })
    .option('json', { type: 'boolean', default: false, describe: 'Print the status as JSON' })
    .strict()
    .help()
    .parse()
  if (args['admin-key'] === undefined) throw new Error('Give the replica’s admin key with --admin-key or CONVEX_SELF_HOSTED_ADMIN_KEY')
  const res = await fetch(new URL('/api/concave/replication', args.url), { headers: { authorization: `Convex ${args['admin-key']}` } })
  const text = await res.text()
  if (!res.ok) throw new Error(`${args.url} answered ${res.status}: ${text}`)
  const status = JSON.parse(text) as {
    replicating: boolean
    source?: string
    phase?: string
    applied?: number
    error?: string | null
    caughtUp?: boolean
    lag?: { documents: number; complete: boolean; seconds: number } | null
    files?: { replica: number; source: number | null; inSync: boolean }
  }
  if (args.json) process.stdout.write(`${text}\n`)
  else if (!status.replicating) process.stdout.write(`${args.url} is not replicating.\n`)
  else {
    const lag = status.lag
    const lagText = lag === null || lag === undefined ? 'copying the snapshot' : `${lag.documents}${lag.complete ? '' : '+'} documents, ${lag.seconds.toFixed(3)} s behind`
    const files = status.files
    const filesText = files === undefined ? '' : `  Files:   ${files.replica} (${files.source === null ? 'unknown' : files.source} at the source)\n`
    process.stdout.write(`Replicating ${status.source}\n  Phase:   ${status.phase}\n  Applied: ${status.applied} documents\n  Lag:     ${lagText}\n${filesText}${status.error ? `  Error:   ${status.error}\n` : ''}`)
  }
  const filesInSync = status.files === undefined || (status.files.inSync && status.files.source === status.files.replica)
  return status.replicating && status.lag !== null && status.lag !== undefined && status.lag.documents === 0 && filesInSync ? 0 : 3
}
