/** @module A small `util.inspect` for console output, in the style Convex log lines use. */

function inspectValue(v: unknown, depth: number, seen: Set<unknown>): string {
  if (typeof v === 'string') return depth === 0 ? v : `'${v.replace(/'/g, "\\'")}'`
  if (typeof v === 'bigint') return `${v}n`
  if (typeof v === 'function') return `[Function: ${v.name || '(anonymous)'}]`
  if (typeof v === 'symbol') return v.toString()
  if (v === null || typeof v !== 'object') return String(v)
  if (seen.has(v)) return '[Circular]'
  if (v instanceof Error) return v.stack ?? `${v.name}: ${v.message}`
  if (depth > 3) return Array.isArray(v) ? '[Array]' : '[Object]'
  seen.add(v)
  try {
    if (v instanceof ArrayBuffer) return `ArrayBuffer { byteLength: ${v.byteLength} }`
    if (Array.isArray(v)) return v.length === 0 ? '[]' : `[ ${v.map((x) => inspectValue(x, depth + 1, seen)).join(', ')} ]`
    const entries = Object.entries(v as Record<string, unknown>)
    if (entries.length === 0) return '{}'
    const key = (k: string) => (/^[A-Za-z_$][\w$]*$/.test(k) ? k : `'${k}'`)
    return `{ ${entries.map(([k, x]) => `${key(k)}: ${inspectValue(x, depth + 1, seen)}`).join(', ')} }`
  } finally {
    seen.delete(v)
  }
}

/** Formats console arguments: strings as-is at top level is Node's behaviour, but Convex quotes them. */
export function formatLogArgs(args: unknown[]): string {
  return args.map((a) => (typeof a === 'string' ? `'${a}'` : inspectValue(a, 1, new Set()))).join(' ')
}
