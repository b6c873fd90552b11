// Hovering (or tapping) a map or a strip: the hover panel with the value under the pointer,
// the input region that pixel sees (outlined on the input), the kernel that made the
// channel, and the channel's views from /api/views (top dataset patches, the input it wants
// most), fetched once per channel and polled while the server computes them.
import * as api from "./api.js";
import { $, el } from "./dom.js";
import { fmt } from "./format.js";
import { fieldBox, seenSize } from "./spec.js";
import { state } from "./state.js";

function outline(box) {  // box: [r0, r1, c0, c1] in input pixels, or null to clear
  const ov = $("seen-overlay");
  const [dw, dh] = seenSize(state.info.spec.input_shape);
  if (ov.width !== dw || ov.height !== dh) { ov.width = dw; ov.height = dh; }
  const ctx = ov.getContext("2d");
  ctx.clearRect(0, 0, ov.width, ov.height);
  if (!box) return;
  const [, h, w] = state.info.spec.input_shape;
  const sy = dh / h, sx = dw / w;
  const [r0, r1, c0, c1] = box;
  const x0 = Math.max(0, c0) * sx, y0 = Math.max(0, r0) * sy;
  const x1 = Math.min(w, c1 + 1) * sx, y1 = Math.min(h, r1 + 1) * sy;
  ctx.strokeStyle = "#ff3b30"; ctx.lineWidth = 2;
  ctx.strokeRect(x0 + 1, y0 + 1, Math.max(2, x1 - x0 - 2), Math.max(2, y1 - y0 - 2));
}

function pointerCell(e, rows, cols) {
  const r = e.currentTarget.getBoundingClientRect();
  const i = Math.min(rows - 1, Math.max(0, Math.floor((e.clientY - r.top) * rows / r.height)));
  const j = Math.min(cols - 1, Math.max(0, Math.floor((e.clientX - r.left) * cols / r.width)));
  return [i, j];
}

export function hoverMap(e, card, k) {
  const d = state.data;
  if (!d || !d.layers[card.name]) return;
  const ld = d.layers[card.name], L = card.L;
  const [, H, W] = L.shape;
  const [i, j] = pointerCell(e, H, W);  // the full-resolution pixel under the pointer
  const f = ld.factor, [h, w] = ld.size;
  const ti = Math.min(h - 1, Math.floor(i / f)), tj = Math.min(w - 1, Math.floor(j / f));
  const [lo, hi] = ld.ranges[k];
  const v = lo + ld.values[k * h * w + ti * w + tj] * (hi - lo) / 255;
  const ch = ld.channels[k];
  $("tip-title").textContent = `${card.name} · channel ${ch}`;
  const lines = [`value ${f > 1 ? "≈ " : ""}${fmt(v)} at row ${i}, col ${j}${f > 1 ? ` (mean of its ${f}×${f} block in this thumbnail)` : ""}`,
    `this map: ${fmt(lo)} to ${fmt(hi)}`];
  if (L.field && !L.field.whole) {
    const box = fieldBox(L.field, i, j);
    lines.push(`sees input rows ${box[0]}-${box[1]}, cols ${box[2]}-${box[3]} (outlined)`);
    outline(box);
  } else if (L.field && L.field.whole) {
    lines.push("sees the whole input");
    outline(null);
  } else {
    lines.push("receptive field unknown (an op the description cannot follow)");
    outline(null);
  }
  $("tip-text").textContent = lines.join(" · ");
  showKernel(L, ch);
  showViews(card.name, ch);
  showTip(e);
}

export function hoverStrip(e, card) {
  const d = state.data;
  if (!d || !d.layers[card.name]) return;
  const ld = d.layers[card.name];
  const n = ld.values.length;
  const [, k] = pointerCell(e, 1, n);
  const unit = ld.channels ? ld.channels[k] : k;
  const [lo, hi] = ld.ranges[0];
  const v = lo + ld.values[k] * (hi - lo) / 255;
  $("tip-title").textContent = `${card.name} · unit ${unit}`;
  $("tip-text").textContent = `value ${fmt(v)} · sees the whole input`;
  outline(null);
  showKernel(null, 0);
  showViews(card.name, unit);
  showTip(e);
}

function showKernel(L, ch) {
  const tk = $("tip-kernel");
  const text = $("tip-kernel-text");
  const kern = L && L.conv ? state.info.kernels[L.conv] : null;
  if (!kern || kern.length !== L.shape[0]) {  // not small, or not the same channels
    tk.width = tk.height = 0;
    text.textContent = L && L.conv && !kern ? `made by ${L.conv} (kernel too large to show)` : "";
    return;
  }
  const kc = kern[ch];  // (in, kh, kw)
  const kh = kc[0].length, kw = kc[0][0].length;
  const gap = 4;  // slices side by side, each at most 70 px, all within ~440 px
  const cell = Math.max(2, Math.floor(Math.min(70, 440 / kc.length - gap) / Math.max(kh, kw)));
  tk.width = kc.length * (kw * cell + gap); tk.height = kh * cell;
  const ctx = tk.getContext("2d");
  let lim = 1e-6;  // one signed scale for the whole layer's kernels, as `convsee render`
  kern.flat(3).forEach((x) => { lim = Math.max(lim, Math.abs(x)); });
  const lut = state.info.colormaps.RdBu_r;
  kc.forEach((k2, c) => k2.forEach((row, y) => row.forEach((x, xx) => {
    const col = lut[Math.round((x / lim + 1) * 127.5)];
    ctx.fillStyle = `rgb(${col[0]},${col[1]},${col[2]})`;
    ctx.fillRect(c * (kw * cell + gap) + xx * cell, y * cell, cell, cell);
  })));
  text.textContent = `made by ${L.conv} kernel ${ch}: ${kc.length} input channel${kc.length > 1 ? "s" : ""} of ${kh}×${kw} (blue < 0 < red; the layer's scale ±${fmt(lim)})`;
}

function tileCanvas(b64, shape) {
  const q = api.b64bytes(b64);
  const [h, w] = shape;
  const c = el("canvas", { width: w, height: h });
  const ctx = c.getContext("2d");
  const img = ctx.createImageData(w, h);
  const rgb = shape.length === 3;
  for (let i = 0; i < h * w; i++) {
    if (rgb) { img.data[4 * i] = q[3 * i]; img.data[4 * i + 1] = q[3 * i + 1]; img.data[4 * i + 2] = q[3 * i + 2]; }
    else img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = q[i];
    img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  return c;
}

function showViews(layer, unit) {
  const key = `${layer}|${unit}`;
  const v = state.views[key];
  if (state.tip !== key || state.painted !== v) paintViews(v);  // not again on every move
  state.tip = key;
  if (!v || v.pending) fetchViews(layer, unit, key);
}

async function fetchViews(layer, unit, key) {
  if (state.views[key] && state.views[key].loading) return;
  state.views[key] = { ...(state.views[key] || {}), loading: true };
  try {
    const j = await api.views(layer, unit);
    j.pending = ["exemplars", "optimized"].some((k) => j[k].status === "computing");
    state.views[key] = j;
  } catch (err) {
    state.views[key] = { error: String(err.message || err) };
  }
  if (state.tip === key) {
    paintViews(state.views[key]);
    if (state.views[key].pending) setTimeout(() => { if (state.tip === key) fetchViews(layer, unit, key); }, 600);
  }
}

function paintViews(v) {
  state.painted = v;
  const box = $("tip-views");
  box.replaceChildren();
  if (!v || v.loading && !v.exemplars) { box.append(el("div", { class: "muted", text: "views: computing…" })); return; }
  if (v.error) { box.append(el("div", { class: "muted", text: `views: ${v.error}` })); return; }
  const ex = v.exemplars;
  if (ex.status === "ready") {
    const where = ex.whole ? "whole images" : `${ex.size[0]}×${ex.size[1]} px patches`;
    box.append(el("div", { class: "muted", text: `top ${ex.tiles.length} of ${ex.seen.toLocaleString()} ${ex.source} images (${where}):` }));
    const row = el("div", { class: "row tiles" });
    ex.tiles.forEach((t, i) => { const c = tileCanvas(t, ex.shape); c.title = `${ex.names[i]}: ${fmt(ex.values[i])}`; row.append(c); });
    box.append(row);
    if (ex.padded_note) box.append(el("div", { class: "muted", text: ex.padded_note }));  // hatched tiles
  } else {
    box.append(el("div", { class: "muted", text: `top dataset patches: ${ex.status === "computing" ? "computing…" : ex.why}` }));
  }
  const opt = v.optimized;
  if (opt.status === "ready") {
    const where = opt.whole ? "" : ` (its ${opt.size[0]}×${opt.size[1]} field)`;
    const via = opt.pre_activation ? ` (where it was 0 after its ReLU, ${opt.pre_activation} was raised)` : "";
    if (opt.excited === false) {  // at or below the best random input: say so, no black tile
      box.append(el("div", { class: "muted", text: `input it wants most: optimisation could not excite this unit in ${opt.steps} steps${via}: it reached ${fmt(opt.value)}, no more than the best random input (${fmt(opt.random_best)})` }));
    } else {
      box.append(el("div", { class: "muted", text: `input it wants most${where}, ${opt.steps} steps${via}:` }),
        el("div", { class: "row tiles" }, tileCanvas(opt.tile, opt.shape)));
      if (opt.padded_note) box.append(el("div", { class: "muted", text: opt.padded_note }));  // hatched tile
    }
  } else {
    box.append(el("div", { class: "muted", text: `input it wants most: ${opt.status === "computing" ? "computing…" : opt.why}` }));
  }
}

function showTip(e) {
  const tip = $("tooltip");
  tip.hidden = false;
  const x = Math.max(4, Math.min(e.clientX + 14, window.innerWidth - tip.offsetWidth - 8));
  const y = e.clientY + 14 + tip.offsetHeight > window.innerHeight ? Math.max(4, e.clientY - tip.offsetHeight - 10) : e.clientY + 14;
  tip.style.left = `${x}px`;
  tip.style.top = `${y}px`;
}

export function hideTip() {
  $("tooltip").hidden = true;
  state.tip = null;
  outline(null);
}

export function initTooltip() {
  document.addEventListener("pointerdown", (e) => {  // a tap elsewhere closes the tooltip
    if (!e.target.closest(".maps")) hideTip();
  });
}
