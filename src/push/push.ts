/**
 * @module Push: what `npx convex deploy` / `dev` call (get_config_hashes, start_push,
 * wait_for_schema, finish_push). start_push loads every pushed module in a scratch isolate and
 * analyses its exports and the schema; finish_push stores the modules, creates tables and
 * indexes (database, full-text search and vector; backfilling new ones), drops removed ones and
 * switches the live function registry. An index whose definition changed is dropped and rebuilt;
 * one whose only change is its `staged` flag is enabled or staged in place.
 */
import { createHash, randomUUID } from 'node:crypto'
import type { Database, Schema, SchemaTable } from '../database/database.ts'
import { BY_CREATION_TIME, BY_ID } from '../database/catalog.ts'
import { PushError, schemaIndexes } from './schema-indexes.ts'
import type { WantedIndex } from './schema-indexes.ts'
import type { IndexInfo } from '../database/catalog.ts'
import type { IsolatePool } from '../functions/isolate/isolate-pool.ts'
import { packagesKey, parseNodeDependencies } from '../functions/node/node-packages.ts'
import type { NodeDependency, NodePackages } from '../functions/node/node-packages.ts'
import { Registry } from '../functions/registry.ts'
import { childPath, COMPONENT_MODULES, Components } from '../functions/components.ts'
import type { EnvBinding, StoredComponents } from '../functions/components.ts'
import { validateCrons } from '../functions/crons.ts'
import type { CronSpec } from '../functions/crons.ts'
import type { FunctionInfo } from '../functions/registry.ts'
import type { ModuleRecord } from '../storage/persistence.ts'
import type { ModuleAnalysis } from '../../runtime/analyze.ts'
import { jsonToValue, validateDocument, validateValue } from '../values/index.ts'
import type { JSONValue, ValidatorJSON, Value } from '../values/index.ts'
import type { EnvironmentVariables } from '../functions/environment.ts'
import { EnvironmentError } from '../functions/environment.ts'

const SCHEMA_MISMATCH = 'does not match the schema: '

export { PushError }

interface PushedModule {
  path: string
  source: string
  sourceMap?: string | null
  environment: 'isolate' | 'node'
}

interface StartPushRequest {
  dryRun?: boolean
  functions?: string
  appDefinition: {
    definition?: PushedModule | null
    schema?: PushedModule | null
    changedModules: PushedModule[]
    unchangedModuleHashes?: { path: string; environment: string; sha256: string }[]
    udfServerVersion?: string
    dependencies?: string[]
  }
  componentDefinitions?: unknown[]
  nodeDependencies?: unknown[]
}

/** A component definition as the CLI sends it (`componentDefinitions[]`). */
interface PushedComponentDefinition {
  definitionPath: string
  definition: PushedModule
  dependencies?: string[]
  schema?: PushedModule | null
  functions: PushedModule[]
}

/** What evaluating a definition's `convex.config.js` says (its `export()`). */
interface DefinitionExport {
  name?: string
  childComponents?: { name: string; path: string; env?: EnvBinding[] | null }[]
  httpMounts?: Record<string, string>
  /** `defineApp({ httpPrefix })`: where the app's own `http.js` routes are served (ends with `/`). */
  httpPrefix?: string
  exports?: { type: 'branch'; branch: unknown[] }
  envVars?: DeclaredEnvVar[]
}


function definitionPrefix(definitionPath: string, taken: Set<string>): string {
  const base = `${COMPONENT_MODULES}${definitionPath.replace(/(^|\/)\.\.(?=\/|$)/g, '$1_').replace(/[^A-Za-z0-9_@./-]/g, '_')}`
  let prefix = `${base}/`
  for (let n = 2; taken.has(prefix); n++) prefix = `${base}~${n}/`
  taken.add(prefix)
  return prefix
}

/**
 * A child component's exports, as Convex derives them: its public functions by module path
 * (`components.<name>.<dir>.<module>.<fn>`), each a `_reference/function/<module>:<fn>` leaf.
 */
function functionExports(functions: readonly FunctionInfo[]): { type: 'branch'; branch: unknown[] } {
  type Tree = Map<string, Tree | string>
  const root: Tree = new Map()
  for (const f of functions) {
    if (f.visibility !== 'public' || f.udfType === 'HttpAction') continue
    const mod = f.modulePath.replace(/\.js$/, '')
    let node = root
    for (const seg of mod.split('/')) {
      let next = node.get(seg)
      if (typeof next !== 'object') node.set(seg, (next = new Map()))
      node = next
    }
    node.set(f.exportName, `_reference/function/${mod}:${f.exportName}`)
  }
  const serialize = (t: Tree): { type: 'branch'; branch: unknown[] } => ({
    type: 'branch',
    branch: [...t].map(([k, v]) => [k, typeof v === 'string' ? { type: 'leaf', leaf: v } : serialize(v)]),
  })
  return serialize(root)
}

/** The analysis of one pushed definition (the app's or a component's). */
interface AnalyzedDefinition {
  definitionPath: string
  prefix: string
  functions: FunctionInfo[]
  schema: Schema | null
  definition: DefinitionExport | null
  /** The routes of its `http.js` router (a prefix route's path ends with `*`). */
  httpRoutes: { path: string; method: string }[]
}

/** Documents an index being built backfills per batch (each batch runs between commit batches). */
const BACKFILL_BATCH = 1000

/** A new database index a push builds before it lands (not to be confused with user-`staged` indexes). */
interface BuildingIndex {
  index: IndexInfo
  /** Resolves when the index is fully built. */
  done: Promise<void>
  complete: boolean
}

/** A variable the app declares in `defineApp({ env })`: its name and validator (JSON text), as the CLI reads them. */
export type DeclaredEnvVar = [string, { type: 'value'; value: string; optional?: boolean }]

interface PendingPush {
  building: BuildingIndex[]
  modules: ModuleRecord[]
  functions: FunctionInfo[]
  schema: Schema | null
  /** The pushed component tree (no definitions or instances: an app without components). */
  components: StoredComponents
  /** Every mounted instance's schema, by component path ('' the app's). */
  schemas: Map<string, Schema | null>
  udfServerVersion: string
  nodeDependencies: NodeDependency[]
  nodePackagesDir: string | null
  /** The app's declared variables (null: no convex.config.ts, or none declared). */
  envVars: DeclaredEnvVar[] | null
  /** The deployment's variables when the push started: a change before it finishes is a race. */
  environmentVariables: Record<string, string>
}

/** The declared variables that are required (not `v.optional`). */
function requiredNames(declared: readonly DeclaredEnvVar[]): string[] {
  return declared.filter(([, d]) => d.optional !== true).map(([name]) => name)
}

/** Checks values against the app's declared validators, as Convex does at push and on `env set`. */
function checkDeclaredValues(vars: Readonly<Record<string, string>>, declared: readonly DeclaredEnvVar[]): string | null {
  for (const [name, d] of declared) {
    const value = vars[name]
    if (value === undefined) continue
    // Env validators are string-like: no ids, so no table lookups.
    const error = validateValue(JSON.parse(d.value) as ValidatorJSON, value, { tableNumberForName: () => undefined })
    if (error !== null) return `Environment variable ${name} does not match its declared validator: ${error}`
  }
  return null
}

/** The indexes a schema table declares (every kind, staged ones included), checked at start_push. */
function wantedIndexes(t: SchemaTable, schema: Schema): WantedIndex[] {
  return schemaIndexes(t as SchemaTable & { [list: string]: unknown }, schema.schemaValidation)
}

/** An index of the catalog in the schema's terms. */
function asWanted(index: IndexInfo): WantedIndex {
  const base = { name: index.name, staged: index.staged === true }
  if (index.search !== undefined) return { ...base, kind: 'search', searchField: index.search.searchField, filterFields: [...index.search.filterFields] }
  if (index.vector !== undefined) return { ...base, kind: 'vector', vectorField: index.vector.vectorField, dimensions: index.vector.dimensions, filterFields: [...index.vector.filterFields] }
  return { ...base, kind: 'database', fields: [...index.fields] }
}

/** Whether the catalog's index is already the one wanted, `staged` aside (else it is replaced). */
function sameIndex(existing: IndexInfo, wanted: WantedIndex): boolean {
  const have = asWanted(existing)
  const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i])
  if (have.kind === 'database' && wanted.kind === 'database') return same(have.fields, wanted.fields)
  if (have.kind === 'search' && wanted.kind === 'search') return have.searchField === wanted.searchField && same(have.filterFields, wanted.filterFields)
  if (have.kind === 'vector' && wanted.kind === 'vector') return have.vectorField === wanted.vectorField && have.dimensions === wanted.dimensions && same(have.filterFields, wanted.filterFields)
  return false
}

/** An index as the CLI prints it in `schemaChange.indexDiffs`. */
function describeIndex(tableName: string, index: WantedIndex | IndexInfo): unknown {
  const i = 'kind' in index ? index : asWanted(index)
  const name = `${tableName}.${i.name}`
  if (i.kind === 'database') return { name, type: 'database', fields: i.fields, staged: i.staged }
  if (i.kind === 'search') return { name, type: 'search', searchField: i.searchField, filterFields: i.filterFields, staged: i.staged }
  return { name, type: 'vector', vectorField: i.vectorField, dimensions: i.dimensions, filterFields: i.filterFields, staged: i.staged }
}

/** Time a scratch isolate may spend importing one module during analysis. */
const IMPORT_TIMEOUT_MS = 10_000

export function moduleHash(source: string, sourceMap: string | null | undefined): string {
  return createHash('sha256').update(source).update(sourceMap ?? '').digest('hex')
}


/**
 * The modules a `convex.config.js` imports its children's definitions from: the CLI rewrites
 * `import c from "pkg/convex.config"` to `./_componentDeps/<base64url(definition path)>`, and
 * the backend answers with the child's evaluated definition (what `app.use()` reads).
 */
function definitionImports(prefix: string, dependencies: readonly string[], analyzed: ReadonlyMap<string, AnalyzedDefinition>): ModuleRecord[] {
  return dependencies.map((path) => {
    const def = analyzed.get(path)
    if (def === undefined) throw new PushError('ComponentDefinitionNotFound', `Component definition not found: ${JSON.stringify(path)}`)
    const exported = { ...(def.definition ?? {}), path }
    const source = `export default { export: () => (${JSON.stringify(exported)}), componentDefinitionPath: ${JSON.stringify(path)}, defaultName: ${JSON.stringify(def.definition?.name ?? path.split('/').pop())} };\n`
    return { path: `${prefix}_componentDeps/${Buffer.from(path).toString('base64url')}`, environment: 'isolate' as const, source, sourceMap: null, hash: moduleHash(source, null) }
  })
}

/** The components a definition mounts, with what each is passed. */
function childrenOf(def: DefinitionExport | null): StoredComponents['definitions'][number]['childComponents'] {
  return (def?.childComponents ?? []).map((c) => ({ name: c.name, path: c.path, env: Array.isArray(c.env) ? c.env : null }))
}

/** The functions of a definition as start_push reports them (by module). */
function analyzedFunctions(functions: readonly FunctionInfo[]): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const f of functions) {
    const entry = (out[f.modulePath] ??= { functions: [], httpRoutes: null, cronSpecs: null, sourceMapped: null }) as { functions: unknown[] }
    entry.functions.push({ name: f.exportName, pos: null, udfType: f.udfType, visibility: f.visibility === null ? null : { kind: f.visibility }, args: f.args === null ? null : JSON.stringify(f.args), returns: f.returns === null ? null : JSON.stringify(f.returns) })
  }
  return out
}

/**
 * The component instances an app mounts, from its `convex.config.js` down: a child that names a
 * definition that wasn't pushed, a definition that (through its children) uses itself, or two
 * children of one parent with the same name fail the push.
 */
function mountTree(app: DefinitionExport | null, appRoutes: readonly { path: string }[], definitions: ReadonlyMap<string, AnalyzedDefinition>): StoredComponents['instances'] {
  const out: { path: string; definitionPath: string; name: string; parent: string | null }[] = []
  const visit = (def: DefinitionExport | null, path: string, definitionPath: string, ancestors: readonly string[]) => {
    // A mount may not be the very prefix of one of the definition's own prefix routes (Convex's
    // CheckedHttpRoutes::mount; a bare `*` route is `/*`).
    const routes = path === '' ? appRoutes : (definitions.get(definitionPath)?.httpRoutes ?? [])
    for (const mount of Object.keys(def?.httpMounts ?? {})) {
      if (routes.some((r) => r.path.endsWith('*') && (r.path.slice(0, -1) || '/') === mount)) {
        throw new PushError('TypecheckError', `HTTP mount HttpMountPath(${JSON.stringify(mount)}) is invalid: Overlap with existing prefix route`)
      }
    }
    const names = new Set<string>()
    for (const child of def?.childComponents ?? []) {
      if (typeof child?.name !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(child.name)) throw new PushError('InvalidComponentName', `Invalid component name ${JSON.stringify(child?.name)}: component names must be identifiers (letters, digits and underscores, not starting with a digit)`)
      // Convex's words (Rust's Debug of the definition path and the name).
      if (names.has(child.name)) throw new PushError('TypecheckError', `Component ComponentDefinitionPath { path: ${JSON.stringify(definitionPath)} } has multiple child components with the same name: ComponentName(Identifier(${JSON.stringify(child.name)}))`)
      names.add(child.name)
      const childDef = definitions.get(child.path)
      if (childDef === undefined) throw new PushError('ComponentDefinitionNotFound', `Component definition ${child.path} (used as "${child.name}") was not pushed`)
      if (ancestors.includes(child.path)) throw new PushError('CyclicImport', 'Found cyclic definition dependency')
      const p = childPath(path, child.name)
      // (A component parent that declares nothing has no variables to pass on; the app's are
      // checked only when it declares some.)
      checkEnvBindings(child, p, childDef.definition?.envVars ?? [], path === '' ? (def?.envVars ?? null) : (def?.envVars ?? []))
      out.push({ path: p, definitionPath: child.path, name: child.name, parent: path })
      for (const [mount, reference] of Object.entries(def?.httpMounts ?? {})) {
        if (reference !== `_reference/childComponent/${child.name}`) continue
        // As Convex: a child with routes of its own, or mounts of its own children.
        const routed = (childDef.httpRoutes?.length ?? 0) > 0 || Object.keys(childDef.definition?.httpMounts ?? {}).length > 0
        if (!routed) throw new PushError('TypecheckError', `HTTP mount HttpMountPath(${JSON.stringify(mount)}) is invalid: Child component ComponentName(Identifier(${JSON.stringify(child.name)})) doesn't have any HTTP routes.`)
      }
      visit(childDef.definition, p, child.path, [...ancestors, child.path])
    }
  }
  visit(app, '', '', [''])
  return out
}

/**
 * Checks what `app.use(c, { env })` passes against what the component declares
 * (`defineComponent(name, { env })`), with Convex's TypecheckError texts (validate_component_env):
 * each binding, in name order, names a declared variable; a literal value is valid; a parent's
 * variable (`app.env.X`, or the parent component's) is declared there, not optional where the
 * child's is required, and its validator fits within the child's. Then every required variable
 * is bound.
 */
function checkEnvBindings(child: { name: string; env?: EnvBinding[] | null }, path: string, declared: readonly DeclaredEnvVar[], parentDeclared: readonly DeclaredEnvVar[] | null): void {
  const who = `Component ${componentPathDebug(path)}`
  const bindings = new Map((child.env ?? []).map(([name, b]) => [name, b]))
  const byName = new Map(declared.map(([name, d]) => [name, d]))
  const parents = parentDeclared === null ? null : new Map(parentDeclared.map(([name, d]) => [name, d]))
  for (const name of [...bindings.keys()].sort()) {
    const d = byName.get(name)
    if (d === undefined) throw new PushError('TypecheckError', `${who} has no env var named Identifier(${JSON.stringify(name)})`)
    const binding = bindings.get(name)!
    const id = `Identifier(${JSON.stringify(name)})`
    if (binding.type === 'value') {
      const error = validateValue(JSON.parse(d.value) as ValidatorJSON, binding.value, { tableNumberForName: () => undefined })
      if (error !== null) throw new PushError('TypecheckError', `${who} has an invalid value for env var ${id}: ${error}`)
      continue
    }
    if (parents === null) continue
    const parent = parents.get(binding.name)
    if (parent === undefined) throw new PushError('TypecheckError', `${who} env var ${id} references undeclared parent env var ${binding.name}`)
    if (parent.optional === true && d.optional !== true) throw new PushError('TypecheckError', `${who} env var ${id} is required, but parent env var ${binding.name} is optional`)
    if (!stringsWithin(JSON.parse(parent.value) as ValidatorJSON, JSON.parse(d.value) as ValidatorJSON)) {
      throw new PushError('TypecheckError', `${who} env var ${id} validator is not satisfied by parent env var ${binding.name} validator`)
    }
  }
  for (const [name, d] of declared) {
    if (!bindings.has(name) && d.optional !== true) throw new PushError('TypecheckError', `${who} is missing required env var Identifier(${JSON.stringify(name)})`)
  }
}

/** A component's path as Rust's Debug of Convex's ComponentPath prints it: `[ComponentName(Identifier("a")), …]`. */
function componentPathDebug(path: string): string {
  return `[${path.split('/').map((name) => `ComponentName(Identifier(${JSON.stringify(name)}))`).join(', ')}]`
}

/** The strings an env var validator takes (`v.string()`, `v.literal("…")`, a union of those): null for any string, else the literals; undefined if it isn't string-like. */
function stringsOf(v: ValidatorJSON): Set<string> | null | undefined {
  const x = v as { type: string; value?: unknown }
  if (x.type === 'string') return null
  if (x.type === 'literal') return typeof x.value === 'string' ? new Set([x.value]) : undefined
  if (x.type !== 'union' || !Array.isArray(x.value)) return undefined
  const all = new Set<string>()
  for (const member of x.value as ValidatorJSON[]) {
    const m = stringsOf(member)
    if (m === undefined) return undefined
    if (m === null) return null
    for (const s of m) all.add(s)
  }
  return all
}

/** Whether every string `parent` takes, `child` takes too (Convex's `is_subset`). */
function stringsWithin(parent: ValidatorJSON, child: ValidatorJSON): boolean {
  const p = stringsOf(parent)
  const c = stringsOf(child)
  if (c === null) return p !== undefined
  if (p === null || p === undefined || c === undefined) return false
  return [...p].every((s) => c.has(s))
}

/**
 * Convex's InvalidEnvVarDeclaration: an env var of the app or of a component definition declared
 * with a validator that takes something other than strings.
 */
function checkEnvDeclarations(app: DefinitionExport | null, definitions: ReadonlyMap<string, AnalyzedDefinition>): void {
  const all: [string, readonly DeclaredEnvVar[]][] = [['', app?.envVars ?? []], ...[...definitions.values()].map((d): [string, readonly DeclaredEnvVar[]] => [d.definitionPath, d.definition?.envVars ?? []])]
  // In Convex's order: definitions by path, then variables by name (its BTreeMaps).
  const byKey = ([a]: readonly [string, unknown], [b]: readonly [string, unknown]) => (a < b ? -1 : a > b ? 1 : 0)
  for (const [definitionPath, declared] of all.sort(byKey)) {
    for (const [name, d] of [...declared].sort(byKey)) {
      if (stringsOf(JSON.parse(d.value) as ValidatorJSON) !== undefined) continue
      const label = definitionPath === '' ? 'the app' : `component ${definitionPath}`
      throw new PushError('InvalidEnvVarDeclaration', `Env var \`${name}\` on ${label} has a non-string validator. Component env vars must be declared with \`v.string()\`, \`v.literal("...")\`, or a union of those.`)
    }
  }
}

/** start_push's `app`: the checked component tree the CLI reads. */
function checkedComponent(path: string, definitionPath: string, tree: StoredComponents['instances'], definitions: ReadonlyMap<string, AnalyzedDefinition>): unknown {
  const childComponents: Record<string, unknown> = {}
  for (const i of tree) if (i.parent === path) childComponents[i.name] = checkedComponent(i.path, i.definitionPath, tree, definitions)
  const def = definitions.get(definitionPath)
  return {
    definitionPath,
    componentPath: path,
    args: {},
    childComponents,
    httpRoutes: { httpModuleRoutes: null, mounts: Object.keys(def?.definition?.httpMounts ?? {}) },
    exports: {},
  }
}

export class PushService {
  readonly #pending = new Map<string, PendingPush>()
  #components = new Components(new Registry())
  /** The live component tree as stored (the `components` global). */
  #stored: StoredComponents = { definitions: [], instances: [] }
  readonly #listeners: (() => void)[] = []

  /** Called after every push that changed the live code. */
  onPush(listener: () => void): void {
    this.#listeners.push(listener)
  }

  /** The variables the live app declares (`defineApp({ env })`). */
  #envVars: DeclaredEnvVar[] = []

  constructor(
    readonly db: Database,
    readonly pool: IsolatePool,
    readonly env: EnvironmentVariables,
    readonly nodePackages: NodePackages,
    readonly log: (message: string, fields?: Record<string, unknown>) => void = () => {},
  ) {}

  /**
   * Refuses a change of the deployment's variables that the live app's declarations forbid:
   * removing a required one, or a value its validator refuses (Convex's codes and messages).
   */
  checkEnvironmentChange(next: Readonly<Record<string, string>>, removed: readonly string[]): void {
    const required = new Set(requiredNames(this.#envVars))
    const blocked = removed.filter((n) => required.has(n) && next[n] === undefined)
    if (blocked.length > 0) {
      throw new EnvironmentError('RequiredEnvironmentVariable', `Cannot delete required environment variables: ${blocked.join(', ')}. These are declared as required in the app definition.`)
    }
    const invalid = checkDeclaredValues(next, this.#envVars)
    if (invalid !== null) throw new EnvironmentError('InvalidEnvironmentVariable', invalid)
  }

  /** The app's own functions. */
  get registry(): Registry {
    return this.#components.app
  }

  /** The mounted component instances and every function of the live push. */
  get components(): Components {
    return this.#components
  }

  /** Restores the last push at start-up. */
  async load(): Promise<void> {
    // An index being built before a restart is incomplete and its push is gone (on a shared
    // store it may be another process's push under way: left to that process).
    if (this.db.persistence.shared === undefined) await this.#dropBuilding()
    await this.#restore()
  }

  #reloading: Promise<void> = Promise.resolve()

  /**
   * Reads the live push again after another process of a shared store landed one: modules,
   * functions, components and schemas, then tells the listeners (as a push here would).
   */
  reload(): Promise<void> {
    const run = this.#reloading.then(async () => {
      await this.#restore(true)
      for (const l of this.#listeners) l()
    })
    this.#reloading = run.catch(() => {})
    return run
  }

  /**
   * Loads the live push: everything is read first, then put in place at once (no await in
   * between), so that no call sees one push's functions with another's modules or schemas.
   * `appSchema`: read the app's schema too (a push another process landed).
   */
  async #restore(appSchema = false): Promise<void> {
    const modules = await this.db.persistence.modules()
    const functions = await this.db.persistence.getGlobal('functions')
    const components = JSON.parse((await this.db.persistence.getGlobal('components')) ?? '{"definitions":[],"instances":[]}') as StoredComponents
    const storedSchema = appSchema ? await this.db.persistence.getGlobal('schema') : undefined
    const envVars = JSON.parse((await this.db.persistence.getGlobal('app_env_vars')) ?? '[]') as DeclaredEnvVar[]
    // The live push's external packages are normally installed already (a new data dir, e.g. one a
    // backup was copied into, installs them again); other folders are left from earlier pushes.
    const deps = await this.#nodeDependencies()
    let packagesDir: string | null = null
    try {
      packagesDir = await this.nodePackages.ensure(deps)
    } catch (e) {
      this.log('Could not install the external packages of Node.js actions', { error: (e as Error).message })
    }
    if (appSchema) this.db.setSchema(storedSchema === undefined ? null : (JSON.parse(storedSchema) as Schema | null))
    this.#components = new Components(new Registry(functions === undefined ? [] : (JSON.parse(functions) as FunctionInfo[])), components)
    this.#stored = components
    const schemas = new Map<string, Schema | null>([['', this.db.schema]])
    for (const i of components.instances) schemas.set(i.path, components.definitions.find((d) => d.definitionPath === i.definitionPath)?.schema ?? null)
    this.db.setSchemas(schemas)
    this.#envVars = envVars
    this.pool.setModules(modules, packagesDir)
    this.nodePackages.prune(packagesDir)
  }

  async #nodeDependencies(): Promise<NodeDependency[]> {
    const stored = await this.db.persistence.getGlobal('node_dependencies')
    return stored === undefined ? [] : (JSON.parse(stored) as NodeDependency[])
  }

  async configHashes(): Promise<unknown> {
    const modules = await this.db.persistence.modules()
    return {
      config: { functions: 'convex/', authInfo: [] },
      moduleHashes: modules.filter((m) => m.path !== 'schema.js' && m.path !== 'convex.config.js' && !m.path.startsWith(COMPONENT_MODULES)).map((m) => ({ path: m.path, environment: m.environment, hash: m.hash })),
      nodeDependencies: await this.#nodeDependencies(),
      udfServerVersion: (await this.db.persistence.getGlobal('udf_server_version')) ?? null,
    }
  }

  async startPush(req: StartPushRequest): Promise<unknown> {
    const app = req?.appDefinition
    if (app === undefined || !Array.isArray(app.changedModules)) throw new PushError('InvalidPushRequest', 'start_push body must contain appDefinition.changedModules')
    const stored = new Map((await this.db.persistence.modules()).map((m) => [m.path, m]))
    const modules: ModuleRecord[] = []
    for (const m of app.changedModules) {
      modules.push({ path: m.path, environment: m.environment, source: m.source, sourceMap: m.sourceMap ?? null, hash: moduleHash(m.source, m.sourceMap) })
    }
    for (const u of app.unchangedModuleHashes ?? []) {
      const old = stored.get(u.path)
      if (old === undefined || old.hash !== u.sha256) throw new PushError('RaceDetected', `Module ${u.path} changed on the server during the push; push again.`)
      modules.push(old)
    }
    // External packages of Node actions are installed before the modules that import them load.
    let nodeDependencies: NodeDependency[]
    let nodePackagesDir: string | null
    try {
      nodeDependencies = parseNodeDependencies(req.nodeDependencies)
    } catch (e) {
      throw new PushError('InvalidPushRequest', `Invalid nodeDependencies: ${(e as Error).message}`)
    }
    try {
      nodePackagesDir = await this.nodePackages.ensure(nodeDependencies)
    } catch (e) {
      throw new PushError('InvalidExternalModules', `Loading the pushed modules encountered the following error:\n${(e as Error).message}`)
    }
    const schemaModule = app.schema ?? null
    const definitionModule = app.definition ?? null
    const all = [...modules]
    if (schemaModule !== null) all.push({ path: 'schema.js', environment: 'isolate', source: schemaModule.source, sourceMap: schemaModule.sourceMap ?? null, hash: moduleHash(schemaModule.source, schemaModule.sourceMap) })
    if (definitionModule !== null) all.push({ path: 'convex.config.js', environment: 'isolate', source: definitionModule.source, sourceMap: definitionModule.sourceMap ?? null, hash: moduleHash(definitionModule.source, definitionModule.sourceMap) })
    // Components: each definition's modules go under a prefix of their own; definitions are
    // evaluated children first (a `convex.config.js` imports its children's), then the app, and
    // the tree of instances is read from the app's `convex.config.js` down.
    const definitions = await this.#analyzeComponents(req.componentDefinitions ?? [], all, nodePackagesDir)
    const appAnalysis = await this.#analyze([...all, ...definitionImports('', app.dependencies ?? [], definitions)], schemaModule !== null, definitionModule !== null, nodePackagesDir)
    const { functions, schema, envVars } = appAnalysis
    checkEnvDeclarations(appAnalysis.definition, definitions)
    const tree = mountTree(appAnalysis.definition, appAnalysis.httpRoutes, definitions)
    const components: StoredComponents = {
      definitions: [...definitions.values()].map((d) => ({
        definitionPath: d.definitionPath,
        prefix: d.prefix,
        name: d.definition?.name ?? d.definitionPath.split('/').pop() ?? d.definitionPath,
        functions: d.functions,
        schema: d.schema,
        childComponents: childrenOf(d.definition),
        httpMounts: d.definition?.httpMounts ?? {},
        httpRoutes: d.httpRoutes,
      })),
      instances: tree,
      appChildren: childrenOf(appAnalysis.definition),
      appHttp: { routes: appAnalysis.httpRoutes, mounts: appAnalysis.definition?.httpMounts ?? {}, ...(appAnalysis.definition?.httpPrefix === undefined ? {} : { prefix: appAnalysis.definition.httpPrefix }) },
      // What the live push mounts and this one doesn't is unmounted: data kept, functions gone.
      unmounted: [...this.#components.instances().filter((i) => i.path !== ''), ...this.#components.unmounted()]
        .filter((i) => !tree.some((t) => t.path === i.path))
        .map(({ path, definitionPath, name, parent }) => ({ path, definitionPath, name, parent })),
    }
    const schemas = new Map<string, Schema | null>([['', schema]])
    for (const i of tree) schemas.set(i.path, definitions.get(i.definitionPath)?.schema ?? null)
    const pushId = randomUUID()
    const indexDiffs: Record<string, unknown> = {}
    for (const [component, s] of schemas) indexDiffs[component] = this.#indexDiff(component, s)
    const building = req.dryRun === true ? [] : await this.#buildNewIndexes(schemas)
    const environmentVariables = { ...this.env.all }
    this.#pending.set(pushId, { building, modules: all, functions, schema, components, schemas, udfServerVersion: app.udfServerVersion ?? '', envVars, environmentVariables, nodeDependencies, nodePackagesDir })
    const udfConfig = { serverVersion: app.udfServerVersion ?? '1.48.0' }
    const analysis: Record<string, unknown> = {
      '': {
        definition: {
          path: '',
          definitionType: { type: 'app' },
          childComponents: appAnalysis.definition?.childComponents ?? [],
          httpMounts: appAnalysis.definition?.httpMounts ?? {},
          ...(appAnalysis.definition?.httpPrefix === undefined ? {} : { httpPrefix: appAnalysis.definition.httpPrefix }),
          exports: { type: 'branch', branch: [] },
          ...(envVars === null ? {} : { envVars }),
        },
        schema: schema,
        functions: analyzedFunctions(functions),
        udfConfig,
      },
    }
    for (const d of definitions.values()) {
      const def = d.definition ?? {}
      analysis[d.definitionPath] = {
        definition: {
          path: d.definitionPath,
          definitionType: { type: 'childComponent', name: def.name ?? '', args: [] },
          childComponents: def.childComponents ?? [],
          httpMounts: def.httpMounts ?? {},
          exports: functionExports(d.functions),
          ...(def.envVars === undefined ? {} : { envVars: def.envVars }),
        },
        schema: d.schema,
        functions: analyzedFunctions(d.functions),
        udfConfig,
      }
    }
    return {
      environmentVariables,
      externalDepsId: nodeDependencies.length === 0 ? null : packagesKey(nodeDependencies),
      componentDefinitionPackages: {},
      appAuth: [],
      analysis,
      app: checkedComponent('', '', tree, definitions),
      schemaChange: { pushId, indexDiffs },
    }
  }

  /**
   * Analyses each pushed component definition, its modules added to `all` under its prefix, a
   * definition after the definitions it uses (as Convex: a cycle fails the push).
   */
  async #analyzeComponents(raw: unknown[], all: ModuleRecord[], nodePackagesDir: string | null): Promise<Map<string, AnalyzedDefinition>> {
    const pushed = new Map<string, PushedComponentDefinition>()
    for (const item of raw) {
      const d = item as PushedComponentDefinition
      if (d === null || typeof d !== 'object' || typeof d.definitionPath !== 'string' || d.definition === undefined || !Array.isArray(d.functions)) {
        throw new PushError('InvalidPushRequest', 'Invalid componentDefinitions entry: expected definitionPath, definition and functions')
      }
      if (pushed.has(d.definitionPath)) throw new PushError('InvalidPushRequest', `Component definition ${d.definitionPath} was pushed twice`)
      pushed.set(d.definitionPath, d)
    }
    // Children first: a post-order walk of the `dependencies` graph.
    const order: PushedComponentDefinition[] = []
    const state = new Map<string, 'visiting' | 'done'>()
    const visit = (path: string) => {
      const d = pushed.get(path)
      if (d === undefined) throw new PushError('ComponentDefinitionNotFound', `Component definition not found: ${JSON.stringify(path)}`)
      if (state.get(path) === 'done') return
      if (state.get(path) === 'visiting') throw new PushError('CyclicImport', 'Found cyclic definition dependency')
      state.set(path, 'visiting')
      for (const dep of d.dependencies ?? []) visit(dep)
      state.set(path, 'done')
      order.push(d)
    }
    for (const path of pushed.keys()) visit(path)
    const out = new Map<string, AnalyzedDefinition>()
    const taken = new Set<string>()
    for (const d of order) {
      const prefix = definitionPrefix(d.definitionPath, taken)
      const record = (path: string, m: PushedModule): ModuleRecord => ({ path: `${prefix}${path}`, environment: m.environment ?? 'isolate', source: m.source, sourceMap: m.sourceMap ?? null, hash: moduleHash(m.source, m.sourceMap) })
      const mods = d.functions.map((m) => record(m.path, m))
      if (d.schema != null) mods.push(record('schema.js', d.schema))
      mods.push(record('convex.config.js', d.definition))
      all.push(...mods)
      const analyzed = await this.#analyze([...mods, ...definitionImports(prefix, d.dependencies ?? [], out)], d.schema != null, true, nodePackagesDir, prefix)
      out.set(d.definitionPath, { ...analyzed, definitionPath: d.definitionPath })
    }
    return out
  }

  /**
   * Loads a definition's modules (`prefix`: where a component's live; '' the app's) in a scratch
   * isolate and reads its functions, schema and `convex.config.js`.
   */
  async #analyze(modules: ModuleRecord[], hasSchema: boolean, hasDefinition: boolean, nodePackagesDir: string | null, prefix = ''): Promise<AnalyzedDefinition & { envVars: DeclaredEnvVar[] | null }> {
    const relative = (path: string) => path.slice(prefix.length)
    const entryPoints = modules.filter((m) => {
      if (!m.path.startsWith(prefix) || (prefix === '' && m.path.startsWith(COMPONENT_MODULES))) return false
      const r = relative(m.path)
      return !r.startsWith('_deps/') && !r.startsWith('_componentDeps/') && r !== 'schema.js' && r !== 'convex.config.js' && r !== 'auth.config.js'
    })
    // "use node" modules load in a scratch Node.js worker; the rest in a scratch isolate.
    const nodePaths = entryPoints.filter((m) => m.environment === 'node').map((m) => m.path)
    let nodeAnalyses = new Map<string, ModuleAnalysis>()
    if (nodePaths.length > 0) {
      try {
        nodeAnalyses = await this.pool.node.analyze(modules, nodePaths, prefix === '' ? this.pool.env : {}, IMPORT_TIMEOUT_MS, nodePackagesDir)
      } catch (e) {
        throw new PushError('InvalidModules', `Loading the pushed modules encountered the following error:\nFailed to analyze a Node.js module (${nodePaths.join(', ')}): ${(e as Error).message}`)
      }
    }
    const host = this.pool.scratch(modules)
    try {
      // Modules load with the deployment's environment variables, as they will when called.
      host.setEnv(prefix === '' ? this.pool.env : {})
      const functions: FunctionInfo[] = []
      let crons: Record<string, CronSpec> | null = null
      let httpRoutes: { path: string; method: string }[] = []
      for (const m of entryPoints) {
        try {
          let analyzed = nodeAnalyses.get(m.path)
          if (analyzed === undefined) {
            host.loadModule(m.path, IMPORT_TIMEOUT_MS)
            analyzed = host.analyze(m.path)
          } else {
            const notAction = analyzed.functions.find((f) => f.udfType !== 'Action')
            if (notAction !== undefined) throw new PushError('InvalidModules', `${m.path} defines a ${notAction.udfType.toLowerCase()} (${notAction.name}), but a "use node" file may only define actions. Move it to a file without "use node".`)
          }
          if (relative(m.path) === 'crons.js' && analyzed.crons !== null && analyzed.crons !== undefined) crons = analyzed.crons as Record<string, CronSpec>
          if (relative(m.path) === 'http.js') {
            // As Convex: `http.js` must default-export a router.
            if (analyzed.routerProblem !== null && analyzed.routerProblem !== undefined) throw new PushError('InvalidModules', `Loading the pushed modules encountered the following error:\nFailed to analyze ${m.path}: ${analyzed.routerProblem}`)
            if (analyzed.httpRoutes !== null && analyzed.httpRoutes !== undefined) httpRoutes = analyzed.httpRoutes
          }
          for (const f of analyzed.functions) {
            functions.push({
              modulePath: relative(m.path),
              exportName: f.name,
              udfType: f.udfType,
              visibility: f.visibility?.kind ?? null,
              args: f.args === null ? null : (JSON.parse(f.args) as ValidatorJSON),
              returns: f.returns === null || f.returns === 'null' ? null : (JSON.parse(f.returns) as ValidatorJSON),
            })
          }
        } catch (e) {
          if (e instanceof PushError) throw e
          throw new PushError('InvalidModules', `Loading the pushed modules encountered the following error:\nFailed to analyze ${m.path}: ${host.loadErrorText(e)}`)
        }
      }
      if (crons !== null) {
        try {
          validateCrons(crons)
          // Each cron must name a mutation or action of this push.
          const registry = new Registry(functions)
          for (const [name, spec] of Object.entries(crons)) {
            const target = registry.lookup(spec.name)
            if (target === undefined || (target.udfType !== 'Mutation' && target.udfType !== 'Action')) {
              throw new Error(`Cron job "${name}": ${spec.name} is not a mutation or action of this push`)
            }
          }
        } catch (e) {
          throw new PushError('InvalidCronSpec', `Invalid crons.ts: ${(e as Error).message}`)
        }
      }
      let schema: Schema | null = null
      if (hasSchema) {
        try {
          host.loadModule(`${prefix}schema.js`, IMPORT_TIMEOUT_MS)
          schema = JSON.parse(host.exportDefault(`${prefix}schema.js`)) as Schema
        } catch (e) {
          throw new PushError('InvalidSchema', `Failed to evaluate schema.ts${prefix === '' ? '' : ` of ${prefix.slice(COMPONENT_MODULES.length, -1)}`}: ${(e as Error).message}`)
        }
      }
      let envVars: DeclaredEnvVar[] | null = null
      let definition: DefinitionExport | null = null
      if (hasDefinition) {
        try {
          host.loadModule(`${prefix}convex.config.js`, IMPORT_TIMEOUT_MS)
          definition = JSON.parse(host.exportDefault(`${prefix}convex.config.js`)) as DefinitionExport
        } catch (e) {
          throw new PushError(prefix === '' ? 'InvalidAppDefinition' : 'InvalidComponentDefinition', `Failed to evaluate convex.config.ts${prefix === '' ? '' : ` of ${prefix.slice(COMPONENT_MODULES.length, -1)}`}: ${(e as Error).message}`)
        }
        envVars = definition.envVars ?? null
      }
      if (prefix === '' && modules.some((m) => m.path === 'auth.config.js')) this.#checkAuthConfig(host)
      return { definitionPath: '', prefix, functions, schema, envVars, definition, httpRoutes }
    } finally {
      host.dispose()
    }
  }

  /**
   * Evaluates auth.config.ts with the deployment's environment variables, as Convex does at push: a
   * variable it reads that is not set fails the push (the CLI then says how to set it).
   */
  #checkAuthConfig(host: ReturnType<IsolatePool['scratch']>): void {
    let evaluated: { json: string; missingEnv: string[] }
    try {
      evaluated = host.exportDefaultTrackingEnv('auth.config.js', IMPORT_TIMEOUT_MS)
    } catch (e) {
      throw new PushError('InvalidAuthConfig', `Failed to evaluate auth.config.ts: ${(e as Error).message}`)
    }
    const [missing] = evaluated.missingEnv
    if (missing !== undefined) throw new PushError('AuthConfigMissingEnvironmentVariable', `Environment variable ${missing} is used in auth config file but its value was not set.`)
    const config = JSON.parse(evaluated.json) as { providers?: unknown }
    if (config.providers !== undefined && !Array.isArray(config.providers)) throw new PushError('InvalidAuthConfig', 'auth.config.ts: `providers` must be an array')
  }

  /** Checks the schema's indexes (a bad one fails start_push) and says what the push changes. */
  #indexDiff(component: string, schema: Schema | null): unknown {
    const added: unknown[] = []
    const removed: unknown[] = []
    const enabled: unknown[] = []
    const disabled: unknown[] = []
    const wanted = new Set<string>()
    for (const t of schema?.tables ?? []) {
      const table = this.db.catalog.table(component, t.tableName)
      for (const i of wantedIndexes(t, schema!)) {
        const existing = table?.indexes.get(i.name)
        if (existing !== undefined && sameIndex(existing, i)) {
          wanted.add(`${t.tableName}.${i.name}`)
          if (existing.staged === true && !i.staged) enabled.push(describeIndex(t.tableName, i))
          if (existing.staged !== true && i.staged) disabled.push(describeIndex(t.tableName, i))
          continue
        }
        added.push(describeIndex(t.tableName, i))
      }
    }
    for (const table of this.db.catalog.tablesOf(component)) {
      if (table.name.startsWith('_')) continue
      for (const index of table.indexes.values()) {
        if (index.name === BY_ID || index.name === BY_CREATION_TIME || index.building === true) continue
        if (!wanted.has(`${table.name}.${index.name}`)) removed.push(describeIndex(table.name, index))
      }
    }
    return { added_indexes: added, removed_indexes: removed, enabled_indexes: enabled, disabled_indexes: disabled }
  }

  /** Checks existing documents against the pushed schema, as Convex does before a push lands. */
  async waitForSchema(body: { schemaChange?: { pushId?: string }; timeoutMs?: number }): Promise<unknown> {
    const pending = this.#pending.get(body?.schemaChange?.pushId ?? '')
    if (pending === undefined) return { type: 'complete' }
    // Long-poll while new indexes are still being built, then report progress.
    const building = pending.building.filter((s) => !s.complete)
    if (building.length > 0) {
      const waitMs = Math.min(Math.max(Number(body.timeoutMs) || 0, 0), 10_000)
      let timer: NodeJS.Timeout | undefined
      try {
        await Promise.race([Promise.all(building.map((s) => s.done)), new Promise((resolve) => (timer = setTimeout(resolve, waitMs)))])
      } catch (e) {
        return { type: 'failed', error: `Index backfill failed: ${(e as Error).message}`, componentPath: '', tableName: null }
      } finally {
        clearTimeout(timer)
      }
      const complete = pending.building.filter((s) => s.complete).length
      if (complete < pending.building.length) {
        return { type: 'inProgress', components: { '': { schemaValidationComplete: false, indexesComplete: complete, indexesTotal: pending.building.length } } }
      }
    }
    const failure = await this.#checkExistingDocuments(pending.schemas)
    return failure ?? { type: 'complete' }
  }

  /**
   * Builds the push's new (enabled) database indexes on existing tables before the push lands,
   * in batches between commits while commits keep them current; finish_push makes them live.
   * Indexes being built for pushes that never finished are dropped first. (Indexes declared
   * `staged: true` are not built here: finish_push creates them, complete, but not queryable.)
   */
  async #buildNewIndexes(schemas: ReadonlyMap<string, Schema | null>): Promise<BuildingIndex[]> {
    await this.#dropBuilding()
    const out: BuildingIndex[] = []
    for (const [component, schema] of schemas) for (const t of schema?.tables ?? []) {
      const table = this.db.catalog.table(component, t.tableName)
      if (table === undefined) continue
      for (const i of wantedIndexes(t, schema!)) {
        if (i.kind !== 'database' || i.staged || table.indexes.has(i.name)) continue
        const index = await this.db.exclusive(() => this.db.catalog.buildIndex(table, i.name, i.fields))
        const building: BuildingIndex = { index, complete: false, done: Promise.resolve() }
        building.done = this.#backfill(building)
        building.done.catch(() => {})
        out.push(building)
      }
    }
    return out
  }

  async #backfill(building: BuildingIndex): Promise<void> {
    const table = this.db.catalog.byNumber.get(building.index.tableNumber)!
    let after: string | null = ''
    while (after !== null) {
      // Stop if a later push dropped this index.
      if (table.indexes.get(building.index.name) !== building.index) return
      const from: string = after
      after = await this.db.exclusive(() => this.db.catalog.backfillBuilding(building.index, from, BACKFILL_BATCH))
      await new Promise((resolve) => setImmediate(resolve))
    }
    building.complete = true
  }

  async #dropBuilding(): Promise<void> {
    await this.db.exclusive(async () => {
      for (const table of this.db.catalog.byName.values()) {
        for (const index of [...table.indexes.values()]) if (index.building === true) await this.db.catalog.dropIndex(index)
      }
    })
  }

  /** The first stored document the schema rejects, as a wait_for_schema failure (null: none). */
  async #checkExistingDocuments(schemas: ReadonlyMap<string, Schema | null>): Promise<{ type: 'failed'; error: string; componentPath: string; tableName: string } | null> {
    for (const [component, schema] of schemas) {
      if (schema === null || schema.schemaValidation !== true) continue
      for (const t of schema.tables) {
        const table = this.db.catalog.table(component, t.tableName)
        if (t.documentType === null || table === undefined) continue
        for (const d of await this.db.persistence.tableDocuments(table.tableNumber)) {
          const error = validateDocument(t.tableName, t.documentType, jsonToValue(JSON.parse(d.json) as JSONValue) as Record<string, Value>, this.db.validatorContextFor(component))
          if (error === null) continue
          const detail = error.slice(error.indexOf(SCHEMA_MISMATCH) + SCHEMA_MISMATCH.length)
          return { type: 'failed', error: `Schema validation failed.\nDocument with ID "${d.id}" in table "${t.tableName}" does not match the schema: ${detail}`, componentPath: component, tableName: t.tableName }
        }
      }
    }
    return null
  }

  async finishPush(body: { startPush?: { schemaChange?: { pushId?: string } }; dryRun?: boolean }): Promise<unknown> {
    const pushId = body?.startPush?.schemaChange?.pushId
    const pending = pushId === undefined ? undefined : this.#pending.get(pushId)
    if (pending === undefined) throw new PushError('RaceDetected', 'Unknown or expired push; run the push again.')
    if (body.dryRun !== true) {
      // Documents written since wait_for_schema must fit the schema too.
      const failure = await this.#checkExistingDocuments(pending.schemas)
      if (failure !== null) throw new PushError('SchemaValidationFailed', failure.error)
    }
    this.#pending.delete(pushId!)
    this.#checkEnvironment(pending)
    const previous = this.#components
    if (body.dryRun !== true) {
      try {
        await Promise.all(pending.building.map((st) => st.done))
      } catch (e) {
        throw new PushError('IndexBackfillFailed', `Building a new index failed: ${(e as Error).message}`)
      }
      await this.db.exclusive(async () => {
        // A later push may have dropped the indexes this push built: then it must be pushed again.
        for (const st of pending.building) {
          const live = this.db.catalog.byNumber.get(st.index.tableNumber)?.indexes.get(st.index.name)
          if (live !== st.index || !st.complete) throw new PushError('RaceDetected', 'Another push replaced this one while its indexes were being built; push again.')
        }
        for (const st of pending.building) await this.db.catalog.publishBuilt(st.index)
        await this.#apply(pending)
      }, { push: true })
    }
    // What changed, per component instance: created, modified, or unmounted (its data is kept).
    const modulesOf = (c: Components, path: string) => new Set((c.registry(path)?.all() ?? []).map((f) => f.modulePath))
    const next = new Components(new Registry(pending.functions), pending.components)
    const componentDiffs: Record<string, unknown> = {}
    const paths = new Set([...previous.instances(), ...next.instances()].map((i) => i.path))
    for (const path of [...paths].sort()) {
      const was = previous.instance(path) !== undefined
      const is = next.instance(path) !== undefined
      const before = modulesOf(previous, path)
      const after = modulesOf(next, path)
      if (!is && !was) continue
      const remount = is && !was && previous.unmounted().some((u) => u.path === path)
      componentDiffs[path] = {
        diffType: { type: !is ? 'unmount' : remount ? 'remount' : !was ? 'create' : 'modify' },
        moduleDiff: { added: [...after].filter((p) => !before.has(p)), removed: [...before].filter((p) => !after.has(p)) },
        udfConfigDiff: null,
        cronDiff: { added: [], updated: [], deleted: [] },
        indexDiff: { added_indexes: [], removed_indexes: [], enabled_indexes: [], disabled_indexes: [] },
        schemaDiff: null,
      }
    }
    return { authDiff: { added: [], removed: [] }, definitionDiffs: {}, componentDiffs }
  }

  /**
   * `POST /api/delete_component`: deletes an unmounted component's data (and its unmounted
   * children's), as Convex's dashboard does. Its documents go through the committer, in batches.
   */
  async deleteComponent(componentId: unknown): Promise<void> {
    const found = typeof componentId === 'string' ? this.#components.byId(componentId) : undefined
    if (found === undefined) throw new PushError('ComponentNotFound', `Component with ID ${JSON.stringify(componentId)} not found`, 404)
    if (found.path === '') throw new PushError('ComponentMustBeUnmounted', 'The app itself cannot be deleted')
    if (found.state !== 'unmounted') throw new PushError('ComponentMustBeUnmounted', 'Component must be unmounted before deletion')
    const doomed = this.#components.unmounted().filter((u) => u.path === found.path || u.path.startsWith(`${found.path}/`))
    for (const u of doomed) {
      for (const table of this.db.catalog.tablesOf(u.path)) {
        for (;;) {
          const docs = await this.db.persistence.scanTable(table.tableNumber, '', 1000)
          if (docs.length === 0) break
          await this.db.mutate(async (txn) => {
            for (const d of docs) await txn.removeSystem(d.id, u.path)
          })
        }
      }
    }
    const gone = new Set(doomed.map((u) => u.path))
    this.#stored = { ...this.#stored, unmounted: (this.#stored.unmounted ?? []).filter((u) => !gone.has(u.path)) }
    await this.db.exclusive(() => this.db.persistence.setGlobal('components', JSON.stringify(this.#stored)), { push: true })
    this.#components = new Components(this.#components.app, this.#stored)
  }

  /** As Convex's finish_push: variables unchanged since start_push, required ones set, values valid. */
  #checkEnvironment(pending: PendingPush): void {
    const now = this.env.all
    const before = pending.environmentVariables
    const keys = Object.keys(now)
    if (keys.length !== Object.keys(before).length || keys.some((k) => before[k] !== now[k])) {
      throw new PushError('RaceDetected', 'Environment variables have changed during push')
    }
    const declared = pending.envVars ?? []
    const missing = requiredNames(declared).filter((n) => now[n] === undefined)
    if (missing.length > 0) {
      throw new PushError('MissingEnvironmentVariables', `Required environment variables are not set: ${missing.join(', ')}. Set them in the Convex dashboard or CLI before pushing.`)
    }
    const invalid = checkDeclaredValues(now, declared)
    if (invalid !== null) throw new PushError('InvalidEnvironmentVariable', invalid)
  }

  async #apply(pending: PendingPush): Promise<void> {
    const { db } = this
    for (const [component, schema] of pending.schemas) await this.#applySchema(component, schema)
    await db.persistence.replaceModules(pending.modules, {
      schema: JSON.stringify(pending.schema),
      functions: JSON.stringify(pending.functions),
      components: JSON.stringify(pending.components),
      udf_server_version: pending.udfServerVersion,
      app_env_vars: JSON.stringify(pending.envVars ?? []),
      node_dependencies: JSON.stringify(pending.nodeDependencies),
    })
    this.#envVars = pending.envVars ?? []
    db.setSchemas(pending.schemas)
    this.#components = new Components(new Registry(pending.functions), pending.components)
    this.#stored = pending.components
    this.pool.setModules(pending.modules, pending.nodePackagesDir)
    for (const l of this.#listeners) l()
  }

  /** Creates a component's (or the app's) schema tables and indexes, and drops indexes it no longer declares. */
  async #applySchema(component: string, schema: Schema | null): Promise<void> {
    const { db } = this
    for (const t of schema?.tables ?? []) {
      const table = await db.catalog.ensureTable(t.tableName, component)
      for (const i of wantedIndexes(t, schema!)) {
        const existing = table.indexes.get(i.name)
        if (existing !== undefined && sameIndex(existing, i)) {
          if ((existing.staged === true) !== i.staged) await db.catalog.setStaged(existing, i.staged)
          continue
        }
        if (existing !== undefined) await db.catalog.dropIndex(existing)
        if (i.kind === 'database') await db.catalog.addIndex(table, i.name, i.fields, i.staged)
        else if (i.kind === 'search') await db.catalog.addSearchIndex(table, i.name, { searchField: i.searchField, filterFields: i.filterFields }, i.staged)
        else await db.catalog.addVectorIndex(table, i.name, { vectorField: i.vectorField, dimensions: i.dimensions, filterFields: i.filterFields }, i.staged)
      }
    }
    const wanted = new Set((schema?.tables ?? []).flatMap((t) => wantedIndexes(t, schema!).map((i) => `${t.tableName}.${i.name}`)))
    for (const table of db.catalog.tablesOf(component)) {
      // System tables (`_scheduled_functions`, …) keep the indexes the system gave them.
      if (table.name.startsWith('_')) continue
      for (const index of [...table.indexes.values()]) {
        if (index.name === BY_ID || index.name === BY_CREATION_TIME || index.building === true || wanted.has(`${table.name}.${index.name}`)) continue
        await db.catalog.dropIndex(index)
      }
    }
  }
}
