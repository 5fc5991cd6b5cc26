import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { persistenceCases } from '../persistence.case.ts'
import { SqlitePersistence } from './sqlite-persistence.ts'

persistenceCases('SQLite', {
  location: () => mkdtemp(join(tmpdir(), 'concave-sqlite-conformance-')),
  open: async (dir) => SqlitePersistence.open(join(dir, 'db.sqlite3')),
  remove: (dir) => rm(dir, { recursive: true, force: true }),
})
