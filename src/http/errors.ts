/** @module HTTP error bodies in Convex's shape: `{"code": "...", "message": "..."}`. */

/** An error answered with `status` and a `{code, message}` JSON body. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

export const badRequest = (code: string, message: string) => new HttpError(400, code, message)
export const unauthorized = (code: string, message: string) => new HttpError(401, code, message)
export const forbidden = (code: string, message: string) => new HttpError(403, code, message)
export const notFound = (message: string) => new HttpError(404, 'NotFound', message)

/**
 * Whether a request failed because its client went away mid-request (the connection closed while
 * its body was being read): nothing to answer and nothing wrong with the backend, so no error log.
 */
export function isClientAbort(err: unknown, request: Request): boolean {
  if (request.signal.aborted) return true
  const e = err as { code?: unknown; message?: unknown } | null
  return e !== null && typeof e === 'object' && e.code === 'ECONNRESET' && e.message === 'aborted'
}
