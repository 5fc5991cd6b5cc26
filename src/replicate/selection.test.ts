import { expect, test } from 'vitest'
import { Selection, SelectionError } from './selection.ts'

test('the four argument forms select as Convex does', () => {
  const all = Selection.fromArgs({})
  expect(all.includesTable('', 'a') && all.includesTable('comp', 'b')).toBe(true)
  const one = Selection.fromArgs({ tableName: 'a' })
  expect([one.includesTable('', 'a'), one.includesTable('', 'b'), one.includesTable('comp', 'a')]).toEqual([true, false, false])
  const inComponent = Selection.fromArgs({ table_name: 'a', component: 'comp' })
  expect([inComponent.includesTable('comp', 'a'), inComponent.includesTable('', 'a')]).toEqual([true, false])
  const component = Selection.fromArgs({ component: 'comp' })
  expect([component.includesTable('comp', 'x'), component.includesTable('', 'x')]).toEqual([true, false])
})

test('the full form: components, tables and columns with _other defaults; _id always kept', () => {
  const s = Selection.parse({ _other: 'excluded', '': { _other: 'incl', secret: 'excluded', users: { _other: 'included', ssn: 'excl' } }, comp: 'excluded' })
  expect([s.includesTable('', 'posts'), s.includesTable('', 'secret'), s.includesTable('comp', 'posts'), s.includesTable('other', 'posts')]).toEqual([true, false, false, false])
  expect(s.filterFields('', 'users', { _id: 'i', name: 'n', ssn: 's' })).toEqual({ _id: 'i', name: 'n' })
  const only = Selection.parse({ _other: 'included', '': { _other: 'included', t: { _other: 'excluded', keep: 'included' } } })
  expect(only.filterFields('', 't', { _id: 'i', _creationTime: 1, keep: 1, drop: 2 })).toEqual({ _id: 'i', keep: 1 })
  expect(() => Selection.parse({ _other: 'included', '': { _other: 'included', t: { _other: 'included', _id: 'excluded' } } })).toThrow(new SelectionError('The _id column cannot be excluded'))
  expect(() => Selection.parse({ '': 'excluded' })).toThrow(SelectionError)
})
