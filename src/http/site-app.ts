/**
 * @module The HTTP actions server (port 3211, and `/http/...` on the API port): every request is
 * routed through the pushed `convex/http.ts` router.
 */
import { Hono } from 'hono'
import { checkResponseHead } from '../../runtime/http-head.ts'
import type { Context } from 'hono'
import { BodyBudgetError, readLimited, refuseBody } from './body.ts'
import type { BodyBudget, BodyHold } from './body.ts'
import { isClientAbort } from './errors.ts'
import { MAX_HTTP_ACTION_BODY } from './limits.ts'
import type { FunctionRunner } from '../functions/function-runner.ts'
import { authFailureIdentity } from '../functions/syscalls.ts'
import { clientOf } from './client-info.ts'
import { actingAsIdentity } from '../auth/auth.ts'
import type { Auth } from '../auth/auth.ts'
import { operationNotPermitted, permits } from '../auth/admin-permissions.ts'
import { splitAdminAuthorization } from '../../keybroker/index.ts'
import type { AdminKeyKind } from '../../keybroker/index.ts'
import { parseAuthorizationHeader } from './auth-header.ts'

/** A chunked body, passed through as the action reads it until it passes `limit` bytes. */
function limitedStream(body: ReadableStream<Uint8Array>, limit: number): ReadableStream<Uint8Array> {
  let size = 0
  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        size += chunk.byteLength
        if (size > limit) controller.error(new Error(`Request body is too large (limit ${limit} bytes)`))
        else controller.enqueue(chunk)
      },
    }),
  )
}

export interface SiteDeps {
  readonly runner: FunctionRunner
  /** Verifies `Authorization: Bearer <jwt>`, whose identity `ctx.auth.getUserIdentity()` returns. */
  readonly auth: Auth
  /** The kind of a `Convex <admin key>` header's key (null: not this instance's). */
  readonly adminKey: (key: string) => AdminKeyKind | null
  /** The public origin requests are addressed to (`CONVEX_SITE_ORIGIN`). */
  readonly siteUrl: () => string
  readonly log?: { info(message: string, fields?: Record<string, unknown>): void; error(message: string, fields?: Record<string, unknown>): void }
  /** Bounds the bytes of request bodies held at once (a body of known length is read whole). */
  readonly bodyBudget?: BodyBudget | undefined
}

/** Answers one request with the router's response; `prefix` is stripped from the path first. */
export async function serveHttpAction(c: Context, deps: SiteDeps, prefix = ''): Promise<Response> {
  const hold = deps.bodyBudget?.hold()
  try {
    return await serve(c, deps, prefix, hold)
  } catch (e) {
    if (!(e instanceof BodyBudgetError)) throw e
    // A body that was not read to its end leaves the connection unable to carry another request.
    return c.json({ code: e.code, message: e.message }, 503, { 'retry-after': String(e.retryAfterSeconds), ...(e.drained ? {} : { connection: 'close' }) })
  } finally {
    // Answered (a streamed response has its head): the body's bytes go back to the budget.
    hold?.release()
  }
}

async function serve(c: Context, deps: SiteDeps, prefix: string, hold: BodyHold | undefined): Promise<Response> {
  const incoming = new URL(c.req.url)
  const path = incoming.pathname.slice(prefix.length) || '/'
  const url = `${deps.siteUrl().replace(/\/$/, '')}${path}${incoming.search}`
  // A body of known length is read whole before the action starts (one host call, not one per chunk);
  // a chunked one streams to the action as it reads.
  let body: Buffer | ReadableStream<Uint8Array> | null = null
  const raw = c.req.raw.body
  if (c.req.method !== 'GET' && c.req.method !== 'HEAD' && raw !== null) {
    const declared = c.req.header('content-length')
    if (declared === undefined) body = limitedStream(raw, MAX_HTTP_ACTION_BODY)
    else {
      // A declared length past the limit is refused before a byte is read, as is one the body
      // budget has no room for.
      if (Number(declared) <= MAX_HTTP_ACTION_BODY) {
        try {
          hold?.take(Number(declared))
        } catch (e) {
          if (e instanceof BodyBudgetError) await refuseBody(raw, MAX_HTTP_ACTION_BODY, e)
          throw e
        }
      }
      body = Number(declared) > MAX_HTTP_ACTION_BODY ? null : await readLimited(raw, MAX_HTTP_ACTION_BODY)
      if (body === null) {
        c.header('connection', 'close')
        return c.text(`Request body is too large (limit ${MAX_HTTP_ACTION_BODY} bytes)`, 413)
      }
    }
  }
  const headers: [string, string][] = []
  c.req.raw.headers.forEach((v, k) => headers.push([k, v]))
  const { who, authToken } = await httpActionIdentity(c.req.header('authorization'), deps)
  const res = await deps.runner.runHttpAction({ url, method: c.req.method, headers, body, signal: c.req.raw.signal }, who, undefined, { ...clientOf(c), authToken })
  const noBody = c.req.method === 'HEAD' || res.status === 204 || res.status === 304
  const stream = res.body instanceof ReadableStream ? res.body : null
  try {
    checkResponseHead(res.status, res.statusText)
    const out = new Headers()
    for (const [k, v] of res.headers) out.append(k, v)
    const resBody = noBody ? null : stream ?? new Uint8Array(res.body as Buffer)
    const response = new Response(resBody, { status: res.status, statusText: res.statusText, headers: out })
    if (noBody) void stream?.cancel().catch(() => {})
    return response
  } catch (e) {
    // The sandbox's Response checks these when it is made, so only one changed after lands here
    // (hono's Response checks nothing, and a bad head would fail mid-write); a streamed body is
    // cancelled, or the action would wait on a reader that never comes.
    void stream?.cancel().catch(() => {})
    return c.text(`The HTTP action's response is not a valid HTTP response: ${(e as Error)?.message ?? String(e)}`, 500)
  }
}

/**
 * The identity an HTTP action sees, read from the `Authorization` header as Convex reads it: a
 * `Bearer` token's, verified against auth.config.ts; an admin key's acting-as identity (none for a
 * plain admin). A request whose header is malformed, or whose token or key fails verification, is
 * still served (the header may be the app's own scheme); `getUserIdentity()` then throws why. The
 * JWT is reported (getRequestMetadata's authToken) only when it was a valid user's.
 */
async function httpActionIdentity(header: string | undefined, deps: SiteDeps): Promise<{ who: string; authToken: string | null }> {
  const failed = (e: unknown) => ({ who: authFailureIdentity(e instanceof Error ? e.message : String(e)), authToken: null })
  try {
    const parsed = parseAuthorizationHeader(header)
    if (parsed.kind === 'none') return { who: 'null', authToken: null }
    if (parsed.kind === 'user') return { who: JSON.stringify(await deps.auth.verify(parsed.token)), authToken: parsed.token }
    const { adminKey, actingAs } = splitAdminAuthorization(parsed.value)
    const kind = deps.adminKey(adminKey)
    if (kind === null) return failed('The provided admin key was invalid for this instance')
    if (actingAs === undefined) return { who: 'null', authToken: null }
    if (!permits(kind, 'ActAsUser')) return failed(operationNotPermitted('ActAsUser'))
    return { who: JSON.stringify(actingAsIdentity(actingAs)), authToken: null }
  } catch (e) {
    return failed(e)
  }
}

export function createSiteApp(deps: SiteDeps): Hono {
  const app = new Hono()
  app.onError((err, c) => {
    if (isClientAbort(err, c.req.raw)) {
      deps.log?.info('Client went away mid-request', { method: c.req.method, path: c.req.path })
      return c.body(null, 499 as never)
    }
    deps.log?.error('HTTP action request failed', { method: c.req.method, path: c.req.path, error: err instanceof Error ? (err.stack ?? err.message) : String(err) })
    return c.json({ code: 'InternalServerError', message: "Your request couldn't be completed. Try again later." }, 500)
  })
  app.all('*', (c) => serveHttpAction(c, deps))
  return app
}
