// The playground: a kernel sliding over a square 1-channel toy input (or the loaded model's
// first convolution), with the input size, kernel size, stride, padding and dilation chosen
// from the ranges /api/info's `playground` lists (tests/test_playground.py checks every one
// of their combinations against torch's conv2d). It shows the output size's formula and the
// window moving over the (padded) input, one output pixel after another. The arithmetic is
// run/playground.py's, written again here for the page.
import { $, el } from "./dom.js";
import { state } from "./state.js";

const SIDE = 240;  // px of the input drawing
let timer = null;
let pos = 0;

// [before, after] padding; null where torch refuses ('same' with a stride above 1)
export function axisPadding(padding, k, s, d) {
  if (padding === "valid") return [0, 0];
  if (padding === "same") {
    if (s !== 1) return null;
    const total = d * (k - 1);
    return [Math.floor(total / 2), total - Math.floor(total / 2)];
  }
  return [Number(padding), Number(padding)];
}

// {out, before, after, formula} or {error} for one axis
export function outputSize(n, k, s, padding, d) {
  const pad = axisPadding(padding, k, s, d);
  if (!pad) return { error: "'same' padding needs stride 1 (torch refuses it otherwise)" };
  const [before, after] = pad;
  const span = d * (k - 1) + 1;
  if (n + before + after < span) return { error: `the kernel spans ${span} pixels; the padded input has only ${n + before + after}` };
  const out = Math.floor((n + before + after - d * (k - 1) - 1) / s) + 1;
  return { out, before, after, formula: `⌊(${n} + ${before} + ${after} − ${d} × (${k} − 1) − 1) / ${s}⌋ + 1 = ${out}` };
}

function options(select, values, value) {
  select.replaceChildren(...values.map((v) => el("option", { value: String(v), text: String(v) })));
  select.value = String(value);
}

function range(lo, hi) { const out = []; for (let v = lo; v <= hi; v++) out.push(v); return out; }

function settings() {
  const v = (id) => $(id).value;
  const pad = v("pg-padding");
  return { n: Number(v("pg-size")), k: Number(v("pg-kernel")), s: Number(v("pg-stride")),
    p: pad === "valid" || pad === "same" ? pad : Number(pad), d: Number(v("pg-dilation")) };
}

function toy(n, i, j) {  // a 1-channel toy input: a ring and a bar, values 0..1
  const c = (n - 1) / 2, r = Math.hypot(i - c, j - c);
  return Math.abs(r - n / 3) < Math.max(0.8, n / 10) || (j === Math.round(c) && i > c) ? 1 : 0.12;
}

function draw() {
  const { n, k, s, p, d } = settings();
  const res = outputSize(n, k, s, p, d);
  $("pg-out").textContent = res.error ? "refused" : `${res.out} × ${res.out}`;
  $("pg-formula").textContent = res.error || `output size = ⌊(input + padding before + after − dilation × (kernel − 1) − 1) / stride⌋ + 1: ${res.formula}`;
  const c = $("pg-canvas"), ctx = c.getContext("2d");
  ctx.clearRect(0, 0, c.width, c.height);
  if (res.error) {
    const o = $("pg-output"); o.width = 1; o.height = 1;
    $("pg-where").textContent = "";
    return;
  }
  const { out, before, after } = res;
  const total = n + before + after, cell = SIDE / total;
  for (let i = 0; i < total; i++) for (let j = 0; j < total; j++) {
    const ii = i - before, jj = j - before;
    const inside = ii >= 0 && ii < n && jj >= 0 && jj < n;
    const g = inside ? Math.round(255 * toy(n, ii, jj)) : 235;
    ctx.fillStyle = inside ? `rgb(${g},${g},${g})` : "#e9e4f5";
    ctx.fillRect(j * cell, i * cell, cell, cell);
    if (cell >= 6) { ctx.strokeStyle = "rgba(120,120,140,.35)"; ctx.strokeRect(j * cell, i * cell, cell, cell); }
  }
  const at = pos % (out * out), oi = Math.floor(at / out), oj = at % out;
  ctx.fillStyle = "rgba(255,59,48,.45)";
  for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) {
    const i = oi * s + a * d, j = oj * s + b * d;  // in the padded input
    ctx.fillRect(j * cell, i * cell, cell, cell);
  }
  ctx.strokeStyle = "#ff3b30"; ctx.lineWidth = 2;
  const span = d * (k - 1) + 1;
  ctx.strokeRect(oj * s * cell + 1, oi * s * cell + 1, span * cell - 2, span * cell - 2);
  ctx.lineWidth = 1;
  const o = $("pg-output"), octx = o.getContext("2d"), oc = Math.min(20, Math.floor(120 / out)) || 1;
  o.width = out * oc; o.height = out * oc;
  for (let i = 0; i < out; i++) for (let j = 0; j < out; j++) {
    const done = i * out + j < at;
    octx.fillStyle = i === oi && j === oj ? "#ff3b30" : done ? "#9aa8d8" : "#eeeef2";
    octx.fillRect(j * oc, i * oc, oc - (oc > 3), oc - (oc > 3));
  }
  $("pg-where").textContent = `output row ${oi}, col ${oj} reads input rows ${oi * s - before}…${oi * s - before + d * (k - 1)}, cols ${oj * s - before}…${oj * s - before + d * (k - 1)}${before || after ? " (lilac: padding)" : ""}`;
}

function play(on) {
  if (timer) { clearInterval(timer); timer = null; }
  $("pg-play").textContent = on ? "pause" : "play";
  if (on) timer = setInterval(() => { pos += 1; draw(); }, 350);
}

function useModel() {  // the first conv's settings (its own size may lie outside the toy ranges)
  const f = state.info.first_conv;
  if (!f) return;
  const set = (id, v) => {
    const s = $(id);
    if (![...s.options].some((o) => o.value === String(v))) s.append(el("option", { value: String(v), text: `${v} (${f.layer})` }));
    s.value = String(v);
  };
  set("pg-size", f.size); set("pg-kernel", f.kernel); set("pg-stride", f.stride);
  set("pg-padding", f.padding); set("pg-dilation", f.dilation);
}

export function buildPlayground(info) {
  const r = info.playground;
  if (!r) return;
  const sel = (id, label) => el("label", {}, `${label} `, el("select", { id, "aria-label": label }));
  const box = el("details", { id: "playground", class: "card playground" },
    el("summary", { text: "Playground: kernel size, stride, padding, dilation → output size" }),
    el("p", { class: "muted small", text: "A kernel slides over a 1-channel toy input: pick the sizes and watch where each output pixel reads. Padding adds a border of zeros (lilac); stride skips positions; dilation spreads the kernel's taps apart." }),
    el("div", { class: "row" }, sel("pg-size", "input"), sel("pg-kernel", "kernel"), sel("pg-stride", "stride"),
      sel("pg-padding", "padding"), sel("pg-dilation", "dilation")),
    el("div", { class: "row" },
      el("button", { id: "pg-model", text: info.first_conv ? `use ${info.first_conv.layer}'s settings` : "no convolution in this model" }),
      el("button", { id: "pg-play", text: "play" }),
      el("span", {}, "output: ", el("b", { id: "pg-out" }))),
    el("p", { id: "pg-formula", class: "formula" }),
    el("div", { class: "row pg-pics" }, el("canvas", { id: "pg-canvas", width: SIDE, height: SIDE }), el("canvas", { id: "pg-output", width: 1, height: 1 })),
    el("p", { id: "pg-where", class: "muted small" }));
  $("layers").after(box);
  options($("pg-size"), range(...r.size), 8);
  options($("pg-kernel"), range(...r.kernel), 3);
  options($("pg-stride"), range(...r.stride), 1);
  options($("pg-padding"), r.padding, 0);
  options($("pg-dilation"), range(...r.dilation), 1);
  for (const id of ["pg-size", "pg-kernel", "pg-stride", "pg-padding", "pg-dilation"]) $(id).onchange = () => { pos = 0; draw(); };
  $("pg-model").disabled = !info.first_conv;
  $("pg-model").onclick = () => { useModel(); pos = 0; draw(); };
  $("pg-play").onclick = () => play(!timer);
  box.addEventListener("toggle", () => play(box.open));
  draw();
}
