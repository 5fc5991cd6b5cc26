import { describe, expect, test } from 'vitest'
import { jobKind, schedulingError } from './schedule-checks.ts'
import { Registry } from './registry.ts'
import type { FunctionInfo } from './registry.ts'

const fn = (modulePath: string, exportName: string, udfType: FunctionInfo['udfType']): FunctionInfo => ({ modulePath, exportName, udfType, visibility: 'internal', args: null, returns: null })
const registry = new Registry([fn('jobs.js', 'work', 'Mutation'), fn('jobs.js', 'fetch', 'Action'), fn('dir/reads.js', 'peek', 'Query'), fn('dir/reads.js', 'default', 'Query')])

describe('schedulingError (when scheduling: existence only)', () => {
  test('any kind of existing function may be scheduled', () => {
    for (const name of ['jobs:work', 'jobs.js:fetch', 'dir/reads:peek', 'dir/reads']) expect(schedulingError(registry, '', name)).toBeNull()
  })

  test('a missing module is named alone, with the component in front', () => {
    expect(schedulingError(registry, '', 'nowhere:fn')).toBe('Attempted to schedule function at nonexistent path: nowhere.js')
    expect(schedulingError(registry, 'parent/child', 'nowhere:fn')).toBe('Attempted to schedule function at nonexistent path: parent/child nowhere.js')
    expect(schedulingError(undefined, 'gone', 'jobs:work')).toBe('Attempted to schedule function at nonexistent path: gone jobs.js')
  })

  test('a missing export has its own message', () => {
    expect(schedulingError(registry, '', 'jobs:nope')).toBe('Attempted to schedule function, but no exported function nope found in the file: jobs.js. Did you forget to export it?')
    expect(schedulingError(registry, 'child', 'jobs')).toBe("Attempted to schedule function, but no exported function default found in the file: jobs.js in 'child'. Did you forget to export it?")
  })
})

describe('jobKind (when the job runs)', () => {
  test('mutations and actions run', () => {
    expect(jobKind(registry, '', 'jobs:work')).toBe('mutation')
    expect(jobKind(registry, '', 'jobs:fetch')).toBe('action')
  })

  test('a query fails with Convex text', () => {
    expect(jobKind(registry, 'child', 'dir/reads:peek')).toBe(
      `Unsupported function type. FunctionName("peek") in module "dir/reads.js" in 'child' is defined as a Query. "\n                            "Only Mutation and Action can be scheduled.`,
    )
  })

  test('a function gone since scheduling fails as a call to it would', () => {
    expect(jobKind(registry, '', 'nowhere:fn')).toBe("Couldn't find JavaScript module 'nowhere.js'. Did you forget to run `npx convex dev`?")
    expect(jobKind(registry, '', 'jobs:nope')).toBe(`Couldn't find "nope" in module "jobs.js".`)
  })
})
