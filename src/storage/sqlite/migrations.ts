/**
 * @module The SQLite file's schema, one migration per format version. The file records its version
 * in `meta.format_version`; a newer build migrates an older file in place at start.
 */

/** Migration N (1-based) brings a file from version N-1 to N. Never edit a released entry. */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE tables (table_number INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
  CREATE TABLE indexes (
    index_id INTEGER PRIMARY KEY AUTOINCREMENT,
    table_number INTEGER NOT NULL,
    name TEXT NOT NULL,
    fields TEXT NOT NULL,
    UNIQUE (table_number, name)
  );
  CREATE TABLE documents (
    id TEXT PRIMARY KEY,
    table_number INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    json TEXT NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX documents_by_table ON documents (table_number);
  CREATE TABLE index_entries (
    index_id INTEGER NOT NULL,
    key BLOB NOT NULL,
    id TEXT NOT NULL,
    PRIMARY KEY (index_id, key)
  ) WITHOUT ROWID;
  CREATE TABLE write_log (
    ts INTEGER NOT NULL,
    id TEXT NOT NULL,
    table_number INTEGER NOT NULL,
    json TEXT,
    PRIMARY KEY (ts, id)
  ) WITHOUT ROWID;
  CREATE INDEX write_log_by_id ON write_log (id, ts);
  CREATE TABLE modules (
    path TEXT PRIMARY KEY,
    environment TEXT NOT NULL,
    source TEXT NOT NULL,
    source_map TEXT,
    hash TEXT NOT NULL
  );
  `,
  // 2: full-text search indexes. One FTS5 table holds the entries of every search index; its
  // terms are namespaced by index id (`<index id>x<term>` in `body`, `<index id>f<field>h<key>` in
  // `filters`), so each index keeps its own vocabulary. `search_documents` maps (index, document)
  // to the FTS row and its term count; `search_stats` keeps each index's totals for BM25.
  `
  ALTER TABLE indexes ADD COLUMN search TEXT;
  CREATE VIRTUAL TABLE search_terms USING fts5(body, filters, tokenize = 'ascii');
  CREATE VIRTUAL TABLE search_vocab USING fts5vocab(search_terms, 'row');
  CREATE TABLE search_documents (
    index_id INTEGER NOT NULL,
    id TEXT NOT NULL,
    entry INTEGER NOT NULL UNIQUE,
    length INTEGER NOT NULL,
    PRIMARY KEY (index_id, id)
  ) WITHOUT ROWID;
  CREATE TABLE search_stats (
    index_id INTEGER PRIMARY KEY,
    documents INTEGER NOT NULL,
    terms INTEGER NOT NULL
  );
  `,
  // 3: vector indexes and user-staged indexes. `vector` holds a vector index's config (its
  // entries live in a sqlite-vec `vec0` table per index, `vectors_<index id>`, created with the
  // index); `staged` marks an index declared `staged: true` (built, but not queryable).
  `
  ALTER TABLE indexes ADD COLUMN vector TEXT;
  ALTER TABLE indexes ADD COLUMN staged INTEGER NOT NULL DEFAULT 0;
  `,
  // 4: per-component table numbers (as Convex's). `table_number` stays the table's key in the
  // store, unique across components; `id_number` is the number its ids carry, unique only within
  // its component. Tables stored so far had one number for both: their ids stay valid.
  `
  ALTER TABLE tables ADD COLUMN id_number INTEGER;
  UPDATE tables SET id_number = table_number;
  `,
]

export const FORMAT_VERSION = MIGRATIONS.length
