// Reading page of the longisynth visual Turing test. Plain JS, no build step.
// The server never sends the answer key; this page only fetches crops and stores answers.
"use strict";

const VIEW_PX_MAX = 420; // longest side of a view on screen, at most
// SliceViewer, VIEWS, AXIS_OF_VIEW and api() come from viewer.js (shared with the expert review page).
const S = { reader: null, study: null, index: 0, viewer: null, shownAt: 0 };
const $ = (id) => document.getElementById(id);

function show(section) {
  for (const id of ["login", "reading", "done"]) $(id).classList.toggle("hidden", id !== section);
}

// Three views side by side in the viewer's width (figure padding and gaps: ~30 px each).
const viewPx = () => Math.max(200, Math.min(VIEW_PX_MAX, Math.floor(($("viewer").clientWidth - 90) / 3)));

function updateHeader() {
  const n = S.study.items.length;
  $("reader-label").textContent = "Reader: " + S.reader;
  $("item-counter").textContent = " · Item " + Math.min(S.index + 1, n) + " of " + n;
  $("item-counter").dataset.index = String(S.index);
  $("progress-bar").style.width = (100 * S.index / n) + "%";
}

function resetForm() {
  $("answer").reset();
  $("submit").disabled = true;
  $("answer-error").textContent = "";
}

async function loadItem(index) {
  S.index = index;
  updateHeader();
  if (index >= S.study.items.length) { show("done"); return; }
  const item = S.study.items[index];
  const buf = await (await api("/api/items/" + item.id + "/volume")).arrayBuffer();
  resetForm();
  show("reading");
  S.viewer.load([{ data: new Int16Array(buf), mask: null }], item.shape, item.spacing_mm,
                item.presets, item.default_preset);
  S.shownAt = performance.now();
}

function formValid() {
  const f = $("answer");
  return !!f.querySelector("input[name=call]:checked") && !!f.querySelector("input[name=confidence]:checked");
}

async function submit(ev) {
  if (ev) ev.preventDefault();
  if (!formValid() || $("submit").dataset.busy) return;
  const f = $("answer"), item = S.study.items[S.index];
  const body = {
    call: f.querySelector("input[name=call]:checked").value,
    confidence: Number(f.querySelector("input[name=confidence]:checked").value),
    cues: [...f.querySelectorAll("input[name=cue]:checked")].map((c) => c.value),
    note: $("note").value,
    elapsed_ms: Math.round(performance.now() - S.shownAt),
  };
  $("submit").dataset.busy = "1";
  try {
    const r = await api("/api/answers/" + encodeURIComponent(S.reader) + "/" + item.id, {
      method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    await loadItem((await r.json()).next_index);
  } catch (e) {
    $("answer-error").textContent = "Not saved: " + e.message;
  } finally {
    delete $("submit").dataset.busy;
  }
}

async function startReader(reader) {
  const r = await api("/api/readers/" + encodeURIComponent(reader) + "/progress");
  S.reader = reader;
  localStorage.setItem("vtt_reader", reader);
  await loadItem((await r.json()).next_index);
}

function wire() {
  $("start").addEventListener("click", async () => {
    $("login-error").textContent = "";
    try { await startReader($("reader-input").value.trim()); }
    catch (e) { $("login-error").textContent = e.message; }
  });
  $("reader-input").addEventListener("keydown", (e) => { if (e.key === "Enter") $("start").click(); });
  $("switch-reader").addEventListener("click", (e) => {
    e.preventDefault(); localStorage.removeItem("vtt_reader"); S.reader = null; show("login");
  });
  $("answer").addEventListener("change", () => { $("submit").disabled = !formValid(); });
  $("answer").addEventListener("submit", submit);
  document.addEventListener("keydown", (e) => {
    if ($("reading").classList.contains("hidden") || ["TEXTAREA", "INPUT"].includes(e.target.tagName)
        && e.target.type !== "radio" && e.target.type !== "checkbox") return;
    const click = (id) => { $(id).checked = true; $("submit").disabled = !formValid(); };
    if (e.key === "r" || e.key === "R") click("call-real");
    else if (e.key === "s" || e.key === "S") click("call-synthetic");
    else if (e.key >= "1" && e.key <= "5") click("conf-" + e.key);
    else if (e.key === "Enter") submit(e);
    else if (e.key === "ArrowUp") S.viewer.setSlice(2, S.viewer.slice[2] + 1);
    else if (e.key === "ArrowDown") S.viewer.setSlice(2, S.viewer.slice[2] - 1);
  });
}

async function main() {
  S.viewer = new SliceViewer({ presets: $("presets"), width: $("win-width"), level: $("win-level") }, viewPx);
  const byView = (prefix) => Object.fromEntries(VIEWS.map((v) => [v, $(prefix + v)]));
  S.viewer.setPanels([{ canvas: byView("view-"), pos: byView("pos-"), slider: byView("slider-") }]);
  wire();
  S.study = await (await api("/api/study")).json();
  const saved = new URLSearchParams(location.search).get("reader") || localStorage.getItem("vtt_reader");
  if (saved) {
    try { await startReader(saved); return; } catch (e) { /* fall through to the login */ }
  }
  show("login");
}

main();
