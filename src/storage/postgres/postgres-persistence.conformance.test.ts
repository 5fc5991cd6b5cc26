import { afterAll, beforeAll } from 'vitest'
import { persistenceCases } from '../persistence.case.ts'
import { PostgresPersistence } from './postgres-persistence.ts'
import { startPostgres, type PostgresCluster } from '../../../test/helpers/postgres.ts'

// One cluster for the file; every case gets a database of its own.
let cluster: PostgresCluster
beforeAll(async () => {
  cluster = await startPostgres()
})
afterAll(async () => {
  await cluster?.stop()
})

persistenceCases('Postgres', {
  location: () => cluster.newDatabase(),
  open: (url) => PostgresPersistence.open(url),
})
