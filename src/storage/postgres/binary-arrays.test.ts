import { afterAll, beforeAll, expect, test } from 'vitest'
import pg from 'pg'
import { boolArray, byteaArray, int4Array, int8Array, textArray } from './binary-arrays.ts'
import { startPostgres, type PostgresCluster } from '../../../test/helpers/postgres.ts'

let cluster: PostgresCluster
let client: pg.Client
beforeAll(async () => {
  cluster = await startPostgres()
  client = new pg.Client({ connectionString: await cluster.newDatabase() })
  await client.connect()
})
afterAll(async () => {
  await client?.end()
  await cluster?.stop()
})

/** What Postgres reads a parameter of `type` as, given `value` (sent in binary), shown as text. */
async function received(type: string, value: Buffer): Promise<{ text: string | null; length: number | null }> {
  const { rows } = await client.query<{ text: string | null; length: number | null }>(`SELECT $1::${type}::text AS text, cardinality($1::${type}) AS length`, [value])
  return rows[0]!
}

test('Postgres reads each array as the values it was made of, NULL elements and the empty array included', async () => {
  const doc = JSON.stringify({ body: 'a "quoted" \\ back\\slash, {braces}, comma, ünïcödé 😀', n: 1 })
  const { rows } = await client.query<{ v: (string | null)[]; nulls: number }>('SELECT $1::text[] AS v, array_position($1::text[], NULL) AS nulls', [textArray([doc, null, '', 'NULL'])])
  expect(rows[0]).toEqual({ v: [doc, null, '', 'NULL'], nulls: 2 })
  expect(await received('int8[]', int8Array([0n, -1n, 9223372036854775807n, -9223372036854775808n, 1764786000000000000n]))).toEqual({ text: '{0,-1,9223372036854775807,-9223372036854775808,1764786000000000000}', length: 5 })
  expect(await received('int4[]', int4Array([0, -1, 2147483647, -2147483648]))).toEqual({ text: '{0,-1,2147483647,-2147483648}', length: 4 })
  expect(await received('bytea[]', byteaArray([Buffer.from([0, 1, 0xff]), Buffer.alloc(0), null]))).toEqual({ text: '{"\\\\x0001ff","\\\\x",NULL}', length: 3 })
  expect(await received('boolean[]', boolArray([true, false]))).toEqual({ text: '{t,f}', length: 2 })
  for (const [type, empty] of [['text[]', textArray([])], ['int8[]', int8Array([])], ['int4[]', int4Array([])], ['bytea[]', byteaArray([])], ['boolean[]', boolArray([])]] as const) {
    expect(await received(type, empty)).toEqual({ text: '{}', length: 0 })
  }
})

test('an array of another element type than the parameter is refused, not misread', async () => {
  await expect(client.query('SELECT $1::int8[]', [int4Array([1])])).rejects.toThrow(/binary data has array element type 23 \(integer\) instead of expected 20 \(bigint\)/)
})
