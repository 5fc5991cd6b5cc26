/**
 * @module A thrown error's stack as structured frames, read from V8's call sites through
 * `Error.prepareStackTrace` (as Convex's udf-runtime and Node executor do), so the host can print
 * them by Convex's rules (src/functions/errors.ts) rather than re-parse V8's text. Shared by the
 * isolate runtime and the Node.js action worker; each installs it with its own `stack` text.
 */

/** One frame, with the fields Convex's FrameData has (crates/common/src/errors.rs). */
export interface FrameData {
  typeName: string | null
  functionName: string | null
  methodName: string | null
  fileName: string | null
  lineNumber: number | null
  columnNumber: number | null
  evalOrigin: string | null
  isEval: boolean
  isNative: boolean
  isConstructor: boolean
  isAsync: boolean
  isPromiseAll: boolean
  promiseIndex: number | null
}

/** V8's call site (https://v8.dev/docs/stack-trace-api), the methods read here. */
export interface CallSite {
  getTypeName(): string | null
  getFunctionName(): string | null
  getMethodName(): string | null
  getFileName(): string | null | undefined
  getLineNumber(): number | null
  getColumnNumber(): number | null
  getEvalOrigin(): string | undefined
  isEval(): boolean
  isNative(): boolean
  isConstructor(): boolean
  isAsync(): boolean
  isPromiseAll(): boolean
  getPromiseIndex(): number | null
  toString(): string
}

/** The frames each error's stack was built from (for errors whose `stack` was formatted). */
const captured = new WeakMap<object, FrameData[]>()

/**
 * Installs the capture: each error's frames are kept (`framesOf`), and its `stack` is what `text`
 * makes of them. `fileName` renames a frame's file (the Node worker's module folder).
 */
export function captureFrames(text: (error: unknown, sites: CallSite[], frames: FrameData[]) => string, fileName: (name: string | null) => string | null = (n) => n): void {
  ;(Error as { prepareStackTrace?: unknown }).prepareStackTrace = (error: unknown, sites: CallSite[]) => {
    const frames = sites.map((site) => frameOf(site, fileName(site.getFileName() ?? null)))
    if (error !== null && typeof error === 'object') captured.set(error, frames)
    return text(error, sites, frames)
  }
}

/** The frames an error's `stack` was built from; undefined when it was not built by the capture. */
export function framesOf(error: unknown): FrameData[] | undefined {
  return error !== null && typeof error === 'object' ? captured.get(error) : undefined
}

function frameOf(site: CallSite, fileName: string | null): FrameData {
  return {
    typeName: site.getTypeName(),
    functionName: site.getFunctionName(),
    methodName: site.getMethodName(),
    fileName,
    lineNumber: site.getLineNumber(),
    columnNumber: site.getColumnNumber(),
    evalOrigin: site.getEvalOrigin() ?? null,
    isEval: site.isEval(),
    isNative: site.isNative(),
    isConstructor: site.isConstructor(),
    isAsync: site.isAsync(),
    isPromiseAll: site.isPromiseAll(),
    promiseIndex: site.getPromiseIndex(),
  }
}

const captureStackTrace = (Error as { captureStackTrace?: (target: object, below?: Function) => void }).captureStackTrace

/**
 * The file of the code that called `below` (`convex:/messages.js`), or null: read from V8's call
 * site, whatever the code did to `Error`'s stack settings (they are put back).
 */
export function callerFileName(below: Function): string | null {
  const E = Error as { prepareStackTrace?: unknown; stackTraceLimit?: number }
  const prepare = E.prepareStackTrace
  const limit = E.stackTraceLimit
  const holder: { stack?: unknown } = {}
  try {
    E.prepareStackTrace = (_error: unknown, sites: CallSite[]) => sites
    E.stackTraceLimit = 1
    captureStackTrace?.(holder, below)
    const sites = holder.stack as CallSite[] | undefined
    return sites?.[0]?.getFileName() ?? null
  } finally {
    E.prepareStackTrace = prepare
    E.stackTraceLimit = limit
  }
}
