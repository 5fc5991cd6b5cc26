/**
 * The host's entry points (set on the global object by src/functions/isolate/isolate-host.ts
 * before this runtime runs), kept here and taken off the global object: function code reaches
 * the host only through the syscalls `Convex` offers, never by calling these itself (say, to tell
 * the host it took fewer rows of a query than it did).
 */
import { framesOf } from './frames.ts'

const g = globalThis as any

/** A synchronous syscall: its result as JSON text. */
export const callHostSync: (op: string, argsJson: string) => string = g.__hostSync
/** Queues an async syscall with the host (id 0: fire and forget). */
export const queueHostOp: (id: number, op: string, argsJson: string) => void = g.__hostOp
/** Reports the call's outcome: its value (result JSON text, when ok), and the rest of it (Outcome without `value`, plus logLines) as JSON. */
export const reportDone: (value: string | undefined, restJson: string) => void = g.__hostDone
/** A console line logged after the call returned (by the syscalls it left behind). */
export const reportLate: (line: string) => void = g.__hostLate

let ended = false

/** Whether the running call was ended by throwUncatchable (what it still does is in vain: its lines are dropped). */
export const callEnded = (): boolean => ended

/** A new call begins. */
export function resetEnded(): void {
  ended = false
}

/**
 * Ends the running call through the host's `op`, whatever the code does with errors (Convex's
 * uncatchable developer errors): the host fails the call once the code yields to it; the error
 * thrown here only unwinds the code until then.
 */
export function endCall(op: string, argsJson: string): never {
  ended = true
  callHostSync(op, argsJson)
  throw new Error(`${op} did not end the call`)
}

/**
 * Ends the running call with `message` and the frames where this was called (Convex's
 * UncatchableDeveloperError: a builtin it doesn't implement).
 */
export function throwUncatchable(message: string): never {
  const here = new Error(message)
  // Reading `stack` captures the frames (runtime/frames.ts).
  void here.stack
  return endCall('concave/uncatchable', JSON.stringify({ message, frames: framesOf(here) ?? [] }))
}

delete g.__hostSync
delete g.__hostOp
delete g.__hostDone
delete g.__hostLate
