/* Booking forms: SKU suggestions from the catalog search as the person types (when the page could not list
   every SKU), the held quantity as the release hint, and one submit per click. The op_id in the form is what
   makes a second submit harmless; disabling the button only spares the person the "already booked" note. */
"use strict";

(() => {
  const form = document.getElementById("booking-form");
  if (!form) return;

  const sku = document.getElementById("sku");
  const list = document.getElementById("sku-options");
  if (sku && list && list.options.length === 0) {
    const url = form.dataset.searchUrl;
    let timer = null;
    let asked = "";
    const fill = (items) => {
      list.replaceChildren(...items.slice(0, 20).map((item) => {
        const option = document.createElement("option");
        option.value = item.sku;
        option.textContent = [item.product, item.name].filter(Boolean).join(" ");
        return option;
      }));
    };
    sku.addEventListener("input", () => {
      clearTimeout(timer);
      const text = sku.value.trim();
      if (text.length < 2 || text === asked) return;
      timer = setTimeout(async () => {
        asked = text;
        try {
          const response = await fetch(`${url}?q=${encodeURIComponent(text)}&limit=20`,
                                       {credentials: "same-origin", headers: {"Accept": "application/json"}});
          if (!response.ok) return;
          const data = await response.json();
          const items = Array.isArray(data) ? data : (data.items || data.variants || data.results || []);
          if (sku.value.trim() === text) fill(items.filter((item) => item && item.sku));
        } catch (error) {
          /* No suggestions: the field still takes a typed or scanned SKU. */
        }
      }, 200);
    });
  }

  const reservation = document.getElementById("reservation");
  const qty = document.getElementById("qty");
  if (reservation && qty) {
    const hint = () => {
      const chosen = reservation.selectedOptions[0];
      qty.placeholder = chosen && chosen.dataset.left ? chosen.dataset.left : "";
    };
    reservation.addEventListener("change", hint);
    hint();
  }

  form.addEventListener("submit", () => {
    const button = form.querySelector('button[type="submit"]');
    if (button) setTimeout(() => { button.disabled = true; }, 0);
  });
})();
