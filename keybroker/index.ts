/**
 * @module Keybroker: instance secrets and admin keys. Generates a per-instance secret, issues
 * admin keys in Convex's format (`INSTANCE_NAME|HEX`, AES-GCM-SIV sealed with a key derived from
 * the secret), and verifies keys presented by clients: Convex's current and legacy formats, its
 * `TYPE:` prefixes and `KEY:ACTING_AS` form, and the keys of Concave's first builds.
 */
export { generateInstanceSecret, parseInstanceSecret } from './secret.ts'
export { issueAdminKey, verifyAdminKey, splitAdminAuthorization, validateInstanceName, removeTypePrefix } from './admin-key.ts'
export type { AdminKeyOptions, AdminKeyVerification, AdminKeyKind, AdminKeyFormat } from './admin-key.ts'
export { deploymentSigningKey } from './jwt-key.ts'
export type { DeploymentSigningKey, PublicJwk } from './jwt-key.ts'
export { issueStorageToken, openStorageToken } from './storage-token.ts'
export type { StorageToken } from './storage-token.ts'
