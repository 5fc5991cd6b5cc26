/** @module The sandbox runtime's source (runtime/index.ts, bundled), inlined at build time. */
declare const __CONCAVE_RUNTIME__: string

export const RUNTIME_SOURCE: string = __CONCAVE_RUNTIME__
