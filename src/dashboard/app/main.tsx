/**
 * The dashboard page: asks for the admin key (kept in sessionStorage, checked with
 * `/api/check_admin_key`), then opens the real `convex` client on the deployment with that key
 * (`setAdminAuth`, as Convex's dashboard does), so every page's queries are live subscriptions
 * over the sync socket.
 */
import { useEffect, useMemo, useState } from 'react'
import type { ReactNode } from 'react'
import { createRoot } from 'react-dom/client'
import { ConvexProvider, ConvexReactClient } from 'convex/react'
import { APP_COMPONENT, asAdmin, checkAdminKey, ComponentContext, DeploymentContext } from './lib.ts'
import type { ComponentChoice, Deployment } from './lib.ts'
import { DataPage } from './data.tsx'
import { FunctionsPage } from './functions.tsx'
import { SchedulesPage } from './schedules.tsx'
import { SettingsPage } from './settings.tsx'
import { LogsPage } from './logs.tsx'
import { FilesPage } from './files.tsx'
import { HealthPage } from './health.tsx'
import './styles.css'

const KEY_STORAGE = 'concave.adminKey'

interface Config {
  deploymentUrl: string | null
  apiPort: number
  version: string
}

/** The deployment URL: the configured origin, else this page's host on the API port. */
function deploymentUrl(config: Config): string {
  return config.deploymentUrl ?? `${location.protocol}//${location.hostname}:${config.apiPort}`
}

const PAGES: Array<{ path: string; title: string; render: () => ReactNode }> = [
  { path: 'data', title: 'Data', render: () => <DataPage /> },
  { path: 'functions', title: 'Functions', render: () => <FunctionsPage /> },
  { path: 'logs', title: 'Logs', render: () => <LogsPage /> },
  { path: 'schedules', title: 'Schedules', render: () => <SchedulesPage /> },
  { path: 'files', title: 'Files', render: () => <FilesPage /> },
  { path: 'settings', title: 'Settings', render: () => <SettingsPage /> },
  { path: 'health', title: 'Health', render: () => <HealthPage /> },
]

function currentPage(): string {
  const page = location.hash.replace(/^#\/?/, '').split('/')[0] ?? ''
  return PAGES.some((p) => p.path === page) ? page : 'data'
}

function App() {
  const [config, setConfig] = useState<Config | null>(null)
  const [configError, setConfigError] = useState<string | null>(null)
  const [adminKey, setAdminKey] = useState<string | null>(null)
  const [checking, setChecking] = useState(true)
  const [signInError, setSignInError] = useState<string | null>(null)

  useEffect(() => {
    fetch('/config.json')
      .then((r) => r.json() as Promise<Config>)
      .then(async (c) => {
        setConfig(c)
        // A key from earlier in this tab is checked again: the deployment may have a new secret.
        const stored = sessionStorage.getItem(KEY_STORAGE)
        if (stored !== null) {
          const refused = await checkAdminKey(deploymentUrl(c), stored)
          if (refused === null) setAdminKey(stored)
          else {
            sessionStorage.removeItem(KEY_STORAGE)
            setSignInError(refused)
          }
        }
        setChecking(false)
      })
      .catch((e: unknown) => setConfigError(String(e)))
  }, [])

  if (configError !== null) return <div className="center error">Could not load the dashboard's configuration: {configError}</div>
  if (config === null || checking) return <div className="center muted">Loading…</div>
  const url = deploymentUrl(config)
  if (adminKey === null) {
    return (
      <SignIn
        url={url}
        error={signInError}
        onSignIn={async (key) => {
          const refused = await checkAdminKey(url, key)
          if (refused !== null) {
            setSignInError(refused)
            return
          }
          sessionStorage.setItem(KEY_STORAGE, key)
          setSignInError(null)
          setAdminKey(key)
        }}
      />
    )
  }
  return (
    <Dashboard
      deployment={{ url, adminKey, version: config.version }}
      onSignOut={() => {
        sessionStorage.removeItem(KEY_STORAGE)
        setAdminKey(null)
      }}
    />
  )
}

function SignIn({ url, error, onSignIn }: { url: string; error: string | null; onSignIn: (key: string) => Promise<void> }) {
  const [key, setKey] = useState('')
  const [busy, setBusy] = useState(false)
  return (
    <div className="center">
      <form
        className="signin"
        onSubmit={(e) => {
          e.preventDefault()
          setBusy(true)
          void onSignIn(key.trim()).finally(() => setBusy(false))
        }}
      >
        <h1>Concave</h1>
        <p className="muted">
          Deployment <code>{url}</code>
        </p>
        <label>
          Admin key
          <input type="password" name="adminKey" autoComplete="off" value={key} onChange={(e) => setKey(e.target.value)} placeholder="convex-self-hosted|…" autoFocus />
        </label>
        <p className="muted small">The key the backend printed at start, or one from generate_admin_key.sh.</p>
        {error !== null && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy || key.trim() === ''}>
          Sign in
        </button>
      </form>
    </div>
  )
}

function Dashboard({ deployment, onSignOut }: { deployment: Deployment; onSignOut: () => void }) {
  const client = useMemo(() => {
    const c = new ConvexReactClient(deployment.url, { unsavedChangesWarning: false })
    asAdmin(c).setAdminAuth(deployment.adminKey)
    return c
  }, [deployment.url, deployment.adminKey])
  useEffect(() => () => void client.close(), [client])
  const [page, setPage] = useState(currentPage)
  useEffect(() => {
    const onHash = () => setPage(currentPage())
    window.addEventListener('hashchange', onHash)
    return () => window.removeEventListener('hashchange', onHash)
  }, [])
  const active = PAGES.find((p) => p.path === page) ?? PAGES[0]!
  // The component the Data and Functions pages show, kept across pages.
  const [component, setComponent] = useState<ComponentChoice>(APP_COMPONENT)
  const componentContext = useMemo(() => ({ component, setComponent }), [component])
  return (
    <DeploymentContext.Provider value={deployment}>
      <ComponentContext.Provider value={componentContext}>
      <ConvexProvider client={client}>
        <div className="layout">
          <nav className="sidebar">
            <div className="brand">Concave</div>
            {PAGES.map((p) => (
              <a key={p.path} href={`#/${p.path}`} className={p.path === page ? 'active' : ''}>
                {p.title}
              </a>
            ))}
            <div className="grow" />
            <div className="small muted deployment-url" title="Deployment URL">
              {deployment.url}
            </div>
            <button className="link" onClick={onSignOut}>
              Sign out
            </button>
          </nav>
          <main className="content" data-page={active.path}>
            {active.render()}
          </main>
        </div>
      </ConvexProvider>
      </ComponentContext.Provider>
    </DeploymentContext.Provider>
  )
}

createRoot(document.getElementById('root')!).render(<App />)
