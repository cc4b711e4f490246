/* The dashboard, live: new movements are prepended to the recent list, the line they touch is updated at once,
   and the stock summary is re-read from the server (GET /dashboard/summary) shortly after, so the counts follow
   the server's rules exactly. Open alerts are redrawn whenever they change. */
"use strict";

(() => {
  const root = document.getElementById("dashboard");
  if (!root) return;
  const text = JSON.parse(document.getElementById("dashboard-text").textContent);
  const recent = document.querySelector("#recent tbody");
  const limit = Number(root.dataset.recentLimit) || 20;
  const fill = (template, values) => template.replace(/\{(\w+)\}/g, (_, key) => String(values[key] ?? ""));
  const signed = (n) => (n > 0 ? "+" : "") + n;

  function localTimes(scope) {
    for (const el of scope.querySelectorAll("time[datetime]")) {
      const when = new Date(el.getAttribute("datetime"));
      if (!Number.isNaN(when.getTime())) {
        // Today's times need no date; older ones do.
        const today = when.toDateString() === new Date().toDateString();
        el.textContent = today ? when.toLocaleTimeString([], {timeStyle: "short"})
                               : when.toLocaleString([], {dateStyle: "short", timeStyle: "short"});
        el.title = el.getAttribute("datetime");
      }
    }
  }

  function el(tag, className, content) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (content !== undefined) node.textContent = content;
    return node;
  }

  function movementRow(m) {
    const tr = el("tr", "flash-new");
    tr.dataset.id = m.id;
    const when = el("time", "", m.ts.slice(0, 16).replace("T", " "));
    when.setAttribute("datetime", m.ts);
    const sku = el("td"), change = el("td", "num"), time = el("td", "nowrap");
    // Columns as in dashboard.html: what, where and how much first, so a phone shows them without scrolling.
    tr.append(sku, el("td", "nowrap", m.location), change, el("td", "", m.kind), time,
              el("td", "small", m.user || m.device || ""));
    time.append(when);
    sku.append(el("strong", "nowrap", m.sku));
    if (m.lot) sku.append(" ", el("span", "small", fill(text.lot, {lot: m.lot})));
    if (m.d_on_hand) change.append(signed(m.d_on_hand));
    if (m.d_reserved) change.append(" ", el("span", "small", fill(text.reserved, {n: signed(m.d_reserved)})));
    if (m.d_in_transit) change.append(" ", el("span", "small", fill(text.in_transit, {n: signed(m.d_in_transit)})));
    localTimes(tr);
    return tr;
  }

  function addMovement(m) {
    if (recent.querySelector(`tr[data-id="${m.id}"]`)) return;  // already shown (a reconnect replays)
    recent.querySelector("tr.none")?.remove();
    recent.prepend(movementRow(m));
    while (recent.rows.length > limit) recent.lastElementChild.remove();
  }

  /* The line's own numbers change at once; its level and the counts come with the summary refresh. */
  function updateLine(m) {
    if (!m.stock) return;
    const row = document.querySelector(`#needs-stock tr[data-line="${CSS.escape(m.sku + "@" + m.location)}"]`);
    const cell = row?.querySelector('[data-field="available"]');
    if (!cell) return;
    cell.textContent = m.stock.available;
    row.classList.remove("flash-new");
    void row.offsetWidth;  // restart the animation
    row.classList.add("flash-new");
  }

  /* At most one summary request in flight, however many movements arrive, and a pause after each that grows
     with how long the server took: a busy box is not asked again and again. */
  let refreshing = false, again = false, lastRefresh = 0, gap = 1000;
  async function refreshSummary() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    try {
      const wait = Math.max(0, gap - (Date.now() - lastRefresh));
      if (wait) await new Promise((done) => setTimeout(done, wait));
      const started = Date.now();
      const response = await fetch(root.dataset.summaryUrl, {credentials: "same-origin", headers: {Accept: "text/html"}});
      if (response.ok) swapSummary(await response.text());
      lastRefresh = Date.now();
      gap = Math.max(1000, 5 * (lastRefresh - started));
    } catch (error) {
      console.warn("dashboard summary refresh failed", error);
    } finally {
      refreshing = false;
      if (again) { again = false; refreshSummary(); }
    }
  }

  function swapSummary(html) {
    const box = document.getElementById("summary");
    const before = new Map([...box.querySelectorAll("tr[data-key] td[data-level]")].map(
      (td) => [td.closest("table").id + "|" + td.parentElement.dataset.key + "|" + td.dataset.level, td.textContent]));
    box.innerHTML = html;
    for (const td of box.querySelectorAll("tr[data-key] td[data-level]")) {
      const key = td.closest("table").id + "|" + td.parentElement.dataset.key + "|" + td.dataset.level;
      if (before.has(key) && before.get(key) !== td.textContent) td.classList.add("flash-new");
    }
  }

  function drawAlerts(list) {
    const ul = document.getElementById("alerts");
    ul.replaceChildren();
    if (!list.length) { ul.append(el("li", "muted none", text.no_alerts)); return; }
    for (const a of list) {
      const li = el("li", "alert flash-new" + (a.severity ? ` alert-${a.severity}` : ""));
      li.append(el("strong", "", a.site || ""), ` · ${a.kind}${a.subject ? ` · ${a.subject}` : ""} · ${fill(text.times, {count: a.count})}`, el("br"),
                el("span", "small", `${fill(text.last_at, {when: (a.last_at || "").slice(0, 16).replace("T", " ")})}: ${a.detail}`));
      ul.append(li);
    }
  }

  localTimes(document);
  App.live({
    topics: ["movement", "alert"],
    since: root.dataset.since,
    stateElement: document.getElementById("live-state"),
    on: {
      movement(row) { addMovement(row); updateLine(row); refreshSummary(); },
      alerts(list) { drawAlerts(list); },
    },
  });
})();
