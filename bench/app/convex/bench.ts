import { v } from "convex/values";
import { query, mutation } from "./_generated/server";
import { paginationOptsValidator } from "convex/server";

/** One document into a table with no secondary indexes. */
export const insert = mutation({
  args: { body: v.string(), n: v.number() },
  handler: async (ctx, args) => ctx.db.insert("items", args),
});

/** One document into a table with a secondary index. */
export const send = mutation({
  args: { author: v.string(), body: v.string(), n: v.number() },
  handler: async (ctx, args) => ctx.db.insert("messages", args),
});

/** A point read through an index. */
export const counter = query({
  args: { name: v.string() },
  handler: async (ctx, { name }) =>
    (await ctx.db.query("counters").withIndex("by_name", (q) => q.eq("name", name)).unique())?.value ?? 0,
});

/** Bumps a counter (the fan-out benchmark's write). */
export const bump = mutation({
  args: { name: v.string() },
  handler: async (ctx, { name }) => {
    const row = await ctx.db.query("counters").withIndex("by_name", (q) => q.eq("name", name)).unique();
    if (row === null) return ctx.db.insert("counters", { name, value: 1 });
    await ctx.db.patch(row._id, { value: row.value + 1 });
    return row._id;
  },
});

/** Seeds `count` rows of `group` (n = start … start+count-1). */
export const seedRows = mutation({
  args: { group: v.string(), start: v.number(), count: v.number() },
  handler: async (ctx, { group, start, count }) => {
    for (let i = 0; i < count; i++) await ctx.db.insert("rows", { group, n: start + i, body: `row ${start + i} of ${group}` });
  },
});

/** An indexed range read of 100 rows. */
export const range100 = query({
  args: { group: v.string(), from: v.number() },
  handler: async (ctx, { group, from }) =>
    (await ctx.db.query("rows").withIndex("by_group", (q) => q.eq("group", group).gte("n", from)).take(100)).length,
});

/** `n` reads that each open a query and stop at its first row (a `for await` with a `break`). */
export const firstRows = query({
  args: { group: v.string(), n: v.number() },
  handler: async (ctx, { group, n }) => {
    let found = 0;
    for (let i = 0; i < n; i++) {
      for await (const _row of ctx.db.query("rows").withIndex("by_group", (q) => q.eq("group", group))) {
        found++;
        break;
      }
    }
    return found;
  },
});

/** One page of a paginated scan of a group. */
export const scanPage = query({
  args: { group: v.string(), paginationOpts: paginationOptsValidator },
  handler: async (ctx, { group, paginationOpts }) => {
    const page = await ctx.db.query("rows").withIndex("by_group", (q) => q.eq("group", group)).paginate(paginationOpts);
    return { count: page.page.length, isDone: page.isDone, continueCursor: page.continueCursor };
  },
});

/** Creates `count` documents in `docs` (the history benchmark's). */
export const seedDocs = mutation({
  args: { count: v.number() },
  handler: async (ctx, { count }) => {
    for (let i = 0; i < count; i++) await ctx.db.insert("docs", { i, value: 0 });
  },
});

/** Updates every document of `docs` once: one new revision each. */
export const touchDocs = mutation({
  args: {},
  handler: async (ctx) => {
    for (const doc of await ctx.db.query("docs").collect()) await ctx.db.patch(doc._id, { value: doc.value + 1 });
  },
});

/** The length of a (large) string argument: the large-body flood's call (bench/fairness.mjs). */
export const sizeOf = mutation({
  args: { body: v.string() },
  handler: async (_ctx, { body }) => body.length,
});

/** An upload URL (the import benchmark stores files through it). */
export const uploadUrl = mutation({
  args: {},
  handler: (ctx) => ctx.storage.generateUploadUrl(),
});
