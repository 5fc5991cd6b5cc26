/** @module The client a request came from, as Convex reads it for `ctx.meta.getRequestMetadata()`. */
import type { IncomingMessage } from 'node:http'
import type { Context } from 'hono'
import { getConnInfo } from '@hono/node-server/conninfo'

export interface ClientInfo {
  /**
   * The client's address, or how to read it: the connection's peer is looked up only if a function
   * asks (`ctx.meta.getRequestMetadata()`), not on every request.
   */
  ip: string | null | (() => string | null)
  userAgent: string | null
}

/** `x-forwarded-for`'s first address, else the connection's peer; the `user-agent` header. */
function fromHeaders(forwardedFor: string | undefined, userAgent: string | undefined, peer: () => string | undefined): ClientInfo {
  const forwarded = forwardedFor?.split(',')[0]?.trim()
  if (forwarded !== undefined) return { ip: forwarded, userAgent: userAgent ?? null }
  let looked: { ip: string | null } | null = null
  const ip = () => {
    if (looked === null) {
      try {
        looked = { ip: peer() ?? null }
      } catch {
        looked = { ip: null } // not served by a Node socket (e.g. app.request in tests)
      }
    }
    return looked.ip
  }
  return { ip, userAgent: userAgent ?? null }
}

export function clientOf(c: Context): ClientInfo {
  const incoming = (c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming
  return fromHeaders(c.req.header('x-forwarded-for'), c.req.header('user-agent'), () => incoming?.socket?.remoteAddress ?? getConnInfo(c).remote.address)
}

/** The same for a WebSocket upgrade request. */
export function clientOfUpgrade(req: IncomingMessage): ClientInfo {
  const header = (name: string) => {
    const v = req.headers[name]
    return Array.isArray(v) ? v[0] : v
  }
  return fromHeaders(header('x-forwarded-for'), header('user-agent'), () => req.socket.remoteAddress)
}
