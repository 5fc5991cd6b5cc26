/**
 * Flattens a string built by concatenation and returns it. V8 represents `a + b` as a tree of
 * "cons" nodes (32 bytes each, keeping every piece alive) until something needs the characters in
 * one piece; converting to a number is such a thing, and the garbage collector then drops the
 * tree. Worth it for strings kept for a long time (cache keys, cached message text), where the
 * tree of a template literal costs more than the text itself.
 */
export function flatten(s: string): string {
  Number(s)
  return s
}
