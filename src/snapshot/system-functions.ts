/**
 * @module The `_system/cli/...` queries of `npx convex export` and `npx convex import`: the state
 * of the latest export and of imports, kept by the snapshot service (no database reads). A state
 * change calls `invalidate`, which re-runs subscriptions so the CLI sees it over the sync socket.
 */
import type { Database } from '../database/database.ts'
import type { SystemFunction } from '../functions/system-functions.ts'
import { snapshotService } from './snapshots.ts'

export function snapshotSystemFunctions(db: Database, invalidate: () => void): Map<string, SystemFunction> {
  const service = snapshotService(db)
  service.onChange(invalidate)
  return new Map<string, SystemFunction>([
    ['_system/cli/exports.js:getLatest', { udfType: 'Query', run: () => service.latestExport() }],
    ['_system/cli/queryImport.js:default', { udfType: 'Query', run: ({ importId }) => service.getImport(importId) }],
    ['_system/cli/queryImport.js:list', { udfType: 'Query', run: () => service.listImports() }],
  ])
}
