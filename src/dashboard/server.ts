/**
 * @module The dashboard's own port (`--dashboard-port`, default 6791): the built page
 * (dist/dashboard/, made by scripts/build.mjs from src/dashboard/app) and `/config.json`, which
 * tells the page where the deployment is. Nothing else: the page talks to the deployment itself,
 * through its sync socket and admin routes, with the admin key the user signs in with. No file
 * comes from anywhere but here (no CDN, fonts or scripts from outside).
 *
 * Each file is sent compressed (brotli, else gzip) to a browser that accepts it: the script is
 * ~340 KiB as built, ~95 KiB in brotli. Each encoding is made once, off the event loop, and kept.
 *
 * The files are read from `dashboard/` beside the bundle (dist/backend-main.js), or, in the single
 * executable (scripts/package.mjs), from its SEA assets `dashboard/<name>`.
 */
import { readFileSync } from 'node:fs'
import { promisify } from 'node:util'
import { brotliCompress, constants as zlib, gzip } from 'node:zlib'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import * as sea from 'node:sea'
import { Hono } from 'hono'
import { serve } from '@hono/node-server'
import type { ServerType } from '@hono/node-server'

/** The files of the built dashboard (scripts/build.mjs writes these into dist/dashboard/). */
export const DASHBOARD_FILES = ['index.html', 'app.js', 'app.css', 'favicon.svg'] as const

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
}

export interface DashboardOptions {
  /** The deployment URL as configured (`--convex-origin`), or undefined: the page then uses its own host and `apiPort`. */
  readonly convexOrigin: () => string | undefined
  readonly siteOrigin: () => string | undefined
  readonly apiPort: number
  readonly sitePort: number
  readonly version: string
  /** Where the built files are (default: `dashboard/` beside this bundle, or the executable's assets). */
  readonly dir?: string
}

/** Reads one built file, or null when this build has no dashboard in it. */
function loader(dir: string | undefined): (name: string) => Buffer | null {
  const inSea = dir === undefined && sea.isSea()
  const base = dir ?? join(fileURLToPath(new URL('.', import.meta.url)), 'dashboard')
  const cache = new Map<string, Buffer | null>()
  return (name) => {
    if (!cache.has(name)) {
      let data: Buffer | null
      try {
        data = inSea ? Buffer.from(sea.getAsset(`dashboard/${name}`)) : readFileSync(join(base, name))
      } catch {
        data = null
      }
      cache.set(name, data)
    }
    return cache.get(name)!
  }
}

const brotli = promisify(brotliCompress)
const gzipped = promisify(gzip)

type Encoding = 'br' | 'gzip'

/** The encoding to send, from the request's Accept-Encoding: brotli, else gzip, else none (one with q=0 is refused). */
export function chooseEncoding(acceptEncoding: string | undefined): Encoding | null {
  const accepted = new Set<string>()
  for (const part of (acceptEncoding ?? '').split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';')
    const q = params.map((p) => /^\s*q=([\d.]+)\s*$/.exec(p)?.[1]).find((v) => v !== undefined)
    if (name && (q === undefined || Number(q) > 0)) accepted.add(name)
  }
  return accepted.has('br') ? 'br' : accepted.has('gzip') ? 'gzip' : null
}

/** Each file's compressed forms, made once (asynchronously, in libuv's pool) and kept. */
function compressor(): (name: string, data: Buffer, encoding: Encoding) => Promise<Buffer> {
  const cache = new Map<string, Promise<Buffer>>()
  return (name, data, encoding) => {
    const key = `${encoding}:${name}`
    let out = cache.get(key)
    if (out === undefined) {
      out = encoding === 'br' ? brotli(data, { params: { [zlib.BROTLI_PARAM_QUALITY]: 9, [zlib.BROTLI_PARAM_SIZE_HINT]: data.length } }) : gzipped(data, { level: 9 })
      cache.set(key, out)
    }
    return out
  }
}

export function createDashboardApp(opts: DashboardOptions): Hono {
  const read = loader(opts.dir)
  const compressed = compressor()
  const app = new Hono()
  const headers = (type: string): Record<string, string> => ({
    'content-type': type,
    'cache-control': 'no-cache',
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    // Scripts and styles from this port only; the page talks to the deployment (another port, maybe another host).
    'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob: http: https:; connect-src 'self' http: https: ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  })
  app.get('/config.json', (c) =>
    c.json(
      { deploymentUrl: opts.convexOrigin() ?? null, apiPort: opts.apiPort, siteUrl: opts.siteOrigin() ?? null, sitePort: opts.sitePort, version: opts.version },
      200,
      { 'cache-control': 'no-store' },
    ),
  )
  app.get('*', async (c) => {
    const path = c.req.path === '/' ? 'index.html' : c.req.path.slice(1)
    // Any other path is a page of the app (client-side routes): it gets index.html.
    const name = (DASHBOARD_FILES as readonly string[]).includes(path) ? path : 'index.html'
    const file = read(name)
    if (file === null) return c.text('This build of the backend has no dashboard (run `npm run build`).', 404)
    const type = TYPES[name.split('.').pop()!] ?? 'application/octet-stream'
    const encoding = chooseEncoding(c.req.header('accept-encoding'))
    if (encoding === null) return c.body(new Uint8Array(file), 200, { ...headers(type), vary: 'accept-encoding' })
    const body = await compressed(name, file, encoding)
    return c.body(new Uint8Array(body), 200, { ...headers(type), vary: 'accept-encoding', 'content-encoding': encoding })
  })
  app.all('*', (c) => c.text('Method not allowed', 405))
  return app
}

/** Listens on `port`; a port that is taken fails with a message that says how to choose another. */
export function serveDashboard(fetch: (req: Request) => Response | Promise<Response>, port: number, hostname: string): Promise<ServerType> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch, port, hostname }, () => resolve(server))
    server.once('error', (e: NodeJS.ErrnoException) => {
      reject(e.code === 'EADDRINUSE' ? new Error(`The dashboard port ${port} is in use: choose another with --dashboard-port (env DASHBOARD_PORT), or 0 to serve no dashboard`) : e)
    })
  })
}
