// The arithmetic panel: click or tap a map pixel (or a strip unit, or a class) and the panel
// shows how that one value was computed, with its numbers, from POST /api/explain: a
// convolution's input window drawn over what the layer received, the kernel, the products
// and each input channel's partial sum, then the sum plus the bias equal to the value; a
// pool's window and its winner (or mean); an activation's x → f(x); BatchNorm's steps; a
// Linear unit's largest terms; softmax's logits → exp → ÷ Σ. Arrow keys move the position
// (the window slides), Escape closes. Each new answer (drawing) asks again for the same unit.
// Every number is also in a data-v attribute at full precision (for the curious and the tests).
import * as api from "./api.js";
import { $, el } from "./dom.js";
import { fmt } from "./format.js";
import { state } from "./state.js";
import { inputFields } from "./updates.js";

const NUMBERS_UP_TO = 25;  // cells in a grid written out as numbers (5×5); larger: colours, hover
const MAX_CHANNELS = 8;  // input channels of a convolution drawn as grids (the rest: sums only)

let panel = null;
let target = null;  // {layer, unit: [c, r, q] | [k]}
let asked = 0;  // the latest request's number: older answers are dropped

function num(v, cls = "num") {  // a number: 4 significant digits shown, all in data-v
  return el("span", { class: cls, "data-v": String(v), text: v === null ? "–" : short(v) });
}

function short(v) {
  if (v === null || v === undefined || !isFinite(v)) return "–";
  const a = Math.abs(v);
  if (a === 0) return "0";
  if (a < 1e-3 || a >= 1e5) return v.toExponential(2);
  return String(Number(v.toPrecision(4)));
}

function colour(v, scale) {  // diverging blue-white-red for a cell
  if (v === null || !scale) return "#f4f4f7";
  const t = Math.max(-1, Math.min(1, v / scale));
  const a = Math.round(255 * (1 - Math.abs(t)));
  return t >= 0 ? `rgb(255,${a},${a})` : `rgb(${a},${a},255)`;
}

function grid(values, cls, padded, marks) {  // values [h][w]: a table of cells
  const h = values.length, w = values[0].length;
  const words = h * w <= NUMBERS_UP_TO;
  let scale = 0;
  for (const row of values) for (const v of row) if (v !== null) scale = Math.max(scale, Math.abs(v));
  const t = el("table", { class: `grid ${cls}${words ? "" : " small-cells"}` });
  values.forEach((row, i) => {
    const tr = el("tr");
    row.forEach((v, j) => {
      const td = el("td", { "data-v": String(v), title: v === null ? "padding" : String(v) });
      td.style.background = colour(v, scale);
      if (v !== null && scale && Math.abs(v) > 0.6 * scale) td.style.color = "#fff";  // dark cell: light digits
      if (words) td.textContent = v === null ? "pad" : short(v);
      if (padded && padded[i][j]) td.classList.add("pad");
      if (marks && marks[0] === i && marks[1] === j) td.classList.add("win");
      tr.append(td);
    });
    t.append(tr);
  });
  return t;
}

function box(title, ...body) {
  return el("div", { class: "xbox" }, el("div", { class: "muted small", text: title }), ...body);
}

// the layer's input under the window: the image, or the source layer's map when the page has it
function drawWindow(e, channel) {
  const d = state.data;
  if (!d) return null;
  const [, H, W] = e.input_shape;
  let pixels = null, rgb = false;
  if (e.source === "input" && d.input_shape[0] === H && d.input_shape[1] === W) {
    pixels = d.input; rgb = d.input_shape.length === 3;
  } else if (e.source && d.layers[e.source] && d.layers[e.source].factor === 1) {
    const ld = d.layers[e.source], k = ld.channels ? ld.channels.indexOf(channel) : -1;
    if (k < 0 || ld.size[0] !== H || ld.size[1] !== W) return null;
    pixels = ld.values.subarray(k * H * W, (k + 1) * H * W);
  }
  if (!pixels) return null;
  const cell = Math.max(2, Math.floor(120 / Math.max(H, W)));
  const c = el("canvas", { width: W * cell, height: H * cell, class: "xwin" });
  const ctx = c.getContext("2d");
  for (let i = 0; i < H; i++) for (let j = 0; j < W; j++) {
    const p = i * W + j;
    ctx.fillStyle = rgb ? `rgb(${pixels[3 * p]},${pixels[3 * p + 1]},${pixels[3 * p + 2]})` : `rgb(${pixels[p]},${pixels[p]},${pixels[p]})`;
    ctx.fillRect(j * cell, i * cell, cell, cell);
  }
  ctx.strokeStyle = "#ff3b30"; ctx.lineWidth = 2;
  const rows = e.rows, cols = e.cols;
  const r0 = Math.min(...rows), r1 = Math.max(...rows), c0 = Math.min(...cols), c1 = Math.max(...cols);
  ctx.strokeRect(c0 * cell + 1, r0 * cell + 1, (c1 - c0 + 1) * cell - 2, (r1 - r0 + 1) * cell - 2);
  if (e.winner_at) {
    ctx.fillStyle = "rgba(255,59,48,.6)";
    ctx.fillRect(e.winner_at[1] * cell, e.winner_at[0] * cell, cell, cell);
  }
  return box(`${e.source === "input" ? "the input" : `${e.source}, channel ${channel}`} · window outlined`, c);
}

function conv(e, out) {
  const order = e.channels.map((c, i) => i);
  if (order.length > MAX_CHANNELS) order.sort((a, b) => Math.abs(e.partial_sums[b]) - Math.abs(e.partial_sums[a]));
  const shown = order.slice(0, MAX_CHANNELS);
  const rows = el("div", { class: "xrows" });
  for (const i of shown) {
    const ch = e.channels[i];
    const pad = e.padded;
    rows.append(el("div", { class: "xrow", "data-channel": String(ch) },
      drawWindow(e, ch) || el("span"),
      box(`input ch ${ch} · window`, grid(e.inputs[i].map((r, a) => r.map((v, b) => (pad[a][b] && e.padding_mode === "zeros" ? 0 : v))), "inputs", pad)),
      el("span", { class: "op", text: "×" }),
      box("kernel", grid(e.weights[i], "weights")),
      el("span", { class: "op", text: "=" }),
      box("products", grid(e.products[i], "products")),
      el("span", { class: "op", text: "Σ →" }),
      box("partial sum", num(e.partial_sums[i], "num partial"))));
  }
  out.append(rows);
  if (shown.length < e.channels.length) {
    out.append(el("p", { class: "muted small", text: `${shown.length} of ${e.channels.length} input channels drawn (largest partial sums); every partial sum is in the sum below` }));
  }
  const sum = el("p", { class: "xsum" });
  const terms = e.partial_sums.map((v) => num(v, "num term"));
  if (terms.length > 1) {
    sum.append(el("span", { text: "Σ of the partial sums: " }));
    terms.slice(0, 16).forEach((t, i) => { if (i) sum.append(" + "); sum.append(t); });
    if (terms.length > 16) { sum.append(` + … (${terms.length - 16} more) = `); sum.append(num(e.sum, "num sum")); } else { sum.append(" = "); sum.append(num(e.sum, "num sum")); }
  } else {
    sum.append(el("span", { text: "sum " }), num(e.sum, "num sum"));
  }
  sum.append(e.bias === null ? " (no bias)" : " + bias ", e.bias === null ? "" : num(e.bias, "num bias"));
  sum.append(" = ", num(e.value, "num value"));
  out.append(sum);
}

function pool(e, out) {
  const how = e.op.includes("max") ? "max" : "mean";
  const mark = e.winner || null;
  out.append(el("div", { class: "xrow" }, drawWindow(e, e.channel) || el("span"),
    box(`channel ${e.channel} · the ${e.inputs.length}×${e.inputs[0].length} window`, grid(e.inputs, "inputs", e.padded, mark))));
  const p = el("p", { class: "xsum" });
  if (how === "max") p.append("the largest of the window: ", num(e.value, "num value"), mark ? ` (row ${e.winner_at[0]}, col ${e.winner_at[1]})` : "");
  else p.append("sum ", num(e.sum, "num sum"), " ÷ ", num(e.count, "num count"), " = ", num(e.value, "num value"));
  out.append(p);
}

function activation(e, out) {
  const p = el("p", { class: "xsum" }, "x = ", num(e.inputs, "num x"), ` (from ${e.source || "the value it received"})  →  ${e.function}  →  `, num(e.value, "num value"));
  out.append(p);
  if (e.op === "relu") out.append(el("p", { class: "muted small", text: e.inputs < 0 ? "negative: ReLU sets it to 0" : "not negative: ReLU keeps it" }));
}

function batchnorm(e, out) {
  out.append(el("p", { class: "xsum" }, "(x ", num(e.inputs, "num x"), " − mean ", num(e.mean, "num"), ") ÷ √(var ", num(e.var, "num"),
    " + ε) = ", num(e.normalised, "num"), "; × weight ", num(e.weight, "num"), " + bias ", num(e.bias, "num"), " = ", num(e.value, "num value")));
}

function linear(e, out) {
  const t = el("table", { class: "terms" }, el("tr", {}, el("th", { text: "input" }), el("th", { text: "x" }), el("th", { text: "w" }), el("th", { text: "w·x" })));
  e.indices.forEach((k, i) => t.append(el("tr", {}, el("td", { text: String(k) }), el("td", {}, num(e.inputs[i])), el("td", {}, num(e.weights[i])), el("td", {}, num(e.products[i], "num term")))));
  out.append(box(`the ${e.indices.length} largest terms of ${e.in_features} (by |w·x|)`, t));
  out.append(el("p", { class: "xsum" }, "their sum + the other ", String(e.rest_count), " terms ", num(e.rest, "num rest"),
    e.bias === null ? " (no bias)" : " + bias ", e.bias === null ? "" : num(e.bias, "num bias"), " = ", num(e.value, "num value")));
}

function softmax(e, out) {
  const t = el("table", { class: "terms" }, el("tr", {}, el("th", { text: "class" }), el("th", { text: "logit z" }), el("th", { text: `e^(z − ${short(e.shift)})` }), el("th", { text: "÷ Σ" })));
  e.inputs.forEach((z, i) => t.append(el("tr", { class: i === e.unit[0] ? "win" : "" }, el("td", { text: (e.classes && e.classes[i]) || String(i) }),
    el("td", {}, num(z, "num logit")), el("td", {}, num(e.exps[i], "num exp")), el("td", {}, num(e.exps[i] / e.sum, "num share")))));
  out.append(box("softmax turns the class scores (logits) into probabilities", t));
  out.append(el("p", { class: "xsum" }, "Σ e^(z − max) = ", num(e.sum, "num sum"), `; class ${(e.classes && e.classes[e.unit[0]]) || e.unit[0]}: `,
    num(e.exps[e.unit[0]], "num exp"), " ÷ ", num(e.sum, "num sum"), " = ", num(e.value, "num value")));
}

function flatten(e, out) {
  out.append(el("p", { class: "xsum" }, `unit ${e.unit[0]} is ${e.source || "its input"}'s channel ${e.at[0]}, row ${e.at[1]}, col ${e.at[2]} = `, num(e.value, "num value")));
}

const PAINT = { conv2d: conv, batch_norm: batchnorm, linear, softmax, flatten, log_softmax: softmax };

function where(t) {
  if (t.layer === "softmax") return `class ${state.info.classes[t.unit[0]] ?? t.unit[0]}`;
  return t.unit.length === 3 ? `channel ${t.unit[0]} · row ${t.unit[1]}, col ${t.unit[2]}` : `unit ${t.unit[0]}`;
}

function show(e) {
  const body = $("explain-body");
  const out = el("div");
  const paint = PAINT[e.op] || (e.op.includes("pool") ? pool : activation);
  paint(e, out);
  const shown = shownValue(target);
  const check = el("p", { class: "muted small xcheck" },
    `recomputed ${short(e.value)}; the layer's captured value ${short(e.captured)}${e.exact ? " (they agree)" : ` (relative error ${e.error})`}`,
    shown === null ? "" : target.layer === "softmax" ? `; the page shows ${short(shown)}` : `; the map shows ≈ ${short(shown)} (8-bit colours)`);
  body.replaceChildren(el("p", { class: "formula", text: e.formula }), out, check, e.note ? el("p", { class: "muted small", text: e.note }) : "");
  $("explain-title").textContent = `${e.layer} · ${where(target)} = ${short(e.value)}`;
  panel.dataset.op = e.op;
  panel.dataset.value = String(e.value);
  panel.dataset.shown = shown === null ? "" : String(shown);  // the map's 8-bit value there
}

// the value the page's map shows at the target (8-bit), or null
export function shownValue(t) {
  const d = state.data;
  if (!d || !t) return null;
  if (t.layer === "softmax") return d.probabilities ? d.probabilities[t.unit[0]] : null;
  const ld = d.layers[t.layer];
  if (!ld) return null;
  if (t.unit.length === 1) {
    const k = ld.channels ? ld.channels.indexOf(t.unit[0]) : t.unit[0];
    if (k < 0 || ld.size) return null;
    const [lo, hi] = ld.ranges[0];
    return lo + ld.values[k] * (hi - lo) / 255;
  }
  const k = ld.channels.indexOf(t.unit[0]);
  if (k < 0 || ld.factor !== 1) return null;
  const [h, w] = ld.size, [lo, hi] = ld.ranges[k];
  return lo + ld.values[k * h * w + t.unit[1] * w + t.unit[2]] * (hi - lo) / 255;
}

function ask() {
  if (!target || !state.data) return;
  const n = ++asked;
  const body = inputFields({ layer: target.layer });
  delete body.keep;
  if (target.unit.length === 3) Object.assign(body, { channel: target.unit[0], row: target.unit[1], col: target.unit[2] });
  else body.index = target.unit[0];
  panel.classList.add("busy");
  api.explain(body).then((e) => { if (n === asked) show(e); })
    .catch((err) => { if (n === asked) $("explain-body").replaceChildren(el("p", { class: "bad", text: String(err.message || err) })); })
    .finally(() => { if (n === asked) panel.classList.remove("busy"); });
}

export function openExplain(layer, unit, anchor) {
  target = { layer, unit };
  panel.hidden = false;
  const after = anchor || $("probs");
  if (after && after.closest("#layers")) after.closest(".layer").after(panel);
  else $("layers").prepend(panel);
  $("explain-title").textContent = `${layer} · ${where(target)}`;
  ask();
  panel.focus({ preventScroll: true });
  markTarget();
}

export function closeExplain() {
  target = null; panel.hidden = true; markTarget();
}

function markTarget() {  // the chosen unit outlined on its card
  for (const c of document.querySelectorAll("#layers canvas.chosen")) c.classList.remove("chosen");
  if (!target || !state.cards[target.layer]) return;
  const card = state.cards[target.layer];
  const i = card.vector ? 0 : (state.data && state.data.layers[target.layer] ? state.data.layers[target.layer].channels.indexOf(target.unit[0]) : -1);
  if (i >= 0 && card.canvases[i]) card.canvases[i].classList.add("chosen");
}

function step(dr, dc) {
  if (!target) return;
  const L = state.layers[target.layer];
  if (target.unit.length === 3) {
    const [, H, W] = L.shape;
    const [c, r, q] = target.unit;
    target.unit = [c, Math.max(0, Math.min(H - 1, r + dr)), Math.max(0, Math.min(W - 1, q + dc))];
  } else {
    const n = target.layer === "softmax" ? state.info.classes.length : L.shape[0];
    target.unit = [Math.max(0, Math.min(n - 1, target.unit[0] + dc + dr))];
  }
  ask();
}

export function afterAnswer() { if (target) { ask(); markTarget(); } }

export function initExplain() {
  panel = el("section", { id: "explain", class: "card explain", tabindex: "-1", hidden: "", "aria-live": "polite" },
    el("div", { class: "xhead" }, el("h3", { id: "explain-title" }),
      el("span", { class: "muted small", text: "arrow keys move it · Esc closes" }),
      el("button", { id: "explain-close", class: "small-button", text: "×", title: "close", "aria-label": "close the arithmetic panel", onclick: () => closeExplain() })),
    el("div", { id: "explain-body" }));
  $("layers").prepend(panel);
  panel.addEventListener("keydown", (e) => {
    const moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
    if (moves[e.key]) { e.preventDefault(); step(...moves[e.key]); } else if (e.key === "Escape") closeExplain();
  });
}

// a click on a map canvas (card, map index k) or a strip: the unit under the pointer
export function clickMap(e, card, k) {
  const d = state.data;
  if (!d || !d.layers[card.name]) return;
  const [, H, W] = card.L.shape;
  const r = e.currentTarget.getBoundingClientRect();
  const i = Math.min(H - 1, Math.max(0, Math.floor((e.clientY - r.top) * H / r.height)));
  const j = Math.min(W - 1, Math.max(0, Math.floor((e.clientX - r.left) * W / r.width)));
  openExplain(card.name, [d.layers[card.name].channels[k], i, j], card.box);
}

export function clickStrip(e, card) {
  const d = state.data;
  if (!d || !d.layers[card.name]) return;
  const ld = d.layers[card.name], n = ld.values.length;
  const r = e.currentTarget.getBoundingClientRect();
  const k = Math.min(n - 1, Math.max(0, Math.floor((e.clientX - r.left) * n / r.width)));
  const L = card.L;
  const unit = ld.channels ? ld.channels[k] : k;
  openExplain(card.name, L.kind === "map" ? [unit, 0, 0] : [unit], card.box);
}
