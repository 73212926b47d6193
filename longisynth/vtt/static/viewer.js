// Shared slice viewer of longisynth's reading pages (visual Turing test and expert review).
// Plain JS, no build step. Draws one or more co-registered int16 volumes (C order, axes x, y, z
// of the RAS+ canonical orientation; e.g. the timepoints of one case), each in three views, with
// one slice position and one window shared by all of them. Optional uint8 masks are drawn as a
// red tint when the mask overlay is on.
"use strict";

// fetch that throws the server's JSON error message (both pages' API calls go through it)
async function api(path, options) {
  const r = await fetch(path, options);
  if (!r.ok) {
    let msg = r.status + " " + r.statusText;
    try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
    throw new Error(msg);
  }
  return r;
}

const VIEWS = ["axial", "coronal", "sagittal"];
const AXIS_OF_VIEW = { axial: 2, coronal: 1, sagittal: 0 }; // the axis each view slices through

class SliceViewer {
  // bar: {presets, width, level} elements of the window bar.
  // viewPx(): longest side of one view on screen, px.
  constructor(bar, viewPx) {
    this.bar = bar; this.viewPx = viewPx;
    this.panels = []; this.vols = []; this.shape = null; this.spacing = null;
    this.slice = [0, 0, 0]; this.window = 400; this.level = 40; this.showMask = false;
    const manual = () => this.setWindow(Number(bar.width.value), Number(bar.level.value), null);
    bar.width.addEventListener("change", manual);
    bar.level.addEventListener("change", manual);
    window.addEventListener("resize", () => { if (this.vols.length) this.drawAll(); });
  }

  // panels: one per volume, {canvas: {axial, coronal, sagittal}, pos: {...}, slider: {...}}
  // (elements; pos and slider entries may be missing).
  setPanels(panels) {
    this.panels = panels;
    for (const p of panels) {
      for (const view of VIEWS) {
        const axis = AXIS_OF_VIEW[view], canvas = p.canvas[view], slider = (p.slider || {})[view];
        canvas.addEventListener("wheel", (e) => {
          e.preventDefault(); this.setSlice(axis, this.slice[axis] + (e.deltaY > 0 ? 1 : -1));
        }, { passive: false });
        if (slider) slider.addEventListener("input", (e) => this.setSlice(axis, Number(e.target.value)));
        canvas.addEventListener("click", (e) => this.moveTo(view, canvas, e));
      }
    }
  }

  // vols: [{data: Int16Array, mask: Uint8Array | null}], one per panel, all of one shape.
  // focus: voxel [x, y, z] whose slices are shown first (default: the middle).
  load(vols, shape, spacing, presets, defaultPreset, focus) {
    this.vols = vols; this.shape = shape; this.spacing = spacing;
    this.slice = focus ? focus.slice() : shape.map((n) => Math.floor(n / 2));
    const box = this.bar.presets;
    box.textContent = "";
    for (const p of presets) {
      const b = document.createElement("button");
      b.type = "button"; b.textContent = p.name; b.dataset.name = p.name;
      b.addEventListener("click", () => this.setWindow(p.window, p.level, p.name));
      box.appendChild(b);
    }
    for (const p of this.panels) {
      for (const view of VIEWS) {
        const slider = (p.slider || {})[view];
        if (slider) slider.max = shape[AXIS_OF_VIEW[view]] - 1;
      }
    }
    const def = presets.find((p) => p.name === defaultPreset) || presets[0];
    this.setWindow(def.window, def.level, def.name);
  }

  // Screen layout of one view in radiological convention (RAS+ volume): patient right on the
  // left of axial/coronal views, anterior up in axial, superior up in coronal/sagittal.
  // at(c, r) is the flat C-order index of the voxel shown at column c, row r.
  layout(view) {
    const [nx, ny, nz] = this.shape, [sx, sy, sz] = this.spacing, s = this.slice;
    const idx = (x, y, z) => (x * ny + y) * nz + z;
    if (view === "axial") return { w: nx, h: ny, wmm: nx * sx, hmm: ny * sy,
      at: (c, r) => idx(nx - 1 - c, ny - 1 - r, s[2]) };
    if (view === "coronal") return { w: nx, h: nz, wmm: nx * sx, hmm: nz * sz,
      at: (c, r) => idx(nx - 1 - c, s[1], nz - 1 - r) };
    return { w: ny, h: nz, wmm: ny * sy, hmm: nz * sz,
      at: (c, r) => idx(s[0], ny - 1 - c, nz - 1 - r) };
  }

  draw(k, view) {
    const L = this.layout(view), panel = this.panels[k], vol = this.vols[k], canvas = panel.canvas[view];
    const scale = this.viewPx() / Math.max(L.wmm, L.hmm);
    canvas.width = Math.round(L.wmm * scale);
    canvas.height = Math.round(L.hmm * scale);
    const off = document.createElement("canvas");
    off.width = L.w; off.height = L.h;
    const octx = off.getContext("2d"), img = octx.createImageData(L.w, L.h);
    const lo = this.level - this.window / 2, f = 255 / Math.max(this.window, 1e-6);
    const mask = this.showMask ? vol.mask : null;
    for (let r = 0; r < L.h; r++) {
      for (let c = 0; c < L.w; c++) {
        const i = L.at(c, r), p = 4 * (r * L.w + c);
        const g = Math.max(0, Math.min(255, (vol.data[i] - lo) * f));
        if (mask && mask[i]) {
          img.data[p] = 0.55 * g + 115; img.data[p + 1] = 0.55 * g; img.data[p + 2] = 0.55 * g;
        } else {
          img.data[p] = img.data[p + 1] = img.data[p + 2] = g;
        }
        img.data[p + 3] = 255;
      }
    }
    octx.putImageData(img, 0, 0);
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(off, 0, 0, canvas.width, canvas.height);
    const axis = AXIS_OF_VIEW[view];
    if (panel.pos && panel.pos[view]) panel.pos[view].textContent = (this.slice[axis] + 1) + " / " + this.shape[axis];
    if (panel.slider && panel.slider[view]) panel.slider[view].value = this.slice[axis];
  }

  drawAll() {
    if (!this.vols.length) return;
    for (let k = 0; k < this.panels.length; k++) VIEWS.forEach((v) => this.draw(k, v));
  }

  setSlice(axis, value) {
    if (!this.shape) return;
    this.slice[axis] = Math.max(0, Math.min(this.shape[axis] - 1, value));
    this.drawAll();
  }

  setWindow(width, level, presetName) {
    this.window = width; this.level = level;
    this.bar.width.value = Math.round(width);
    this.bar.level.value = Math.round(level);
    for (const b of this.bar.presets.children) b.classList.toggle("active", b.dataset.name === presetName);
    this.drawAll();
  }

  setShowMask(on) { this.showMask = !!on; this.drawAll(); }

  // Click on a view: move the other two views to the clicked voxel.
  moveTo(view, canvas, e) {
    if (!this.shape) return;
    const L = this.layout(view), rect = canvas.getBoundingClientRect();
    const c = Math.floor((e.clientX - rect.left) / rect.width * L.w);
    const r = Math.floor((e.clientY - rect.top) / rect.height * L.h);
    const [nx, ny, nz] = this.shape;
    if (view === "axial") { this.slice[0] = nx - 1 - c; this.slice[1] = ny - 1 - r; }
    else if (view === "coronal") { this.slice[0] = nx - 1 - c; this.slice[2] = nz - 1 - r; }
    else { this.slice[1] = ny - 1 - c; this.slice[2] = nz - 1 - r; }
    this.drawAll();
  }
}
