/**
 * @module Convex's warnings in a function's log for a call that came near a limit without passing
 * it (crates/udf/src/warnings.rs): its arguments or return value near their size, its running time
 * near its limit, and an action's async operations left unawaited. (A transaction's own warnings
 * are Transaction.limitWarnings.)
 */
import { LIMIT_WARNING_RATIO, limitWarning, warningThreshold } from '../database/transaction.ts'
import { jsonSizeIfOver } from '../values/index.ts'

/** How long a call ran against its time limit (see CallOutcome), and the operations it left unawaited. */
export interface RunStats {
  elapsedMs: number
  limitMs: number
  dangling: string[]
}

/** Convex's warning for a value (its JSON text) past 80% of `limit` bytes without passing it. */
export function sizeWarning(message: string, json: string, limit: number): string | null {
  const size = jsonSizeIfOver(json, warningThreshold(limit))
  return size === null ? null : limitWarning(message, size, limit, ' bytes')
}

/**
 * Convex's warning for a call that ran past 80% of its time limit without passing it
 * (`approaching_duration_limit_warning`), the durations as Rust prints them.
 */
export function durationWarning(run: RunStats | undefined): string | null {
  if (run === undefined || !(run.elapsedMs > LIMIT_WARNING_RATIO * run.limitMs && run.elapsedMs <= run.limitMs)) return null
  return `[WARN] Function execution took a long time. (maximum duration: ${rustDuration(run.limitMs)}, actual duration: ${rustDuration(run.elapsedMs)}).`
}

/** A duration of `ms` milliseconds as Rust's `Debug` for `Duration` prints it: `1s`, `812.5ms`, `30µs`. */
export function rustDuration(ms: number): string {
  const ns = Math.round(ms * 1e6)
  const decimal = (whole: number, fraction: number, divisor: number, unit: string) => {
    let digits = ''
    for (let d = divisor; fraction > 0 && d >= 1; d /= 10) {
      digits += String(Math.floor(fraction / d))
      fraction %= d
    }
    return `${whole}${digits === '' ? '' : `.${digits}`}${unit}`
  }
  if (ns >= 1e9) return decimal(Math.floor(ns / 1e9), ns % 1e9, 1e8, 's')
  if (ns >= 1e6) return decimal(Math.floor(ns / 1e6), ns % 1e6, 1e5, 'ms')
  if (ns >= 1e3) return decimal(Math.floor(ns / 1e3), ns % 1e3, 100, 'µs')
  return `${ns}ns`
}

/**
 * Convex's warning for an action that ended with async operations it never awaited (timers
 * aside), by the names Convex gives them (`mutation`, `fetch`, `storage.store`), each once, sorted.
 */
export function danglingWarning(run: RunStats | undefined): string | null {
  const names = (run?.dangling ?? []).map(danglingName).filter((n): n is string => n !== null)
  if (names.length === 0) return null
  const listed = [...new Set(names)].sort()
  return `[WARN] ${names.length} unawaited operation${names.length === 1 ? '' : 's'}: [${listed.join(', ')}]. Async operations should be awaited or they might not run. See https://docs.convex.dev/functions/actions#dangling-promises for more information.`
}

/** An async operation's name in Convex's warning of it (`name_when_dangling`), or null if it has none (a timer, a stream's read). */
function danglingName(op: string): string | null {
  if (op === 'concave/fetch') return 'fetch'
  if (op === '1.0/storageStore') return 'storage.store'
  if (op === '1.0/storageGet') return 'storage.get'
  if (op.startsWith('concave/')) return null
  return op.replace('1.0/', '').replace('actions/', '').replace('httpEndpoint/', '').replace('shallowMerge', 'patch').replace('queryPage', 'paginate')
}
