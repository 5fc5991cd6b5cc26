/**
 * @module What an admin key may do, as Convex decides it: a full admin key and a system key may do
 * everything; a read-only admin key only the operations Convex's keybroker lists for one
 * (`read_only_operations`). Anything else is refused as Convex refuses it: 403
 * `OperationNotPermitted` "You do not have permission to perform this operation (ACTION)."
 */
import type { AdminKeyKind } from '../../keybroker/index.ts'
import { forbidden } from '../util/http-error.ts'

/** Convex's `DeploymentOp`s, with the action name its refusals give for each. */
const ACTIONS = {
  Deploy: 'deployment:deploy',
  ViewEnvironmentVariables: 'deployment:env:view',
  WriteEnvironmentVariables: 'deployment:env:write',
  PauseDeployment: 'deployment:pause',
  UnpauseDeployment: 'deployment:unpause',
  ViewLogs: 'deployment:logs:view',
  ViewMetrics: 'deployment:metrics:view',
  ViewIntegrations: 'deployment:integrations:view',
  WriteIntegrations: 'deployment:integrations:write',
  ViewData: 'deployment:data:view',
  WriteData: 'deployment:data:write',
  ViewBackups: 'deployment:backups:view',
  CreateBackups: 'deployment:backups:create',
  DownloadBackups: 'deployment:backups:download',
  DeleteBackups: 'deployment:backups:delete',
  ImportBackups: 'deployment:backups:import',
  ActAsUser: 'deployment:functions:actAsUser',
  RunInternalQueries: 'deployment:functions:runInternalQueries',
  RunInternalMutations: 'deployment:functions:runInternalMutations',
  RunInternalActions: 'deployment:functions:runInternalActions',
  RunTestQuery: 'deployment:functions:runTestQuery',
  ViewAuditLog: 'deployment:auditLog:view',
  ViewUsage: 'deployment:usage:view',
  ViewUsageLimits: 'deployment:usageLimits:view',
  WriteUsageLimits: 'deployment:usageLimits:write',
} as const

export type DeploymentOp = keyof typeof ACTIONS

/** Every operation (what a full admin key may do). */
export const ALL_OPS = Object.keys(ACTIONS) as DeploymentOp[]

/** What a read-only admin key may do (Convex's `read_only_operations`). */
export const READ_ONLY_OPS: readonly DeploymentOp[] = [
  'ViewEnvironmentVariables',
  'ViewLogs',
  'ViewMetrics',
  'ViewIntegrations',
  'ViewData',
  'ViewBackups',
  'DownloadBackups',
  'RunInternalQueries',
  'RunTestQuery',
  'ViewAuditLog',
  'ViewUsageLimits',
  'ViewUsage',
]

/** The operations a key of this kind may perform. */
export function allowedOps(kind: AdminKeyKind): readonly DeploymentOp[] {
  return kind === 'read-only' ? READ_ONLY_OPS : ALL_OPS
}

/** Whether a key of this kind may perform `op`. */
export function permits(kind: AdminKeyKind, op: DeploymentOp): boolean {
  return kind !== 'read-only' || READ_ONLY_OPS.includes(op)
}

/** Throws Convex's 403 `OperationNotPermitted` unless a key of this kind may perform `op`. */
export function requireOperation(kind: AdminKeyKind, op: DeploymentOp): void {
  if (!permits(kind, op)) throw operationNotPermitted(op)
}

export function operationNotPermitted(op: DeploymentOp) {
  return forbidden('OperationNotPermitted', `You do not have permission to perform this operation (${ACTIONS[op]}).`)
}
