/**
 * @module The `Authorization` header, read by Convex's rules (its backend's request extractor):
 * `Convex <admin key>` is an admin, `Bearer <token>` a user's JWT, both prefixes matched without
 * regard to case. Anything else is refused with a 400 before any key or token is checked: a value
 * that is not visible ASCII (`HeaderParseFailure`), one shorter than 7 characters
 * (`InvalidHeaderFailure`), and one that is neither (`InvalidAdminKey`, as Convex names it).
 */

import { badRequest } from '../util/http-error.ts'

export type AuthorizationHeader =
  | { readonly kind: 'none' }
  /** What follows `Convex `: the admin key, with an optional `:<base64 identity>` to act as. */
  | { readonly kind: 'admin'; readonly value: string }
  /** The JWT after `Bearer `, trimmed. */
  | { readonly kind: 'user'; readonly token: string }

/** Reads the header, throwing Convex's 400 (an HttpError) for a malformed one. */
export function parseAuthorizationHeader(header: string | undefined): AuthorizationHeader {
  if (header === undefined) return { kind: 'none' }
  // Node hands header bytes over as latin1; Convex can read only visible ASCII (and tab).
  if (/[^\t\x20-\x7e]/.test(header)) throw badRequest('HeaderParseFailure', `Failed to parse header ${headerDebug(header)}`)
  if (header.length < 7) throw badRequest('InvalidHeaderFailure', 'Invalid authentication header')
  const prefix = header.slice(0, 7).toLowerCase()
  if (prefix === 'convex ') return { kind: 'admin', value: header.slice(7).trim() }
  if (prefix !== 'bearer ' || header.length === 7) throw badRequest('InvalidAdminKey', 'Invalid admin key')
  return { kind: 'user', token: header.slice(7).trim() }
}

/** A header value as Convex's error names it: quoted, with `"` escaped and other bytes as `\xNN`. */
function headerDebug(value: string): string {
  let out = '"'
  for (const ch of value) {
    const b = ch.charCodeAt(0)
    if (ch === '"') out += '\\"'
    else if ((b >= 0x20 && b < 0x7f) || b === 0x09) out += ch
    else out += `\\x${b.toString(16)}`
  }
  return `${out}"`
}
