// Components benchmark (#14): the cost of a call across a component boundary beside the same call
// inside the app, and the push time of an app with five components beside the same app without them.
//
// The apps are written from the templates below into temp dirs, in three variants:
//   'components' — convex/convex.config.ts mounts five distinct local component definitions (one
//                  instance each); the app's own modules (local.ts, cross.ts) call the first one.
//   'inlined'    — the same functions and tables, all in the app: each component's module becomes an
//                  app module, its table an app table, and cross.ts calls them with `internal.…`.
//   'app'        — the app's own functions only (local.ts and its table): no component code at all.
import { spawn } from 'node:child_process'
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { dirname, join } from 'node:path'
import { ConvexHttpClient } from 'convex/browser'
import { anyApi } from 'convex/server'

const api = anyApi

/** The measured bodies: one index lookup and one patch; one index lookup. The same text everywhere. */
const bumpBody = (table) => `async (ctx, { key }) => {
    const row = await ctx.db.query("${table}").withIndex("by_key", (q) => q.eq("key", key)).unique();
    if (row === null) throw new Error(\`no row \${key}\`);
    await ctx.db.patch(row._id, { value: row.value + 1 });
    return row.value + 1;
  }`
const getBody = (table) => `async (ctx, { key }) => (await ctx.db.query("${table}").withIndex("by_key", (q) => q.eq("key", key)).unique())?.value ?? -1`

/** Five distinct definitions: each its own table, fields, index and functions. */
const COMPONENTS = [
  {
    name: 'ledger',
    table: 'accounts',
    schema: `accounts: defineTable({ key: v.string(), value: v.number() }).index("by_key", ["key"])`,
    lib: `
export const bump = mutation({ args: { key: v.string() }, handler: ${bumpBody('accounts')} });
export const get = query({ args: { key: v.string() }, handler: ${getBody('accounts')} });
export const open = mutation({
  args: { key: v.string() },
  handler: async (ctx, { key }) => { await ctx.db.insert("accounts", { key, value: 0 }); },
});
export const total = query({
  args: {},
  handler: async (ctx) => (await ctx.db.query("accounts").collect()).reduce((s, r) => s + r.value, 0),
});
`,
  },
  {
    name: 'tags',
    table: 'tags',
    schema: `tags: defineTable({ tag: v.string(), item: v.string(), weight: v.number() }).index("by_tag", ["tag", "item"])`,
    lib: `
export const add = mutation({
  args: { tag: v.string(), item: v.string(), weight: v.optional(v.number()) },
  handler: async (ctx, { tag, item, weight }) => ctx.db.insert("tags", { tag, item, weight: weight ?? 1 }),
});
export const remove = mutation({
  args: { tag: v.string(), item: v.string() },
  handler: async (ctx, { tag, item }) => {
    const row = await ctx.db.query("tags").withIndex("by_tag", (q) => q.eq("tag", tag).eq("item", item)).unique();
    if (row !== null) await ctx.db.delete(row._id);
    return row !== null;
  },
});
export const items = query({
  args: { tag: v.string() },
  handler: async (ctx, { tag }) => (await ctx.db.query("tags").withIndex("by_tag", (q) => q.eq("tag", tag)).collect()).map((r) => r.item),
});
export const count = query({ args: {}, handler: async (ctx) => (await ctx.db.query("tags").collect()).length });
`,
  },
  {
    name: 'presence',
    table: 'sessions',
    schema: `sessions: defineTable({ room: v.string(), user: v.string(), lastSeen: v.number() }).index("by_room", ["room", "lastSeen"])`,
    lib: `
export const heartbeat = mutation({
  args: { room: v.string(), user: v.string(), now: v.number() },
  handler: async (ctx, { room, user, now }) => {
    const mine = (await ctx.db.query("sessions").withIndex("by_room", (q) => q.eq("room", room)).collect()).find((s) => s.user === user);
    if (mine === undefined) await ctx.db.insert("sessions", { room, user, lastSeen: now });
    else await ctx.db.patch(mine._id, { lastSeen: now });
  },
});
export const online = query({
  args: { room: v.string(), since: v.number() },
  handler: async (ctx, { room, since }) => (await ctx.db.query("sessions").withIndex("by_room", (q) => q.eq("room", room).gte("lastSeen", since)).collect()).map((s) => s.user),
});
export const sweep = internalMutation({
  args: { before: v.number() },
  handler: async (ctx, { before }) => {
    for (const s of await ctx.db.query("sessions").collect()) if (s.lastSeen < before) await ctx.db.delete(s._id);
  },
});
`,
  },
  {
    name: 'limits',
    table: 'buckets',
    schema: `buckets: defineTable({ name: v.string(), tokens: v.number(), updatedAt: v.number() }).index("by_name", ["name"])`,
    lib: `
export const take = mutation({
  args: { name: v.string(), now: v.number(), capacity: v.number(), perMs: v.number() },
  handler: async (ctx, { name, now, capacity, perMs }) => {
    const b = await ctx.db.query("buckets").withIndex("by_name", (q) => q.eq("name", name)).unique();
    const tokens = Math.min(capacity, (b?.tokens ?? capacity) + (b === null ? 0 : (now - b.updatedAt) * perMs));
    if (tokens < 1) return { ok: false, retryAfter: (1 - tokens) / perMs };
    if (b === null) await ctx.db.insert("buckets", { name, tokens: tokens - 1, updatedAt: now });
    else await ctx.db.patch(b._id, { tokens: tokens - 1, updatedAt: now });
    return { ok: true, retryAfter: 0 };
  },
});
export const peek = query({
  args: { name: v.string() },
  handler: async (ctx, { name }) => (await ctx.db.query("buckets").withIndex("by_name", (q) => q.eq("name", name)).unique())?.tokens ?? null,
});
export const reset = mutation({
  args: { name: v.string() },
  handler: async (ctx, { name }) => {
    const b = await ctx.db.query("buckets").withIndex("by_name", (q) => q.eq("name", name)).unique();
    if (b !== null) await ctx.db.delete(b._id);
  },
});
`,
  },
  {
    name: 'notes',
    table: 'notes',
    schema: `notes: defineTable({ author: v.string(), text: v.string(), pinned: v.boolean() }).index("by_author", ["author", "pinned"])`,
    lib: `
export const write = mutation({
  args: { author: v.string(), text: v.string() },
  handler: async (ctx, args) => ctx.db.insert("notes", { ...args, pinned: false }),
});
export const pin = mutation({
  args: { id: v.id("notes"), pinned: v.boolean() },
  handler: async (ctx, { id, pinned }) => ctx.db.patch(id, { pinned }),
});
export const byAuthor = query({
  args: { author: v.string(), pinned: v.optional(v.boolean()) },
  handler: async (ctx, { author, pinned }) =>
    ctx.db.query("notes").withIndex("by_author", (q) => (pinned === undefined ? q.eq("author", author) : q.eq("author", author).eq("pinned", pinned))).collect(),
});
export const remove = mutation({ args: { id: v.id("notes") }, handler: async (ctx, { id }) => ctx.db.delete(id) });
`,
  },
]

const HEADER = `import { v } from "convex/values";\nimport { internalMutation, mutation, query } from "./_generated/server";\n`

/** The app's own functions: the in-app twins of ledger's `bump` and `get`. */
const LOCAL = `import { v } from "convex/values";
import { internalMutation, internalQuery } from "./_generated/server";

export const bump = internalMutation({ args: { key: v.string() }, handler: ${bumpBody('items')} });
export const get = internalQuery({ args: { key: v.string() }, handler: ${getBody('items')} });
export const open = internalMutation({
  args: { key: v.string() },
  handler: async (ctx, { key }) => { await ctx.db.insert("items", { key, value: 0 }); },
});
`

/** The measured entry points. `ledger` is `components.ledger.lib` or, inlined, `internal.ledger`. */
const cross = (ledger) => `import { v } from "convex/values";
import { mutation, query } from "./_generated/server";
import { ${ledger.startsWith('components') ? 'components, internal' : 'internal'} } from "./_generated/api";

export const bumpViaComponent = mutation({ args: { key: v.string() }, handler: async (ctx, { key }) => ctx.runMutation(${ledger}.bump, { key }) });
export const bumpInApp = mutation({ args: { key: v.string() }, handler: async (ctx, { key }) => ctx.runMutation(internal.local.bump, { key }) });
export const bumpDirect = mutation({ args: { key: v.string() }, handler: ${bumpBody('items')} });
export const getViaComponent = query({ args: { key: v.string() }, handler: async (ctx, { key }) => ctx.runQuery(${ledger}.get, { key }) });
export const getInApp = query({ args: { key: v.string() }, handler: async (ctx, { key }) => ctx.runQuery(internal.local.get, { key }) });
export const getDirect = query({ args: { key: v.string() }, handler: ${getBody('items')} });
export const open = mutation({
  args: { key: v.string() },
  handler: async (ctx, { key }) => {
    await ctx.runMutation(internal.local.open, { key });
    await ctx.runMutation(${ledger}.open, { key });
  },
});
`

const schemaFile = (tables) => `import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";

export default defineSchema({
  ${tables.join(',\n  ')},
});
`
const ITEMS = `items: defineTable({ key: v.string(), value: v.number() }).index("by_key", ["key"])`

/** Writes the app of `variant` into `dir` (with node_modules linked to `nodeModules`). */
export function writeComponentsApp(dir, variant, nodeModules) {
  const file = (path, text) => {
    mkdirSync(dirname(join(dir, path)), { recursive: true })
    writeFileSync(join(dir, path), text)
  }
  file('package.json', JSON.stringify({ name: `bench-components-${variant}`, private: true, type: 'module', dependencies: { convex: '1.48.0' } }))
  symlinkSync(nodeModules, join(dir, 'node_modules'), 'dir')
  file('convex/local.ts', LOCAL)
  if (variant === 'app') {
    file('convex/schema.ts', schemaFile([ITEMS]))
    return
  }
  if (variant === 'components') {
    file('convex/schema.ts', schemaFile([ITEMS]))
    file('convex/cross.ts', cross('components.ledger.lib'))
    const imports = COMPONENTS.map((c) => `import ${c.name} from "./components/${c.name}/convex.config";`).join('\n')
    file('convex/convex.config.ts', `import { defineApp } from "convex/server";\n${imports}\n\nconst app = defineApp();\n${COMPONENTS.map((c) => `app.use(${c.name});`).join('\n')}\nexport default app;\n`)
    for (const c of COMPONENTS) {
      file(`convex/components/${c.name}/convex.config.ts`, `import { defineComponent } from "convex/server";\n\nexport default defineComponent("${c.name}");\n`)
      file(`convex/components/${c.name}/schema.ts`, schemaFile([c.schema]))
      file(`convex/components/${c.name}/lib.ts`, HEADER + c.lib)
    }
    return
  }
  // 'inlined': the components' functions as app modules, their tables in the app's schema.
  file('convex/schema.ts', schemaFile([ITEMS, ...COMPONENTS.map((c) => c.schema)]))
  file('convex/cross.ts', cross('internal.ledger'))
  for (const c of COMPONENTS) file(`convex/${c.name}.ts`, (HEADER + c.lib).replace(/\b(mutation|query)\(\{/g, (_, k) => `internal${k[0].toUpperCase()}${k.slice(1)}({`).replace('internalMutation, mutation, query', 'internalMutation, internalQuery'))
}

export const COMPONENT_COUNT = COMPONENTS.length

/**
 * `npx convex deploy` (the real CLI, CI=1) of the app in `cwd` to backend `b`, through a pass-through
 * proxy that times each of the CLI's requests. Resolves with the push's wall time and the part of
 * it spent waiting on the backend (its requests are sequential), both in ms.
 */
export async function timedDeploy(b, cwd, cli) {
  const backend = new URL(b.url)
  let serverMs = 0
  const proxy = http.createServer((req, res) => {
    const t = performance.now()
    const up = http.request({ host: backend.hostname, port: backend.port, path: req.url, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode, r.headers)
      r.pipe(res)
      r.on('end', () => (serverMs += performance.now() - t))
    })
    up.on('error', (e) => res.destroy(e))
    req.pipe(up)
  })
  await new Promise((r) => proxy.listen(0, '127.0.0.1', r))
  try {
    const t = performance.now()
    const child = spawn(process.execPath, [cli, 'deploy', '--url', `http://127.0.0.1:${proxy.address().port}`, '--admin-key', b.adminKey, '-y'], { cwd, env: { ...process.env, CI: '1' }, stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (c) => (stderr += c))
    const code = await new Promise((r) => child.on('exit', r))
    if (code !== 0) throw new Error(`npx convex deploy in ${cwd} failed:\n${stderr}`)
    return { totalMs: performance.now() - t, serverMs }
  } finally {
    proxy.close()
  }
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}

/**
 * p50/p99 (ms) of `n` sequential calls of each of `fns` through one client, interleaved (one call of
 * each in turn) so that load from elsewhere on the machine falls on all of them alike.
 */
async function latencies(url, kind, fns, n, warm = 100) {
  const c = new ConvexHttpClient(url)
  const call = (fn) => (kind === 'mutation' ? c.mutation(fn, { key: 'k0' }) : c.query(fn, { key: 'k0' }))
  const samples = fns.map(() => [])
  for (let i = 0; i < warm + n; i++) {
    for (let f = 0; f < fns.length; f++) {
      const t = performance.now()
      await call(fns[f])
      if (i >= warm) samples[f].push(performance.now() - t)
    }
  }
  return samples.map((s) => {
    s.sort((a, b) => a - b)
    return { p50: percentile(s, 50), p99: percentile(s, 99) }
  })
}

/**
 * Calls/s of `fn` at `concurrency` (each client its own key, so mutations never conflict) over
 * `seconds` after `warmMs` uncounted, and the server's CPU per call (µs).
 */
async function throughput({ url, pid, cpuSeconds, fetch }, kind, fn, concurrency, seconds, warmMs) {
  const clients = Array.from({ length: concurrency }, () => new ConvexHttpClient(url, { fetch }))
  let n = 0
  let server0 = 0
  const warm = performance.now() + warmMs
  const end = warm + seconds * 1000
  const startCounting = setTimeout(() => (server0 = cpuSeconds(pid)), warmMs)
  await Promise.all(
    clients.map(async (c, i) => {
      const args = { key: `k${i}` }
      while (performance.now() < end) {
        await (kind === 'mutation' ? c.mutation(fn, args) : c.query(fn, args))
        if (performance.now() > warm) n++
      }
    }),
  )
  clearTimeout(startCounting)
  return { n, seconds, cpu: cpuSeconds(pid) - server0 }
}

const ROUNDS = 4

/**
 * Runs on a backend the 'components' variant was pushed to: bumpViaComponent / bumpInApp /
 * bumpDirect (and the get* queries) at c=1 (latency, interleaved) and at c=`concurrency`
 * (throughput: ROUNDS rounds over the three, `seconds`/ROUNDS each, summed, so that load from
 * elsewhere falls on all three alike).
 */
export async function crossCallBench(b, { samples, seconds, concurrency, fetch, cpuSeconds }) {
  const seed = new ConvexHttpClient(b.url)
  for (let i = 0; i < concurrency; i++) await seed.mutation(api.cross.open, { key: `k${i}` })
  // The bodies are the same: each answers 1 for a fresh key.
  const a = await seed.mutation(api.cross.bumpViaComponent, { key: 'k0' })
  const i = await seed.mutation(api.cross.bumpInApp, { key: 'k0' })
  if (a !== 1 || i !== 1) throw new Error(`bump answered ${a} / ${i}, not 1`)
  const out = {}
  const target = { url: b.url, pid: b.child.pid, cpuSeconds, fetch }
  for (const [kind, names] of [
    ['mutation', ['bumpViaComponent', 'bumpInApp', 'bumpDirect']],
    ['query', ['getViaComponent', 'getInApp', 'getDirect']],
  ]) {
    const fns = names.map((name) => api.cross[name])
    const lat = await latencies(b.url, kind, fns, samples)
    const totals = names.map(() => ({ n: 0, seconds: 0, cpu: 0 }))
    for (let round = 0; round < ROUNDS; round++) {
      for (let f = 0; f < fns.length; f++) {
        const r = await throughput(target, kind, fns[f], concurrency, seconds / ROUNDS, round === 0 ? 1000 : 300)
        totals[f].n += r.n
        totals[f].seconds += r.seconds
        totals[f].cpu += r.cpu
      }
    }
    names.forEach((name, f) => {
      out[name] = { ...lat[f], perSecond: totals[f].n / totals[f].seconds, serverCpuUs: (totals[f].cpu * 1e6) / totals[f].n }
      process.stderr.write(`components ${name}: ${JSON.stringify(out[name])}\n`)
    })
  }
  return out
}
