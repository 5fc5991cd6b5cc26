/**
 * @module Restore into a new deployment: the state at an earlier commit timestamp written into a
 * NEW embedded data folder (`into`) or an empty Postgres database (`intoDbUrl`), whatever store
 * the running deployment uses. A backend started on the target serves the deployment as it was
 * then, with the same credentials (admin keys keep working), modules, pushes, environment
 * variables, schedules and stored files (bytes included); the running one is untouched.
 *
 * The restored state is `restoreAt`'s (see restore.ts): the chosen user tables of the component
 * as they were at `ts` (same ids and `_creationTime`s), everything else — other tables, other
 * components, system tables — as it is now. It is copied through the Persistence interface alone:
 *
 * 1. One consistent view of the source, taken while no commit lands (`Database.exclusive`): a
 *    snapshot, with the catalog (tables with their numbers, indexes with their ids), modules
 *    and globals that go with it.
 * 2. From the write log, every chosen document changed after `ts`, as it was at `ts`.
 * 3. The target gets the same tables and indexes, then every document (of the view, or as it was
 *    at `ts`) in batches of commits, with the index, search and vector entries computed as the
 *    committer computes them; then the modules and globals, and the credentials. Stored files'
 *    bytes go from the source's blob store to the target's before their `_storage` documents.
 * 4. The target's history horizon is put at its last commit: its write log holds the restored
 *    state only, so reads of earlier times there are refused rather than answered wrongly.
 *
 * A folder is built beside `into` and renamed into place once complete, so a backend never
 * starts on a half-written one; a failure removes it. A Postgres target is checked empty first;
 * a failure part way leaves what was written (the message says so).
 */
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import type { Database } from '../database/database.ts'
import { OutOfRetentionError } from '../database/errors.ts'
import { BY_ID, DROPPED_TABLE, indexKey, keyFieldsFor, splitStoredTableName } from '../database/catalog.ts'
import type { IndexInfo } from '../database/catalog.ts'
import { searchEntry } from '../database/search.ts'
import { vectorEntry } from '../database/vector.ts'
import { FolderBlobStore } from '../storage/blob-store.ts'
import type { BlobStore } from '../storage/blob-store.ts'
import type { DocumentWrite, IndexRecord, IndexWrite, LogEntry, ModuleRecord, Persistence, SearchWrite, Snapshot, TableRecord, VectorWrite } from '../storage/persistence.ts'
import { PostgresPersistence, redact } from '../storage/postgres/postgres-persistence.ts'
import { SqlitePersistence } from '../storage/sqlite/sqlite-persistence.ts'
import type { JSONValue } from '../values/index.ts'
import { inFieldOrder } from '../values/index.ts'
import { checkRestoreRequest, RestoreError, wholeLog } from './restore.ts'
import type { RestoreOptions, RestoreResult } from './restore.ts'

/** Where the deployment being restored keeps what a copy carries over besides the store. */
export interface RestoreSource {
  readonly db: Database
  /** Its stored files' bytes. */
  readonly blobs: BlobStore
  /** Its credentials, as a data folder keeps them (JSON: `instanceName`, `instanceSecret`). */
  readonly credentials: string
}

/** How a data folder is laid out (see src/backend.ts), and where a Postgres store keeps the credentials. */
export interface DeploymentLayout {
  readonly databaseFile: string
  readonly credentialsFile: string
  /** The folder of stored files' bytes. */
  readonly storageFolder: string
  /** The global a Postgres-backed deployment keeps its credentials in. */
  readonly credentialsGlobal: string
}

/** A new data folder (absolute path; absent or empty), or an empty Postgres database. */
export type RestoreTarget = { readonly folder: string } | { readonly dbUrl: string }

/** Documents per commit written to the target (and at most about this many bytes of them). */
const BATCH_DOCUMENTS = 10000
const BATCH_BYTES = 32 * 1024 * 1024
/** Documents read from the source per scan. */
const SCAN_PAGE = 512

/**
 * Restores into `target` the state at commit timestamp `ts`: of the component's user tables (all,
 * or `tables`), the rest as now. Resolves with the target's last commit timestamp and how many
 * documents differ from the source's present (put back, recreated or left out).
 */
export async function restoreInto(source: RestoreSource, layout: DeploymentLayout, target: RestoreTarget, ts: bigint, opts: RestoreOptions = {}): Promise<RestoreResult> {
  const { db } = source
  // Caught up first (a shared store): the time may be that of another process's commit.
  await db.committer.sync()
  checkRestoreRequest(db, ts, opts)
  if ('folder' in target) {
    const into = target.folder
    if (existsSync(into) && readdirSync(into).length > 0) throw new RestoreError('InvalidPath', `Cannot restore into ${into}: it is not empty`)
    // Built beside the target, then renamed into place (onto an empty folder too): all or nothing.
    mkdirSync(dirname(into), { recursive: true })
    const building = join(dirname(into), `.${basename(into)}.restoring-${randomBytes(6).toString('hex')}`)
    mkdirSync(building)
    try {
      const persistence = SqlitePersistence.open(join(building, layout.databaseFile))
      let result: RestoreResult
      try {
        result = await copyState(source, persistence, new FolderBlobStore(join(building, layout.storageFolder)), layout, ts, opts)
      } finally {
        await persistence.close()
      }
      writeFileSync(join(building, layout.credentialsFile), source.credentials, { mode: 0o600 })
      try {
        renameSync(building, into)
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code
        if (code === 'ENOTEMPTY' || code === 'EEXIST') throw new RestoreError('InvalidPath', `Cannot restore into ${into}: it is not empty`)
        throw e
      }
      return result
    } finally {
      rmSync(building, { recursive: true, force: true })
    }
  }
  const where = `Cannot restore into the Postgres database at ${redact(target.dbUrl)}`
  const notEmpty = () => new RestoreError('InvalidDbUrl', `${where}: it is not empty (restore into a new, empty database)`)
  let persistence: PostgresPersistence
  try {
    // A database with tables of its own is refused before a store's tables are created in it.
    const found = await PostgresPersistence.inspect(target.dbUrl)
    if (found.tables > 0 && !found.store) throw notEmpty()
    persistence = await PostgresPersistence.open(target.dbUrl)
  } catch (e) {
    if (e instanceof RestoreError) throw e
    throw new RestoreError('InvalidDbUrl', `${where}: ${(e as Error).message}`)
  }
  try {
    const blobs = persistence.blobStore()
    // A store's tables with nothing in them yet count as empty.
    if (!(await isEmpty(persistence, blobs))) throw notEmpty()
    let result: RestoreResult
    try {
      result = await copyState(source, persistence, blobs, layout, ts, opts)
    } catch (e) {
      if (e instanceof RestoreError || e instanceof OutOfRetentionError) throw e
      throw new Error(`The restore into the Postgres database at ${redact(target.dbUrl)} failed part way, and left what it had written there (drop that database before trying again): ${(e as Error)?.message ?? String(e)}`, { cause: e })
    }
    await persistence.setGlobal(layout.credentialsGlobal, source.credentials)
    return result
  } finally {
    await persistence.close()
  }
}

/** Whether a store holds nothing: no commit, table, module, global or stored file. */
async function isEmpty(persistence: Persistence, blobs: BlobStore): Promise<boolean> {
  if (persistence.maxTs() !== 0n || (await persistence.tables()).length > 0 || (await persistence.modules()).length > 0 || (await persistence.globals()).size > 0) return false
  for await (const _ of blobs.list()) return false
  return true
}

/** The source at one commit, with the catalog, modules and globals that go with it. */
interface SourceView {
  readonly snapshot: Snapshot
  readonly tables: readonly TableRecord[]
  readonly indexes: readonly IndexRecord[]
  readonly modules: readonly ModuleRecord[]
  readonly globals: ReadonlyMap<string, string>
}

interface TablePlan {
  readonly record: TableRecord
  readonly component: string
  readonly name: string
  readonly indexes: readonly IndexInfo[]
  /** Restored to `ts` (else copied as it is now). */
  readonly restored: boolean
}

async function copyState(source: RestoreSource, target: Persistence, targetBlobs: BlobStore, layout: DeploymentLayout, ts: bigint, opts: RestoreOptions): Promise<RestoreResult> {
  const { db } = source
  const component = opts.component ?? ''
  return db.readingHistoryAt(ts, async () => {
    // While no commit lands (of any process): the snapshot, catalog, modules and globals agree.
    const view: SourceView = await db.exclusive(async () => {
      const snapshot = await db.persistence.snapshot()
      try {
        return { snapshot, tables: await db.persistence.tables(), indexes: await db.persistence.indexes(), modules: await db.persistence.modules(), globals: await db.persistence.globals() }
      } catch (e) {
        snapshot.release()
        throw e
      }
    })
    try {
      const plans = new Map<number, TablePlan>()
      for (const record of view.tables) {
        if (record.name.startsWith(DROPPED_TABLE)) continue
        const { component: c, name } = splitStoredTableName(record.name)
        const indexes = view.indexes
          .filter((i) => i.tableNumber === record.tableNumber)
          .map((i): IndexInfo => ({ ...i, tableName: name, component: c, keyFields: keyFieldsFor(i.name, i.fields) }))
        const restored = c === component && !name.startsWith('_') && (opts.tables === undefined || opts.tables.includes(name))
        plans.set(record.tableNumber, { record, component: c, name, indexes, restored })
      }
      // The chosen documents changed since `ts`, as they were then (null: they didn't exist).
      const changed = new Set<string>()
      for (const e of await wholeLog(db.persistence, ts, view.snapshot.ts)) if (plans.get(e.tableNumber)?.restored === true) changed.add(e.id)
      const then = new Map<string, LogEntry | undefined>()
      const found = await db.persistence.documentsAt([...changed], ts)
      for (const id of changed) then.set(id, found.get(id))

      // The catalog as it is: same table numbers (dropped ones' too, never handed out again), same index ids.
      for (const record of view.tables) await target.createTable(record.name, record.tableNumber, record.idNumber)
      for (const index of view.indexes) await target.createIndex(index, [])

      const writer = new BatchWriter(target, view.snapshot.ts)
      let differing = 0
      const sameJson = (a: string, b: string) => a === b || JSON.stringify(inFieldOrder(JSON.parse(a) as JSONValue)) === JSON.stringify(inFieldOrder(JSON.parse(b) as JSONValue))
      for (const plan of plans.values()) {
        const byId = plan.indexes.find((i) => i.name === BY_ID)
        if (byId === undefined) continue
        const storage = plan.name === '_storage'
        let lo = Buffer.alloc(0)
        for (;;) {
          const rows = await view.snapshot.scan(byId.indexId, { lo, hi: null }, 'asc', SCAN_PAGE)
          for (const { doc } of rows) {
            let json: string | null = doc.json
            if (then.has(doc.id)) {
              const old = then.get(doc.id)
              then.delete(doc.id)
              json = old?.json ?? null
              if (json === null || !sameJson(json, doc.json)) differing++
            }
            if (json === null) continue
            // A file deleted since the view was taken (its bytes go once the deletion commits) is left out.
            if (storage && !(await copyBlob(source.blobs, targetBlobs, doc.id))) continue
            await writer.add(plan, doc.id, json)
          }
          if (rows.length < SCAN_PAGE) break
          lo = Buffer.concat([rows[rows.length - 1]!.key, Buffer.from([0])])
        }
      }
      // Deleted since `ts`: recreated as they were.
      for (const [id, old] of then) {
        if (old === undefined || old.json === null) continue
        differing++
        await writer.add(plans.get(old.tableNumber)!, id, old.json)
      }
      const lastTs = await writer.finish()

      const globals = Object.fromEntries([...view.globals].filter(([key]) => key !== layout.credentialsGlobal))
      await target.replaceModules(view.modules, globals)
      // Nothing before the restored state can be read there: its history starts here.
      if (lastTs !== null) await target.pruneHistory(lastTs, 0)
      return { ts: lastTs ?? view.snapshot.ts, documents: differing }
    } finally {
      view.snapshot.release()
    }
  })
}

/** Copies a stored file's bytes; false when the source has none (any more). */
async function copyBlob(from: BlobStore, to: BlobStore, id: string): Promise<boolean> {
  let stream
  try {
    stream = (await from.stream(id)).stream
  } catch (e) {
    if (!(await from.exists(id))) return false
    throw e
  }
  await to.put(id, stream)
  return true
}

/** Writes documents as commits of at most BATCH_DOCUMENTS, with their index entries, at increasing timestamps. */
class BatchWriter {
  #documents: DocumentWrite[] = []
  #indexes: IndexWrite[] = []
  #search: SearchWrite[] = []
  #vectors: VectorWrite[] = []
  #bytes = 0
  #lastTs: bigint | null = null

  constructor(
    readonly target: Persistence,
    /** Commits are numbered after this one. */
    readonly afterTs: bigint,
  ) {}

  async add(plan: TablePlan, id: string, json: string): Promise<void> {
    const doc = JSON.parse(json) as Record<string, JSONValue>
    this.#documents.push({ id, tableNumber: plan.record.tableNumber, json })
    this.#bytes += json.length
    for (const index of plan.indexes) {
      if (index.search !== undefined) this.#search.push({ indexId: index.indexId, id, entry: searchEntry(index.search, doc) })
      else if (index.vector !== undefined) {
        const entry = vectorEntry(index.vector, doc)
        if (entry !== null) this.#vectors.push({ indexId: index.indexId, id, entry })
      } else this.#indexes.push({ indexId: index.indexId, key: indexKey(index, doc), id })
    }
    if (this.#documents.length >= BATCH_DOCUMENTS || this.#bytes >= BATCH_BYTES) await this.#flush()
  }

  async #flush(): Promise<void> {
    if (this.#documents.length === 0) return
    const ts = (this.#lastTs ?? this.afterTs) + 1n
    await this.target.write([{ ts, documents: this.#documents, indexes: this.#indexes, search: this.#search, vectors: this.#vectors, touched: [] }])
    this.#lastTs = ts
    this.#documents = []
    this.#indexes = []
    this.#search = []
    this.#vectors = []
    this.#bytes = 0
  }

  /** Writes what is left; the last commit's timestamp (null: nothing was written). */
  async finish(): Promise<bigint | null> {
    await this.#flush()
    return this.#lastTs
  }
}
