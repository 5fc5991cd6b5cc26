/**
 * @module Keybroker: instance secrets and admin keys. Generates a per-instance secret, issues
 * `INSTANCE_NAME|HEX` admin keys sealed with it (nacl secretbox), and verifies keys presented by
 * clients, including the convex CLI's `KEY:ACTING_AS` form.
 */
export { generateInstanceSecret, parseInstanceSecret } from './secret.ts'
export { issueAdminKey, verifyAdminKey, splitAdminAuthorization, validateInstanceName } from './admin-key.ts'
export type { AdminKeyOptions, AdminKeyVerification } from './admin-key.ts'
