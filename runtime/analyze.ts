/**
 * @module What push analysis learns from a loaded module's exports: its registered functions
 * (kind, visibility, argument and return validators), and the routes of `http.js` and the jobs of
 * `crons.js`. Shared by the isolate runtime and the Node.js action worker.
 */

export interface ModuleAnalysis {
  functions: { name: string; udfType: 'Query' | 'Mutation' | 'Action' | 'HttpAction'; visibility: { kind: 'public' | 'internal' } | null; args: string | null; returns: string | null }[]
  httpRoutes: { path: string; method: string }[] | null
  crons: unknown
}

export function analyzeModule(path: string, ns: Record<string, any>): ModuleAnalysis {
  const functions: unknown[] = []
  let httpRoutes: unknown = null
  let crons: unknown = null
  for (const [name, fn] of Object.entries(ns)) {
    if ((typeof fn !== 'function' && typeof fn !== 'object') || fn === null) continue
    const own = (k: string) => Object.prototype.hasOwnProperty.call(fn, k)
    let udfType: string | null = null
    if (own('isAction') && own('invokeAction')) udfType = 'Action'
    else if (own('isQuery') && own('invokeQuery')) udfType = 'Query'
    else if (own('isMutation') && own('invokeMutation')) udfType = 'Mutation'
    else if (own('isHttp') && own('invokeHttpAction')) udfType = 'HttpAction'
    if (name === 'default' && path === 'http.js' && (fn as any).isRouter === true) {
      httpRoutes = (fn as any).getRoutes().map(([p, m]: [string, string]) => ({ path: p, method: m }))
    }
    if (name === 'default' && path === 'crons.js' && (fn as any).isCrons === true) crons = JSON.parse((fn as any).export())
    if (udfType === null) continue
    const isPublic = own('isPublic') && (fn as any).isPublic === true
    const isInternal = own('isInternal') && (fn as any).isInternal === true
    if (udfType !== 'HttpAction' && isPublic === isInternal) continue
    functions.push({
      name,
      udfType,
      visibility: udfType === 'HttpAction' ? null : { kind: isPublic ? 'public' : 'internal' },
      args: udfType === 'HttpAction' ? null : (fn as any).exportArgs(),
      returns: udfType === 'HttpAction' ? null : (fn as any).exportReturns(),
    })
  }
  return { functions: functions as ModuleAnalysis['functions'], httpRoutes: httpRoutes as ModuleAnalysis['httpRoutes'], crons }
}
