import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";

export default defineSchema({
  items: defineTable({ body: v.string(), n: v.number() }),
  messages: defineTable({ author: v.string(), body: v.string(), n: v.number() }).index("by_author", ["author", "n"]),
  counters: defineTable({ name: v.string(), value: v.number() }).index("by_name", ["name"]),
  rows: defineTable({ group: v.string(), n: v.number(), body: v.string() }).index("by_group", ["group", "n"]),
  // The history benchmark (bench/history.mjs): documents updated over and over.
  docs: defineTable({ i: v.number(), value: v.number() }),
  // The vector benchmark (bench/vector.mjs): 768-dimension embeddings.
  vectors: defineTable({ i: v.number(), group: v.number(), embedding: v.array(v.float64()) }).vectorIndex("by_embedding", {
    vectorField: "embedding",
    dimensions: 768,
    filterFields: ["group"],
  }),
});
