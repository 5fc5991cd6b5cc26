import { v } from "convex/values";
import { action, mutation, query } from "./_generated/server";
import { vectorAt } from "./vectorData";

/** Inserts vectors start … start + count - 1 (generated here, see vectorData.ts). */
export const seed = mutation({
  args: { start: v.number(), count: v.number(), dims: v.number() },
  handler: async (ctx, { start, count, dims }) => {
    for (let i = start; i < start + count; i++) await ctx.db.insert("vectors", { i, group: i % 10, embedding: vectorAt(i, dims) });
  },
});

export const search = action({
  args: { vector: v.array(v.float64()), limit: v.optional(v.number()) },
  handler: (ctx, { vector, limit }) => ctx.vectorSearch("vectors", "by_embedding", { vector, limit: limit ?? 10 }),
});

/** The `i` of each document. */
export const positions = query({
  args: { ids: v.array(v.id("vectors")) },
  handler: async (ctx, { ids }) => Promise.all(ids.map(async (id) => (await ctx.db.get(id))?.i ?? -1)),
});
