/**
 * @module The call the host hands the sandbox runtime: one definition shared by both sides
 * (the host imports it as a type only, so nothing of runtime/ is bundled into the server).
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
   * For HTTP actions: the request, with its body as base64, or `streamed` when the body arrives
   * chunk by chunk as the action reads it (`concave/httpRequestRead`).
   */
  request?: { url: string; method: string; headers: [string, string][]; body: string | null; streamed?: boolean; routedPath?: string }
}
