/** @module The client a request came from, as Convex reads it for `ctx.meta.getRequestMetadata()`. */
import type { IncomingMessage } from 'node:http'
import type { Context } from 'hono'
import { getConnInfo } from '@hono/node-server/conninfo'

export interface ClientInfo {
  ip: string | null
  userAgent: string | null
}

/** `x-forwarded-for`'s first address, else the connection's peer; the `user-agent` header. */
function fromHeaders(forwardedFor: string | undefined, userAgent: string | undefined, peer: () => string | undefined): ClientInfo {
  const forwarded = forwardedFor?.split(',')[0]?.trim()
  let ip: string | null = forwarded ?? null
  if (ip === null) {
    try {
      ip = peer() ?? null
    } catch {
      ip = null // not served by a Node socket (e.g. app.request in tests)
    }
  }
  return { ip, userAgent: userAgent ?? null }
}

export function clientOf(c: Context): ClientInfo {
  return fromHeaders(c.req.header('x-forwarded-for'), c.req.header('user-agent'), () => getConnInfo(c).remote.address)
}

/** The same for a WebSocket upgrade request. */
export function clientOfUpgrade(req: IncomingMessage): ClientInfo {
  const header = (name: string) => {
    const v = req.headers[name]
    return Array.isArray(v) ? v[0] : v
  }
  return fromHeaders(header('x-forwarded-for'), header('user-agent'), () => req.socket.remoteAddress)
}
