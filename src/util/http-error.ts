/**
 * @module Errors answered over HTTP in Convex's shape: `{"code": "...", "message": "..."}` with a
 * status. Below every layer, so that any of them (auth's permission checks, say) can raise one;
 * src/http answers them.
 */

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
