import { html, useEffect, useState } from "../../vendor/htm-preact-standalone.js";
import { onActivity } from "../activity.js";
import { get } from "../api.js";
import { ValueChart } from "../chart.js";
import { onPrices } from "../live.js";
import { recordValue } from "../valuehistory.js";
import { Amount, ErrorMessage, PageTitle, ScrollBox } from "../ui.js";

const REFRESH_MIN_MS = 2000; // price ticks arrive often; the portfolio is read at most this often

export function Dashboard() {
  const [portfolio, setPortfolio] = useState(null);
  const [points, setPoints] = useState([]);
  const [error, setError] = useState(null);

  useEffect(() => {
    let lastRead = 0;
    let pending = null;
    let live = true;
    async function read() {
      lastRead = Date.now();
      try {
        const body = await get("/v1/portfolio");
        if (!live) return;
        setPortfolio(body);
        setPoints(recordValue(body.total_value));
        setError(null);
      } catch (e) {
        if (live) setError(e.message);
      }
    }
    function soon() {
      if (pending) return;
      pending = setTimeout(() => ((pending = null), read()), Math.max(0, lastRead + REFRESH_MIN_MS - Date.now()));
    }
    read();
    const stopPrices = onPrices(soon);
    const stopActivity = onActivity(soon);
    return () => {
      live = false;
      clearTimeout(pending);
      stopPrices();
      stopActivity();
    };
  }, []);

  return html`
    <${PageTitle}>Dashboard<//>
    <${ErrorMessage} error=${error} />
    <div class="figures">
      <section class="card figure"><h2>Cash</h2><p class="big"><${Amount} value=${portfolio?.cash} unit="USD" /></p></section>
      <section class="card figure"><h2>Total value</h2><p class="big"><${Amount} value=${portfolio?.total_value} unit="USD" /></p></section>
    </div>
    <section class="card">
      <h2>Portfolio value</h2>
      <${ValueChart} points=${points} />
    </section>
    <section class="card">
      <h2>Positions</h2>
      ${portfolio && portfolio.positions.length === 0
        ? html`<p>No positions yet. <a href="#/trade">Trade</a> to open one.</p>`
        : html`<${ScrollBox} label="Positions"><table>
            <thead><tr><th scope="col">Asset</th><th scope="col">Quantity</th><th scope="col">Average cost</th>
              <th scope="col">Price</th><th scope="col">Market value</th><th scope="col">Unrealized P&L</th></tr></thead>
            <tbody>${(portfolio?.positions || []).map((p) => html`<tr key=${p.asset}>
              <th scope="row">${p.asset}</th><td><${Amount} value=${p.quantity} /></td><td><${Amount} value=${p.average_cost} /></td>
              <td><${Amount} value=${p.price} /></td><td><${Amount} value=${p.market_value} /></td><td><${Amount} value=${p.unrealized_pnl} /></td>
            </tr>`)}</tbody></table><//>`}
    </section>`;
}
