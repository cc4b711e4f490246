/* The dock screen of one station: every scan of the station (SSE topic "scan", whoever scanned it: a gun, this
   page, the CLI) fills the screen green, amber or red with a sound; codes typed in, or read by the camera
   through BarcodeDetector, are posted to /dock/<station>/scan. A scan shows once, however it arrived. */
"use strict";

(() => {
  const root = document.getElementById("dock");
  if (!root) return;
  const text = JSON.parse(document.getElementById("dock-text").textContent);
  const $ = (id) => document.getElementById(id);
  const panel = $("feedback"), message = $("message"), stockList = $("stock-lines"), promptEl = $("prompt");
  const modeEl = $("mode"), scansEl = $("scans"), input = $("code"), form = $("scan-form");
  const fill = (template, values) => template.replace(/\{(\w+)\}/g, (_, key) => String(values[key] ?? ""));
  const KEEP = 10;
  const NAMES = {0x1d: "<GS>", 0x1e: "<RS>", 0x04: "<EOT>", 0x0d: "<CR>", 0x0a: "<LF>", 0x09: "<TAB>"};
  const visible = (raw) => [...raw].map((c) => {
    const code = c.charCodeAt(0);
    if (code >= 0x20 && code !== 0x7f) return c;
    return NAMES[code] || `<0x${code.toString(16).toUpperCase().padStart(2, "0")}>`;
  }).join("");

  /* --- sound: WebAudio beeps, unlocked by the first tap or key press (browsers block audio before) --- */
  const soundButton = $("sound");
  let audio = null, muted = false;
  function unlock() {
    if (!audio) {
      const Context = window.AudioContext || window.webkitAudioContext;
      if (!Context) { soundButton.hidden = true; return; }
      audio = new Context();
    }
    if (audio.state === "suspended") audio.resume();
    showSound();
  }
  function showSound() {
    const on = audio && audio.state !== "suspended" && !muted;
    soundButton.textContent = !audio ? text.sound_off : (muted ? text.sound_muted : text.sound_on);
    soundButton.setAttribute("aria-pressed", on ? "true" : "false");
    soundButton.dataset.state = !audio ? "locked" : (muted ? "muted" : "on");
  }
  soundButton.addEventListener("click", () => {
    if (audio && audio.state === "running") muted = !muted; else unlock();
    showSound();
  });
  for (const type of ["pointerdown", "keydown"]) {
    document.addEventListener(type, (event) => {
      if (event.target !== soundButton && (!audio || audio.state === "suspended")) unlock();
    }, {capture: true});
  }
  function tone(start, duration, frequency, wave, volume) {
    const osc = audio.createOscillator(), gain = audio.createGain();
    osc.type = wave;
    osc.frequency.value = frequency;
    gain.gain.setValueAtTime(volume, start);
    gain.gain.exponentialRampToValueAtTime(0.001, start + duration);  // no click at the end
    osc.connect(gain).connect(audio.destination);
    osc.start(start);
    osc.stop(start + duration + 0.02);
  }
  function beep(level) {
    if (!audio || muted || audio.state !== "running") return;
    const now = audio.currentTime + 0.01;
    if (level === "ok") tone(now, 0.12, 1800, "sine", 0.5);
    else if (level === "warning") { tone(now, 0.1, 900, "square", 0.25); tone(now + 0.18, 0.1, 900, "square", 0.25); }
    else tone(now, 0.7, 150, "sawtooth", 0.4);
  }

  /* --- showing scans --- */
  const shown = new Set([...scansEl.querySelectorAll("li[data-id]")].map((li) => Number(li.dataset.id)));
  let latest = Number(root.dataset.latest) || 0;

  function levelOf(feedback, outcome) {
    if (outcome === "unresolved" || feedback?.unresolved) return "error";
    return feedback?.level || (["ok", "warning", "error"].includes(outcome) ? outcome : "error");
  }

  function scanItem(id, raw, msg, level, at) {
    const li = document.createElement("li");
    li.className = "scan flash-new";
    li.dataset.id = id;
    li.dataset.level = level;
    const code = document.createElement("span"), said = document.createElement("span");
    const when = document.createElement("time");
    code.className = "scan-code"; code.textContent = visible(raw);
    said.className = "scan-message"; said.textContent = msg;
    const moment = at ? new Date(at) : new Date();
    when.setAttribute("datetime", moment.toISOString());
    when.textContent = moment.toLocaleTimeString();
    li.append(code, said, when);
    return li;
  }

  function addToList(li, id) {
    $("no-scans").hidden = true;
    const after = [...scansEl.children].find((other) => Number(other.dataset.id) < id);
    scansEl.insertBefore(li, after || null);
    while (scansEl.children.length > KEEP) scansEl.lastElementChild.remove();
  }

  function showPanel(level, msg, feedback) {
    panel.dataset.level = level;
    message.textContent = msg;
    stockList.replaceChildren(...(feedback?.stock || []).map((line) => {
      const li = document.createElement("li");
      li.textContent = fill(text.stock, line);
      return li;
    }));
    if (feedback?.prompt !== undefined) promptEl.textContent = feedback.prompt;
    if (feedback?.mode) { modeEl.dataset.mode = feedback.mode; modeEl.textContent = text.modes[feedback.mode] || feedback.mode; }
    panel.classList.remove("flash-new");
    void panel.offsetWidth;  // restart the animation for a repeated scan of the same code
    panel.classList.add("flash-new");
    beep(level);
  }

  /* One scan, from the POST answer or from SSE, whichever comes first. */
  function show(id, raw, feedback, outcome, msg, at) {
    if (id && shown.has(id)) return;
    const level = levelOf(feedback, outcome);
    const said = feedback?.message ?? msg ?? "";
    if (id) {
      shown.add(id);
      addToList(scanItem(id, raw, said, level, at), id);
      if (id < latest) return;   // an older scan arriving late must not cover the newest one
      latest = id;
    }
    showPanel(level, said, feedback);
  }

  /* --- sending codes --- */
  async function submit(code, source) {
    let reply;
    try {
      reply = await App.send("POST", root.dataset.scanUrl, {code, source});
    } catch (error) {
      if (!input.value) input.value = code;   // nothing is lost: the code waits to be sent again
      showPanel("error", text.not_sent, null);
      return;
    }
    if (reply.ok && reply.data?.level) {
      show(reply.data.scan_id, code, reply.data, null, null, null);
      return;
    }
    // Not taken (a bad code, an expired login): nothing was logged, so the code waits in the field.
    if (!input.value) input.value = code;
    showPanel("error", reply.data?.error?.message ? fill(text.refused, {message: reply.data.error.message})
                                                  : text.not_accepted, null);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const code = input.value;
    if (!code.trim()) return;
    input.value = "";
    submit(code, "manual");
  });
  // A dock PC with a keyboard-wedge gun types into whatever has focus: keep it on the field (not on touch
  // screens, where focusing opens the on-screen keyboard).
  if (window.matchMedia("(pointer: fine)").matches) {
    input.addEventListener("blur", () => setTimeout(() => {
      if (!document.activeElement || document.activeElement === document.body) input.focus();
    }, 300));
  }

  /* --- camera: BarcodeDetector where the browser has it --- */
  const WANTED = ["ean_13", "ean_8", "upc_a", "upc_e", "code_128", "code_39", "qr_code", "data_matrix", "itf"];
  const cameraBox = $("camera"), video = $("camera-video"), note = $("camera-note"), startButton = $("camera-start");
  let stream = null, timer = null, lastCode = "", lastAt = 0;

  if ("BarcodeDetector" in window) startButton.hidden = false;
  else note.textContent = text.no_detector;

  async function startCamera() {
    if (!navigator.mediaDevices?.getUserMedia) { note.textContent = text.insecure; return; }
    try {
      const supported = await BarcodeDetector.getSupportedFormats();
      const formats = WANTED.filter((f) => supported.includes(f));
      const detector = new BarcodeDetector(formats.length ? {formats} : undefined);
      stream = await navigator.mediaDevices.getUserMedia({video: {facingMode: "environment"}, audio: false});
      video.srcObject = stream;
      cameraBox.hidden = false;
      startButton.hidden = true;
      await video.play();
      note.textContent = text.camera_on;
      const look = async () => {
        if (!stream) return;
        try {
          if (video.readyState >= 2) {
            const found = await detector.detect(video);
            const code = found[0]?.rawValue;
            const now = Date.now();
            // The same code stays in view for a while: one scan per 1.5 s of it, not one per frame.
            if (code && (code !== lastCode || now - lastAt > 1500)) submit(code, "camera");
            if (code) { lastCode = code; lastAt = now; }
          }
        } catch (error) {
          console.warn("barcode detection failed", error);
        }
        timer = setTimeout(look, 150);
      };
      look();
    } catch (error) {
      stopCamera();
      note.textContent = fill(text.camera_failed, {error: error.message || error.name || error});
    }
  }

  function stopCamera() {
    clearTimeout(timer);
    if (stream) stream.getTracks().forEach((track) => track.stop());
    stream = null;
    video.srcObject = null;
    cameraBox.hidden = true;
    startButton.hidden = !("BarcodeDetector" in window);
  }

  startButton.addEventListener("click", startCamera);
  $("camera-stop").addEventListener("click", () => { stopCamera(); note.textContent = ""; });
  document.addEventListener("visibilitychange", () => { if (document.hidden) stopCamera(); });

  /* --- live --- */
  for (const el of scansEl.querySelectorAll("time[datetime]")) {
    const when = new Date(el.getAttribute("datetime"));
    if (!Number.isNaN(when.getTime())) el.textContent = when.toLocaleTimeString();
  }
  showSound();
  App.live({
    topics: ["scan"],
    since: root.dataset.since,
    station: root.dataset.station,
    stateElement: $("live-state"),
    on: {scan(row) { show(row.id, row.raw, row.feedback, row.outcome, row.message, row.at); }},
  });
})();
