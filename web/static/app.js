/* Shared page helpers: the CSRF header for fetch(), and live updates over Server-Sent Events. No framework. */
"use strict";

const App = (() => {
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

  async function send(method, url, body) {
    const response = await fetch(url, {
      method, credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf(), "Accept": "application/json"},
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    return {ok: response.ok, status: response.status, data};
  }

  /* live({topics: ["movement"], since: "m1.s2.a", station, on: {movement(row) {...}}, state(el)})
     EventSource reconnects by itself and sends Last-Event-ID, so nothing committed is missed. */
  function live({topics, since, station, on, stateElement}) {
    const params = new URLSearchParams({topics: topics.join(",")});
    if (since) params.set("since", since);
    if (station) params.set("station", station);
    const source = new EventSource("/events?" + params.toString());
    const show = (state) => { if (stateElement) stateElement.dataset.state = state; };
    source.onopen = () => show("open");
    source.onerror = () => show(source.readyState === EventSource.CLOSED ? "closed" : "connecting");
    for (const [name, handler] of Object.entries(on)) {
      source.addEventListener(name, (event) => handler(JSON.parse(event.data), event.lastEventId));
    }
    return source;
  }

  function text(el, value) { if (el) el.textContent = value; }

  return {csrf, send, live, text};
})();
