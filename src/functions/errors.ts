/**
 * @module How a failed call is reported, as Convex's JsError: its `Uncaught …` message, and its
 * stack as Convex shows it: the frames the runtime captured (runtime/frames.ts) mapped through the
 * pushed modules' source maps to the app's own files and printed by Convex's rules
 * (`at handler (../convex/messages.ts:12:4)`, `at <anonymous> (../convex/http.ts:3:4)`), frames
 * outside the app's modules left out, the `convex` package's harness frames left off both ends.
 */
import { originalPositionFor, TraceMap } from '@jridgewell/trace-mapping'
import type { ModuleRecord } from '../storage/persistence.ts'
import { MODULE_URL_PREFIX } from '../../runtime/outcome.ts'
import type { FrameData } from '../../runtime/frames.ts'


/** The file isolated-vm names for the frame where a host callback's error entered the sandbox. */
export const ISOLATED_VM_BOUNDARY = '(<isolated-vm boundary>)'
const FRAME = /^\s*at (async )?(?:(new )?(.*) \((.*)\)|(.*))$/
const LOCATION = /^(.*):(\d+):(\d+)$/

/** Each pushed module's source map, parsed once (per pushed version of the module, for every reader). */
const parsedMaps = new WeakMap<ModuleRecord, TraceMap | null>()

/** Maps frames through the source maps of a module set. */
export class SourceMaps {
  readonly #maps = parsedMaps

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
   * A failed call's frames as Convex prints them (JsError::from_frames): each mapped to its
   * original source, frames in files with no source map (the runtime, Node's internals, the
   * worker) left out, the `convex` package's harness frames left off both ends; one
   * `    at …` line each, null when none are left. `captured` are the frames the runtime read
   * from V8's call sites (runtime/frames.ts); without them, V8's `stack` text is parsed.
   */
  frames(stack: string | undefined, captured?: FrameData[]): string | null {
    const given = captured ?? parseStack(stack)
    const out: FrameData[] = []
    for (const frame of given) {
      const mapped = this.#map(frame)
      if (mapped === null) continue
      if (out.length === 0 && isHarness(mapped)) continue
      out.push(mapped)
    }
    while (out.length > 0 && isHarness(out[out.length - 1]!)) out.pop()
    return out.length === 0 ? null : out.map(formatFrame).join('\n')
  }

  /** A frame at its original source position; null for a frame Convex leaves out. */
  #map(frame: FrameData): FrameData | null {
    const { fileName: file, lineNumber: line, columnNumber: column } = frame
    // Where a host callback threw into the sandbox (isolated-vm's own frame): not in Convex's.
    if (file === ISOLATED_VM_BOUNDARY) return null
    // Convex maps only complete frames and keeps the others as they are.
    if (file === null || line === null || column === null) return frame
    // Not a pushed module (the runtime, the Node worker, Node's internals): no source map.
    if (!file.startsWith(MODULE_URL_PREFIX)) return null
    const map = this.get(file.slice(MODULE_URL_PREFIX.length))
    if (map === null) return null
    // V8 counts columns from 1; source maps from 0. Convex prints the original line from 1 and
    // the column from 0, as its source map library gives them.
    const pos = originalPositionFor(map, { line, column: column - 1 })
    if (pos.source === null) return frame
    return { ...frame, fileName: pos.source, lineNumber: pos.line, columnNumber: pos.column }
  }
}

/** Frames of the `convex` package's function harness (Convex omits them at the ends). */
function isHarness(frame: FrameData): boolean {
  return frame.fileName !== null && frame.fileName.includes('convex/src/server/impl')
}

/**
 * One frame as Convex prints it (`impl Display for FrameData`). Convex's runtimes send
 * `isToplevel` where its backend reads `isTopLevel`, so every frame but a constructor is printed
 * as a method call: an unnamed function is `<anonymous> (loc)`, a method `move [as move] (loc)`.
 */
export function formatFrame(f: FrameData): string {
  let text = '    at '
  if (f.isAsync) text += 'async '
  if (f.isPromiseAll && f.promiseIndex !== null) text += `Promise.all (index ${f.promiseIndex})`
  if (f.isConstructor) text += `new ${f.functionName ?? '<anonymous>'}`
  else if (f.functionName !== null) {
    if (f.typeName !== null && f.functionName.startsWith(f.typeName)) text += `${f.typeName}.`
    text += f.functionName
    if (f.methodName !== null && f.functionName.endsWith(f.methodName)) text += ` [as ${f.methodName}]`
  } else {
    if (f.typeName !== null) text += `${f.typeName}.`
    text += f.methodName ?? '<anonymous>'
  }
  return `${text} (${formatLocation(f)})`
}

/** A frame's place as Convex prints it (after Deno's `formatLocation`). */
function formatLocation(f: FrameData): string {
  if (f.isNative) return 'native'
  let text = f.fileName ?? (f.isEval && f.evalOrigin !== null ? `${f.evalOrigin}, <anonymous>` : '<anonymous>')
  if (f.lineNumber !== null) {
    text += `:${f.lineNumber}`
    if (f.columnNumber !== null) text += `:${f.columnNumber}`
  }
  return text
}

/** Frames read back from V8's `stack` text (for an error whose frames were not captured). */
export function parseStack(stack: string | undefined): FrameData[] {
  if (stack === undefined) return []
  const frames: FrameData[] = []
  for (const raw of stack.split('\n')) {
    const m = FRAME.exec(raw)
    if (m === null) continue
    const [, isAsync, isNew, name, inParens, bare] = m
    const location = inParens ?? bare ?? ''
    const at = LOCATION.exec(location)
    frames.push({
      typeName: null,
      functionName: name ?? null,
      methodName: null,
      fileName: at !== null ? at[1]! : location === 'native' || location === '<anonymous>' ? null : location,
      lineNumber: at !== null ? Number(at[2]) : null,
      columnNumber: at !== null ? Number(at[3]) : null,
      evalOrigin: null,
      isEval: false,
      isNative: location === 'native',
      isConstructor: isNew !== undefined,
      isAsync: isAsync !== undefined,
      isPromiseAll: false,
      promiseIndex: null,
    })
  }
  return frames
}

/** Convex's "Uncaught …" line for a thrown value's name and message. */
export function uncaughtMessage(name: string | undefined, message: string | undefined): string {
  const n = name ?? ''
  const msg = message ?? ''
  // As Convex, also when the message is a nested call's error text, rethrown by the caller:
  // `Uncaught ConvexError: Uncaught ConvexError: boom\n    at …\n`.
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
