/* Live stock cells: each committed movement carries the new totals of its variant at its location (summed over
   lots); the matching row (data-sku + data-location) gets them, and its level colour is worked out again with the
   rule of pages_stock.level_of: out at available <= 0, low at or below the reorder point, over above
   point + 2 × reorder quantity. */
"use strict";

(() => {
  const tables = document.querySelectorAll("table[data-live-stock]");
  if (!tables.length) return;
  const labelsNode = document.getElementById("stock-level-labels");
  const labels = labelsNode ? JSON.parse(labelsNode.textContent) : {};
  const badgeClass = {out: "bad", low: "warn", over: "over", ok: "ok"};
  const LEVELS = ["out", "low", "over", "ok"];

  const number = (text) => (text === undefined || text === "" ? null : Number(text));

  function levelOf(available, point, qty) {
    if (available <= 0) return "out";
    if (point !== null && available <= point) return "low";
    if (point !== null && qty !== null && available > point + 2 * qty) return "over";
    return "ok";
  }

  function update(row, stock) {
    for (const field of ["on_hand", "reserved", "available", "in_transit"]) {
      App.text(row.querySelector(`[data-field="${field}"]`), String(stock[field]));
    }
    const level = levelOf(stock.available, number(row.dataset.reorderPoint), number(row.dataset.reorderQty));
    for (const name of LEVELS) row.classList.toggle("level-" + name, name === level);
    const cell = row.querySelector('[data-field="level"]');
    if (cell) {
      const badge = document.createElement("span");
      badge.className = "badge " + badgeClass[level];
      badge.textContent = labels[level] || level;
      cell.replaceChildren(badge);
    }
    row.classList.remove("flash-new");
    void row.offsetWidth;  // restart the highlight animation
    row.classList.add("flash-new");
  }

  const since = tables[0].dataset.since;
  App.live({
    topics: ["movement"], since,
    stateElement: document.querySelector("[data-live-state]"),
    on: {
      movement(row) {
        if (!row.stock) return;
        for (const table of tables) {
          for (const tr of table.querySelectorAll("tbody tr[data-sku]")) {
            if (tr.dataset.sku === row.sku && tr.dataset.location === row.location) update(tr, row.stock);
          }
        }
      },
    },
  });
})();
