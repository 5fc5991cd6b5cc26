/**
 * @module Console arguments formatted as Convex's runtime formats them: each one through the
 * `object-inspect` package (2-space indent, strings quoted and cut at 32768 code units, custom
 * `inspect()` methods honoured), joined by spaces.
 */
import inspect from 'object-inspect'

const OPTIONS = { indent: 2, maxStringLength: 32768, customInspect: true } as const

/** (A lone surrogate becomes U+FFFD, as Convex's line reaches its host as UTF-8.) */
export function formatLogArgs(args: unknown[]): string {
  return (args.map((a) => inspect(a, OPTIONS)).join(' ') as string & { toWellFormed(): string }).toWellFormed()
}
