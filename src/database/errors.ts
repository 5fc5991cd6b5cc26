/** @module Errors raised by the database layer that carry a user-facing message. */

/** A user-visible failure of a database operation (bad id, schema mismatch, limits…). */
export class DatabaseError extends Error {
  override name = 'DatabaseError'
}

/** Convex's error for a query on an index declared `staged: true` (until a push enables it). */
export function stagedIndex(name: string): DatabaseError {
  return new DatabaseError(`Index ${name} is currently staged and not available to query until it is enabled.`)
}

/**
 * A failure of the system, not of the function (Convex's ErrorMetadata codes such as Overloaded):
 * it ends the call whatever the function does with errors (thrown by a syscall, it ends the run
 * in the sandbox: `terminatesCall`). HTTP answers it 503 `{code, message}`; a sync socket is
 * closed with 1013 ("try again later") and `code` as the reason, and the client sends its
 * mutation again.
 */
export class SystemFailure extends Error {
  override name = 'SystemFailure'
  readonly terminatesCall = true
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

/**
 * A developer error Convex lets no code catch: a query's or mutation's use of what only actions
 * may do (a timer, fetch), a builtin Convex doesn't implement. It ends the call whatever the code
 * does with it (thrown by a syscall: `terminatesCall`, in actions too), with its own message.
 */
export class UncatchableError extends DatabaseError {
  override name = 'UncatchableError'
  readonly terminatesCall = true
  /** `frames`: where the code called what ended it, mapped to the app's sources (as Convex's UncatchableDeveloperError has them), if known. */
  constructor(
    message: string,
    readonly frames: string | null = null,
  ) {
    super(message)
  }
}

/** Convex's error for what a query or mutation may not use (`not_allowed_in_udf`): `what` as Convex names it (`setTimeout`, `fetch()`). */
export function notAllowedInUdf(what: string): UncatchableError {
  return new UncatchableError(`Can't use ${what} in queries and mutations. Please consider using an action. See https://docs.convex.dev/functions/actions for more details.`)
}

/** The transaction read something a concurrent commit changed; the runner retries it. */
export class OccConflictError extends Error {
  override name = 'OccConflictError'
  /** Thrown by a syscall, it ends the run (see SystemFailure): the attempt is over. */
  readonly terminatesCall = true
  constructor() {
    super('Documents read from or written to this transaction changed while it was being run')
  }
}

/**
 * A read at a timestamp whose history is no longer kept (`/api/query_at_ts` before the history
 * horizon, or too far back). Convex answers it as an out-of-retention error: HTTP 503 with its
 * generic internal-error text, the timestamp only in the server's log.
 */
export class OutOfRetentionError extends Error {
  override name = 'OutOfRetentionError'
  constructor(readonly ts: bigint) {
    super(`Timestamp ${ts} is too early, retry with a higher timestamp`)
  }
}
