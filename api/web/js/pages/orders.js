import { html, useEffect, useState } from "../../vendor/htm-preact-standalone.js";
import { onActivity, reasonText } from "../activity.js";
import { get } from "../api.js";
import { Pager, usePages } from "../paging.js";
import { Amount, ErrorMessage, PageTitle, ScrollBox, StatusBadge, useLoad, when } from "../ui.js";

const PAGE_SIZE = 10;

export function Orders() {
  const [settled, setSettled] = useState(0);
  useEffect(() => onActivity((_, count) => setSettled(count)), []);
  const pages = usePages("/v1/orders", PAGE_SIZE, [settled]);
  return html`
    <${PageTitle}>Orders<//>
    <section class="card">
      <p class="muted">Decided orders, newest first; an order still being settled is under Recent commands.</p>
      <${ErrorMessage} error=${pages.error} />
      ${pages.items && pages.items.length === 0 && html`<p>No orders yet.</p>`}
      ${pages.items && pages.items.length > 0 && html`<${ScrollBox} label="Orders"><table>
        <thead><tr><th scope="col">Placed</th><th scope="col">Order</th><th scope="col">Price (USD)</th><th scope="col">Cash (USD)</th><th scope="col">Status</th></tr></thead>
        <tbody>${pages.items.map((o) => html`<tr key=${o.order_id}>
          <td>${when(o.placed_at)}</td>
          <td><a href=${`#/orders/${o.order_id}`}>${o.side} ${o.quantity} ${o.asset}</a></td>
          <td><${Amount} value=${o.price} /></td><td><${Amount} value=${o.cash_amount} /></td>
          <td><${StatusBadge} status=${o.status} reason=${o.reason} /></td>
        </tr>`)}</tbody></table><//>`}
      <${Pager} pages=${pages} label="Order pages" />
    </section>`;
}

export function OrderDetail({ id }) {
  const [order, error] = useLoad(() => get(`/v1/orders/${encodeURIComponent(id)}`), [id]);
  const rows = order && [
    ["Order id", order.order_id],
    ["Side", order.side],
    ["Asset", order.asset],
    ["Quantity", html`<${Amount} value=${order.quantity} />`],
    ["Status", html`<${StatusBadge} status=${order.status} reason=${order.reason} />`],
    order.reason && ["Reason", reasonText(order.reason)],
    ["Fill price", html`<${Amount} value=${order.price} unit="USD" />`],
    ["Cash", html`<${Amount} value=${order.cash_amount} unit="USD" />`],
    ["Fee", html`<${Amount} value=${order.fee} unit="USD" />`],
    ["Balance after", html`<${Amount} value=${order.balance_after} unit="USD" />`],
    ["Placed", when(order.placed_at)],
    ["Completed", when(order.completed_at)],
  ].filter(Boolean);
  return html`
    <${PageTitle}>Order<//>
    <p><a href="#/orders">All orders</a></p>
    <${ErrorMessage} error=${error} />
    ${rows && html`<section class="card"><dl class="details">${rows.map(([k, v]) => html`<dt>${k}</dt><dd>${v}</dd>`)}</dl></section>`}`;
}
