// Small pieces the pages share. Every value is passed to Preact as a child, so it becomes a text node:
// a name or an asset holding markup is shown as the characters it is, never parsed as HTML.
import { html, useEffect, useState } from "../vendor/htm-preact-standalone.js";
import { reasonText } from "./activity.js";

/** Money or a quantity exactly as the API wrote it (a decimal string), or a dash when absent. */
export const Amount = ({ value, unit }) =>
  value === null || value === undefined ? html`<span>—</span>` : html`<span class="num">${value}${unit ? ` ${unit}` : ""}</span>`;

export const when = (iso) => (iso ? new Date(iso).toLocaleString() : "—");

export function StatusBadge({ status, reason }) {
  const words = status === "rejected" && reason ? `rejected: ${reasonText(reason)}` : status;
  return html`<span class=${`badge badge-${status}`}>${words}</span>`;
}

export const ErrorMessage = ({ error }) => (error ? html`<p class="error" role="alert">${error}</p>` : null);

/** Runs `load` now and whenever one of `deps` changes; returns `[data, error, reload]`. */
export function useLoad(load, deps) {
  const [state, setState] = useState({ data: null, error: null });
  const [round, setRound] = useState(0);
  useEffect(() => {
    let current = true;
    load().then(
      (data) => current && setState({ data, error: null }),
      (error) => current && setState((s) => ({ data: s.data, error: error.message })),
    );
    return () => {
      current = false;
    };
  }, [...deps, round]);
  return [state.data, state.error, () => setRound((r) => r + 1)];
}

/** A page's heading, focused when the page opens so that keyboard and screen-reader users land on it. */
export function PageTitle({ children }) {
  useEffect(() => {
    document.getElementById("page-title")?.focus();
    document.title = `${children} · ledgerflow`;
  }, [children]);
  return html`<h1 id="page-title" tabindex="-1">${children}</h1>`;
}

/** A table that may scroll sideways on a phone: a named region, focusable so the keyboard can scroll it. */
export const ScrollBox = ({ label, children }) =>
  html`<div class="scroll" role="region" aria-label=${label} tabindex="0">${children}</div>`;
