/** @module One transaction on a Postgres connection, for the Postgres store and its blob store. */
import type { Pool, PoolClient } from 'pg'

/**
 * Runs `body` in one transaction on `client`: committed if it resolves, rolled back if it throws.
 * Throws the rollback's own failure as `broken` on the error (the connection is then unusable).
 */
export async function inTransactionOn<R>(client: PoolClient, body: (db: PoolClient) => Promise<R>): Promise<R> {
  await client.query('BEGIN')
  try {
    const result = await body(client)
    await client.query('COMMIT')
    return result
  } catch (e) {
    await client.query('ROLLBACK').catch((r: Error) => {
      if (e !== null && typeof e === 'object') (e as { broken?: Error }).broken = r
    })
    throw e
  }
}

/**
 * Runs `body` in one transaction on a connection of `pool`: committed if it resolves, rolled back
 * if it throws (a connection the rollback itself fails on is dropped from the pool).
 */
export async function inTransaction<R>(pool: Pool, body: (db: PoolClient) => Promise<R>): Promise<R> {
  const client = await pool.connect()
  let broken: Error | undefined
  try {
    return await inTransactionOn(client, body)
  } catch (e) {
    broken = (e as { broken?: Error } | null)?.broken
    throw e
  } finally {
    client.release(broken)
  }
}
