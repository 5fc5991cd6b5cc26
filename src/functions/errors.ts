/**
 * @module How a failed call is reported, as Convex's JsError: its `Uncaught …` message, and its
 * stack as Convex shows it: V8's frames mapped through the pushed modules' source
 * maps to the app's own files (`at handler (../convex/messages.ts:12:4)`), the runtime's and the
 * `convex` package's harness frames left off both ends.
 */
import { originalPositionFor, TraceMap } from '@jridgewell/trace-mapping'
import type { ModuleRecord } from '../storage/persistence.ts'
import { MODULE_URL_PREFIX } from '../../runtime/outcome.ts'


/** Sources of the `convex` package's function harness (Convex omits their frames at the ends). */
function isHarness(source: string): boolean {
  return source.includes('convex/src/server/impl')
}

const FRAME = /^\s*at (async )?(?:(.*) \((.*)\)|(.*))$/
const LOCATION = /^(.*):(\d+):(\d+)$/

/** Parses each pushed module's source map once (per pushed version of the module). */
export class SourceMaps {
  readonly #maps = new WeakMap<ModuleRecord, TraceMap | null>()

  constructor(readonly modules: () => ReadonlyMap<string, ModuleRecord>) {}

  get(path: string): TraceMap | null {
    const record = this.modules().get(path)
    if (record === undefined) return null
    let map = this.#maps.get(record)
    if (map === undefined) {
      try {
        map = record.sourceMap === null ? null : new TraceMap(record.sourceMap)
      } catch {
        // A source map that doesn't parse is treated as missing, as Convex does.
        map = null
      }
      this.#maps.set(record, map)
    }
    return map
  }

  /**
   * The frames of a V8 `stack` (its message lines dropped), mapped to original sources, one
   * `    at …` line each; null when there are none.
   */
  frames(stack: string | undefined): string | null {
    if (stack === undefined) return null
    const out: { line: string; harness: boolean }[] = []
    for (const raw of stack.split('\n')) {
      const m = FRAME.exec(raw)
      if (m === null) continue
      const [, isAsync = '', name, inParens, bare] = m
      const location = inParens ?? bare ?? ''
      const mapped = this.#mapLocation(location)
      if (out.length === 0 && mapped.harness) continue
      const callee = name === undefined ? mapped.text : `${name} (${mapped.text})`
      out.push({ line: `    at ${isAsync}${callee}`, harness: mapped.harness })
    }
    while (out.length > 0 && out[out.length - 1]!.harness) out.pop()
    return out.length === 0 ? null : out.map((f) => f.line).join('\n')
  }

  #mapLocation(location: string): { text: string; harness: boolean } {
    const m = LOCATION.exec(location)
    if (m === null) return { text: location, harness: !location.startsWith(MODULE_URL_PREFIX) }
    const [, file = '', line, column] = m
    // Not a pushed module: the runtime, the Node worker, Node's internals.
    if (!file.startsWith(MODULE_URL_PREFIX)) return { text: location, harness: true }
    const map = this.get(file.slice(MODULE_URL_PREFIX.length))
    if (map === null) return { text: location, harness: false }
    // V8 counts columns from 1; source maps from 0. Convex prints the original line from 1 and
    // the column from 0, as its source map library gives them.
    const pos = originalPositionFor(map, { line: Number(line), column: Number(column) - 1 })
    if (pos.source === null) return { text: location, harness: false }
    return { text: `${pos.source}:${pos.line}:${pos.column}`, harness: isHarness(pos.source) }
  }
}

/** Convex's "Uncaught …" line for a thrown value's name and message. */
export function uncaughtMessage(name: string | undefined, message: string | undefined): string {
  const n = name ?? ''
  const msg = message ?? ''
  // An error a nested call already reported ("Uncaught Error: …", rethrown by the caller) is
  // not prefixed again.
  if (msg.startsWith('Uncaught ')) return msg
  if (n !== '' && msg !== '') return `Uncaught ${n}: ${msg}`
  if (n !== '') return `Uncaught ${n}`
  if (msg !== '') return `Uncaught ${msg}`
  return 'Uncaught'
}

/**
 * A call that failed, as Convex's JsError: its message (`Uncaught Error: boom`), the source-mapped
 * frames where there are any (`    at handler (../convex/a.ts:3:4)` lines), ConvexError data.
 */
export interface CallFailure {
  ok: false
  message: string
  frames?: string
  data?: string
  logLines: string[]
}

/** A failure as Convex prints a JsError: the message, then its frames (no final newline). */
export function errorText(f: Pick<CallFailure, 'message' | 'frames'>): string {
  return f.frames === undefined ? f.message : `${f.message}\n${f.frames}`
}

/**
 * A time limit as Convex's messages print it: Rust's `Duration` Debug format (`1s`, `1.5s`,
 * `600s`, `100ms`, `250µs`, `0ns`), whole units and up to nine significant decimals, trailing
 * zeros dropped.
 */
export function rustDuration(ms: number): string {
  const nanos = BigInt(Math.round(ms * 1_000_000))
  const decimal = (whole: bigint, rest: bigint, restDigits: number, unit: string) => {
    const fraction = rest === 0n ? '' : `.${rest.toString().padStart(restDigits, '0').replace(/0+$/, '')}`
    return `${whole}${fraction}${unit}`
  }
  if (nanos >= 1_000_000_000n) return decimal(nanos / 1_000_000_000n, nanos % 1_000_000_000n, 9, 's')
  if (nanos >= 1_000_000n) return decimal(nanos / 1_000_000n, nanos % 1_000_000n, 6, 'ms')
  if (nanos >= 1_000n) return decimal(nanos / 1_000n, nanos % 1_000n, 3, 'µs')
  return `${nanos}ns`
}

/** Convex's message for a function stopped at its time limit (isolate/src/termination.rs). */
export function timedOutMessage(timeoutMs: number): string {
  return `Function execution timed out (maximum duration: ${rustDuration(timeoutMs)})`
}
