/**
 * The host's entry points (set on the global object by src/functions/isolate/isolate-host.ts
 * before this runtime runs), kept here and taken off the global object: function code reaches
 * the host only through the syscalls `Convex` offers, never by calling these itself (say, to tell
 * the host it took fewer rows of a query than it did).
 */
const g = globalThis as any

/** A synchronous syscall: its result as JSON text. */
export const callHostSync: (op: string, argsJson: string) => string = g.__hostSync
/** Queues an async syscall with the host (id 0: fire and forget). */
export const queueHostOp: (id: number, op: string, argsJson: string) => void = g.__hostOp
/** Reports the call's outcome: its value (result JSON text, when ok), and the rest of it (Outcome without `value`, plus logLines) as JSON. */
export const reportDone: (value: string | undefined, restJson: string) => void = g.__hostDone
/** A console line logged after the call returned (by the syscalls it left behind). */
export const reportLate: (line: string) => void = g.__hostLate

delete g.__hostSync
delete g.__hostOp
delete g.__hostDone
delete g.__hostLate
