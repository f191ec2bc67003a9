// /orders/new/: a running total, and availability kept live from orders' local view.
//
// When orders' worker applies an InventoryChanged (its receipt comes over the stream), the
// page asks GET /api/products/ again and updates the Available column and the sold-out notice.
// The server prices and checks the order from its own view whatever the page shows.

import {EventStream, showConnection} from "./stream.js";
import {getJSON} from "./dom.js";

const form = document.getElementById("order-form");
const output = document.getElementById("order-total");
const status = document.getElementById("products-status");
const notice = document.getElementById("sold-out-notice");
let timer = null;

function updateTotal() {
  let cents = 0;
  for (const input of form.querySelectorAll("input.qty")) {
    const qty = parseInt(input.value, 10);
    if (qty > 0) cents += qty * Math.round(parseFloat(input.dataset.price) * 100);
  }
  output.textContent = (cents / 100).toFixed(2);
}

async function refreshProducts() {
  timer = null;
  let body;
  try { body = await getJSON("/api/products/"); } catch { return; }
  let soldOut = 0;
  for (const product of body.products || []) {
    const row = form.querySelector(`tr[data-sku="${CSS.escape(product.sku)}"]`);
    if (!row) continue;
    const cell = row.querySelector('[data-field="available"]');
    if (cell.textContent !== String(product.available)) {
      cell.textContent = String(product.available);
      cell.classList.remove("changed");
      void cell.offsetWidth; // restart the highlight
      cell.classList.add("changed");
    }
    row.classList.toggle("sold-out", product.available <= 0);
    if (product.available <= 0) soldOut += 1;
  }
  if (notice) {
    notice.classList.toggle("hidden", soldOut === 0);
    document.getElementById("sold-out-count").textContent = String(soldOut);
  }
  status.textContent = `availability from orders' local view · updated ${new Date().toLocaleTimeString()}`;
}

function scheduleRefresh() {
  if (timer === null) timer = setTimeout(refreshProducts, 150);
}

const concerns = (entry) => entry.type === "receipt" && entry.receipt?.context === "orders"
  && entry.receipt?.event_type === "InventoryChanged";

form.addEventListener("input", updateTotal);
updateTotal();
const stream = new EventStream({
  onState: showConnection,
  onEntries: (entries) => { if (entries.some(concerns)) scheduleRefresh(); },
}).start();
// The stream may be down: the view is the truth, ask it now and then anyway.
setInterval(() => { if (stream.state !== "live") scheduleRefresh(); }, 5000);
window.eventflowStream = stream;
