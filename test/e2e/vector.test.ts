/**
 * Vector search against Concave with the real CLI and client: `vectorIndex` in the schema,
 * `ctx.vectorSearch` from V8 and "use node" actions (cosine scores, limits, `q.eq`/`q.or`
 * filters, Convex's errors), entries kept in step with every commit, staged indexes of every
 * kind, restarts, and export/import of a vector-indexed table.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cleanup, convexCli, deploy, errorOf, startBackend } from '../helpers/test-backend.ts'
import type { TestBackend } from '../helpers/test-backend.ts'

const api = anyApi as any
let backend: TestBackend
let appDir: string | undefined
let pushOutput = ''
let client: ConvexHttpClient
const ids: Record<string, string> = {}
const vectors: Record<string, number[]> = {
  a: [1, 0, 0, 0],
  b: [0.9, 0.1, 0, 0],
  c: [0.5, 0.5, 0.5, 0.5],
  d: [0, 1, 0, 0],
  e: [-1, 0, 0.25, 0],
}
const Q = [1, 0.2, 0.1, 0]

function cosine(a: number[], b: number[]): number {
  let dot = 0
  let aa = 0
  let bb = 0
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!
    aa += a[i]! * a[i]!
    bb += b[i]! * b[i]!
  }
  return dot / Math.sqrt(aa * bb)
}

type Hit = { _id: string; _score: number }
const search = (args: Record<string, unknown>) => client.action(api.docs.search, { vector: Q, ...args }) as Promise<Hit[]>
/** The names of the hits, in order. */
const names = async (hits: Hit[]) => (await client.query(api.docs.names, { ids: hits.map((h) => h._id) })) as string[]
/** What the hits should be: every named document, scored here, best first. */
function expected(which: string[], vector = Q, vs = vectors): { names: string[]; scores: number[] } {
  const scored = which.map((n) => ({ n, s: cosine(vector, vs[n]!) })).sort((x, y) => y.s - x.s)
  return { names: scored.map((x) => x.n), scores: scored.map((x) => x.s) }
}
function expectScores(hits: Hit[], scores: number[]): void {
  expect(hits).toHaveLength(scores.length)
  // Scores are 32-bit floats, as in Convex.
  hits.forEach((h, i) => expect(h._score).toBeCloseTo(scores[i]!, 6))
}

beforeAll(async () => {
  backend = await startBackend()
  const pushed = await deploy(backend, 'vector')
  appDir = pushed.appDir
  pushOutput = pushed.stderr
  client = new ConvexHttpClient(backend.url)
  const docs: [string, string, number | undefined][] = [
    ['a', 'red', 1],
    ['b', 'blue', 2],
    ['c', 'red', undefined],
    ['d', 'green', 1],
    ['e', 'blue', 3],
  ]
  for (const [name, color, size] of docs) ids[name] = await client.mutation(api.docs.insert, { name, embedding: vectors[name], color, ...(size === undefined ? {} : { size }) })
}, 120_000)

afterAll(async () => {
  await backend?.stop()
  cleanup(backend?.dataDir)
  cleanup(appDir)
})

describe('push', () => {
  test('the CLI lists vector indexes and staged indexes of every kind', () => {
    expect(pushOutput).toContain('[+] docs.by_embedding (vector)   embedding (4 dimensions), filters on color, size')
    expect(pushOutput).toContain('[+] loose.by_embedding (vector)   embedding (3 dimensions)')
    expect(pushOutput).toContain('Added staged table indexes:')
    expect(pushOutput).toContain('[+] later.by_embedding (vector)   embedding (2 dimensions)  (staged)')
    expect(pushOutput).toContain('[+] later.by_tag   tag  (staged)')
    expect(pushOutput).toContain('[+] later.search_name (text)   name  (staged)')
  })
})

describe('vectorSearch', () => {
  test('from a V8 action: every document, by cosine similarity, with its score', async () => {
    const hits = await search({})
    const want = expected(['a', 'b', 'c', 'd', 'e'])
    expect(await names(hits)).toEqual(want.names)
    expect(hits.map((h) => h._id)).toEqual(want.names.map((n) => ids[n]))
    expectScores(hits, want.scores)
    expect(Object.keys(hits[0]!).sort()).toEqual(['_id', '_score'])
  })

  test('from a "use node" action: the same results', async () => {
    expect(await client.action(api.nodeSearch.search, { vector: Q })).toEqual(await search({}))
    expect(await names(await client.action(api.nodeSearch.search, { vector: Q, limit: 2, colors: ['red'] }))).toEqual(expected(['a', 'c']).names)
  })

  test('limit: the best N; 0 gives none', async () => {
    expect(await names(await search({ limit: 2 }))).toEqual(expected(['a', 'b', 'c', 'd', 'e']).names.slice(0, 2))
    expect(await search({ limit: 0 })).toEqual([])
    expect(await search({ limit: 256 })).toHaveLength(5)
  })

  test('filters: q.eq on a filter field; q.or of values of one field or of several fields', async () => {
    expect(await names(await search({ colors: ['red'] }))).toEqual(expected(['a', 'c']).names)
    expect(await names(await search({ colors: ['red', 'green'] }))).toEqual(expected(['a', 'c', 'd']).names)
    // An OR across fields: blue, or size 1.
    const either = await search({ colors: ['blue'], size: 1 })
    expect(await names(either)).toEqual(expected(['a', 'b', 'd', 'e']).names)
    expectScores(either, expected(['a', 'b', 'd', 'e']).scores)
    // A missing field equals undefined.
    expect(await names(await search({ size: null }))).toEqual(['c'])
    expect(await search({ colors: ['purple'] })).toEqual([])
    expect(await names(await search({ colors: ['red', 'blue'], limit: 1 }))).toEqual(expected(['a', 'b', 'c', 'e']).names.slice(0, 1))
  })

  test('a table that does not exist yet gives no results', async () => {
    expect(await search({ table: 'nothing_here', index: 'by_embedding' })).toEqual([])
  })

  test('only arrays of exactly `dimensions` float64s are indexed', async () => {
    await client.mutation(api.docs.addLoose, { name: 'ok', embedding: [0.5, 0.5, 0] })
    await client.mutation(api.docs.addLoose, { name: 'short', embedding: [0.5, 0.5] })
    await client.mutation(api.docs.addLoose, { name: 'long', embedding: [0.5, 0.5, 0, 0] })
    await client.mutation(api.docs.addLoose, { name: 'int64', embedding: [1n, 0n, 0n] })
    await client.mutation(api.docs.addLoose, { name: 'text', embedding: 'not a vector' })
    const hits = await search({ table: 'loose', vector: [1, 0, 0] })
    expect(hits).toHaveLength(1)
    expect(hits[0]!._score).toBeCloseTo(cosine([1, 0, 0], [0.5, 0.5, 0]), 6)
  })
})

describe('bad input fails with Convex’s messages', () => {
  const fails = async (args: Record<string, unknown>) => (await errorOf(search(args))).message

  test('a vector of the wrong length', async () => {
    expect(await fails({ vector: [1, 0, 0] })).toContain('Expected a vector with dimensions 4, received 3.')
    expect(await fails({ vector: new Array(4097).fill(1) })).toContain('Expected a vector with dimensions 4096, received 4097.')
  })

  test('a limit over 256', async () => {
    expect(await fails({ limit: 257 })).toContain('Vector queries can fetch at most 256 results, requested 257.')
  })

  test('a filter on a field not in filterFields, or on too many values', async () => {
    expect(await fails({ filterOn: 'name' })).toContain('Vector query against docs.by_embedding contains a filter on "name" but that field isn\'t indexed for filtering in `filterFields`.')
    const colors = Array.from({ length: 65 }, (_, i) => `c${i}`)
    expect(await fails({ colors })).toContain('Vector query against docs.by_embedding has too many conditions. Max: 64 Actual: 65')
    expect(await search({ colors: colors.slice(0, 64) })).toEqual([])
  })

  test('a filter other than q.eq and q.or', async () => {
    const err = await errorOf(client.action(api.docs.rawFilter, { vector: Q, expressions: JSON.stringify({ $neq: [{ $field: 'color' }, { $literal: 'red' }] }) }))
    expect(err.message).toContain('Filters should be a combination of `q.eq` and `q.or`.')
    const eq = await errorOf(client.action(api.docs.rawFilter, { vector: Q, expressions: JSON.stringify({ $eq: [{ $literal: 'red' }, { $field: 'color' }] }) }))
    expect(eq.message).toContain('`q.eq` must take a field path as its first argument and a value as its second')
  })

  test('a missing index, or one that is not a vector index', async () => {
    expect(await fails({ index: 'nope' })).toContain('Index docs.nope not found.')
    expect(await fails({ index: 'by_name' })).toContain('Index docs.by_name is not a vector index')
  })

  test('vectorSearch is for actions only', async () => {
    expect((await errorOf(client.query(api.docs.fromQuery, { direct: false }))).message).toContain('vectorSearch is not a function')
    expect((await errorOf(client.query(api.docs.fromQuery, { direct: true }))).message).toContain('Unknown async operation 1.0/actions/vectorSearch')
  })
})

describe('the index follows writes', () => {
  test('an update and a delete show in the next search', async () => {
    const all = ['a', 'b', 'c', 'd', 'e']
    await client.mutation(api.docs.update, { id: ids.a, embedding: [0, 0, 0, 1] })
    const moved = { ...vectors, a: [0, 0, 0, 1] }
    const afterUpdate = await search({})
    expect(await names(afterUpdate)).toEqual(expected(all, Q, moved).names)
    expectScores(afterUpdate, expected(all, Q, moved).scores)
    // A filter field changed.
    await client.mutation(api.docs.update, { id: ids.d, color: 'red' })
    expect(await names(await search({ colors: ['red'] }))).toEqual(expected(['a', 'c', 'd'], Q, moved).names)
    await client.mutation(api.docs.remove, { id: ids.b })
    expect(await names(await search({}))).toEqual(expected(['a', 'c', 'd', 'e'], Q, moved).names)
    // Put things back for the tests below.
    await client.mutation(api.docs.update, { id: ids.a, embedding: vectors.a })
    await client.mutation(api.docs.update, { id: ids.d, color: 'green' })
    ids.b = await client.mutation(api.docs.insert, { name: 'b', embedding: vectors.b, color: 'blue', size: 2 })
    expect(await names(await search({}))).toEqual(expected(all).names)
  })

  test('limit defaults to 10', async () => {
    const docs = Array.from({ length: 12 }, (_, i) => ({ name: `bulk${i}`, embedding: [1, i, 0, 0], color: 'bulk' }))
    await client.mutation(api.docs.insertMany, { docs })
    expect(await search({ colors: ['bulk'] })).toHaveLength(10)
    expect(await search({ colors: ['bulk'], limit: 12 })).toHaveLength(12)
    expect(await names(await search({ colors: ['bulk'], limit: 3 }))).toEqual(['bulk0', 'bulk1', 'bulk2'])
  })

  test('results are the same after a restart', async () => {
    const before = await search({ limit: 20 })
    await backend.stop()
    await backend.restart()
    client = new ConvexHttpClient(backend.url)
    expect(await search({ limit: 20 })).toEqual(before)
  })
})

describe('staged indexes', () => {
  test('are refused by queries until enabled; kept current and backfilled meanwhile', async () => {
    await client.mutation(api.docs.addLater, { name: 'first later', embedding: [1, 0], tag: 't' })
    expect((await errorOf(client.query(api.docs.laterByTag, { tag: 't' }))).message).toContain('Index later.by_tag is currently staged and not available to query until it is enabled.')
    expect((await errorOf(client.query(api.docs.laterByName, { text: 'later' }))).message).toContain('Index later.search_name is currently staged and not available to query until it is enabled.')
    const vectorErr = await errorOf(search({ table: 'later', vector: [1, 0] }))
    expect(vectorErr.message).toContain('Index later.by_embedding is currently staged and not available to query until it is enabled.')

    // Enable the three, and stage a new index on the table's existing documents.
    const schemaPath = join(appDir!, 'convex/schema.ts')
    const original = readFileSync(schemaPath, 'utf8')
    const enabled = original
      .replace('.index("by_tag", { fields: ["tag"], staged: true })', '.index("by_tag", { fields: ["tag"] })\n    .index("by_name", { fields: ["name"], staged: true })')
      .replace('.searchIndex("search_name", { searchField: "name", staged: true })', '.searchIndex("search_name", { searchField: "name" })')
      .replace('dimensions: 2, staged: true })', 'dimensions: 2 })')
    writeFileSync(schemaPath, enabled)
    const push = await convexCli(appDir!, ['deploy', '--url', backend.url, '--admin-key', backend.adminKey, '-y'])
    expect(push.stderr).toContain('These indexes are now enabled:')
    expect(push.stderr).toContain('[*] later.by_tag   tag')
    expect(push.stderr).toContain('[*] later.search_name (text)   name')
    expect(push.stderr).toContain('[*] later.by_embedding (vector)   embedding (2 dimensions)')
    expect(push.stderr).toContain('[+] later.by_name   name  (staged)')
    expect(await client.query(api.docs.laterByTag, { tag: 't' })).toEqual(['first later'])
    expect(await client.query(api.docs.laterByName, { text: 'later' })).toEqual(['first later'])
    const hits = await search({ table: 'later', vector: [1, 0] })
    expect(hits).toHaveLength(1)
    expect(hits[0]!._score).toBeCloseTo(1, 6)

    expect((await errorOf(client.query(api.docs.laterWithName, { name: 'first later' }))).message).toContain('Index later.by_name is currently staged and not available to query until it is enabled.')

    // Staging an enabled index again refuses it again; the index staged on existing documents
    // was backfilled.
    writeFileSync(
      schemaPath,
      enabled.replace('.index("by_tag", { fields: ["tag"] })', '.index("by_tag", { fields: ["tag"], staged: true })').replace('.index("by_name", { fields: ["name"], staged: true })', '.index("by_name", { fields: ["name"] })'),
    )
    const restaged = await convexCli(appDir!, ['deploy', '--url', backend.url, '--admin-key', backend.adminKey, '-y'])
    expect(restaged.stderr).toContain('These indexes are now staged:')
    expect(restaged.stderr).toContain('[*] later.by_tag   tag  (staged)')
    expect(restaged.stderr).toContain('[*] later.by_name   name')
    expect((await errorOf(client.query(api.docs.laterByTag, { tag: 't' }))).message).toContain('Index later.by_tag is currently staged')
    expect(await client.query(api.docs.laterWithName, { name: 'first later' })).toEqual(['t'])
    writeFileSync(schemaPath, original)
  })
})

describe('push-time checks', () => {
  const pushFails = async (schema: string) => {
    const schemaPath = join(appDir!, 'convex/schema.ts')
    const original = readFileSync(schemaPath, 'utf8')
    writeFileSync(schemaPath, schema)
    try {
      await convexCli(appDir!, ['deploy', '--url', backend.url, '--admin-key', backend.adminKey, '-y'])
    } catch (e) {
      const err = e as { stdout: string; stderr: string }
      return `${err.stdout}\n${err.stderr}`
    } finally {
      writeFileSync(schemaPath, original)
    }
    throw new Error('the push succeeded')
  }
  const table = (index: string, fields = 'embedding: v.array(v.float64())') =>
    `import { defineSchema, defineTable } from "convex/server";\nimport { v } from "convex/values";\nexport default defineSchema({ docs: defineTable({ ${fields} })${index} });\n`

  test('dimensions out of range, too many filter fields, a non-vector field, two indexes on one field', async () => {
    expect(await pushFails(table('.vectorIndex("v", { vectorField: "embedding", dimensions: 1 })'))).toContain('Dimensions 1 must be between 2 and 4096.')
    expect(await pushFails(table('.vectorIndex("v", { vectorField: "embedding", dimensions: 4097 })'))).toContain('Dimensions 4097 must be between 2 and 4096.')
    const fields = Array.from({ length: 17 }, (_, i) => `"f${i}"`).join(', ')
    expect(await pushFails(table(`.vectorIndex("v", { vectorField: "embedding", dimensions: 4, filterFields: [${fields}] as any })`))).toContain('Search indexes may have up to 16 filter fields.')
    expect(await pushFails(table('.vectorIndex("v", { vectorField: "embedding", dimensions: 4 })', 'embedding: v.array(v.string())'))).toContain(
      'In table "docs" the vector index "v" is invalid because it references the field "embedding" that is neither an array of float64 or optional array of float64.',
    )
    expect(await pushFails(table('.vectorIndex("v1", { vectorField: "embedding", dimensions: 4 }).vectorIndex("v2", { vectorField: "embedding", dimensions: 4 })'))).toContain(
      'In table "docs" vector index "v2" and vector index "v1" have the same `vectorField`.',
    )
    // Nothing changed: the pushed app still serves.
    expect(await names(await search({ limit: 1 }))).toEqual(expected(['a', 'b', 'c', 'd', 'e']).names.slice(0, 1))
  })
})

describe('export and import', () => {
  test('a vector-indexed table survives export and import into a fresh deployment', async () => {
    const work = mkdtempSync(join(tmpdir(), 'concave-vector-export-'))
    const other = await startBackend()
    try {
      const zip = join(work, 'snapshot.zip')
      const at = (b: TestBackend) => ({ CONVEX_SELF_HOSTED_URL: b.url, CONVEX_SELF_HOSTED_ADMIN_KEY: b.adminKey })
      await convexCli(appDir!, ['export', '--path', zip], at(backend))
      await convexCli(appDir!, ['deploy', '-y'], at(other))
      await convexCli(appDir!, ['import', zip, '-y'], at(other))
      const otherClient = new ConvexHttpClient(other.url)
      const want = await search({ limit: 30 })
      expect(want.length).toBeGreaterThan(5)
      expect(await otherClient.action(api.docs.search, { vector: Q, limit: 30 })).toEqual(want)
    } finally {
      await other.stop()
      cleanup(other.dataDir)
      cleanup(work)
    }
  }, 120_000)
})
