/**
 * The sandbox's URL operations (`url/*`, see runtime/url.ts), answered with Node's WHATWG URL as
 * Convex answers them with its `url` crate: parsing, the setters Convex supports, and form
 * encoding of search params. They need no call (a module's top level may parse URLs). Each answer
 * is `{"value": …}` or `{"typeError": message}` (Convex's messages).
 */

import type { UrlInfo, UrlUpdate as Update } from '../../runtime/url.ts'

function infoOf(url: URL): UrlInfo {
  return {
    scheme: url.protocol.slice(0, -1),
    hash: url.hash.startsWith('#') ? url.hash.slice(1) : url.hash,
    host: url.host,
    hostname: url.hostname,
    href: url.href,
    pathname: url.pathname,
    port: url.port,
    search: url.search.startsWith('?') ? url.search.slice(1) : url.search,
    username: url.username,
    password: url.password,
  }
}

function parse(href: string, base?: string): URL | null {
  try {
    return new URL(href, base)
  } catch {
    return null
  }
}


function update(original: string, change: Update): UrlInfo | { typeError: string } {
  let url = parse(original)
  if (url === null) return { typeError: `Invalid URL: '${original}'` }
  // Setters whose input Convex drops when invalid; a value given without its `#`/`?` prefix is
  // prefixed, so that a value starting with one keeps it.
  if ('hash' in change) url.hash = change.hash === null ? '' : `#${change.hash}`
  else if ('hostname' in change) {
    if (change.hostname !== null) url.hostname = change.hostname
  } else if ('href' in change) {
    const next = parse(change.href)
    if (next === null) return { typeError: `Could not parse URL: ${original}` }
    url = next
  } else if ('protocol' in change) url.protocol = change.protocol
  else if ('port' in change) {
    if (change.port === '') url.port = ''
    else if (/^\d+$/.test(change.port) && Number(change.port) <= 65_535) url.port = change.port
  } else if ('pathname' in change) url.pathname = change.pathname
  else if ('search' in change) url.search = change.search === null ? '' : `?${change.search}`
  else if ('searchParams' in change) url.search = change.searchParams.length === 0 ? '' : `?${new URLSearchParams(change.searchParams).toString()}`
  return infoOf(url)
}

/** Answers a `url/*` operation; undefined for any other. */
export function urlOp(op: string, argsJson: string): string | undefined {
  if (!op.startsWith('url/')) return undefined
  const args = JSON.parse(argsJson) as unknown[]
  switch (op) {
    case 'url/getUrlInfo': {
      const [href, base] = args as [string, string | null]
      if (base !== null && parse(base) === null) return JSON.stringify({ typeError: `Invalid URL: '${base}'` })
      const url = parse(href, base ?? undefined)
      return JSON.stringify(url === null ? { typeError: `Invalid URL: '${href}'` } : { value: infoOf(url) })
    }
    case 'url/updateUrlInfo': {
      const out = update(args[0] as string, args[1] as Update)
      return JSON.stringify('typeError' in out ? out : { value: out })
    }
    case 'url/getUrlSearchParamPairs':
      return JSON.stringify({ value: [...new URLSearchParams(args[0] as string)] })
    case 'url/stringifyUrlSearchParams':
      return JSON.stringify({ value: new URLSearchParams(args[0] as [string, string][]).toString() })
  }
  return undefined
}
