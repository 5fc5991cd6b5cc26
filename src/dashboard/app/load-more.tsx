/** The "Load more" button under a paginated list (Data, Files, Schedules): shown while more pages can load. */
export function LoadMore(props: { status: string; loadMore: (n: number) => void }) {
  if (props.status !== 'CanLoadMore') return null
  return (
    <button className="secondary" onClick={() => props.loadMore(50)}>
      Load more
    </button>
  )
}
