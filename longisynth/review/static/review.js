// Expert review page of a longisynth dataset run. Plain JS, no build step.
// SliceViewer, VIEWS, AXIS_OF_VIEW and api() come from the VTT's viewer.js (the same reading viewer).
"use strict";

const VIEW_PX = [110, 300]; // longest side of a view on screen, px: at least, at most
const S = { run: null, verdicts: {}, index: 0, viewer: null, loading: 0 };
const $ = (id) => document.getElementById(id);

function statusOf(caseId) {
  const v = S.verdicts[caseId];
  if (!v) return "unreviewed";
  return { accept: "accepted", reject: "rejected", edit_archetype: "edit_archetype" }[v.verdict];
}

function nTimepoints() { return S.viewer.panels.length || 1; }

// Views fit the viewer's width (one column per timepoint) and, three rows high, the window's height.
const viewPx = () => {
  const n = nTimepoints();
  const byWidth = Math.floor(($("viewer").clientWidth - 24 * n) / n);
  const byHeight = Math.floor((window.innerHeight - 200) / 3) - 40;
  return Math.max(VIEW_PX[0], Math.min(VIEW_PX[1], byWidth, byHeight));
};

function renderList() {
  const list = $("case-list");
  list.textContent = "";
  S.run.cases.forEach((c, k) => {
    const li = document.createElement("li"), a = document.createElement("a"), st = document.createElement("span");
    li.dataset.case = c.id; li.dataset.status = statusOf(c.id);
    li.classList.toggle("current", k === S.index);
    a.href = "#"; a.textContent = c.id + (c.archetype !== "none" ? " · " + c.archetype : "");
    a.addEventListener("click", (e) => { e.preventDefault(); loadCase(k); });
    st.className = "st"; st.textContent = statusOf(c.id).replace("_", " ");
    li.append(a, st);
    list.appendChild(li);
  });
}

function updateHeader() {
  const n = S.run.cases.length, reviewed = S.run.cases.filter((c) => S.verdicts[c.id]).length;
  $("case-counter").textContent = " · Case " + Math.min(S.index + 1, n) + " of " + n + " · " + reviewed + " reviewed";
  $("case-counter").dataset.index = String(S.index);
  $("progress-bar").style.width = (100 * reviewed / n) + "%";
  const who = $("reviewer-input").value.trim();
  $("reviewer-label").textContent = who ? "Reviewer: " + who : "";
  renderList();
}

function formValid() {
  const v = document.querySelector("input[name=verdict]:checked"), note = $("note").value.trim();
  if (!v) return false;
  if (v.value === "reject") return !!$("reason").value && ($("reason").value !== "other" || !!note);
  if (v.value === "edit_archetype") return !!note;
  return true;
}

function updateForm() {
  const v = document.querySelector("input[name=verdict]:checked");
  const reject = !!v && v.value === "reject";
  $("reason").disabled = !reject;
  $("reason-box").classList.toggle("disabled", !reject);
  const needNote = !!v && (v.value === "edit_archetype" || (reject && $("reason").value === "other"));
  $("note-hint").textContent = needNote ? "(required: say what to change / what is wrong)" : "(optional)";
  $("submit").disabled = !formValid();
}

function fillForm(caseId) {
  $("verdict-form").reset();
  $("verdict-error").textContent = "";
  $("reviewer-input").value = localStorage.getItem("review_reviewer") || S.run.reviewer || "";
  const v = S.verdicts[caseId];
  if (v) {
    $("verdict-" + v.verdict).checked = true;
    $("reason").value = v.reason || "";
    $("note").value = v.note || "";
    $("current-verdict").textContent = "Saved verdict: " + statusOf(caseId).replace("_", " ")
      + (v.reason ? " (" + v.reason + ")" : "") + (v.reviewer ? " by " + v.reviewer : "") + ", " + v.time
      + ". Saving again replaces it (the earlier one stays in the history).";
  } else {
    $("current-verdict").textContent = "";
  }
  updateForm();
}

function buildGrid(info) {
  const views = $("views");
  views.textContent = "";
  views.style.gridTemplateColumns = "repeat(" + info.timepoints.length + ", auto)";
  const panels = info.timepoints.map(() => ({ canvas: {}, pos: {}, slider: {} }));
  for (const view of VIEWS) {
    info.timepoints.forEach((tp, k) => {
      const fig = document.createElement("figure"), canvas = document.createElement("canvas");
      const cap = document.createElement("figcaption"), pos = document.createElement("span");
      const slider = document.createElement("input");
      canvas.id = "view-" + view + "-" + k; pos.id = "pos-" + view + "-" + k;
      slider.type = "range"; slider.min = "0"; slider.value = "0";
      cap.append(view[0].toUpperCase() + view.slice(1) + " · t" + tp.index + " (day " + Math.round(tp.days) + ") ", pos);
      fig.append(canvas, cap, slider);
      views.appendChild(fig);
      panels[k].canvas[view] = canvas; panels[k].pos[view] = pos; panels[k].slider[view] = slider;
    });
  }
  return panels;
}

async function loadCase(index) {
  const token = ++S.loading;
  S.index = index;
  const n = S.run.cases.length;
  if (index >= n) {
    updateHeader();
    for (const id of ["viewer", "verdict-form"]) $(id).classList.add("hidden");
    $("done").classList.remove("hidden");
    return;
  }
  const c = S.run.cases[index];
  const info = await (await api("/api/cases/" + c.id)).json();
  const fetchBytes = async (tp, what) => (await api("/api/cases/" + c.id + "/timepoints/" + tp.index + "/" + what)).arrayBuffer();
  const vols = await Promise.all(info.timepoints.map(async (tp) => ({
    data: new Int16Array(await fetchBytes(tp, "volume")), mask: new Uint8Array(await fetchBytes(tp, "mask")) })));
  if (token !== S.loading) return; // another case was picked meanwhile
  $("done").classList.add("hidden");
  for (const id of ["viewer", "verdict-form"]) $(id).classList.remove("hidden");
  $("case-label").textContent = c.id + " · archetype: " + c.archetype + " · " + info.timepoints.length
    + " timepoints · " + info.contrast.toUpperCase();
  $("case-label").dataset.case = c.id;
  S.viewer.setPanels(buildGrid(info));
  S.viewer.load(vols, info.shape, info.spacing_mm, info.presets, info.default_preset, info.focus);
  fillForm(c.id);
  updateHeader();
}

async function submit(ev) {
  if (ev) ev.preventDefault();
  if (!formValid() || $("submit").dataset.busy || S.index >= S.run.cases.length) return;
  const c = S.run.cases[S.index], verdict = document.querySelector("input[name=verdict]:checked").value;
  const reviewer = $("reviewer-input").value.trim();
  const body = { verdict, reason: verdict === "reject" ? $("reason").value : "", note: $("note").value, reviewer };
  $("submit").dataset.busy = "1";
  try {
    const r = await (await api("/api/verdicts/" + c.id, {
      method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })).json();
    if (reviewer) localStorage.setItem("review_reviewer", reviewer); else localStorage.removeItem("review_reviewer");
    S.verdicts = r.verdicts;
    await loadCase(r.next_index);
  } catch (e) {
    $("verdict-error").textContent = "Not saved: " + e.message;
  } finally {
    delete $("submit").dataset.busy;
  }
}

function wire() {
  const form = $("verdict-form");
  form.addEventListener("change", updateForm);
  form.addEventListener("input", updateForm);
  form.addEventListener("submit", submit);
  $("show-mask").addEventListener("change", (e) => S.viewer.setShowMask(e.target.checked));
  document.addEventListener("keydown", (e) => {
    const t = e.target;
    if ($("viewer").classList.contains("hidden") || ["TEXTAREA", "SELECT"].includes(t.tagName)
        || (t.tagName === "INPUT" && !["radio", "checkbox"].includes(t.type))) return;
    const pick = (id) => { $(id).checked = true; updateForm(); };
    if (e.key === "a" || e.key === "A") pick("verdict-accept");
    else if (e.key === "x" || e.key === "X") { pick("verdict-reject"); $("reason").focus(); }
    else if (e.key === "e" || e.key === "E") { pick("verdict-edit_archetype"); $("note").focus(); e.preventDefault(); }
    else if (e.key === "m" || e.key === "M") { $("show-mask").checked = !$("show-mask").checked; S.viewer.setShowMask($("show-mask").checked); }
    else if (e.key === "Enter") submit(e);
    else if (e.key === "ArrowUp") S.viewer.setSlice(2, S.viewer.slice[2] + 1);
    else if (e.key === "ArrowDown") S.viewer.setSlice(2, S.viewer.slice[2] - 1);
  });
}

async function main() {
  S.viewer = new SliceViewer({ presets: $("presets"), width: $("win-width"), level: $("win-level") }, viewPx);
  wire();
  S.run = await (await api("/api/run")).json();
  $("run-name").textContent = "· " + S.run.name;
  for (const r of S.run.reasons) {
    const o = document.createElement("option");
    o.value = r.code; o.textContent = r.label;
    $("reason").appendChild(o);
  }
  const progress = await (await api("/api/progress")).json();
  S.verdicts = progress.verdicts;
  await loadCase(progress.next_index); // resume at the first case without a verdict
}

main().catch((e) => { $("verdict-error").textContent = e.message; });
