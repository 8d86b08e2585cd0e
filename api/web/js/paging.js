// Cursor paging for the API's `{items, next_cursor}` lists: the cursors of the pages already seen are
// kept, so "Newer" goes back without the API having to page backwards.
import { html, useEffect, useState } from "../vendor/htm-preact-standalone.js";
import { get } from "./api.js";

export function usePages(path, limit, deps) {
  const [cursors, setCursors] = useState([null]); // the cursor of each page up to the current one
  const [page, setPage] = useState({ items: null, next: null, error: null });
  const cursor = cursors[cursors.length - 1];

  useEffect(() => {
    let live = true;
    const query = new URLSearchParams({ limit: String(limit) });
    if (cursor) query.set("cursor", cursor);
    get(`${path}?${query}`).then(
      (body) => live && setPage({ items: body.items, next: body.next_cursor, error: null }),
      (error) => live && setPage((p) => ({ ...p, error: error.message })),
    );
    return () => {
      live = false;
    };
  }, [path, cursor, ...deps]);

  return {
    ...page,
    number: cursors.length,
    older: page.next ? () => setCursors([...cursors, page.next]) : null,
    newer: cursors.length > 1 ? () => setCursors(cursors.slice(0, -1)) : null,
  };
}

export const Pager = ({ pages, label }) => html`
  <nav class="pager" aria-label=${label}>
    <button type="button" class="secondary" disabled=${!pages.newer} onClick=${pages.newer}>Newer</button>
    <span>Page ${pages.number}</span>
    <button type="button" class="secondary" disabled=${!pages.older} onClick=${pages.older}>Older</button>
  </nav>`;
