/**
 * @module Console arguments formatted as Convex's runtime formats them: each one through the
 * `object-inspect` package (2-space indent, strings quoted and cut at 32768 code units, custom
 * `inspect()` methods honoured), joined by spaces.
 */
import inspect from 'object-inspect'
import { utf8Length } from './json-text.ts'

const OPTIONS = { indent: 2, maxStringLength: 32768, customInspect: true } as const

/** (A lone surrogate becomes U+FFFD, as Convex's line reaches its host as UTF-8.) */
export function formatLogArgs(args: unknown[]): string {
  return formatLogMessages(args).join(' ')
}

/** Each console argument formatted (see formatLogArgs). */
export function formatLogMessages(args: unknown[]): string[] {
  return args.map((a) => (inspect(a, OPTIONS) as string & { toWellFormed(): string }).toWellFormed())
}

/** The longest a log line's messages may be, in UTF-8 bytes with a space between (Convex's MAX_LOG_LINE_LENGTH). */
export const MAX_LOG_LINE_LENGTH = 32768
/** What ends a line cut at that length (Convex's TRUNCATED_LINE_SUFFIX). */
export const TRUNCATED_LINE_SUFFIX = ' (truncated due to length)'

/**
 * A log line as Convex writes it (`[LEVEL] messages`): messages past 32768 bytes in all are cut
 * (the last one kept at a character boundary) and the line says `(truncated due to length)`.
 */
export function logLine(level: string, messages: string[]): string {
  const sizes = messages.map((m) => utf8Length(m))
  if (sizes.reduce((a, b) => a + b + 1, 0) - 1 <= MAX_LOG_LINE_LENGTH) return `[${level}] ${messages.join(' ')}`
  const kept: string[] = []
  let used = 0
  for (let i = 0; i < messages.length; i++) {
    const room = MAX_LOG_LINE_LENGTH - used
    if (sizes[i]! <= room) {
      used += sizes[i]! + 1
      kept.push(messages[i]!)
      continue
    }
    kept.push(utf8Prefix(messages[i]!, room))
    break
  }
  return `[${level}] ${kept.join(' ')}${TRUNCATED_LINE_SUFFIX}`
}

/** The longest start of `s` of at most `bytes` UTF-8 bytes that ends at a character boundary. */
function utf8Prefix(s: string, bytes: number): string {
  let used = 0
  let i = 0
  while (i < s.length) {
    const c = s.charCodeAt(i)
    const pair = c >= 0xd800 && c <= 0xdbff
    const size = c < 0x80 ? 1 : c < 0x800 ? 2 : pair ? 4 : 3
    if (used + size > bytes) break
    used += size
    i += pair ? 2 : 1
  }
  return s.slice(0, i)
}
