/**
 * The component selector of the Data and Functions pages: the app, or one of the mounted
 * components (`_system/frontend/components:list`, live). Shown only when the app has components.
 */
import { useQuery } from 'convex/react'
import { APP_COMPONENT, system, useComponent } from './lib.ts'

interface ComponentDoc {
  id: string
  name: string | null
  path: string
  state: 'active' | 'unmounted'
}

export function ComponentPicker() {
  const { component, setComponent } = useComponent()
  const list = useQuery(system.components, {}) as ComponentDoc[] | undefined
  const mounted = (list ?? []).filter((c) => c.path !== '' && c.state === 'active').sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  if (mounted.length === 0) return null
  return (
    <label className="component-picker small">
      Component{' '}
      <select
        name="component"
        value={component.path}
        onChange={(e) => {
          const chosen = mounted.find((c) => c.path === e.target.value)
          setComponent(chosen === undefined ? APP_COMPONENT : { id: chosen.id, path: chosen.path })
        }}
      >
        <option value="">app</option>
        {mounted.map((c) => (
          <option key={c.id} value={c.path}>
            {c.path}
          </option>
        ))}
      </select>
    </label>
  )
}
