/**
 * @module Snapshot export and import (`npx convex export` / `npx convex import`), in Convex's
 * snapshot format: a zip with `README.md`, `_tables/documents.jsonl` (`{"name","id"}` per user
 * table), `<table>/generated_schema.jsonl` (`"uniform"`) and `<table>/documents.jsonl` (export
 * JSON, see export-json.ts), and with `--include-file-storage` `_storage/documents.jsonl` plus one
 * `_storage/<id>[.ext]` file each.
 *
 * An export reads every table in one read transaction, so it is one snapshot at `start_ts` while
 * writes go on. An import is parsed and checked first (waiting for confirmation), then written in
 * one transaction through the normal commit path: it all lands at one commit timestamp or not at
 * all. Documents keep their `_id` (re-encoded for the target table's number when it differs,
 * along with references to imported tables) and `_creationTime`.
 *
 * An export's state lives in memory here (its zip in `<data>/exports/`); imports are kept in the
 * `_snapshot_imports` system table (their uploads in `<data>/imports/`), so an import a restart cut
 * off is failed at the next start and its upload deleted. The `_system/cli/...` queries read them,
 * and `onChange` re-runs their subscriptions.
 */
import { randomBytes } from 'node:crypto'
import { createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync } from 'node:fs'
import { open, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { PassThrough } from 'node:stream'
import type { Readable } from 'node:stream'
import { parse as parseCsvStream } from 'csv-parse'
import { Zip, ZipDeflate } from 'fflate'
import { openPromise as openZipFile } from 'yauzl'
import type { Entry, ZipFile } from 'yauzl'
import type { Database } from '../database/database.ts'
import type { TableInfo } from '../database/catalog.ts'
import { BY_ID, splitStoredTableName, storedTableName } from '../database/catalog.ts'
import type { Transaction } from '../database/transaction.ts'
import type { FileStorage } from '../files/file-storage.ts'
import { checkDocumentLimits, decodeId, encodeId, inFieldOrder, jsonToValue, validateDocument } from '../values/index.ts'
import type { JSONValue, Value } from '../values/index.ts'
import { encodedToExportJson, parseToEncoded } from './export-json.ts'

type Doc = Record<string, JSONValue>

const STORAGE = '_storage'
const TABLES = '_tables'
const TABLE_NAME = /^[a-zA-Z][a-zA-Z0-9_]*$/
const README = `# Welcome to your Convex snapshot export!

This ZIP file contains a snapshot of the tables in your Convex deployment.

Documents for each table are listed as lines of JSON in
<table_name>/documents.jsonl files.

For details on the format and how to use this snapshot with npx convex import,
check out [the docs](https://docs.convex.dev/database/import-export/export).
`

export type ImportMode = 'requireEmpty' | 'append' | 'replace' | 'replaceAll'
export type ImportFormat = 'zip' | 'jsonLines' | 'jsonArray' | 'csv'

export class SnapshotError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

type ExportState =
  | { state: 'requested' | 'in_progress' }
  | { state: 'failed'; error: string }
  | { state: 'completed'; startTs: bigint; completeTs: bigint; key: string }

/** One table's documents to write, parsed and checked. */
interface ImportTable {
  /** The component the table belongs to ('' for the app). */
  component: string
  name: string
  /** The table's number in the source (from `_tables` or its ids), to keep ids where possible. */
  sourceNumber: number | null
  docs: Doc[]
}

interface ParsedImport {
  tables: ImportTable[]
  /**
   * `_storage` id (as in the source) → its file's entry in the zip, whose bytes are streamed to
   * the file store as the import is written (a snapshot's files may pass what memory holds).
   */
  files: Map<string, string>
}

interface ImportRecord {
  /** Its `_snapshot_imports` document's id (what the CLI is given). */
  id: string
  creationTime: number
  mode: ImportMode
  format: ImportFormat
  tableName: string | null
  /** `npx convex import --component`: the component the import is relative to ('' for the app). */
  componentPath: string
  state: Doc
  path: string
  parsed: ParsedImport | null
  /** Its state changes reaching `_snapshot_imports`, in order. */
  saved: Promise<void>
}

/** Imports, as Convex keeps them: their states survive a restart (an interrupted one is failed then). */
export const SNAPSHOT_IMPORTS = '_snapshot_imports'
const INTERRUPTED = 'The import was interrupted because the backend restarted. Run it again.'
const FINISHED_STATES = new Set(['completed', 'failed'])

function int64(n: number | bigint): JSONValue {
  const buf = Buffer.alloc(8)
  buf.writeBigInt64LE(BigInt(n))
  return { $integer: buf.toString('base64') }
}

/** A rough file extension for a content type (only so files open at a glance). */
function extensionFor(contentType: string | undefined): string {
  const sub = /^[a-z]+\/([a-z0-9]+)(?:[;+]|$)/i.exec(contentType ?? '')?.[1]?.toLowerCase()
  if (sub === undefined) return ''
  return `.${{ jpeg: 'jpg', plain: 'txt', javascript: 'js', markdown: 'md', 'octet-stream': 'bin' }[sub] ?? sub}`
}

export class SnapshotService {
  #files: FileStorage | null = null
  #export: ExportState | null = null
  #exportsByTs = new Map<bigint, string>()
  readonly #imports = new Map<string, ImportRecord>()
  readonly #listeners: (() => void)[] = []

  constructor(readonly db: Database) {}

  /** Gives the service the file store (and so the data directory). */
  attach(files: FileStorage): this {
    if (this.#files === null) {
      this.#files = files
      // Completed exports survive a restart: they are files named by their timestamp.
      for (const name of existsSync(this.#exportDir) ? readdirSync(this.#exportDir) : []) {
        const m = /^snapshot_(\d+)\.zip$/.exec(name)
        if (m !== null) this.#exportsByTs.set(BigInt(m[1]!), name)
      }
    }
    return this
  }

  onChange(listener: () => void): void {
    this.#listeners.push(listener)
  }

  #changed(): void {
    for (const l of this.#listeners) l()
  }

  get #fileStore(): FileStorage {
    if (this.#files === null) throw new Error('Snapshot service used before the file store was attached')
    return this.#files
  }

  get #dataDir(): string {
    return this.#fileStore.dataDir
  }

  get #exportDir(): string {
    return join(this.#dataDir, 'exports')
  }

  get #importDir(): string {
    return join(this.#dataDir, 'imports')
  }

  // ---- export ----

  /** `_system/cli/exports:getLatest`. */
  latestExport(): JSONValue {
    const s = this.#export
    if (s === null) {
      const latest = [...this.#exportsByTs.keys()].sort((a, b) => (a < b ? 1 : a > b ? -1 : 0))[0]
      return latest === undefined ? null : { state: 'completed', start_ts: int64(latest), complete_ts: int64(latest), zip_object_key: this.#exportsByTs.get(latest)! }
    }
    if (s.state === 'completed') return { state: 'completed', start_ts: int64(s.startTs), complete_ts: int64(s.completeTs), zip_object_key: s.key }
    if (s.state === 'failed') return { state: 'failed', error_message: s.error }
    return { state: s.state }
  }

  /**
   * Starts an export in the background: of the latest commit, or of the state at commit
   * timestamp `atTs` (within the history retention: see `Database.begin`).
   */
  requestExport(includeStorage: boolean, atTs?: bigint): void {
    if (this.#export?.state === 'requested' || this.#export?.state === 'in_progress') {
      throw new SnapshotError('ExportInProgress', 'There is already an export requested or in progress')
    }
    this.#export = { state: 'requested' }
    this.#changed()
    setImmediate(() => {
      this.#export = { state: 'in_progress' }
      this.#changed()
      this.#runExport(includeStorage, atTs).then(
        (done) => (this.#export = done),
        (e: unknown) => (this.#export = { state: 'failed', error: (e as Error)?.message ?? String(e) }),
      ).finally(() => this.#changed())
    })
  }

  exportPath(ts: bigint): string | null {
    const name = this.#exportsByTs.get(ts)
    return name === undefined ? null : join(this.#exportDir, name)
  }

  async #runExport(includeStorage: boolean, atTs?: bigint): Promise<ExportState> {
    mkdirSync(this.#exportDir, { recursive: true })
    const txn = await this.db.begin(false, atTs)
    const temp = join(this.#exportDir, `.export-${randomBytes(8).toString('hex')}`)
    try {
      const startTs = txn.snapshotTs
      const out = createWriteStream(temp)
      const written = new Promise<void>((resolve, reject) => {
        out.on('finish', resolve)
        out.on('error', reject)
      })
      let zipError: Error | null = null
      const zip = new Zip((err, chunk, final) => {
        if (err !== null) zipError = err
        else out.write(chunk)
        if (final || err !== null) out.end()
      })
      const drain = async () => {
        if (zipError !== null) throw zipError
        if (out.writableNeedDrain) await new Promise<void>((r) => out.once('drain', () => r()))
      }
      const file = async (name: string, parts: AsyncIterable<string | Uint8Array> | Iterable<string | Uint8Array>) => {
        const entry = new ZipDeflate(name, { level: 6 })
        zip.add(entry)
        for await (const part of parts) {
          entry.push(typeof part === 'string' ? Buffer.from(part) : part)
          await drain()
        }
        entry.push(new Uint8Array(0), true)
        await drain()
      }
      await file('README.md', [README])
      // As Convex: each component's tables under `_components/<name>/` (once per level of its
      // path), with a `_tables` of their own; the app's at the top.
      const tables = [...this.db.catalog.byNumber.values()].filter((t) => !t.name.startsWith('_')).sort((a, b) => a.idNumber - b.idNumber)
      const components = [...new Set(['', ...tables.map((t) => t.component)])].sort()
      for (const component of components) {
        const mine = tables.filter((t) => t.component === component)
        await file(`${componentPrefix(component)}${TABLES}/documents.jsonl`, mine.map((t) => `${JSON.stringify({ name: t.name, id: t.idNumber })}\n`))
      }
      for (const table of tables) {
        const dir = `${componentPrefix(table.component)}${table.name}`
        await file(`${dir}/generated_schema.jsonl`, ['"uniform"\n'])
        await file(`${dir}/documents.jsonl`, this.#lines(txn, table, (doc) => `${encodedToExportJson(doc)}\n`))
      }
      // Each component's file storage under its own prefix, as Convex's (the app's first).
      const storages = includeStorage ? [...this.db.catalog.byName.values()].filter((t) => t.name === STORAGE).sort((x, y) => (x.component < y.component ? -1 : 1)) : []
      for (const storage of storages) {
        const dir = `${componentPrefix(storage.component)}${STORAGE}`
        const present: { id: string; contentType: string | undefined }[] = []
        const files = this.#fileStore
        const meta = async function* (self: SnapshotService) {
          for await (const doc of self.#docs(txn, storage)) {
            // A file deleted after the snapshot (its file goes once the delete commits) is left out.
            if (!(await files.blobs.exists(doc._id as string))) continue
            present.push({ id: doc._id as string, contentType: doc.contentType as string | undefined })
            const line: Doc = { _id: doc._id!, _creationTime: doc._creationTime!, sha256: doc.sha256!, size: doc.size!, internalId: doc._id! }
            if (doc.contentType !== undefined) line.contentType = doc.contentType
            yield `${encodedToExportJson(line)}\n`
          }
        }
        await file(`${dir}/documents.jsonl`, meta(this))
        for (const { id, contentType } of present) {
          let bytes: Buffer
          try {
            bytes = await files.read(id)
          } catch {
            continue
          }
          await file(`${dir}/${id}${extensionFor(contentType)}`, [bytes])
        }
      }
      zip.end()
      await written
      if (zipError !== null) throw zipError
      const key = `snapshot_${startTs}.zip`
      await rename(temp, join(this.#exportDir, key))
      this.#exportsByTs.set(startTs, key)
      return { state: 'completed', startTs, completeTs: await this.db.currentTs(), key }
    } finally {
      this.db.end(txn)
      await rm(temp, { force: true })
    }
  }

  /** Every document of `table` at the transaction's snapshot, in id order (not in the read set: not a user read). */
  async *#docs(txn: Transaction, table: TableInfo): AsyncGenerator<Doc> {
    const index = table.indexes.get(BY_ID)!
    let lo = Buffer.alloc(0)
    for (;;) {
      const rows = await txn.snapshot.scan(index.indexId, { lo, hi: null }, 'asc', 512)
      for (const row of rows) yield JSON.parse(row.doc.json) as Doc
      if (rows.length < 512) return
      lo = Buffer.concat([rows[rows.length - 1]!.key, Buffer.from([0])])
    }
  }

  async *#lines(txn: Transaction, table: TableInfo, line: (doc: Doc) => string): AsyncGenerator<string> {
    let batch = ''
    for await (const doc of this.#docs(txn, table)) {
      batch += line(doc)
      if (batch.length > 1 << 16) {
        yield batch
        batch = ''
      }
    }
    if (batch !== '') yield batch
  }

  // ---- import: upload ----

  async startUpload(): Promise<string> {
    const token = randomBytes(16).toString('hex')
    mkdirSync(join(this.#importDir, `upload-${token}`), { recursive: true })
    return token
  }

  #uploadDir(token: unknown): string {
    if (typeof token !== 'string' || !/^[0-9a-f]{32}$/.test(token)) throw new SnapshotError('InvalidUploadToken', 'Invalid upload token')
    const dir = join(this.#importDir, `upload-${token}`)
    if (!existsSync(dir)) throw new SnapshotError('InvalidUploadToken', 'Unknown upload token')
    return dir
  }

  async uploadPart(token: unknown, partNumber: unknown, body: Uint8Array): Promise<JSONValue> {
    const dir = this.#uploadDir(token)
    const n = Number(partNumber)
    if (!Number.isInteger(n) || n < 1 || n >= 10_000) throw new SnapshotError('InvalidPartNumber', `Invalid part number ${JSON.stringify(partNumber)}`)
    await writeFile(join(dir, String(n)), body)
    return String(n)
  }

  async finishUpload(body: Record<string, unknown>): Promise<string> {
    const dir = this.#uploadDir(body.uploadToken)
    const args = (body.import ?? {}) as Record<string, unknown>
    const format = args.format as ImportFormat
    const mode = (args.mode ?? 'requireEmpty') as ImportMode
    if (!['zip', 'jsonLines', 'jsonArray', 'csv'].includes(format)) throw new SnapshotError('InvalidImportFormat', `Unsupported import format ${JSON.stringify(args.format)}`)
    if (!['requireEmpty', 'append', 'replace', 'replaceAll'].includes(mode)) throw new SnapshotError('InvalidImportMode', `Unsupported import mode ${JSON.stringify(args.mode)}`)
    const componentPath = args.componentPath ?? ''
    if (typeof componentPath !== 'string' || (componentPath !== '' && !componentPath.split('/').every(isComponentName))) {
      throw new SnapshotError('InvalidComponentPath', `Invalid component path ${JSON.stringify(componentPath)}`)
    }
    const tableName = typeof args.tableName === 'string' ? args.tableName : null
    if (format !== 'zip' && tableName === null) throw new SnapshotError('MissingTableName', `A table name is required for format ${format}`)
    if (!Array.isArray(body.partTokens)) throw new SnapshotError('InvalidPartTokens', 'partTokens must be an array')
    const fileName = `${randomBytes(16).toString('hex')}.upload`
    const path = join(this.#importDir, fileName)
    const fh = await open(path, 'w')
    try {
      for (const part of body.partTokens) {
        if (typeof part !== 'string' || !/^\d+$/.test(part)) throw new SnapshotError('InvalidPartTokens', `Invalid part token ${JSON.stringify(part)}`)
        await fh.writeFile(await readFile(join(dir, part)))
      }
    } finally {
      await fh.close()
      await rm(dir, { recursive: true, force: true })
    }
    const state: Doc = { state: 'uploaded' }
    const id = await this.db.mutate((txn) => txn.insertSystem(SNAPSHOT_IMPORTS, { state, format, mode, tableName, componentPath, upload: fileName }))
    const record: ImportRecord = { id, creationTime: Date.now(), mode, format, tableName, componentPath, state, path, parsed: null, saved: Promise.resolve() }
    this.#imports.set(id, record)
    setImmediate(() => void this.#prepare(record))
    return id
  }

  #setState(record: ImportRecord, state: Doc): void {
    record.state = state
    if (FINISHED_STATES.has(String(state.state))) {
      record.parsed = null
      void rm(record.path, { force: true })
    }
    record.saved = record.saved.then(() =>
      this.db.mutate((txn) => txn.patchSystem(record.id, { state })).then(
        () => {},
        (e: unknown) => this.db.log('Saving an import\'s state failed', { importId: record.id, error: (e as Error)?.message ?? String(e) }),
      ),
    )
    this.#changed()
  }

  /**
   * At start-up, before serving: loads the imports `_snapshot_imports` keeps. One a restart cut
   * off (not completed or failed) is marked failed, and its upload and any half-uploaded parts
   * are deleted, so the CLI waiting on it gets an answer and nothing is left behind.
   */
  async recover(): Promise<void> {
    await this.db.exclusive(async () => void (await this.db.catalog.ensureTable(SNAPSHOT_IMPORTS)))
    const docs = await this.db.mutate(async (txn) => {
      const table = this.db.catalog.byName.get(SNAPSHOT_IMPORTS)!
      const out: Doc[] = []
      for await (const doc of this.#docs(txn, table)) {
        // On a store shared by several processes an unfinished import may be another's, under way.
        if (!FINISHED_STATES.has(String((doc.state as Doc | undefined)?.state)) && this.db.persistence.shared === undefined) {
          const failed = { state: 'failed', error_message: INTERRUPTED }
          await txn.patchSystem(doc._id as string, { state: failed })
          out.push({ ...doc, state: failed })
        } else out.push(doc)
      }
      return out
    })
    for (const doc of docs) {
      const id = doc._id as string
      this.#imports.set(id, {
        id,
        creationTime: doc._creationTime as number,
        mode: doc.mode as ImportMode,
        format: doc.format as ImportFormat,
        tableName: (doc.tableName as string | null) ?? null,
        componentPath: typeof doc.componentPath === 'string' ? doc.componentPath : '',
        state: doc.state as Doc,
        path: join(this.#importDir, String(doc.upload)),
        parsed: null,
        saved: Promise.resolve(),
      })
    }
    // No import is running now: every upload file and upload folder left is garbage.
    for (const name of existsSync(this.#importDir) ? readdirSync(this.#importDir) : []) {
      if (name.endsWith('.upload') || name.startsWith('upload-')) await rm(join(this.#importDir, name), { recursive: true, force: true })
    }
  }

  // ---- import: queries ----

  #importDoc(r: ImportRecord): JSONValue {
    return { _id: r.id, _creationTime: r.creationTime, state: r.state, format: r.format, mode: r.mode, tableName: r.tableName, requestor: { type: 'snapshotImport' } }
  }

  /** `_system/cli/queryImport`. */
  getImport(importId: unknown): JSONValue {
    const r = typeof importId === 'string' ? this.#imports.get(importId) : undefined
    if (r === undefined) throw new Error(`Import ${JSON.stringify(importId)} not found`)
    return this.#importDoc(r)
  }

  /** `_system/cli/queryImport:list`. */
  listImports(): JSONValue {
    return [...this.#imports.values()].sort((a, b) => b.creationTime - a.creationTime).map((r) => this.#importDoc(r))
  }

  // ---- import: parse, confirm, perform ----

  async #prepare(record: ImportRecord): Promise<void> {
    try {
      record.parsed = await this.#parse(record)
      const lines = await this.#summary(record, record.parsed)
      this.#setState(record, { state: 'waiting_for_confirmation', message_to_confirm: lines.join('\n'), require_manual_confirmation: true })
    } catch (e) {
      this.#setState(record, { state: 'failed', error_message: (e as Error)?.message ?? String(e) })
    }
  }

  /** Starts writing a confirmed import (`POST /api/perform_import`). */
  performImport(importId: unknown): void {
    const r = typeof importId === 'string' ? this.#imports.get(importId) : undefined
    if (r === undefined) throw new SnapshotError('ImportNotFound', `Import ${JSON.stringify(importId)} not found`)
    if (r.state.state !== 'waiting_for_confirmation' || r.parsed === null) throw new SnapshotError('ImportNotWaiting', `Import ${r.id} is not waiting for confirmation (it is ${String(r.state.state)})`)
    const parsed = r.parsed
    // The parsed rows are the write's to keep now (and to let go of table by table as they turn
    // into documents), not the record's until it is forgotten.
    r.parsed = null
    this.#setState(r, { state: 'in_progress', progress_message: 'Importing', checkpoint_messages: [] })
    this.#write(r, parsed).then(
      (n) => this.#setState(r, { state: 'completed', num_rows_written: int64(n) }),
      (e: unknown) => this.#setState(r, { state: 'failed', error_message: (e as Error)?.message ?? String(e) }),
    )
  }

  /** The upload's tables, read from the file (a zip entry by entry, JSON lines line by line). */
  async #parse(record: ImportRecord): Promise<ParsedImport> {
    if (record.format === 'zip') return this.#parseZip(record.path, record.componentPath)
    const name = record.tableName!
    checkTableName(name)
    let docs: Doc[]
    if (record.format === 'jsonLines') docs = await parseLines(createReadStream(record.path), false)
    else if (record.format === 'jsonArray') {
      const text = await readJsonArray(record.path)
      let parsed: JSONValue
      try {
        parsed = parseToEncoded(text, false)
      } catch (e) {
        throw new Error(`Not valid JSON: ${(e as Error).message}`)
      }
      if (!Array.isArray(parsed)) throw new Error('Not a JSON array')
      docs = parsed.map((d, i) => asObject(d, i + 1))
    } else docs = await parseCsv(createReadStream(record.path))
    return { tables: [{ component: record.componentPath, name, sourceNumber: null, docs }], files: new Map() }
  }

  /**
   * A snapshot zip, as Convex reads one: `<table>/documents.jsonl` (any leading folder ignored),
   * with a component's tables under `_components/<name>/` per level of its path, relative to
   * `base` (`npx convex import --component`).
   */
  async #parseZip(path: string, base: string): Promise<ParsedImport> {
    const zip = await openZip(path)
    try {
      // Keyed by the table's stored name (component and name).
      const numbers = new Map<string, number>()
      const uniform = new Set<string>()
      const documents = new Map<string, { component: string; name: string; entry: Entry }>()
      const files = new Map<string, string>()
      for await (const entry of zipEntries(zip)) {
        const path = entry.fileName
        if (path.endsWith('/')) continue
        const doc = /^(.*\/)?([^/]+)\/(documents|generated_schema)\.jsonl$/.exec(path)
        if (doc !== null) {
          const component = componentOfFolder(doc[1] ?? '', base)
          const table = doc[2]!
          const key = storedTableName(component, table)
          if (doc[3] === 'generated_schema') {
            if ((await firstLine(await openEntry(zip, entry))).trim() === '"uniform"') uniform.add(key)
            continue
          }
          if (table.startsWith('_') && table !== TABLES && table !== STORAGE) continue // other system tables: skipped, like Convex
          if (table !== TABLES && table !== STORAGE) checkTableName(table)
          documents.set(key, { component, name: table, entry })
          continue
        }
        const file = /^(.*\/)?_storage\/([^/.]+)(?:\.[^/]+)?$/.exec(path)
        // Storage ids are unique across components: one map holds every component's files.
        if (file !== null) files.set(file[2]!, path)
      }
      for (const [key, { component, name, entry }] of [...documents]) {
        if (name !== TABLES) continue
        for (const line of await parseLines(await openEntry(zip, entry), false)) {
          if (typeof line.name !== 'string' || typeof line.id !== 'number') throw new Error(`Invalid _tables entry ${JSON.stringify(line)}`)
          checkTableName(line.name)
          numbers.set(storedTableName(component, line.name), line.id)
        }
        documents.delete(key)
      }
      const tables: ImportTable[] = []
      for (const [key, { component, name, entry }] of documents) {
        // A snapshot's own storage metadata and uniform tables are in export JSON.
        const docs = await parseLines(await openEntry(zip, entry), uniform.has(key) || name === STORAGE)
        let sourceNumber = numbers.get(key) ?? null
        if (sourceNumber === null) {
          const first = docs.find((d) => typeof d._id === 'string')
          sourceNumber = first === undefined ? null : (decodeId(first._id as string)?.tableNumber ?? null)
        }
        tables.push({ component, name, sourceNumber, docs })
      }
      for (const [key, n] of numbers) {
        if (!documents.has(key)) {
          const { component, name } = splitStoredTableName(key)
          tables.push({ component, name, sourceNumber: n, docs: [] })
        }
      }
      for (const storage of tables.filter((t) => t.name === STORAGE)) {
        for (const doc of storage.docs) {
          if (typeof doc._id !== 'string' || decodeId(doc._id) === null) throw new Error(`_storage/documents.jsonl: invalid _id ${JSON.stringify(doc._id)}`)
          if (!files.has(doc._id)) throw new Error(`_storage/documents.jsonl lists file ${doc._id}, but the zip has no _storage/${doc._id} file`)
        }
      }
      return { tables, files }
    } finally {
      zip.close()
    }
  }

  async #summary(record: ImportRecord, parsed: ParsedImport): Promise<string[]> {
    const txn = await this.db.begin(false)
    try {
      const rows: string[][] = [['table', 'create', 'delete']]
      // By stored name: a component's table is not the app's table of the same name.
      const names = new Set(parsed.tables.map((t) => storedTableName(t.component, t.name)))
      const counts = new Map<string, { name: string; count: number }>()
      for (const t of this.db.catalog.byName.values()) counts.set(storedTableName(t.component, t.name), { name: t.name, count: await txn.snapshot.countTable(t.tableNumber) })
      for (const t of parsed.tables) {
        const existing = counts.get(storedTableName(t.component, t.name))?.count ?? 0
        if (record.mode === 'requireEmpty' && existing > 0) throw new Error(`Table ${t.name} already exists. Please choose a new table name or use replace/append modes.`)
        const deleted = record.mode === 'replace' || record.mode === 'replaceAll' ? existing : 0
        rows.push([t.name, String(t.docs.length), `${deleted} of ${existing}`])
      }
      if (record.mode === 'replaceAll') {
        // As Convex: every component's user tables, shown by their own names.
        for (const [stored, { name, count: n }] of counts) if (!name.startsWith('_') && !names.has(stored) && n > 0) rows.push([name, '0', `${n} of ${n}`])
      }
      const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
      const render = (r: string[]) => `${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`
      return ['Import change summary:', render(rows[0]!), '-'.repeat(render(rows[0]!).length), ...rows.slice(1).map(render), 'Once the import has started, it will run in the background.', 'Interrupting `npx convex import` will not cancel it.']
    } finally {
      this.db.end(txn)
    }
  }

  /** The target table for an imported one: existing, or created (with the source's number if free). */
  async #target(component: string, name: string, sourceNumber: number | null): Promise<TableInfo> {
    const existing = this.db.catalog.table(component, name)
    if (existing !== undefined) return existing
    // The source's number when it is free; else a fresh one (ids are re-encoded).
    return this.db.ensureTable(name, component, sourceNumber ?? undefined)
  }

  async #write(record: ImportRecord, parsed: ParsedImport): Promise<number> {
    // By stored name; table numbers are renumbered per component (each namespace of the source
    // numbers its tables on its own, and a reference names a table of its own component).
    const targets = new Map<string, TableInfo>()
    const renumbers = new Map<string, Map<number, number>>()
    for (const t of parsed.tables) {
      const target = await this.#target(t.component, t.name, t.sourceNumber)
      targets.set(storedTableName(t.component, t.name), target)
      let renumber = renumbers.get(t.component)
      if (renumber === undefined) renumbers.set(t.component, (renumber = new Map()))
      if (t.sourceNumber !== null && t.sourceNumber !== target.idNumber) renumber.set(t.sourceNumber, target.idNumber)
    }
    const remap = (id: string, table: TableInfo): string => {
      const decoded = decodeId(id)
      return decoded === null || decoded.tableNumber === table.idNumber ? id : encodeId(table.idNumber, decoded.internalId)
    }
    const remapRefs = (v: JSONValue, renumber: Map<number, number>): JSONValue => {
      if (renumber.size === 0) return v
      if (typeof v === 'string') {
        const decoded = v.length >= 31 && v.length <= 37 ? decodeId(v) : null
        const to = decoded === null ? undefined : renumber.get(decoded.tableNumber)
        return to === undefined ? v : encodeId(to, decoded!.internalId)
      }
      if (Array.isArray(v)) return v.map((x) => remapRefs(x, renumber))
      if (v !== null && typeof v === 'object') {
        const keys = Object.keys(v)
        if (keys.length === 1 && keys[0]!.startsWith('$')) return v
        return Object.fromEntries(keys.map((k) => [k, remapRefs(v[k]!, renumber)]))
      }
      return v
    }
    // Build the documents once (ids, creation times, checks); the transaction may be retried.
    const prepared: { table: TableInfo; id: string; doc: Doc; file?: string }[] = []
    const seen = new Set<string>()
    for (const t of parsed.tables) {
      const table = targets.get(storedTableName(t.component, t.name))!
      const renumber = renumbers.get(t.component)!
      t.docs.forEach((raw, i) => {
        let doc: Doc
        if (t.name === STORAGE) {
          doc = { sha256: raw.sha256!, size: raw.size!, ...(raw.contentType === undefined || raw.contentType === null ? {} : { contentType: raw.contentType }) }
          if (typeof raw.size === 'object' && raw.size !== null && '$integer' in raw.size) doc.size = Number(Buffer.from(raw.size.$integer as string, 'base64').readBigInt64LE(0))
        } else {
          doc = {}
          for (const [k, v] of Object.entries(raw)) if (k !== '_id' && k !== '_creationTime') doc[k] = remapRefs(v, renumber)
        }
        let id: string
        if (typeof raw._id === 'string') {
          if (decodeId(raw._id) === null) throw new Error(`Row ${i + 1} of ${t.name}: invalid _id ${JSON.stringify(raw._id)}`)
          id = remap(raw._id, table)
        } else id = this.db.newId(table)
        if (seen.has(id)) throw new Error(`Row ${i + 1} of ${t.name}: duplicate _id ${id}`)
        seen.add(id)
        const creationTime = typeof raw._creationTime === 'number' && Number.isFinite(raw._creationTime) && raw._creationTime > 0 ? raw._creationTime : this.db.nextCreationTime()
        const full: Doc = inFieldOrder({ _creationTime: creationTime, _id: id, ...doc })
        if (!t.name.startsWith('_')) {
          const value = jsonToValue(full) as Record<string, Value>
          const error = checkDocumentLimits(value) ?? validateDocument(t.name, this.db.schemaValidator(t.name, t.component), value, this.db.validatorContextFor(t.component))
          if (error !== null) throw new Error(`Row ${i + 1} of ${t.name}: ${error}`)
        }
        prepared.push(t.name === STORAGE ? { table, id, doc: full, file: parsed.files.get(raw._id as string) } : { table, id, doc: full })
      })
      // Each row is a document now: the parsed rows can go (a large import holds one copy, not two).
      t.docs = []
    }
    // Stored names; replaceAll empties every component's user tables, as Convex's does.
    const replaced = new Set<string>()
    if (record.mode === 'replace' || record.mode === 'replaceAll') for (const t of parsed.tables) replaced.add(storedTableName(t.component, t.name))
    if (record.mode === 'replaceAll') for (const t of this.db.catalog.byName.values()) if (!t.name.startsWith('_')) replaced.add(storedTableName(t.component, t.name))
    // Files first (a committed _storage document always has its file); removed again on failure.
    const files = this.#fileStore
    const writtenFiles: string[] = []
    const deletedFiles: string[] = []
    // A file already at an imported id (its document may survive a failed import) is moved aside,
    // and put back if the import fails.
    const setAside = new Map<string, string>()
    try {
      // Each file streams from its zip entry into the file store, one at a time.
      const wanted = new Map<string, string>()
      for (const p of prepared) if (p.file !== undefined) wanted.set(p.file, p.id)
      if (wanted.size > 0) {
        const zip = await openZip(record.path)
        try {
          for await (const entry of zipEntries(zip)) {
            const id = wanted.get(entry.fileName)
            if (id === undefined) continue
            wanted.delete(entry.fileName)
            if (await files.blobs.exists(id)) {
              const aside = `.import-kept-${id}`
              await files.blobs.rename(id, aside)
              setAside.set(id, aside)
            }
            const bytes = await openEntry(zip, entry)
            try {
              await files.blobs.put(id, bytes)
            } finally {
              bytes.destroy()
            }
            writtenFiles.push(id)
          }
        } finally {
          zip.close()
        }
        if (wanted.size > 0) throw new Error(`The zip no longer has ${[...wanted.keys()].join(', ')}`)
      }
      // Not a system write: user tables only (txn.system stays off).
      await this.db.mutate(
        async (txn) => {
          deletedFiles.length = 0
          for (const stored of new Set([...replaced, ...(record.mode === 'requireEmpty' ? parsed.tables.map((t) => storedTableName(t.component, t.name)) : [])])) {
            const table = this.db.catalog.byName.get(stored)
            if (table === undefined) continue
            const name = table.name
            // Reading the whole table makes a concurrent write to it a conflict (and a retry).
            txn.readSet.add(table.indexes.get(BY_ID)!.indexId, { lo: Buffer.alloc(0), hi: null })
            for await (const doc of this.#docs(txn, table)) {
              if (record.mode === 'requireEmpty') throw new Error(`Table ${name} already exists. Please choose a new table name or use replace/append modes.`)
              txn.writes.set(doc._id as string, { table, id: doc._id as string, base: doc, doc: null })
              if (name === STORAGE) deletedFiles.push(doc._id as string)
            }
          }
          for (const p of prepared) {
            const w = txn.writes.get(p.id)
            if (w !== undefined) {
              w.doc = p.doc
              continue
            }
            const existing = await txn.snapshot.getDocument(p.id)
            if (existing !== null) throw new Error(`Document ${p.id} already exists in table ${p.table.name}; use --replace to overwrite the table`)
            txn.writes.set(p.id, { table: p.table, id: p.id, base: null, doc: p.doc })
          }
        },
        { system: false },
      )
    } catch (e) {
      for (const id of writtenFiles) await files.blobs.delete(id)
      for (const [id, aside] of setAside) await files.blobs.rename(aside, id)
      throw e
    }
    for (const aside of setAside.values()) await files.blobs.delete(aside)
    const kept = new Set(writtenFiles)
    for (const id of deletedFiles) if (!kept.has(id)) await files.blobs.delete(id)
    return prepared.length
  }
}

/** Where a component's files sit in a snapshot: `_components/<name>/` per level of its path ('' for the app). */
function componentPrefix(component: string): string {
  return component === '' ? '' : component.split('/').map((name) => `_components/${name}/`).join('')
}

/**
 * The component a snapshot folder's tables belong to: `base`, then one level per trailing
 * `_components/<name>/` (anything before those is ignored, as Convex's import does).
 */
function componentOfFolder(folder: string, base: string): string {
  const names: string[] = []
  let rest = folder
  for (;;) {
    const m = /^(.*\/)?_components\/([^/]+)\/$/.exec(rest)
    if (m === null) break
    const error = identifierError(m[2]!)
    if (error !== null) throw new SnapshotError('InvalidComponentName', `component name '${m[2]}' invalid: ${error}`)
    names.unshift(m[2]!)
    rest = m[1] ?? ''
  }
  return [base, ...names].filter((n) => n !== '').join('/')
}

/** Why `s` is not a Convex identifier (a component's name), in Convex's words; null if it is one. */
function identifierError(s: string): string | null {
  const first = s[0]
  if (first === undefined) return 'Identifier cannot be empty'
  if (!/[A-Za-z_]/.test(first)) return `Invalid first character '${first}' in ${s}: Identifiers must start with an alphabetic character or underscore`
  const bad = /[^A-Za-z0-9_]/.exec(s)
  if (bad !== null) return `Identifier ${s} has invalid character '${bad[0]}': Identifiers can only contain alphanumeric characters or underscores`
  if (s.length > 64) return `Identifier is too long (${s.length} > maximum 64)`
  if (/^_+$/.test(s)) return `Identifier ${s} cannot have exclusively underscores`
  return null
}

function isComponentName(s: string): boolean {
  return identifierError(s) === null
}

function checkTableName(name: string): void {
  if (!TABLE_NAME.test(name) || name.length > 64) {
    throw new Error(`InvalidTableName: table name ${JSON.stringify(name)} invalid: table names must start with a letter and contain only letters, digits and underscores (at most 64 characters)`)
  }
}

function asObject(v: JSONValue, row: number): Doc {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error(`Row ${row} wasn't an object`)
  try {
    jsonToValue(v)
  } catch (e) {
    throw new Error(`Row ${row} wasn't a valid Convex value: ${(e as Error).message}`)
  }
  return v as Doc
}

/** JSON lines, one document each, read from `input` a line at a time (no whole-file string). */
async function parseLines(input: Readable, exportJson: boolean): Promise<Doc[]> {
  const docs: Doc[] = []
  let i = 0
  for await (const text of createInterface({ input, crlfDelay: Infinity })) {
    i++
    if (i === 1 && text.charCodeAt(0) === 0xfeff) throw new Error('UTF-8 BOM is not supported. Please save your file without BOM.')
    const line = text.trim()
    if (line === '') continue
    let v: JSONValue
    try {
      v = parseToEncoded(line, exportJson)
    } catch (e) {
      // (Convex's ImportError::JsonInvalidRow: the row alone, whatever table it is in.)
      throw new Error(`Row ${i} wasn't valid JSON: ${(e as Error).message}`)
    }
    docs.push(asObject(v, i))
  }
  return docs
}

/** The first line of `input` (the rest is not read). */
async function firstLine(input: Readable): Promise<string> {
  const lines = createInterface({ input, crlfDelay: Infinity })
  try {
    for await (const line of lines) return line
    return ''
  } finally {
    lines.close()
    input.destroy()
  }
}

/**
 * A zip on disk, read from its central directory: entries are opened one at a time, never the
 * whole archive at once (a snapshot with its files may pass what one buffer can hold).
 */
async function openZip(path: string): Promise<ZipFile> {
  try {
    return await openZipFile(path, { lazyEntries: true, autoClose: false, strictFileNames: false, validateEntrySizes: true })
  } catch (e) {
    throw new Error(`InvalidZip: invalid zip file: ${(e as Error).message}`)
  }
}

async function* zipEntries(zip: ZipFile): AsyncIterable<Entry> {
  try {
    yield* zip.eachEntry()
  } catch (e) {
    throw new Error(`InvalidZip: invalid zip file: ${(e as Error).message}`)
  }
}

/** An entry's bytes, inflated as they are read; a damaged entry fails the read as an invalid zip. */
async function openEntry(zip: ZipFile, entry: Entry): Promise<Readable> {
  let stream: Readable
  try {
    stream = await zip.openReadStreamPromise(entry)
  } catch (e) {
    throw new Error(`InvalidZip: invalid zip file: ${(e as Error).message}`)
  }
  const checked = new PassThrough()
  stream.on('error', (e: Error) => checked.destroy(new Error(`InvalidZip: invalid zip file: ${e.message}`)))
  // A reader that stops early lets the entry go: its hold on the zip file would keep it open.
  checked.on('close', () => stream.destroy())
  return stream.pipe(checked)
}

/** Convex's most bytes of a JSON array import (TRANSACTION_MAX_USER_WRITE_SIZE_BYTES, 16 MiB). */
const JSON_ARRAY_LIMIT = 1 << 24

/** A JSON array upload's text; past 16 MiB refused as Convex refuses it (no more than that is read). */
async function readJsonArray(path: string): Promise<string> {
  const fh = await open(path, 'r')
  try {
    const buf = Buffer.alloc(JSON_ARRAY_LIMIT + 1)
    let length = 0
    while (length < buf.length) {
      const { bytesRead } = await fh.read(buf, length, buf.length - length, length)
      if (bytesRead === 0) break
      length += bytesRead
    }
    if (length > JSON_ARRAY_LIMIT) throw new Error(`Import is too large for JSON (${length} bytes > maximum 16 MiB). Consider converting data to JSONLines`)
    if (buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) throw new Error('UTF-8 BOM is not supported. Please save your file without BOM.')
    return buf.toString('utf8', 0, length)
  } finally {
    await fh.close()
  }
}

/** What Rust's `f64` parse reads (Convex's `parse_csv_cell`): a decimal number, or inf/infinity/nan. */
const FLOAT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/
const NON_FINITE = /^[+-]?(?:inf|infinity|nan)$/i

/** A CSV cell as Convex reads one: a float64 where Rust parses one (JSON null if not finite), else the string. */
function csvCell(s: string): JSONValue {
  if (FLOAT.test(s)) {
    const n = Number(s)
    return Number.isFinite(n) ? n : null
  }
  return NON_FINITE.test(s) ? null : s
}

/**
 * CSV with a header row, as Convex reads one (the Rust csv crate's defaults, through csv-parse),
 * a record at a time: blank lines skipped, header names trimmed of spaces, each cell as
 * `csvCell` reads it; a row with another number of fields than the header fails with its line.
 */
async function parseCsv(input: Readable): Promise<Doc[]> {
  const records = input.pipe(parseCsvStream({ info: true, skip_empty_lines: true, relax_column_count: true, relax_quotes: true }))
  // (pipe doesn't pass a read error on: the records end with it.)
  input.on('error', (e) => records.destroy(e))
  let fields: string[] | null = null
  const docs: Doc[] = []
  // csv-parse counts a `\r` inside a quoted field as a line of its own (`\r\n` as two); the Rust
  // csv crate counts `\n`s: the ones seen so far are taken off its count.
  let carriageReturns = 0
  const count = (text: string, c: string) => text.split(c).length - 1
  try {
    for await (const { record, info } of records as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      const text = record.join('')
      carriageReturns += count(text, '\r')
      if (fields === null) {
        fields = record.map((h) => h.replace(/^ +| +$/g, ''))
        continue
      }
      // (The line the record starts on, as the Rust csv crate reports it: a quoted field may span lines.)
      if (record.length !== fields.length) throw new Error(`CSV row ${info.lines - carriageReturns - count(text, '\n')} doesn't have all of the fields in the header`)
      const doc: Doc = {}
      fields.forEach((f, j) => (doc[f] = csvCell(record[j]!)))
      docs.push(doc)
    }
  } catch (e) {
    const err = e as Error & { lines?: number }
    if (err.lines === undefined) throw e
    throw new Error(`Failed to parse CSV row ${err.lines}: ${err.message}`)
  } finally {
    input.destroy()
  }
  return docs
}

const services = new WeakMap<Database, SnapshotService>()

/** The snapshot service of a database (one per backend). */
export function snapshotService(db: Database): SnapshotService {
  let s = services.get(db)
  if (s === undefined) services.set(db, (s = new SnapshotService(db)))
  return s
}
