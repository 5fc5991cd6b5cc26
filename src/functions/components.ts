/**
 * @module Components: the live tree of component instances and their functions.
 *
 * An app's `convex.config.ts` mounts components (`app.use(aggregate, { name })`), and components
 * mount components of their own. Each mount is an *instance*, named by its path from the app
 * ('' is the app itself, `aggregate`, `workpool/workpool` for a component of a component). An
 * instance runs its *definition*'s functions (pushed once per definition, however many times it
 * is mounted) against its own tables, file storage and scheduled functions.
 *
 * Functions call across the boundary through references (`components.x.mod.fn`, serialized as
 * `_reference/childComponent/x/mod/fn`: only the child's public functions) and function handles
 * (`function://<id>#<path>`, any function, internal ones included, from anywhere). A handle's id
 * is derived from its instance and path, so it stays valid across pushes and restarts while the
 * function exists, and works again if a deleted function comes back (as Convex's do).
 */
import { createHash } from 'node:crypto'
import type { Schema } from '../database/database.ts'
import { canonicalPath, parseFunctionPath, Registry } from './registry.ts'
import type { FunctionInfo } from './registry.ts'
import { encodeId } from '../values/index.ts'

/** What a function is called by: a path in the caller's own component, a reference, or a handle. */
export interface FunctionAddress {
  name?: string | undefined
  reference?: string | undefined
  functionHandle?: string | undefined
}

/** A component definition as pushed: its functions (paths relative to it) and schema. */
export interface ComponentDefinition {
  /** As the CLI names it (relative to the app's `convex/` folder); '' for the app. */
  readonly definitionPath: string
  /** Where its modules live in the deployment's module set ('' for the app: `_components/…/`). */
  readonly prefix: string
  /** `defineComponent(name)`'s name (the default instance name). */
  readonly name: string
  readonly functions: readonly FunctionInfo[]
  readonly schema: Schema | null
  readonly childComponents: readonly { name: string; path: string; env?: readonly EnvBinding[] | null }[]
  /** `app.use(c, { httpPrefix })` mounts: prefix → `_reference/childComponent/<name>`. */
  readonly httpMounts: Readonly<Record<string, string>>
  /** Its router's routes (a prefix route's path ends with `*`). */
  readonly httpRoutes?: readonly { path: string; method: string }[]
}

/** Where an HTTP request goes: a component's `http.js`, with the path its router matches on. */
export interface HttpTarget {
  readonly component: string
  readonly prefix: string
  readonly routedPath: string
}

/** What `app.use(c, { env })` passes a component: a literal, or one of the parent's own variables. */
export type EnvBinding = [string, { type: 'value'; value: string } | { type: 'envVar'; name: string }]

/** The system's variables every component sees. */
const SYSTEM_ENV = ['CONVEX_CLOUD_URL', 'CONVEX_SITE_URL']

/** A mounted component. */
export interface ComponentInstance {
  /** '' for the app, `name` for its components, `parent/name` below them. */
  readonly path: string
  readonly definitionPath: string
  readonly name: string
  readonly parent: string | null
  /** Its id, as Convex's tools name components (stable for a path). */
  readonly id: string
}

export interface StoredComponents {
  /** The app's `app.use()`s (with what each passes its component). */
  readonly appChildren?: ComponentDefinition['childComponents']
  /** The app's own routes and `app.use(c, { httpPrefix })` mounts. */
  readonly appHttp?: {
    readonly routes: readonly { path: string; method: string }[]
    readonly mounts: Readonly<Record<string, string>>
    /** `defineApp({ httpPrefix })`: the app's own routes are served below it (mounts are not). */
    readonly prefix?: string
  }
  readonly definitions: readonly ComponentDefinition[]
  readonly instances: readonly Omit<ComponentInstance, 'id'>[]
  /**
   * Instances a push removed from the tree: their functions are gone, their tables and data
   * kept (a later push that mounts the same path again finds them), until deleted.
   */
  readonly unmounted?: readonly Omit<ComponentInstance, 'id'>[]
}

/** Pseudo table numbers for the ids of things that are not documents here. */
const COMPONENTS_TABLE_NUMBER = 9001
const FUNCTION_HANDLES_TABLE_NUMBER = 9002

export const FUNCTION_HANDLE_PREFIX = 'function://'

function derivedId(tableNumber: number, text: string): string {
  return encodeId(tableNumber, createHash('sha256').update(text).digest().subarray(0, 16))
}

/** The id of the component instance at `path`. */
export function componentId(path: string): string {
  return derivedId(COMPONENTS_TABLE_NUMBER, `component\0${path}`)
}

/** The path of a child named `name` of the instance at `parent`. */
export function childPath(parent: string, name: string): string {
  return parent === '' ? name : `${parent}/${name}`
}

/** Where a component definition's modules live in the module set (under `_components/<definition>/`). */
export const COMPONENT_MODULES = '_components/'

/** Module paths of a definition's functions, under its prefix, as the isolates load them. */
export function loadPath(fn: FunctionInfo): string {
  return `${fn.prefix ?? ''}${fn.modulePath}`
}

/** A reference or handle that names no function (the call fails with this message). */
export class UnresolvedFunction extends Error {}

export class Components {
  readonly #instances = new Map<string, ComponentInstance>()
  readonly #definitions = new Map<string, ComponentDefinition>()
  readonly #registries = new Map<string, Registry>()
  readonly #handles = new Map<string, { component: string; path: string }>()
  readonly #appChildren: StoredComponents['appChildren']
  readonly #unmounted = new Map<string, ComponentInstance>()
  readonly #appHttp: NonNullable<StoredComponents['appHttp']>

  constructor(
    /** The app's own functions. */
    readonly app: Registry,
    stored: StoredComponents = { definitions: [], instances: [] },
  ) {
    this.#appChildren = stored.appChildren ?? []
    this.#appHttp = stored.appHttp ?? { routes: [], mounts: {} }
    for (const u of stored.unmounted ?? []) this.#unmounted.set(u.path, { ...u, id: componentId(u.path) })
    for (const d of stored.definitions) this.#definitions.set(d.definitionPath, d)
    this.#add({ path: '', definitionPath: '', name: '', parent: null }, app)
    for (const i of stored.instances) {
      const d = this.#definitions.get(i.definitionPath)
      if (d === undefined) continue
      this.#add(i, new Registry(d.functions.map((f) => ({ ...f, component: i.path, prefix: d.prefix }))))
    }
  }

  #add(i: Omit<ComponentInstance, 'id'>, registry: Registry): void {
    const instance = { ...i, id: componentId(i.path) }
    this.#instances.set(i.path, instance)
    this.#registries.set(i.path, registry)
    for (const f of registry.all()) {
      const path = canonicalPath(f.modulePath, f.exportName)
      this.#handles.set(handleId(i.path, path), { component: i.path, path })
    }
  }

  /** Components unmounted by a push whose data is kept, by path. */
  unmounted(): ComponentInstance[] {
    return [...this.#unmounted.values()]
  }

  /** Whether `path` names a component, mounted or unmounted (whose functions are gone, its path kept, as in Convex). */
  known(path: string): boolean {
    return this.#instances.has(path) || this.#unmounted.has(path)
  }

  /** The mounted components (the app first, then by path). */
  instances(): ComponentInstance[] {
    return [...this.#instances.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  }

  instance(path: string): ComponentInstance | undefined {
    return this.#instances.get(path)
  }

  /** The instance (mounted or unmounted) with this id, or undefined. */
  byId(id: string): (ComponentInstance & { state: 'active' | 'unmounted' }) | undefined {
    for (const [state, map] of [['active', this.#instances], ['unmounted', this.#unmounted]] as const) {
      for (const i of map.values()) if (i.id === id) return { ...i, state }
    }
    return undefined
  }

  definition(path: string): ComponentDefinition | undefined {
    return this.#definitions.get(path)
  }

  /** The functions of the instance at `path` (undefined: no such component). */
  registry(path: string): Registry | undefined {
    return this.#registries.get(path)
  }

  /**
   * A component's `process.env`: what its parent binds (a literal, or a live read of one of the
   * parent's variables: the deployment's for the app), then the system's variables.
   */
  environment(path: string, deployment: Readonly<Record<string, string>>): Record<string, string> {
    // One object per component and deployment variables (which are a new object on every change).
    const cached = this.#environments.get(path)
    if (cached !== undefined && cached.deployment === deployment) return cached.env
    const env = this.#environment(path, deployment)
    this.#environments.set(path, { deployment, env })
    return env
  }

  readonly #environments = new Map<string, { deployment: Readonly<Record<string, string>>; env: Record<string, string> }>()

  #environment(path: string, deployment: Readonly<Record<string, string>>): Record<string, string> {
    const env: Record<string, string> = {}
    for (const name of SYSTEM_ENV) if (deployment[name] !== undefined) env[name] = deployment[name]
    // A component mounted under a prefix has its own site URL (as in Convex).
    const prefix = this.httpPrefix(path)
    if (prefix !== null && env.CONVEX_SITE_URL !== undefined) env.CONVEX_SITE_URL = `${env.CONVEX_SITE_URL.replace(/\/$/, '')}${prefix.replace(/\/$/, '')}`
    const instance = this.#instances.get(path)
    if (instance === undefined || instance.parent === null) return path === '' ? { ...deployment } : env
    const parentDefinition = instance.parent === '' ? this.#appChildren : this.#definitions.get(this.#instances.get(instance.parent)?.definitionPath ?? '')?.childComponents
    const bindings = parentDefinition?.find((c) => c.name === instance.name)?.env ?? []
    if (bindings === null || bindings.length === 0) return env
    const parentEnv = this.environment(instance.parent, deployment)
    for (const [name, binding] of bindings) {
      const value = binding.type === 'value' ? binding.value : parentEnv[binding.name]
      if (value !== undefined) env[name] = value
    }
    return env
  }

  /**
   * The absolute path a component's HTTP routes are mounted under (`/c2/`), composed through its
   * parents' mounts; null when it (or a parent) isn't mounted.
   */
  httpPrefix(path: string): string | null {
    if (path === '') return null
    const instance = this.#instances.get(path)
    if (instance === undefined || instance.parent === null) return null
    const mounts = instance.parent === '' ? this.#appHttp.mounts : (this.#definitions.get(this.#instances.get(instance.parent)?.definitionPath ?? '')?.httpMounts ?? {})
    const mount = Object.entries(mounts).find(([, reference]) => reference === `_reference/childComponent/${instance.name}`)?.[0]
    if (mount === undefined) return null
    if (instance.parent === '') return mount
    const parentPrefix = this.httpPrefix(instance.parent)
    return parentPrefix === null ? null : `${parentPrefix.replace(/\/$/, '')}${mount}`
  }

  /** The HTTP routes a component's (or the app's, '') `http.js` declares, as analyzed at push. */
  httpRoutes(path: string): readonly { path: string; method: string }[] {
    if (path === '') return this.#appHttp.routes
    return this.#definitions.get(this.#instances.get(path)?.definitionPath ?? '')?.httpRoutes ?? []
  }

  /**
   * Routes an HTTP request as Convex does (its `route_http_action`), from the app down: an exact
   * route (path and method) of the current router wins; otherwise the longest of its prefix routes
   * and its mounts (`httpPrefix`) matching the path, a mount winning a tie; a mount hands the rest
   * of the path (`/` + what follows the prefix) to the child, where the same rules apply. With no
   * match, the current router gets the request (its own 404). The app's routes are matched below
   * its `defineApp({ httpPrefix })`, its mounts on the whole path. `hasRouter(prefix)` says
   * whether the definition whose modules live at `prefix` has an `http.js`. Null: no router serves it.
   */
  routeHttp(path: string, method: string, hasRouter: (prefix: string) => boolean): HttpTarget | null {
    // HEAD is routed as GET (Convex's RoutableMethod).
    const routable = method === 'HEAD' ? 'GET' : method
    let component = ''
    let routed = path
    for (;;) {
      const def = component === '' ? null : this.#definitions.get(this.#instances.get(component)?.definitionPath ?? '')
      const prefix = component === '' ? '' : (def?.prefix ?? '')
      const routes = hasRouter(prefix) ? this.httpRoutes(component) : null
      const mounts = component === '' ? this.#appHttp.mounts : (def?.httpMounts ?? {})
      if (routes === null && Object.keys(mounts).length === 0) return null
      // The path the router matches on: below the app's prefix (none when outside it).
      const appPrefix = component === '' ? this.#appHttp.prefix : undefined
      const own = appPrefix === undefined ? routed : routed.startsWith(appPrefix) ? `/${routed.slice(appPrefix.length)}` : null
      const here = own === null ? null : { component, prefix, routedPath: own }
      if (here !== null && routes !== null && routes.some((r) => r.method === routable && r.path === own && !r.path.endsWith('*'))) return here
      // The longest prefix matching, as Convex picks it: a candidate leaving `b` characters loses
      // only to a match so far whose leftover, counted with its leading `/`, is shorter than `b`
      // (so of two equal prefixes the later wins: a mount over a route of the router).
      let best: { kept: number; child: string | null; mount: number } | null = null
      const candidate = (rest: number, child: string | null, mount: number) => {
        if (best === null || best.kept >= rest) best = { kept: rest + 1, child, mount }
      }
      if (own !== null && routes !== null) {
        for (const r of routes) {
          if (r.method !== routable || !r.path.endsWith('*')) continue
          const p = r.path.slice(0, -1) || '/'
          if (own.startsWith(p)) candidate(own.length - p.length, null, 0)
        }
      }
      for (const [mount, reference] of Object.entries(mounts)) {
        if (!routed.startsWith(mount) || !reference.startsWith('_reference/childComponent/')) continue
        candidate(routed.length - mount.length, reference.slice('_reference/childComponent/'.length), mount.length)
      }
      const match = best as { child: string | null; mount: number } | null
      if (match === null || match.child === null) return routes === null ? null : here
      if (!this.#instances.has(childPath(component, match.child))) return null
      routed = `/${routed.slice(match.mount)}`
      component = childPath(component, match.child)
    }
  }

  /** Looks up `path` (`mod:fn`) in component `component`. */
  lookup(component: string, path: string): FunctionInfo | undefined {
    return this.#registries.get(component)?.lookup(path)
  }

  /** The handle of a function (`ctx.createFunctionHandle`). */
  handleFor(fn: FunctionInfo): string {
    const path = canonicalPath(fn.modulePath, fn.exportName)
    return `${FUNCTION_HANDLE_PREFIX}${handleId(fn.component ?? '', path)}#${path.replace(/\.js(?=:|$)/, '')}`
  }

  /**
   * What an address names, seen from a function of `caller`: the component and path of the
   * function, and whether the caller may reach it only if it is public (a child's function).
   */
  resolve(caller: string, address: FunctionAddress): { component: string; path: string; publicOnly: boolean } {
    if (typeof address.functionHandle === 'string') {
      const h = address.functionHandle
      // Convex's words: a malformed handle, and one that names no function (deleted, or never).
      if (!h.startsWith(FUNCTION_HANDLE_PREFIX)) throw new UnresolvedFunction(`Invalid arguments for \`runUdf\`: Invalid function handle ${h}`)
      const hash = h.indexOf('#')
      const id = h.slice(FUNCTION_HANDLE_PREFIX.length, hash === -1 ? undefined : hash)
      const target = this.#handles.get(id)
      if (target === undefined) throw new UnresolvedFunction('Function handle not found')
      return { ...target, publicOnly: false }
    }
    if (typeof address.reference === 'string') {
      const parts = address.reference.split('/')
      if (parts[0] !== '_reference') throw new UnresolvedFunction(`Invalid reference: ${address.reference}`)
      if (parts[1] === 'function' && parts.length > 2) return { component: caller, path: parts.slice(2).join('/'), publicOnly: false }
      if (parts[1] === 'childComponent' && parts.length >= 4) {
        const component = childPath(caller, parts[2]!)
        if (!this.#instances.has(component)) throw new UnresolvedFunction(`Child component ${parts[2]} not found`)
        const attrs = parts.slice(3)
        const fn = attrs.pop()!
        return { component, path: `${attrs.join('/')}:${fn}`, publicOnly: true }
      }
      throw new UnresolvedFunction(`Invalid reference: ${address.reference}`)
    }
    if (typeof address.name === 'string') return { component: caller, path: address.name, publicOnly: false }
    throw new UnresolvedFunction('Function address must name a function, a reference or a handle')
  }
}

function handleId(component: string, path: string): string {
  const { modulePath, exportName } = parseFunctionPath(path)
  return derivedId(FUNCTION_HANDLES_TABLE_NUMBER, `handle\0${component}\0${canonicalPath(modulePath, exportName)}`)
}
