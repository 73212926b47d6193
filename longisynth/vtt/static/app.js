// Reading page of the longisynth visual Turing test. Plain JS, no build step.
// The server never sends the answer key; this page only fetches crops and stores answers.
"use strict";

const VIEW_PX_MAX = 420; // longest side of a view on screen, at most
const VIEWS = ["axial", "coronal", "sagittal"];
const AXIS_OF_VIEW = { axial: 2, coronal: 1, sagittal: 0 }; // the axis each view slices through
const S = { reader: null, study: null, index: 0, vol: null, shape: null, spacing: null,
            slice: [0, 0, 0], window: 400, level: 40, shownAt: 0 };
const $ = (id) => document.getElementById(id);

async function api(path, options) {
  const r = await fetch(path, options);
  if (!r.ok) {
    let msg = r.status + " " + r.statusText;
    try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
    throw new Error(msg);
  }
  return r;
}

function show(section) {
  for (const id of ["login", "reading", "done"]) $(id).classList.toggle("hidden", id !== section);
}

// Voxel value at (x, y, z) of the C-ordered (x, y, z) crop.
function voxel(x, y, z) {
  const [, ny, nz] = S.shape;
  return S.vol[(x * ny + y) * nz + z];
}

// Screen layout of one view in radiological convention (RAS+ crop): patient right on the
// left of axial/coronal views, anterior up in axial, superior up in coronal/sagittal.
function layout(view) {
  const [nx, ny, nz] = S.shape, [sx, sy, sz] = S.spacing;
  if (view === "axial") return { w: nx, h: ny, wmm: nx * sx, hmm: ny * sy,
    at: (c, r) => voxel(nx - 1 - c, ny - 1 - r, S.slice[2]) };
  if (view === "coronal") return { w: nx, h: nz, wmm: nx * sx, hmm: nz * sz,
    at: (c, r) => voxel(nx - 1 - c, S.slice[1], nz - 1 - r) };
  return { w: ny, h: nz, wmm: ny * sy, hmm: nz * sz,
    at: (c, r) => voxel(S.slice[0], ny - 1 - c, nz - 1 - r) };
}

function draw(view) {
  const L = layout(view), canvas = $("view-" + view);
  // Three views side by side in the viewer's width (figure padding and gaps: ~30 px each).
  const px = Math.max(200, Math.min(VIEW_PX_MAX, Math.floor(($("viewer").clientWidth - 90) / 3)));
  const scale = px / Math.max(L.wmm, L.hmm);
  canvas.width = Math.round(L.wmm * scale);
  canvas.height = Math.round(L.hmm * scale);
  const off = document.createElement("canvas");
  off.width = L.w; off.height = L.h;
  const octx = off.getContext("2d"), img = octx.createImageData(L.w, L.h);
  const lo = S.level - S.window / 2, k = 255 / Math.max(S.window, 1e-6);
  for (let r = 0; r < L.h; r++) {
    for (let c = 0; c < L.w; c++) {
      const g = Math.max(0, Math.min(255, (L.at(c, r) - lo) * k));
      const p = 4 * (r * L.w + c);
      img.data[p] = img.data[p + 1] = img.data[p + 2] = g;
      img.data[p + 3] = 255;
    }
  }
  octx.putImageData(img, 0, 0);
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(off, 0, 0, canvas.width, canvas.height);
  const axis = AXIS_OF_VIEW[view];
  $("pos-" + view).textContent = (S.slice[axis] + 1) + " / " + S.shape[axis];
  $("slider-" + view).value = S.slice[axis];
}

function drawAll() { VIEWS.forEach(draw); }
window.addEventListener("resize", () => { if (S.vol) drawAll(); });

function setSlice(axis, value) {
  S.slice[axis] = Math.max(0, Math.min(S.shape[axis] - 1, value));
  drawAll();
}

function setWindow(width, level, presetName) {
  S.window = width; S.level = level;
  $("win-width").value = Math.round(width);
  $("win-level").value = Math.round(level);
  for (const b of $("presets").children) b.classList.toggle("active", b.dataset.name === presetName);
  if (S.vol) drawAll();
}

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
  S.vol = new Int16Array(buf);
  S.shape = item.shape; S.spacing = item.spacing_mm;
  S.slice = S.shape.map((n) => Math.floor(n / 2));
  const presets = $("presets");
  presets.textContent = "";
  for (const p of item.presets) {
    const b = document.createElement("button");
    b.type = "button"; b.textContent = p.name; b.dataset.name = p.name;
    b.addEventListener("click", () => setWindow(p.window, p.level, p.name));
    presets.appendChild(b);
  }
  VIEWS.forEach((v) => { $("slider-" + v).max = S.shape[AXIS_OF_VIEW[v]] - 1; });
  const def = item.presets.find((p) => p.name === item.default_preset) || item.presets[0];
  resetForm();
  show("reading");
  setWindow(def.window, def.level, def.name);
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
  for (const view of VIEWS) {
    const axis = AXIS_OF_VIEW[view], canvas = $("view-" + view);
    canvas.addEventListener("wheel", (e) => {
      e.preventDefault(); setSlice(axis, S.slice[axis] + (e.deltaY > 0 ? 1 : -1));
    }, { passive: false });
    $("slider-" + view).addEventListener("input", (e) => setSlice(axis, Number(e.target.value)));
    canvas.addEventListener("click", (e) => { // move the other two views to the clicked voxel
      const L = layout(view), rect = canvas.getBoundingClientRect();
      const c = Math.floor((e.clientX - rect.left) / rect.width * L.w);
      const r = Math.floor((e.clientY - rect.top) / rect.height * L.h);
      const [nx, ny, nz] = S.shape;
      if (view === "axial") { S.slice[0] = nx - 1 - c; S.slice[1] = ny - 1 - r; }
      else if (view === "coronal") { S.slice[0] = nx - 1 - c; S.slice[2] = nz - 1 - r; }
      else { S.slice[1] = ny - 1 - c; S.slice[2] = nz - 1 - r; }
      drawAll();
    });
  }
  const manual = () => setWindow(Number($("win-width").value), Number($("win-level").value), null);
  $("win-width").addEventListener("change", manual);
  $("win-level").addEventListener("change", manual);
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
    else if (e.key === "ArrowUp") setSlice(2, S.slice[2] + 1);
    else if (e.key === "ArrowDown") setSlice(2, S.slice[2] - 1);
  });
}

async function main() {
  wire();
  S.study = await (await api("/api/study")).json();
  const saved = new URLSearchParams(location.search).get("reader") || localStorage.getItem("vtt_reader");
  if (saved) {
    try { await startReader(saved); return; } catch (e) { /* fall through to the login */ }
  }
  show("login");
}

main();
