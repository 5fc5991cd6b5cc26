/** @module HTTP error bodies in Convex's shape (the error family lives in ../util/http-error.ts). */

export { badRequest, forbidden, HttpError, notFound, unauthorized } from '../util/http-error.ts'

/**
 * Whether a request failed because its client went away mid-request (the connection closed while
 * its body was being read): nothing to answer and nothing wrong with the backend, so no error log.
 */
export function isClientAbort(err: unknown, request: { readonly signal: { readonly aborted: boolean } }): boolean {
  if (request.signal.aborted) return true
  const e = err as { code?: unknown; message?: unknown } | null
  return e !== null && typeof e === 'object' && e.code === 'ECONNRESET' && e.message === 'aborted'
}
