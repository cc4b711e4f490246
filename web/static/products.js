/* Product pages. The list: instant search as the user types (debounced, the latest answer wins), rows rendered by
   the server (/products/search.json returns them as HTML). The form: "add a row" buttons that copy a <template>
   row with the next free index; without this script the form still offers one blank row per part. */
"use strict";

(() => {
  const DEBOUNCE_MS = 150;

  function setupSearch(form) {
    const input = form.querySelector('input[name="q"]');
    const inactive = form.querySelector('input[name="inactive"]');
    const rows = document.getElementById("product-rows");
    const summary = document.getElementById("product-summary");
    const more = document.getElementById("product-more");
    const prev = document.getElementById("product-prev");
    let timer = null;
    let controller = null;
    let latest = 0;

    function link(anchor, href) {
      if (!anchor) return;
      anchor.hidden = !href;
      anchor.href = href || "";
    }

    async function run() {
      const params = new URLSearchParams();
      const text = input.value.trim();
      if (text) params.set("q", text);
      if (inactive && inactive.checked) params.set("inactive", "1");
      const ticket = ++latest;
      if (controller) controller.abort();
      controller = new AbortController();
      try {
        const response = await fetch(form.dataset.searchUrl + "?" + params.toString(), {
          credentials: "same-origin", headers: {Accept: "application/json"}, signal: controller.signal,
        });
        // A session that ended answers with the login page: leave the list as it is.
        const json = (response.headers.get("Content-Type") || "").includes("application/json");
        if (!response.ok || !json || ticket !== latest) return;
        const data = await response.json();
        if (ticket !== latest) return;
        rows.innerHTML = data.html;
        if (summary) summary.textContent = data.summary.trim();
        link(more, data.next);
        link(prev, data.prev);
        const query = params.toString();
        history.replaceState(null, "", location.pathname + (query ? "?" + query : ""));
      } catch (error) {
        if (error.name !== "AbortError") throw error;
      }
    }

    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(run, DEBOUNCE_MS);
    });
    if (inactive) inactive.addEventListener("change", run);
    // A scanner "types" the code and presses Enter: search at once, stay on the page.
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      clearTimeout(timer);
      run();
    });
  }

  function setupRows() {
    for (const button of document.querySelectorAll("[data-add-row]")) {
      const part = button.dataset.addRow;
      const body = document.querySelector(`tbody[data-rows="${part}"]`);
      const template = document.querySelector(`template[data-row-template="${part}"]`);
      if (!body || !template) continue;
      button.addEventListener("click", () => {
        const index = Number(body.dataset.next || body.rows.length);
        body.dataset.next = String(index + 1);
        const row = template.content.firstElementChild.cloneNode(true);
        for (const input of row.querySelectorAll("input")) input.name = input.name.replace("__i__", String(index));
        body.appendChild(row);
        row.querySelector("input")?.focus();
      });
    }
  }

  const search = document.querySelector("form[data-product-search]");
  if (search) setupSearch(search);
  setupRows();
})();
