import { v } from "convex/values";
import { query, mutation } from "./_generated/server";

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
