/** @module The sandbox runtime's source (runtime/index.ts, bundled), inlined at build time. */
declare const __CONCAVE_RUNTIME__: string
declare const __CONCAVE_REPL_WRAPPERS__: string

export const RUNTIME_SOURCE: string = __CONCAVE_RUNTIME__

/** `convex:/_system/repl/wrappers.js` (the `convex` package's `query`/`internalQuery`), for test queries. */
export const REPL_WRAPPERS_SOURCE: string = __CONCAVE_REPL_WRAPPERS__
