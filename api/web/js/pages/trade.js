import { html, useEffect, useState } from "../../vendor/htm-preact-standalone.js";
import { submit } from "../activity.js";
import { get } from "../api.js";
import { estimateOrder } from "../estimate.js";
import { onPrices } from "../live.js";
import { Amount, ErrorMessage, PageTitle, ScrollBox, when } from "../ui.js";

const SEARCH_DELAY_MS = 250;
const newer = (at, than) => !than || Date.parse(at) >= Date.parse(than);
const LISTED = 25;

export function Trade() {
  const [search, setSearch] = useState("");
  const [assets, setAssets] = useState(null);
  const [prices, setPrices] = useState({});
  const [selected, setSelected] = useState(null);
  const [error, setError] = useState(null);

  useEffect(() => {
    let live = true;
    const timer = setTimeout(async () => {
      try {
        const query = new URLSearchParams({ limit: String(LISTED) });
        if (search.trim()) query.set("search", search.trim());
        const { items } = await get(`/v1/assets?${query}`);
        if (live) (setAssets(items), setError(null));
      } catch (e) {
        if (live) setError(e.message);
      }
    }, SEARCH_DELAY_MS);
    return () => ((live = false), clearTimeout(timer));
  }, [search]);

  const addTicks = (ticks) =>
    setPrices((known) => {
      const next = { ...known };
      for (const tick of ticks) if (!next[tick.asset] || newer(tick.at, next[tick.asset].at)) next[tick.asset] = tick;
      return next;
    });
  useEffect(() => onPrices(addTicks), []);

  // The order form starts from the asset's price read fresh: the list may come from a cache some seconds
  // old, and a stream carries only the ticks that come after it opened.
  useEffect(() => {
    if (!selected) return;
    get(`/v1/assets/${encodeURIComponent(selected.symbol)}`).then(
      (fresh) => fresh.price !== null && addTicks([{ asset: fresh.symbol, price: fresh.price, at: fresh.updated_at }]),
      () => {}, // the listed price stays
    );
  }, [selected?.symbol]);

  // An asset with the newest price known, from the list or from a tick.
  const priced = (asset) => {
    const tick = prices[asset.symbol];
    return tick && newer(tick.at, asset.updated_at) ? { ...asset, price: tick.price, updated_at: tick.at } : asset;
  };

  return html`
    <${PageTitle}>Trade<//>
    ${selected && html`<${OrderForm} key=${selected.symbol} asset=${priced(selected)} onClose=${() => setSelected(null)} />`}
    <section class="card">
      <h2>Assets</h2>
      <label for="asset-search">Search assets by symbol or name</label>
      <input id="asset-search" type="search" value=${search} autocomplete="off" onInput=${(e) => setSearch(e.target.value)} />
      <${ErrorMessage} error=${error} />
      ${assets && assets.length === 0 && html`<p role="status">No asset matches “${search}”.</p>`}
      ${assets && assets.length > 0 && html`<${ScrollBox} label="Assets"><table>
        <thead><tr><th scope="col">Symbol</th><th scope="col">Name</th><th scope="col">Price (USD)</th><th scope="col"><span class="sr-only">Action</span></th></tr></thead>
        <tbody>${assets.map(priced).map((a) => html`<tr key=${a.symbol}>
          <th scope="row">${a.symbol}</th><td>${a.name}</td><td><${Amount} value=${a.price} /></td>
          <td><button type="button" class="small" onClick=${() => setSelected(a)} aria-label=${`Trade ${a.symbol}`}>Trade</button></td>
        </tr>`)}</tbody></table><//>`}
    </section>`;
}

function OrderForm({ asset, onClose }) {
  const [side, setSide] = useState("buy");
  const [mode, setMode] = useState("quantity");
  const [input, setInput] = useState("");
  const [error, setError] = useState(null);
  const [sent, setSent] = useState(null);
  const estimate = estimateOrder(side, mode, input, asset.price);

  useEffect(() => {
    document.getElementById("order-title")?.focus();
  }, [asset.symbol]);

  async function place(e) {
    e.preventDefault();
    setError(null);
    if (!estimate || estimate.error) return setError(estimate ? estimate.error : "enter an amount");
    const verb = side === "buy" ? "Buy" : "Sell";
    try {
      await submit(
        "/v1/orders",
        { side, asset: asset.symbol, quantity: estimate.quantity, type: "market" },
        `${verb} ${estimate.quantity} ${asset.symbol}`,
      );
      setSent(`${verb} order for ${estimate.quantity} ${asset.symbol} sent.`);
      setInput("");
    } catch (failure) {
      setError(failure.message);
    }
  }

  const cashWord = side === "buy" ? "Estimated cost" : "Estimated proceeds";
  return html`
    <section class="card" aria-labelledby="order-title">
      <h2 id="order-title" tabindex="-1">${asset.symbol} · ${asset.name}</h2>
      <p>Latest price: <${Amount} value=${asset.price} unit="USD" /> <span class="muted">(${when(asset.updated_at)})</span></p>
      <form onSubmit=${place}>
        <fieldset><legend>Side</legend>
          <label class="inline"><input type="radio" name="side" value="buy" checked=${side === "buy"} onChange=${() => setSide("buy")} /> Buy</label>
          <label class="inline"><input type="radio" name="side" value="sell" checked=${side === "sell"} onChange=${() => setSide("sell")} /> Sell</label>
        </fieldset>
        <fieldset><legend>Order by</legend>
          <label class="inline"><input type="radio" name="mode" value="quantity" checked=${mode === "quantity"} onChange=${() => setMode("quantity")} /> Quantity of ${asset.symbol}</label>
          <label class="inline"><input type="radio" name="mode" value="amount" checked=${mode === "amount"} onChange=${() => setMode("amount")} /> Amount in USD</label>
        </fieldset>
        <label for="order-input">${mode === "quantity" ? `Quantity (${asset.symbol})` : "Amount (USD)"}</label>
        <input id="order-input" inputmode="decimal" autocomplete="off" value=${input} onInput=${(e) => setInput(e.target.value)} />
        <p class="estimate" role="status" aria-live="polite">
          ${estimate && !estimate.error && html`${cashWord}: <strong><${Amount} value=${estimate.cash} unit="USD" /></strong>${" for "}<${Amount} value=${estimate.quantity} unit=${asset.symbol} /> at the latest price, before fees.`}
          ${estimate?.error && html`<span class="error">${estimate.error}</span>`}
        </p>
        <${ErrorMessage} error=${error} />
        ${sent && html`<p class="ok">${sent} Its status is under Recent commands.</p>`}
        <div class="actions">
          <button type="submit">${side === "buy" ? "Place buy order" : "Place sell order"}</button>
          <button type="button" class="secondary" onClick=${onClose}>Close</button>
        </div>
      </form>
    </section>`;
}
