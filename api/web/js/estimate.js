// What an order will cost or yield, worked out before it is sent, in exact decimals (big.js): never
// binary floats. The trading consumer rounds a buy's cost up and a sell's proceeds down to the cent;
// the estimate does the same at the latest price the page has seen (the fill uses the price at
// settlement, and any configured fee comes on top).
import Big from "../vendor/big.mjs";

// A constructor of our own (settings apart from any other user), which never prints exponents.
const Dec = Big();
Dec.NE = -30;
Dec.PE = 40;

const DECIMAL = /^\d+(\.\d+)?$/;
const QUANTITY_PLACES = 8;

/**
 * `mode` is "quantity" (the input is how much of the asset) or "amount" (the input is USD to spend or
 * receive). Returns `{quantity, cash}` as decimal strings, or `{error}` in words, or null when the input
 * is still empty.
 */
export function estimateOrder(side, mode, input, price) {
  const text = String(input || "").trim();
  if (!text) return null;
  if (!DECIMAL.test(text)) return { error: "enter a plain decimal number, like 0.5" };
  if (!price) return { error: "this asset has no price yet" };
  const unitPrice = new Dec(price);
  let quantity;
  if (mode === "amount") {
    quantity = new Dec(text).div(unitPrice).round(QUANTITY_PLACES, Big.roundDown);
  } else {
    if ((text.split(".")[1] || "").length > QUANTITY_PLACES) {
      return { error: `at most ${QUANTITY_PLACES} decimal places` };
    }
    quantity = new Dec(text);
  }
  if (quantity.lte(0)) return { error: "the quantity must be more than 0" };
  const rounding = side === "buy" ? Big.roundUp : Big.roundDown;
  const cash = quantity.times(unitPrice).round(2, rounding);
  return { quantity: quantity.toString(), cash: cash.toFixed(2) };
}
