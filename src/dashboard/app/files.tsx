/**
 * Files: the stored files (id, size, type, sha256, when), live; upload (through an upload URL, as
 * an app does), download and delete.
 */
import { useRef, useState } from 'react'
import { useMutation, usePaginatedQuery, useQuery } from 'convex/react'
import { errorText, formatBytes, system } from './lib.ts'
import { LoadMore } from './load-more.tsx'

interface StoredFile {
  _id: string
  _creationTime: number
  sha256: string
  size: number
  contentType?: string
  url: string | null
}

export function FilesPage() {
  const count = useQuery(system.numFiles, {}) as number | undefined
  const { results, status, loadMore } = usePaginatedQuery(system.fileMetadata, { filters: { order: 'desc' } }, { initialNumItems: 50 })
  const files = results as StoredFile[]
  const generateUploadUrl = useMutation(system.generateUploadUrl)
  const deleteFiles = useMutation(system.deleteFiles)
  const [error, setError] = useState<string | null>(null)
  const [uploading, setUploading] = useState(false)
  const input = useRef<HTMLInputElement>(null)
  const upload = async (file: File) => {
    setError(null)
    setUploading(true)
    try {
      const url = (await generateUploadUrl({})) as string
      const res = await fetch(url, { method: 'POST', headers: file.type === '' ? {} : { 'content-type': file.type }, body: file })
      if (!res.ok) throw new Error(`Upload failed: ${res.status} ${await res.text()}`)
    } catch (e) {
      setError(errorText(e))
    } finally {
      setUploading(false)
      if (input.current !== null) input.current.value = ''
    }
  }
  return (
    <div>
      <div className="pane-header">
        <h2>Files {count !== undefined && <span className="count">{count}</span>}</h2>
        <label className="button">
          {uploading ? 'Uploading…' : 'Upload file'}
          <input ref={input} type="file" hidden onChange={(e) => e.target.files?.[0] !== undefined && void upload(e.target.files[0])} />
        </label>
      </div>
      {error !== null && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {status === 'LoadingFirstPage' ? (
        <p className="muted">Loading…</p>
      ) : files.length === 0 ? (
        <p className="muted">No files stored.</p>
      ) : (
        <table className="documents">
          <thead>
            <tr>
              <th>Storage id</th>
              <th>Size</th>
              <th>Type</th>
              <th>sha256</th>
              <th>Uploaded</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {files.map((f) => (
              <tr key={f._id} data-file={f._id}>
                <td className="mono small">{f._id}</td>
                <td>{formatBytes(f.size)}</td>
                <td>{f.contentType ?? <span className="muted">none</span>}</td>
                <td className="mono small">{f.sha256}</td>
                <td className="small">{new Date(f._creationTime).toLocaleString()}</td>
                <td className="row-actions">
                  {f.url !== null && (
                    <a href={f.url} target="_blank" rel="noreferrer" download>
                      Download
                    </a>
                  )}
                  <button className="link danger" onClick={() => confirm('Delete this file?') && void deleteFiles({ storageIds: [f._id] }).catch((e: unknown) => setError(errorText(e)))}>
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <LoadMore status={status} loadMore={loadMore} />
    </div>
  )
}
