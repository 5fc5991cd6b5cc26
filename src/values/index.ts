/**
 * Convex values for Concave: the value model and its JSON wire encoding, document ids, the total
 * order and order-preserving index keys, size limits, and validators with the backend's messages.
 * A dependency-free leaf module (Node built-ins only).
 * @module
 */
export * from './value.ts'
export * from './display.ts'
export * from './id.ts'
export * from './compare.ts'
export * from './index-key.ts'
export * from './size.ts'
export * from './validator.ts'
