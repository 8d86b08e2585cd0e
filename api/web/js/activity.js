// The commands this tab submitted, newest first: each appears as "accepted" at once and flips to
// settled or rejected as `live.js` learns its outcome.
import { submitCommand } from "./api.js";
import { followCommand, isTerminal, onCommandEvents } from "./live.js";

const REASONS = {
  insufficient_funds: "insufficient funds",
  insufficient_holdings: "you do not hold that much of the asset",
  daily_limit_exceeded: "daily limit exceeded",
  unknown_account: "unknown account",
  unknown_asset: "unknown asset",
  no_price: "no price for this asset yet",
};

/** A rejection's machine code in plain words (an unknown code still reads as words). */
export const reasonText = (code) => REASONS[code] || String(code || "").replaceAll("_", " ");

let items = [];
let settledCount = 0; // how many followed commands have reached an outcome: pages reload on a change
const listeners = new Set();
let stopEvents = null;

export function onActivity(listener) {
  listeners.add(listener);
  listener(items, settledCount);
  return () => listeners.delete(listener);
}

export function clearActivity() {
  items = [];
  if (stopEvents) stopEvents();
  stopEvents = null;
  publish();
}

function publish() {
  for (const listener of listeners) listener(items, settledCount);
}

function update(status) {
  const known = items.find((item) => item.id === status.command_id);
  if (!known || isTerminal(known.status)) return;
  Object.assign(known, { status: status.status, reason: status.reason, result: status.result });
  if (isTerminal(status.status)) settledCount += 1;
  items = [...items];
  publish();
}

/** Submits a command (`label` says what it is, e.g. "Deposit 250.00 USD") and follows it. */
export async function submit(path, body, label) {
  const receipt = await submitCommand(path, body);
  if (!stopEvents) stopEvents = onCommandEvents(update);
  items = [{ id: receipt.command_id, kind: receipt.kind, label, status: receipt.status }, ...items].slice(0, 20);
  publish();
  followCommand(receipt.command_id, update).catch((error) => {
    // Not an outcome: the status could not be read (the command itself may still settle).
    const known = items.find((item) => item.id === receipt.command_id);
    if (known) known.error = error.message;
    items = [...items];
    publish();
  });
  return receipt;
}
