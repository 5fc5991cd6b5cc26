/** @module One transaction on a pooled Postgres connection, for the Postgres store and its blob store. */
import type { Pool, PoolClient } from 'pg'

/**
 * Runs `body` in one transaction on a connection of `pool`: committed if it resolves, rolled back
 * if it throws (a connection the rollback itself fails on is dropped from the pool).
 */
export async function inTransaction<R>(pool: Pool, body: (db: PoolClient) => Promise<R>): Promise<R> {
  const client = await pool.connect()
  let broken: Error | undefined
  try {
    await client.query('BEGIN')
    const result = await body(client)
    await client.query('COMMIT')
    return result
  } catch (e) {
    await client.query('ROLLBACK').catch((r: Error) => (broken = r))
    throw e
  } finally {
    client.release(broken)
  }
}
