// The bearer token: in memory, mirrored to sessionStorage so that a reload keeps the user signed in.
// sessionStorage belongs to this tab alone and is gone when the tab closes; localStorage (shared by
// every tab, kept across browser restarts) is never used. Script injected into the page could read
// either store, so what keeps the token safe is the strict CSP and rendering every value as text.
const KEY = "ledgerflow.token";
let token = sessionStorage.getItem(KEY);
const listeners = new Set();

export function currentToken() {
  return token;
}

export function setToken(value) {
  token = value;
  if (value) sessionStorage.setItem(KEY, value);
  else sessionStorage.removeItem(KEY);
  for (const listener of listeners) listener(token);
}

export function onTokenChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}
