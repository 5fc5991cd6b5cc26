/**
 * @module What push analysis learns from a loaded module's exports: its registered functions
 * (kind, visibility, argument and return validators), and the routes of `http.js` and the jobs of
 * `crons.js`. Shared by the isolate runtime and the Node.js action worker.
 */

export interface ModuleAnalysis {
  functions: { name: string; udfType: 'Query' | 'Mutation' | 'Action'; visibility: { kind: 'public' | 'internal' }; args: string | null; returns: string | null }[]
  httpRoutes: { path: string; method: string }[] | null
  /** Why the module's default export is no HTTP router, in Convex's words (what a push of it as `http.js` fails with); null if it is one. */
  routerProblem: string | null
  crons: unknown
}

export function analyzeModule(_path: string, ns: Record<string, any>): ModuleAnalysis {
  const functions: unknown[] = []
  let httpRoutes: unknown = null
  let crons: unknown = null
  for (const [name, fn] of Object.entries(ns)) {
    if ((typeof fn !== 'function' && typeof fn !== 'object') || fn === null) continue
    // As Convex: an export is a function when exactly one of isQuery/isMutation/isAction is on it
    // (an `httpAction` is none of them: HTTP actions are reached through the router, never listed).
    const has = (k: string) => k in (fn as object)
    const kinds = [has('isQuery') && 'Query', has('isMutation') && 'Mutation', has('isAction') && 'Action'].filter((k): k is ModuleAnalysis['functions'][number]['udfType'] => k !== false)
    // Any module's default router or crons is reported: the push uses those of `http.js` and
    // `crons.js` at the root of the app or of a component definition (whose modules sit under a prefix).
    if (name === 'default' && (fn as any).isRouter === true) {
      httpRoutes = (fn as any).getRoutes().map(([p, m]: [string, string]) => ({ path: p, method: m }))
    }
    if (name === 'default' && (fn as any).isCrons === true) crons = JSON.parse((fn as any).export())
    if (kinds.length !== 1) continue
    const udfType = kinds[0]!
    const isPublic = has('isPublic')
    const isInternal = has('isInternal')
    // Neither (a function made by an old `convex` package) or both: not callable, so not listed.
    if (isPublic === isInternal) continue
    functions.push({
      name,
      udfType,
      visibility: { kind: isPublic ? 'public' : 'internal' },
      args: typeof (fn as any).exportArgs === 'function' ? (fn as any).exportArgs() : null,
      returns: typeof (fn as any).exportReturns === 'function' ? (fn as any).exportReturns() : null,
    })
  }
  const router = ns.default as { isRouter?: unknown } | undefined
  const routerProblem = !('default' in ns)
    ? '`convex/http.js` must have a default export of a Router.'
    : router === null || (typeof router !== 'object' && typeof router !== 'function') || router.isRouter !== true
      ? 'The default export of `convex/http.js` is not a Router.'
      : null
  return { functions: functions as ModuleAnalysis['functions'], httpRoutes: httpRoutes as ModuleAnalysis['httpRoutes'], routerProblem, crons }
}
