/**
 * @module The checks `new Response()` makes of a status and status text (with fetch's messages),
 * shared by the sandbox's Response and the host, which checks again what an HTTP action hands it
 * (user code can change a Response's fields after it is made).
 */

/** A reason phrase (RFC 9110): tabs, spaces, visible ASCII and obs-text. */
const REASON_PHRASE = /^[\t\x20-\x7e\x80-\xff]*$/

export function checkResponseHead(status: unknown, statusText: unknown): void {
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 200 || status > 599) {
    throw new RangeError('init["status"] must be in the range of 200 to 599, inclusive.')
  }
  if (typeof statusText !== 'string' || !REASON_PHRASE.test(statusText)) throw new TypeError('Invalid statusText')
}
