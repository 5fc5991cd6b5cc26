import { expect, test } from 'vitest'
import type { IndexInfo } from './catalog.ts'
import { compileSearch, filterKey, searchEntry, tokenize } from './search.ts'

test('tokenize: alphanumeric runs, lowercased per character, long terms dropped', () => {
  expect(tokenize('Hello, WORLD! hello_world  x-ray 3.14')).toEqual(['hello', 'world', 'hello', 'world', 'x', 'ray', '3', '14'])
  expect(tokenize('École naïve ÆSIR')).toEqual(['école', 'naïve', 'æsir'])
  // Rust's char-wise lowercasing has no final-sigma rule.
  expect(tokenize('ΟΔΟΣ')).toEqual(['οδοσ'])
  // 31 bytes are kept, 32 dropped (Tantivy's RemoveLongFilter at 32); bytes, not characters.
  expect(tokenize(`${'a'.repeat(31)} ${'b'.repeat(32)} ok`)).toEqual(['a'.repeat(31), 'ok'])
  expect(tokenize(`${'é'.repeat(16)} ${'é'.repeat(15)}`)).toEqual(['é'.repeat(15)])
  expect(tokenize('日本語 テキスト')).toEqual(['日本語', 'テキスト'])
  expect(tokenize('  ?! ')).toEqual([])
})

test('searchEntry: a search field that is not a string has no terms; filter keys tell undefined from null', () => {
  const config = { searchField: 'a.b', filterFields: ['tag'] }
  expect(searchEntry(config, { a: { b: 'Nested Text' }, tag: 'x' })).toEqual({ terms: ['nested', 'text'], filterKeys: [filterKey('x')] })
  expect(searchEntry(config, { a: { b: 42 } }).terms).toEqual([])
  expect(filterKey(undefined)).not.toBe(filterKey(null))
  expect(filterKey('x')).toMatch(/^[0-9a-f]{32}$/)
})

const index: IndexInfo = { indexId: 7, tableNumber: 10001, tableName: 'messages', component: '', name: 'search_body', fields: [], keyFields: [], search: { searchField: 'body', filterFields: ['author'] } }

test('compileSearch: the last term is the prefix, at most 16 terms, and Convex’s messages', () => {
  expect(compileSearch(index, [{ type: 'Search', fieldPath: 'body', value: 'Hello hello wor' }, { type: 'Eq', fieldPath: 'author', value: 'me' }])).toEqual({
    terms: ['hello'],
    prefix: 'wor',
    filters: [{ field: 0, key: filterKey('me') }],
  })
  const many = Array.from({ length: 20 }, (_, i) => `t${i}`).join(' ')
  const compiled = compileSearch(index, [{ type: 'Search', fieldPath: 'body', value: many }])!
  expect(compiled.terms).toHaveLength(15)
  expect(compiled.prefix).toBe('t15')
  expect(compileSearch(index, [{ type: 'Search', fieldPath: 'body', value: '' }])).toBeNull()
  expect(compileSearch(index, [{ type: 'Search', fieldPath: 'body', value: '!!' }])!.prefix).toBeNull()
  expect(compileSearch(index, [{ type: 'Search', fieldPath: 'body', value: 'x' }, { type: 'Eq', fieldPath: 'author', value: { $undefined: null } }])!.filters).toEqual([{ field: 0, key: filterKey(undefined) }])
  expect(() => compileSearch(index, [{ type: 'Eq', fieldPath: 'author', value: 'me' }])).toThrow(
    'Search query against messages.search_body does not contain any search filters. You must include a search filter like `q.search("field", searchText)`.',
  )
  expect(() => compileSearch(index, [{ type: 'Search', fieldPath: 'body', value: 'a' }, { type: 'Search', fieldPath: 'body', value: 'b' }])).toThrow(
    'Search query against messages.search_body contains multiple search filters against "body". Only one is allowed.',
  )
  const nine = Array.from({ length: 9 }, () => ({ type: 'Eq', fieldPath: 'author', value: 'me' }))
  expect(() => compileSearch(index, [{ type: 'Search', fieldPath: 'body', value: 'a' }, ...nine])).toThrow(
    'Search query against messages.search_body has too many filter conditions. Max: 8 Actual: 9',
  )
})
