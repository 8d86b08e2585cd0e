import { html, useEffect, useState } from "../../vendor/htm-preact-standalone.js";
import { onActivity, submit } from "../activity.js";
import { get } from "../api.js";
import { Amount, ErrorMessage, PageTitle, ScrollBox, StatusBadge, useLoad, when } from "../ui.js";
import { Pager, usePages } from "../paging.js";

const PAGE_SIZE = 10;
const TYPES = {
  DepositSettled: "Deposit",
  DepositRejected: "Deposit",
  WithdrawalSettled: "Withdrawal",
  WithdrawalRejected: "Withdrawal",
  OrderFilled: "Order",
  OrderRejected: "Order",
};

export function Account() {
  const [settled, setSettled] = useState(0);
  useEffect(() => onActivity((_, count) => setSettled(count)), []);
  const [balance, balanceError] = useLoad(() => get("/v1/balance"), [settled]);
  const pages = usePages("/v1/balance/transactions", PAGE_SIZE, [settled]);

  return html`
    <${PageTitle}>Account<//>
    <section class="card figure"><h2>Available cash</h2><p class="big"><${Amount} value=${balance?.available} unit="USD" /></p>
      <${ErrorMessage} error=${balanceError} /></section>
    <div class="figures">
      <${CashForm} id="deposit" title="Deposit" path="/v1/deposits" />
      <${CashForm} id="withdraw" title="Withdraw" path="/v1/withdrawals" />
    </div>
    <section class="card">
      <h2>Transactions</h2>
      <${ErrorMessage} error=${pages.error} />
      ${pages.items && pages.items.length === 0 && html`<p>No transactions yet.</p>`}
      ${pages.items && pages.items.length > 0 && html`<${ScrollBox} label="Transactions"><table>
        <thead><tr><th scope="col">When</th><th scope="col">What</th><th scope="col">Amount (USD)</th><th scope="col">Balance after</th><th scope="col">Status</th></tr></thead>
        <tbody>${pages.items.map((t) => html`<tr key=${t.event_id}>
          <td>${when(t.occurred_at)}</td><td>${TYPES[t.type] || t.type}</td><td><${Amount} value=${t.amount} /></td>
          <td><${Amount} value=${t.balance_after} /></td><td><${StatusBadge} status=${t.status} reason=${t.reason} /></td>
        </tr>`)}</tbody></table><//>`}
      <${Pager} pages=${pages} label="Transaction pages" />
    </section>`;
}

function CashForm({ id, title, path }) {
  const [amount, setAmount] = useState("");
  const [error, setError] = useState(null);

  async function send(e) {
    e.preventDefault();
    setError(null);
    try {
      await submit(path, { amount: amount.trim() }, `${title} ${amount.trim()} USD`);
      setAmount("");
    } catch (failure) {
      setError(failure.message);
    }
  }

  return html`
    <section class="card figure" aria-labelledby=${`${id}-title`}>
      <h2 id=${`${id}-title`}>${title}</h2>
      <form onSubmit=${send}>
        <label for=${`${id}-amount`}>${title} amount (USD)</label>
        <input id=${`${id}-amount`} inputmode="decimal" autocomplete="off" required value=${amount} onInput=${(e) => setAmount(e.target.value)} />
        <${ErrorMessage} error=${error} />
        <button type="submit">${title}</button>
      </form>
    </section>`;
}
