/** @module How a call's outcome is reported to the host; shared by the isolate runtime and the Node.js action worker. */
import { framesOf } from './frames.ts'
import type { FrameData } from './frames.ts'

/** How a pushed module is named in stack frames: `convex:/<path>` (the isolate and the Node worker alike). */
export const MODULE_URL_PREFIX = 'convex:/'

export interface Outcome {
  ok: boolean
  /** Result JSON text (Convex-encoded), when ok. */
  value?: string
  message?: string
  name?: string
  stack?: string
  /** The frames `stack` was built from, where the runtime's capture built it (runtime/frames.ts). */
  frames?: FrameData[]
  /** ConvexError data as JSON text. */
  data?: string
}

/** A thrown value as an Outcome; a ConvexError keeps its data (JSON text). */
export function describeError(e: unknown): Outcome {
  if (e !== null && typeof e === 'object') {
    const err = e as { message?: unknown; name?: unknown; stack?: unknown; data?: unknown; ConvexErrorSymbol?: unknown }
    const isConvexError = err.ConvexErrorSymbol === Symbol.for('ConvexError') || Symbol.for('ConvexError') in err
    // Reading `stack` builds it (and captures its frames) if nothing has yet.
    const stack = typeof err.stack === 'string' ? err.stack : undefined
    return {
      ok: false,
      message: String(err.message ?? e),
      name: typeof err.name === 'string' ? err.name : 'Error',
      stack,
      frames: framesOf(e),
      data: isConvexError ? (typeof err.data === 'string' ? err.data : JSON.stringify(err.data ?? null)) : undefined,
    }
  }
  // A thrown non-object: Convex says `Uncaught <value>`.
  return { ok: false, message: String(e), name: '' }
}

