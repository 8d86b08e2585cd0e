// Portfolio value over time, recorded in the browser: the API keeps no history of values, so the
// dashboard adds a point each time it reads the portfolio (on load, after a command's outcome, and as
// prices move). Points live in sessionStorage, so they cover this tab's session only and go with it.
const KEY = "ledgerflow.values";
const MAX_POINTS = 720;
const MIN_GAP_MS = 2000; // an unchanged value is recorded at most this often

function load() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY)) || [];
  } catch {
    return [];
  }
}

/** Adds `{at, value}` (value a decimal string, as the API gave it) and returns every point so far. */
export function recordValue(value, at = Date.now()) {
  const points = load();
  const last = points[points.length - 1];
  if (!last || last.value !== value || at - last.at >= MIN_GAP_MS) points.push({ at, value });
  const kept = points.slice(-MAX_POINTS);
  sessionStorage.setItem(KEY, JSON.stringify(kept));
  return kept;
}

export function forgetValues() {
  sessionStorage.removeItem(KEY);
}
