// The console: a hash router over the pages, the navigation, and the panel of recent commands.
import { html, render, useEffect, useState } from "../vendor/htm-preact-standalone.js";
import { clearActivity, onActivity } from "./activity.js";
import { Account } from "./pages/account.js";
import { Dashboard } from "./pages/dashboard.js";
import { OrderDetail, Orders } from "./pages/orders.js";
import { Profile } from "./pages/profile.js";
import { SignIn } from "./pages/signin.js";
import { Trade } from "./pages/trade.js";
import { currentToken, onTokenChange } from "./session.js";
import { StatusBadge } from "./ui.js";
import { forgetValues } from "./valuehistory.js";

const PAGES = [
  ["dashboard", "Dashboard", Dashboard],
  ["trade", "Trade", Trade],
  ["account", "Account", Account],
  ["orders", "Orders", Orders],
  ["profile", "Profile", Profile],
];

function route() {
  const [name = "dashboard", id] = location.hash.replace(/^#\/?/, "").split("/");
  return { name, id: id ? decodeURIComponent(id) : null };
}

function useHash() {
  const [current, setCurrent] = useState(route());
  useEffect(() => {
    const changed = () => setCurrent(route());
    addEventListener("hashchange", changed);
    return () => removeEventListener("hashchange", changed);
  }, []);
  return current;
}

function Page({ name, id }) {
  if (name === "orders" && id) return html`<${OrderDetail} id=${id} />`;
  const found = PAGES.find(([key]) => key === name) || PAGES[0];
  const Component = found[2];
  return html`<${Component} />`;
}

function RecentCommands() {
  const [items, setItems] = useState([]);
  useEffect(() => onActivity((list) => setItems(list)), []);
  return html`
    <aside class="card activity" aria-labelledby="activity-title">
      <h2 id="activity-title">Recent commands</h2>
      ${items.length === 0 && html`<p class="muted">Deposits, withdrawals and orders you send appear here.</p>`}
      <ul aria-live="polite">
        ${items.map((item) => html`<li key=${item.id} data-command-id=${item.id} data-status=${item.status}>
          <span>${item.label}</span> <${StatusBadge} status=${item.status} reason=${item.reason} />
          ${item.error && html`<span class="error"> status unknown: ${item.error}</span>`}
          ${item.status === "settled" && item.result?.balance_after &&
            html`<span class="muted"> cash now ${item.result.balance_after} USD</span>`}
        </li>`)}
      </ul>
    </aside>`;
}

function App() {
  const [token, setToken] = useState(currentToken());
  const { name, id } = useHash();
  useEffect(
    () =>
      onTokenChange((next) => {
        if (!next) (forgetValues(), clearActivity());
        setToken(next);
      }),
    [],
  );

  if (!token) {
    return html`<${Header} /><main id="main"><${SignIn} /></main>`;
  }
  return html`
    <${Header}>
      <nav aria-label="Main">
        <ul>${PAGES.map(([key, label]) => html`<li key=${key}>
          <a href=${`#/${key}`} aria-current=${key === name ? "page" : undefined}>${label}</a></li>`)}</ul>
      </nav>
    <//>
    <div class="layout">
      <main id="main"><${Page} name=${name} id=${id} /></main>
      <${RecentCommands} />
    </div>`;
}

const Header = ({ children }) => html`
  <a class="skip" href="#main" onClick=${(e) => (e.preventDefault(), document.getElementById("page-title")?.focus())}>Skip to content</a>
  <header class="top"><p class="brand">ledgerflow</p>${children}</header>`;

const root = document.getElementById("app");
root.replaceChildren(); // the "Loading" note
render(html`<${App} />`, root);
