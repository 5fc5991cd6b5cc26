/**
 * @module The call the host hands the sandbox runtime: one definition shared by both sides
 * (the host imports its types and one constant; no runtime code is bundled into the server).
 */

export interface CallSpec {
  kind: 'query' | 'mutation' | 'action' | 'httpAction'
  modulePath: string
  exportName: string
  argsJson: string
  seed: number
  nowMs: number
  snapshotTs: string | null
  requestId: string
  /**
   * Where the module set of the call's component begins (its definition's prefix, `_components/…/`;
   * '' for the app): an `import(…)` resolves within it, as each Convex component has modules of its own.
   */
  root?: string
  /**
   * For HTTP actions: the request, with its body (see BytesRef), or `streamed` when the body
   * arrives chunk by chunk as the action reads it (`concave/httpRequestRead`).
   */
  request?: { url: string; method: string; headers: [string, string][]; body: BytesRef | null; streamed?: boolean; routedPath?: string }
}

/**
 * Bytes in a syscall's JSON: base64 up to BODY_PIECE bytes; past that, staged on the receiving
 * side piece by piece (src/functions/staging.ts), and named by the staging id and length.
 */
export type BytesRef = string | { staged: number; length: number }

/** The most bytes one syscall carries between host and sandbox. */
export const BODY_PIECE = 1 << 20

/**
 * What a pushed module's `import(…)` calls instead: isolated-vm serves no dynamic imports, so the
 * host rewrites each one's `import` keyword to this global (src/functions/isolate/dynamic-import.ts)
 * before it compiles the module; the runtime defines it. The same length as `import` (`ɩ` is one
 * UTF-16 unit), so that every column a source map or a stack names stays where it was.
 */
export const DYNAMIC_IMPORT = '\u0269mport'

/** The async syscall a dynamic import makes: loads a module, answers its path (see IsolateHost). */
export const DYNAMIC_IMPORT_OP = 'module/import'
