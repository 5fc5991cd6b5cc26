/** @module Errors raised by the database layer that carry a user-facing message. */

/** A user-visible failure of a database operation (bad id, schema mismatch, limits…). */
export class DatabaseError extends Error {
  override name = 'DatabaseError'
}

/** The transaction read something a concurrent commit changed; the runner retries it. */
export class OccConflictError extends Error {
  override name = 'OccConflictError'
  constructor() {
    super('Documents read from or written to this transaction changed while it was being run')
  }
}
