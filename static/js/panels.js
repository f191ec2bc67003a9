// The local view panels: what each context holds of the world, from the snapshot's views
// and the changed rows the `views` messages carry.
//
// orders' ProductView is a copy fed by InventoryChanged; inventory's stock is the
// truth. Rows where the copy differs are highlighted until it catches up.

import {clear, h} from "./dom.js";

const MAX_SKUS = 60;

function differs(copy, truth) {
  if (!truth) return false; // inventory has not reported this SKU: nothing to compare with
  if (!copy) return true;
  return String(copy.available) !== String(truth.available) || String(copy.price) !== String(truth.price);
}

export class ViewPanels {
  constructor(root) {
    this.root = root;
    this.views = {};
    this.dirty = false;
  }

  setAll(views) {
    this.views = {...(views || {})};
    this.render();
  }

  /** Changed rows of a context's view ({section: {key: row}}): a row with an older version never replaces a newer one. */
  merge(context, changes) {
    const view = (this.views[context] ||= {});
    for (const [section, rows] of Object.entries(changes || {})) {
      if (!rows || typeof rows !== "object") continue;
      const target = (view[section] ||= {});
      for (const [key, row] of Object.entries(rows)) {
        const old = target[key];
        if (old?.version !== undefined && row?.version !== undefined && Number(old.version) > Number(row.version)) continue;
        target[key] = row;
      }
    }
    this.changed();
  }

  /** InventoryChanged is inventory's truth about one SKU: newer versions replace what its last view said. */
  inventoryChanged(payload) {
    const stock = (this.views.inventory ||= {stock: {}}).stock ||= {};
    const known = stock[payload.sku];
    if (known && Number(known.version) >= Number(payload.version)) return;
    const {sku, ...fields} = payload;
    stock[sku] = fields;
    this.changed();
  }

  changed() {
    if (this.dirty) return;
    this.dirty = true;
    requestAnimationFrame(() => { this.dirty = false; this.render(); });
  }

  render() {
    this.renderStock(this.root.querySelector("#panel-stock"));
    this.renderPayments(this.root.querySelector("#panel-payments"));
    this.renderOrders(this.root.querySelector("#panel-orders"));
    this.renderShipping(this.root.querySelector("#panel-shipping"));
  }

  renderStock(panel) {
    if (!panel) return;
    const products = this.views.orders?.products || {};
    const stock = this.views.inventory?.stock || {};
    const skus = [...new Set([...Object.keys(stock), ...Object.keys(products)])];
    // Differences first, then by SKU; a bounded table.
    skus.sort((a, b) => (differs(products[b], stock[b]) - differs(products[a], stock[a])) || a.localeCompare(b));
    const body = h("tbody");
    let differing = 0;
    for (const sku of skus.slice(0, MAX_SKUS)) {
      const copy = products[sku], truth = stock[sku];
      const diff = differs(copy, truth);
      if (diff) differing += 1;
      body.append(h("tr", {class: diff ? "differs" : "", dataset: {sku, differs: diff ? "1" : "0"}},
        h("td", {class: "mono"}, sku),
        h("td", {}, (truth || copy)?.name ?? ""),
        h("td", {class: "num"}, copy ? copy.available : "–"),
        h("td", {class: "num muted"}, copy ? `v${copy.version}` : ""),
        h("td", {class: "num"}, truth ? truth.available : "–"),
        h("td", {class: "num muted"}, truth ? `${truth.on_hand} / ${truth.reserved}` : ""),
        h("td", {class: "num muted"}, truth ? `v${truth.version}` : ""),
        h("td", {class: "num"}, (truth || copy)?.price ?? "")));
    }
    const table = h("table", {class: "grid"},
      h("thead", {}, h("tr", {},
        h("th", {}, "SKU"), h("th", {}, "name"),
        h("th", {class: "num"}, "orders sees"), h("th", {}),
        h("th", {class: "num"}, "inventory has"), h("th", {class: "num"}, "on hand / reserved"), h("th", {}),
        h("th", {class: "num"}, "price"))),
      body);
    const note = skus.length
      ? `${differing} of ${skus.length} SKUs differ${skus.length > MAX_SKUS ? ` (first ${MAX_SKUS} shown)` : ""}`
      : "no product seen yet";
    clear(panel).append(h("p", {class: "muted small", dataset: {differing: String(differing)}}, note), table);
  }

  renderPayments(panel) {
    if (!panel) return;
    const totals = this.views.payments?.totals_by_status || {};
    const statuses = Object.keys(totals).sort();
    const body = h("tbody");
    for (const status of statuses) {
      body.append(h("tr", {dataset: {status}},
        h("td", {}, status), h("td", {class: "num"}, totals[status]?.count ?? 0), h("td", {class: "num"}, totals[status]?.amount ?? "")));
    }
    clear(panel).append(statuses.length
      ? h("table", {class: "grid"}, h("thead", {}, h("tr", {}, h("th", {}, "status"), h("th", {class: "num"}, "count"), h("th", {class: "num"}, "amount"))), body)
      : h("p", {class: "muted small"}, "no payment yet"));
  }

  renderShipping(panel) {
    if (!panel) return;
    const view = this.views.shipping || {};
    const shipments = Object.entries(view.shipments || {}).slice(-MAX_SKUS);
    const body = h("tbody");
    for (const [orderId, shipment] of shipments) {
      body.append(h("tr", {dataset: {order: orderId}},
        h("td", {class: "mono"}, orderId), h("td", {}, shipment.status), h("td", {class: "num"}, shipment.total)));
    }
    clear(panel).append(shipments.length
      ? h("table", {class: "grid"}, h("thead", {}, h("tr", {}, h("th", {}, "order"), h("th", {}, "status"), h("th", {class: "num"}, "total"))), body)
      : h("p", {class: "muted small"}, "no shipment yet"));
  }

  renderOrders(panel) {
    if (!panel) return;
    const counts = this.views.orders?.orders_by_status || {};
    const statuses = ["PENDING", "CONFIRMED", "REJECTED", ...Object.keys(counts).filter((k) => !["PENDING", "CONFIRMED", "REJECTED"].includes(k))];
    clear(panel).append(h("div", {class: "tiles"}, statuses.map((status) =>
      h("div", {class: `tile status-${status.toLowerCase()}`, dataset: {status, count: String(counts[status] ?? 0)}},
        h("span", {class: "tile-value"}, counts[status] ?? 0), h("span", {class: "tile-label"}, status)))));
  }
}
