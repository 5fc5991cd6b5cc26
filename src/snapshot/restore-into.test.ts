import { afterAll, beforeAll, expect, test } from 'vitest'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CursorCodec } from '../database/cursors.ts'
import { Database } from '../database/database.ts'
import { BY_CREATION_TIME } from '../database/catalog.ts'
import { FolderBlobStore } from '../storage/blob-store.ts'
import type { Persistence, Snapshot } from '../storage/persistence.ts'
import { PostgresPersistence } from '../storage/postgres/postgres-persistence.ts'
import { SqlitePersistence } from '../storage/sqlite/sqlite-persistence.ts'
import { startPostgres, type PostgresCluster } from '../../test/helpers/postgres.ts'
import { restoreInto } from './restore-into.ts'
import type { RestoreTarget } from './restore-into.ts'
import { RestoreError } from './restore.ts'

// The copy into a new deployment carries every kind of index: database indexes (keys), full-text
// search and vector entries are computed for the restored documents, in either target store.
const LAYOUT = { databaseFile: 'db.sqlite3', credentialsFile: 'credentials.json', storageFolder: 'storage', credentialsGlobal: 'instance_credentials' }
const dirs: string[] = []
let cluster: PostgresCluster
beforeAll(async () => {
  cluster = await startPostgres()
}, 60_000)
afterAll(async () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
  await cluster?.stop()
})

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'concave-restore-into-'))
  dirs.push(dir)
  return dir
}

/** A deployment with a table `docs` (an index on `tag`, a search index on `body`, a vector index on `v`), and a component's `docs`. */
async function source() {
  const dir = tempDir()
  const db = await Database.open(SqlitePersistence.open(join(dir, 'db.sqlite3')), new CursorCodec('00'.repeat(32)))
  const docs = await db.ensureTable('docs')
  const byTag = await db.exclusive(() => db.catalog.addIndex(docs, 'by_tag', ['tag']))
  const search = await db.exclusive(() => db.catalog.addSearchIndex(docs, 'search_body', { searchField: 'body', filterFields: ['tag'] }))
  const vectors = await db.exclusive(() => db.catalog.addVectorIndex(docs, 'by_v', { vectorField: 'v', dimensions: 2, filterFields: [] }))
  const other = await db.ensureTable('docs', 'child')
  const insert = (fields: Record<string, unknown>, component = '') => db.mutate((txn) => txn.insertSystem('docs', fields as never, undefined, component))
  return { db, dir, docs, byTag, search, vectors, other, insert }
}

async function read<T>(p: Persistence, fn: (s: Snapshot) => Promise<T>): Promise<T> {
  const s = await p.snapshot()
  try {
    return await fn(s)
  } finally {
    s.release()
  }
}

for (const kind of ['folder', 'postgres'] as const) {
  test(`into a new ${kind === 'folder' ? 'data folder' : 'Postgres database'}: the tables as they were, with their index, search and vector entries; the rest as it is`, async () => {
    const s = await source()
    try {
      const keep = await s.insert({ tag: 'a', body: 'apple pie', v: [1, 0] })
      const edit = await s.insert({ tag: 'b', body: 'banana bread', v: [0, 1] })
      const gone = await s.insert({ tag: 'c', body: 'cherry tart', v: [1, 1] })
      const childBefore = await s.insert({ n: 1 }, 'child')
      const at = s.db.committer.publishedTs
      await s.db.mutate(async (txn) => {
        await txn.patchSystem(edit, { tag: 'z', body: 'zucchini soup', v: [-1, 0] })
        await txn.removeSystem(gone)
      })
      const later = await s.insert({ tag: 'd', body: 'date cake', v: [0, -1] })
      const childLater = await s.insert({ n: 2 }, 'child')

      const target: RestoreTarget = kind === 'folder' ? { folder: join(tempDir(), 'restored') } : { dbUrl: await cluster.newDatabase() }
      const result = await restoreInto({ db: s.db, blobs: new FolderBlobStore(join(s.dir, 'storage')), credentials: '{"instanceName":"x","instanceSecret":"y"}' }, LAYOUT, target, at)
      expect(result.documents).toBe(3)
      expect(result.ts).toBeGreaterThan(s.db.committer.publishedTs)

      const copy: Persistence = 'folder' in target ? SqlitePersistence.open(join(target.folder, LAYOUT.databaseFile)) : await PostgresPersistence.open(target.dbUrl)
      try {
        expect(copy.maxTs()).toBe(result.ts)
        expect(copy.historyHorizon()).toBe(result.ts)
        expect(await copy.tables()).toEqual(await s.db.persistence.tables())
        expect(await copy.indexes()).toEqual(await s.db.persistence.indexes())
        const bodies = (docs: { json: string }[]) => docs.map((d) => (JSON.parse(d.json) as { body?: string; n?: number }).body ?? (JSON.parse(d.json) as { n: number }).n)
        await read(copy, async (snap) => {
          // The app's table as it was (ids kept); the component's as it is.
          expect(bodies((await snap.scan(s.byTag.indexId, { lo: Buffer.alloc(0), hi: null }, 'asc', 10)).map((r) => r.doc))).toEqual(['apple pie', 'banana bread', 'cherry tart'])
          expect((await snap.getDocument(edit))?.json).toBe((await s.db.persistence.documentsAt([edit], at)).get(edit)!.json)
          expect(await snap.getDocument(later)).toBe(null)
          expect(await snap.countTable(s.docs.tableNumber)).toBe(3)
          const child = s.other.indexes.get(BY_CREATION_TIME)!
          expect((await snap.scan(child.indexId, { lo: Buffer.alloc(0), hi: null }, 'asc', 10)).map((r) => r.doc.id)).toEqual([childBefore, childLater])
          // Search: the restored texts, with their filter keys and statistics.
          const found = await snap.search!(s.search.indexId, { terms: ['banana', 'zucchini', 'date'], prefix: 'ch', maxPrefixTerms: 5, filters: [], limit: 10 })
          expect([found.documentCount, found.prefixTerms, bodies([...found.documents]).sort()]).toEqual([3, ['cherry'], ['banana bread', 'cherry tart']])
          // Vectors: the restored ones.
          const near = await snap.vectorSearch!(s.vectors.indexId, { vector: Float32Array.from([0, 1]), limit: 10, filters: [] })
          expect(near.map((h) => h.id)).toEqual([edit, gone, keep])
        })
        // The history starts at the copy: reading earlier times there is refused, not answered wrongly.
        expect(await copy.loadLog(0n, result.ts, 100)).toHaveLength(5)
      } finally {
        await copy.close()
      }
      // A folder is complete when it appears: nothing is left beside it.
      if ('folder' in target) expect(readdirSync(join(target.folder, '..'))).toEqual(['restored'])
      // Not empty any more: refused, and nothing written.
      const again = await restoreInto({ db: s.db, blobs: new FolderBlobStore(join(s.dir, 'storage')), credentials: '{}' }, LAYOUT, target, at).catch((e: unknown) => e)
      expect(again).toBeInstanceOf(RestoreError)
      expect((again as RestoreError).code).toBe('folder' in target ? 'InvalidPath' : 'InvalidDbUrl')
    } finally {
      await s.db.close()
    }
  }, 60_000)
}
