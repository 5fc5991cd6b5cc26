import { expect, test } from 'vitest'
import { filePageRange } from './source-files.ts'
import type { FilePage, SourceFile } from './source-files.ts'

const file = (id: string, t: number): SourceFile => ({ _id: id, _creationTime: t, sha256: 'x', size: 1, url: `http://s/api/storage/${id}` })
const page = (files: SourceFile[], isDone: boolean): FilePage => ({ page: files, isDone, continueCursor: 'c' })

test('a page answers for the creation times up to its last one; files at that time carry to the next page', () => {
  const first = filePageRange(null, [], page([file('a', 1), file('b', 2), file('c', 2)], false))
  expect(first).toEqual({ check: { from: null, to: 2 }, seen: new Set(['a', 'b', 'c']), lower: 2, carry: ['b', 'c'] })
  // The next page answers from 2 on, counting b and c as seen (they may sort either side of the boundary).
  const last = filePageRange(first.lower, first.carry, page([file('d', 3)], true))
  expect(last).toEqual({ check: { from: 2, to: null }, seen: new Set(['b', 'c', 'd']), lower: null, carry: [] })
})

test('a page all at the previous boundary time answers for nothing yet and carries on; an empty page answers for nothing', () => {
  const tie = filePageRange(2, ['b'], page([file('c', 2), file('d', 2)], false))
  expect(tie).toEqual({ check: null, seen: new Set(['b', 'c', 'd']), lower: 2, carry: ['b', 'c', 'd'] })
  expect(filePageRange(null, [], page([], false))).toEqual({ check: null, seen: new Set(), lower: null, carry: [] })
  // A poll (a pass from a creation time) that finds nothing: everything from then on is gone.
  expect(filePageRange(5, [], page([], true))).toEqual({ check: { from: 5, to: null }, seen: new Set(), lower: null, carry: [] })
})
