/**
 * @module The HTTP actions server (port 3211, and `/http/...` on the API port): every request is
 * routed through the pushed `convex/http.ts` router.
 */
import { Hono } from 'hono'
import type { Context } from 'hono'
import { readLimited } from './body.ts'
import type { FunctionRunner } from '../functions/function-runner.ts'

/** Largest HTTP action request body read (Convex's limit is 20 MiB). */
const MAX_REQUEST_BODY = 20 * 1024 * 1024

export interface SiteDeps {
  readonly runner: FunctionRunner
  /** The public origin requests are addressed to (`CONVEX_SITE_ORIGIN`). */
  readonly siteUrl: () => string
}

/** Answers one request with the router's response; `prefix` is stripped from the path first. */
export async function serveHttpAction(c: Context, deps: SiteDeps, prefix = ''): Promise<Response> {
  const incoming = new URL(c.req.url)
  const path = incoming.pathname.slice(prefix.length) || '/'
  const url = `${deps.siteUrl().replace(/\/$/, '')}${path}${incoming.search}`
  let body: Buffer | null = null
  if (c.req.method !== 'GET' && c.req.method !== 'HEAD' && c.req.raw.body !== null) {
    body = await readLimited(c.req.raw.body, MAX_REQUEST_BODY)
    if (body === null) {
      c.header('connection', 'close')
      return c.text(`Request body is too large (limit ${MAX_REQUEST_BODY} bytes)`, 413)
    }
  }
  const headers: [string, string][] = []
  c.req.raw.headers.forEach((v, k) => headers.push([k, v]))
  const res = await deps.runner.runHttpAction({ url, method: c.req.method, headers, body })
  const out = new Headers()
  for (const [k, v] of res.headers) out.append(k, v)
  const noBody = c.req.method === 'HEAD' || res.status === 204 || res.status === 304
  return new Response(noBody ? null : new Uint8Array(res.body), { status: res.status, statusText: res.statusText, headers: out })
}

export function createSiteApp(deps: SiteDeps): Hono {
  const app = new Hono()
  app.all('*', (c) => serveHttpAction(c, deps))
  return app
}
