/**
 * @module The sync socket: WebSocket upgrades on `/api/<client version>/sync` and `/api/sync`
 * of the API port, one Session per socket.
 */
import type { IncomingMessage, Server } from 'node:http'
import type { Duplex } from 'node:stream'
import { WebSocketServer } from 'ws'
import { PING_AFTER_MS, Session } from './session.ts'
import { clientOfUpgrade } from '../http/client-info.ts'
import type { SessionDeps } from './session.ts'

/** Largest client frame accepted (a mutation's arguments can be up to 16 MiB). */
const MAX_FRAME = 20 * 1024 * 1024

const SYNC_PATH = /^\/api\/(?:[^/]+\/)?sync$/

export interface SyncServer {
  /** Refuses new sockets and new mutations; resolves once the mutations taken are answered. */
  drain(): Promise<void>
  close(): void
  sessions(): number
}

export function attachSyncServer(server: Server, deps: SessionDeps): SyncServer {
  // No client tracking: `sessions` already knows every socket (and ws's Set adds a listener each).
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME, clientTracking: false })
  const sessions = new Set<Session>()
  let draining = false
  const forget = (session: Session) => void sessions.delete(session)
  // One timer for every socket's heartbeat, rather than one per socket.
  const heartbeat = setInterval(() => {
    const now = Date.now()
    for (const s of sessions) s.heartbeat(now)
  }, PING_AFTER_MS / 3)
  heartbeat.unref()
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? '').split('?')[0]!
    if (!SYNC_PATH.test(path)) {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n')
      return
    }
    if (draining) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      sessions.add(new Session(ws, deps, forget, clientOfUpgrade(req)))
    })
  })
  return {
    async drain() {
      draining = true
      await Promise.all([...sessions].map((s) => s.drain()))
    },
    close() {
      clearInterval(heartbeat)
      for (const session of sessions) session.ws.close(1001, 'Server shutting down')
      wss.close()
    },
    sessions: () => sessions.size,
  }
}
