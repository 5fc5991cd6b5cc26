/**
 * @module Refusing an oversized body before the client sends it, where HTTP allows it. A client
 * that sends `Expect: 100-continue` waits for the server's go-ahead before the body: a declared
 * length past the route's limit is answered 413 at once (and the connection closed), so the client
 * reads the refusal instead of failing mid-upload with EPIPE. Bodies sent without asking are
 * refused as they are read (http-app.ts, site-app.ts).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http'

export interface Refusal {
  readonly contentType: string
  readonly body: string
}

export function refuseOversizedEarly(server: Server, limitFor: (method: string, path: string) => number, refusal: (declared: number, limit: number) => Refusal): void {
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    const declared = Number(req.headers['content-length'])
    const limit = limitFor(req.method ?? 'GET', (req.url ?? '/').split('?')[0]!)
    if (Number.isFinite(declared) && declared > limit) {
      const { contentType, body } = refusal(declared, limit)
      res.writeHead(413, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), connection: 'close' })
      res.end(body)
      return
    }
    res.writeContinue()
    server.emit('request', req, res)
  })
}
