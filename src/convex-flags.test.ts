import { describe, expect, it } from 'vitest'
import { convexPostgresUrl, convexSettings } from './convex-flags.ts'

const own = { instanceName: 'convex-self-hosted' }

describe('convexSettings', () => {
  it("takes POSTGRES_URL as Convex does: a server URL, the database named after the instance", () => {
    expect(convexSettings({}, { POSTGRES_URL: 'postgresql://u:p@db.test:5432' }, own)).toEqual({ dbUrl: 'postgresql://u:p@db.test:5432/convex_self_hosted', refusals: [], notes: [] })
    expect(convexSettings({}, { POSTGRES_URL: 'postgres://u:p@db.test/' }, { instanceName: 'my-app-1' }).dbUrl).toEqual('postgres://u:p@db.test/my_app_1')
    // A URL that names its database is used as given (as Concave always took POSTGRES_URL).
    expect(convexSettings({}, { POSTGRES_URL: 'postgres://u:p@db.test/mine?sslmode=require' }, own).dbUrl).toEqual('postgres://u:p@db.test/mine?sslmode=require')
    // --db-url / DATABASE_URL win, and keep Concave's meaning (the URL as given).
    expect(convexSettings({}, { POSTGRES_URL: 'postgres://u@db.test' }, { ...own, dbUrl: 'postgres://other/x' }).dbUrl).toBeUndefined()
  })

  it('takes the positional server URL of --db postgres-v5', () => {
    expect(convexSettings({ db: 'postgres-v5', dbSpec: 'postgres://u:p@db.test' }, {}, own)).toEqual({ dbUrl: 'postgres://u:p@db.test/convex_self_hosted', refusals: [], notes: [] })
    expect(convexSettings({ db: 'postgres-v5', dbSpec: 'postgres://u@db.test' }, {}, { ...own, dbUrl: 'postgres://x/y' }).refusals).toEqual(['The database is given twice: as the positional URL and as --db-url (or DATABASE_URL); give one'])
    expect(convexSettings({ db: 'postgres-v5', dbSpec: 'db.sqlite3' }, {}, own).refusals).toEqual(['--db postgres-v5 needs a postgres:// URL as its database spec, not "db.sqlite3"'])
    expect(convexSettings({ db: 'oracle' }, {}, own).refusals).toEqual(['--db oracle is not a database Concave knows: use postgres-v5 (with a server URL), or leave it out for SQLite'])
  })

  it('maps V8_/NODE_ACTION_USER_TIMEOUT_SECS (and the older ACTIONS_USER_TIMEOUT_SECS) to the action time limit (the longer of the two), unless CONCAVE_ACTION_TIMEOUT_MS is set', () => {
    expect(convexSettings({}, { V8_ACTION_USER_TIMEOUT_SECS: '30' }, own).actionTimeoutMs).toEqual(30_000)
    expect(convexSettings({}, { V8_ACTION_USER_TIMEOUT_SECS: '30', NODE_ACTION_USER_TIMEOUT_SECS: '120' }, own).actionTimeoutMs).toEqual(120_000)
    expect(convexSettings({}, { V8_ACTION_USER_TIMEOUT_SECS: '30', CONCAVE_ACTION_TIMEOUT_MS: '5000' }, own).actionTimeoutMs).toBeUndefined()
    // Convex's single knob before July 2026.
    expect(convexSettings({}, { ACTIONS_USER_TIMEOUT_SECS: '20' }, own).actionTimeoutMs).toEqual(20_000)
    // Convex's document retention window (seconds) is the history retention, unless ours is given.
    expect(convexSettings({}, { DOCUMENT_RETENTION_DELAY: '172800' }, own).historyRetentionMs).toEqual(172_800_000)
    expect(convexSettings({}, { DOCUMENT_RETENTION_DELAY: '172800', CONCAVE_HISTORY_RETENTION_MS: '1000' }, own).historyRetentionMs).toBeUndefined()
    expect(convexSettings({}, { DOCUMENT_RETENTION_DELAY: 'two days' }, own).refusals).toEqual(['DOCUMENT_RETENTION_DELAY must be a number of seconds, not "two days"'])
    expect(convexSettings({}, { NODE_ACTION_USER_TIMEOUT_SECS: 'soon' }, own).refusals).toEqual(['NODE_ACTION_USER_TIMEOUT_SECS must be a positive number of seconds, not "soon"'])
  })

  it("refuses S3 only when Convex's script would use it (every bucket and the region set)", () => {
    const buckets = { S3_STORAGE_EXPORTS_BUCKET: 'a', S3_STORAGE_SNAPSHOT_IMPORTS_BUCKET: 'b', S3_STORAGE_MODULES_BUCKET: 'c', S3_STORAGE_FILES_BUCKET: 'd', S3_STORAGE_SEARCH_BUCKET: 'e' }
    expect(convexSettings({}, { ...buckets, AWS_REGION: 'eu-west-1' }, own).refusals).toHaveLength(1)
    expect(convexSettings({}, { ...buckets, AWS_REGION: '' }, own).refusals).toEqual([])
    expect(convexSettings({}, { S3_STORAGE_FILES_BUCKET: 'd', AWS_REGION: 'eu-west-1' }, own).refusals).toEqual([])
  })

  it("reads Convex's boolish variables as clap does", () => {
    expect(convexSettings({}, { DISABLE_BEACON: 'false', REDACT_LOGS_TO_CLIENT: '0' }, own)).toEqual({ refusals: [], notes: [] })
    expect(convexSettings({}, { DISABLE_BEACON: 'yes' }, own).notes).toEqual(['Ignored Convex options: --disable-beacon (Concave sends no beacon)'])
  })
})

describe('convexPostgresUrl', () => {
  it('refuses what is not a URL, without echoing a password', () => {
    expect(() => convexPostgresUrl('postgres://u:secret@', 'x')).toThrow('Not a Postgres URL: "postgres://…@"')
  })
})
