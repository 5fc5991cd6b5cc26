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
