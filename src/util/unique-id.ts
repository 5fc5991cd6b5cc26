/**
 * @module Unique 16-hex-digit ids for requests and function executions: a random prefix chosen
 * once per process and a counter. Ids only need to be unique and opaque, and a crypto call per
 * execution cost ~3% of a mutation's server CPU.
 */
import { randomBytes } from 'node:crypto'

const PREFIX = randomBytes(4).toString('hex')
let counter = 0

export function uniqueHexId(): string {
  counter = (counter + 1) >>> 0
  return `${PREFIX}${counter.toString(16).padStart(8, '0')}`
}
