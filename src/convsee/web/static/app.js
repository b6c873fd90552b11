// convsee live page: draw a digit, watch every layer respond. Plain JS, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const SHOWN = [  // layer, display size of one map (px), kernel layer, receptive field
  { name: "conv1", px: 104, cols: 6, kernel: "conv1", rf: [1, 5], what: "6 maps 24x24, before ReLU" },
  { name: "pool1", px: 104, cols: 6, kernel: "conv1", rf: [2, 6], what: "6 maps 12x12, after ReLU + 2x2 max pool" },
  { name: "conv2", px: 72, cols: 8, kernel: "conv2", rf: [2, 14], what: "16 maps 8x8, before ReLU" },
  { name: "pool2", px: 72, cols: 8, kernel: "conv2", rf: [4, 16], what: "16 maps 4x4, after ReLU + 2x2 max pool" },
  { name: "fc1", strip: true, what: "120 units, before ReLU" },
  { name: "fc2", strip: true, what: "84 units, before ReLU" },
];
const state = {
  info: null, views: null, strokes: [], base: null, drawing: false, data: null, name: "your drawing",
  dirty: false, inflight: false, last: 0, timer: null, updates: 0, latency: 0, error: null,
};
window.convsee = state;  // for tests and the curious

const pad = $("pad");
const pctx = pad.getContext("2d");

// ---------- drawing ----------
function redraw() {
  pctx.fillStyle = "#000";
  pctx.fillRect(0, 0, pad.width, pad.height);
  if (state.base) {
    pctx.imageSmoothingEnabled = true;
    pctx.drawImage(state.base, 0, 0, pad.width, pad.height);
  }
  for (const s of state.strokes) drawStroke(s, 0);
}

function drawStroke(s, from) {
  pctx.strokeStyle = "#fff";
  pctx.lineWidth = s.w;
  pctx.lineCap = pctx.lineJoin = "round";
  pctx.beginPath();
  const p = s.pts;
  const i0 = Math.max(0, from - 1);
  pctx.moveTo(p[i0][0], p[i0][1]);
  for (let i = i0; i < p.length; i++) pctx.lineTo(p[i][0], p[i][1] + (p.length === 1 ? 0.01 : 0));
  pctx.stroke();
}

function padPoint(e) {
  const r = pad.getBoundingClientRect();
  return [(e.clientX - r.left) * pad.width / r.width, (e.clientY - r.top) * pad.height / r.height];
}

pad.addEventListener("pointerdown", (e) => {
  e.preventDefault();
  pad.setPointerCapture(e.pointerId);
  state.drawing = true;
  state.strokes.push({ w: +$("brush").value, pts: [padPoint(e)] });
  if (state.name !== "your drawing") state.name = state.name + " (edited)";
  drawStroke(state.strokes.at(-1), 0);
  markDirty();
});
pad.addEventListener("pointermove", (e) => {
  if (!state.drawing) return;
  const s = state.strokes.at(-1);
  const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
  const n = s.pts.length;
  for (const ev of events.length ? events : [e]) s.pts.push(padPoint(ev));
  drawStroke(s, n);
  markDirty();
});
for (const type of ["pointerup", "pointercancel"]) {
  pad.addEventListener(type, () => { if (state.drawing) { state.drawing = false; markDirty(); } });
}

$("clear").onclick = () => {
  state.strokes = []; state.base = null; state.name = "your drawing"; redraw(); markDirty();
};
$("undo").onclick = () => { state.strokes.pop(); redraw(); markDirty(); };
$("random").onclick = () => loadSample("random");
for (const id of ["scale", "cmap"]) $(id).onchange = () => render();
for (const id of ["blur", "attr"]) $(id).onchange = () => markDirty();

async function loadSample(which) {
  const r = await fetch(`/api/sample/${which}`);
  const j = await r.json();
  const c = document.createElement("canvas");
  c.width = c.height = 28;
  const img = c.getContext("2d").createImageData(28, 28);
  j.image.flat().forEach((v, i) => {
    const g = Math.round(v * 255);
    img.data.set([g, g, g, 255], i * 4);
  });
  c.getContext("2d").putImageData(img, 0, 0);
  state.base = c; state.strokes = []; state.name = j.name;
  redraw();
  markDirty();
}

// ---------- talking to the server: throttled, never more than one request in flight ----------
const MIN_INTERVAL = 40;  // ms between requests while drawing (<= 25 updates a second)

function markDirty() { state.dirty = true; pump(); }

function pump() {
  if (!state.dirty || state.inflight || state.timer) return;
  const wait = MIN_INTERVAL - (performance.now() - state.last);
  if (wait > 0) { state.timer = setTimeout(() => { state.timer = null; pump(); }, wait); return; }
  state.dirty = false;
  if (!state.base && !state.strokes.length) { showEmpty(); return; }
  state.inflight = true;
  const t0 = state.last = performance.now();
  const blur = $("blur").value ? $("blur").value.split(",").map(Number) : null;
  const req = { png: pad.toDataURL("image/png"), encoding: "f32", blur };
  if ($("attr").value) req.attribution = $("attr").value;
  const body = JSON.stringify(req);
  fetch("/api/activations", { method: "POST", headers: { "Content-Type": "application/json" }, body })
    .then(async (r) => {
      const j = await r.json();
      if (!r.ok) throw new Error(j.error || r.statusText);
      state.data = decode(j);
      state.error = null;
      state.updates += 1;
      state.latency = performance.now() - t0;
      render();
    })
    .catch((err) => { state.error = String(err.message || err); $("status").textContent = state.error; })
    .finally(() => { state.inflight = false; pump(); });
}

function f32(b64) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Float32Array(bytes.buffer);
}

function decode(j) {
  j.input = f32(j.input);
  for (const l of Object.values(j.layers)) l.values = f32(l.values);
  return j;
}

// ---------- drawing the layers ----------
function lutFor(layer) {
  const choice = $("cmap").value;
  const signed = !state.info.layers[layer].after_relu;
  return state.info.colormaps[choice === "auto" ? (signed ? "RdBu_r" : "viridis") : choice];
}

function rangeOf(vals, signed) {
  let lo = Infinity, hi = -Infinity;
  for (const v of vals) { if (v < lo) lo = v; if (v > hi) hi = v; }
  if (signed) { const m = Math.max(Math.abs(lo), Math.abs(hi)) || 1e-6; return [-m, m]; }
  return [0, hi > 0 ? hi : 1e-6];
}

function paint(canvas, vals, lo, hi, lut) {
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(canvas.width, canvas.height);
  const k = 255 / (hi - lo || 1);
  for (let i = 0; i < vals.length; i++) {
    const t = Math.max(0, Math.min(255, Math.floor((vals[i] - lo) * k)));
    const c = lut[t];
    img.data[4 * i] = c[0]; img.data[4 * i + 1] = c[1]; img.data[4 * i + 2] = c[2]; img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

function legend(el, lo, hi, lut, own) {
  const c = el.querySelector("canvas");
  const ctx = c.getContext("2d");
  for (let x = 0; x < c.width; x++) {
    const col = lut[Math.floor(x * 255 / (c.width - 1))];
    ctx.fillStyle = `rgb(${col[0]},${col[1]},${col[2]})`;
    ctx.fillRect(x, 0, 1, c.height);
  }
  el.querySelector("span.lo").textContent = own ? "each map: its own range" : lo.toPrecision(3);
  el.querySelector("span.hi").textContent = own ? "" : hi.toPrecision(3);
}

function buildLayers() {
  const root = $("layers");
  for (const L of SHOWN) {
    const box = document.createElement("div");
    box.className = "layer" + (L.strip ? " strip" : "");
    box.innerHTML = `<div class="layer-head"><h3>${L.name} <span class="muted">${L.what}</span></h3>
      <div class="legend"><span class="lo"></span><canvas width="120" height="10"></canvas><span class="hi"></span></div></div>
      <div class="maps"></div>`;
    L.box = box;
    root.appendChild(box);
  }
  const probs = $("probs");
  state.info.classes.forEach((c, i) => {
    const row = document.createElement("div");
    row.className = "prob";
    row.innerHTML = `<span title="${c}">${c.length > 2 ? c.slice(0, 7) : c}</span><span class="bar"><i style="width:0"></i></span><span class="v">–</span>`;
    probs.appendChild(row);
  });
}

function ensureMaps(L, shape) {
  const maps = L.box.querySelector(".maps");
  if (L.canvases) return;
  L.canvases = [];
  if (L.strip) {
    const c = document.createElement("canvas");
    c.width = shape[0]; c.height = 1;
    maps.appendChild(c);
    c.addEventListener("mousemove", (e) => hoverStrip(e, L));
    c.addEventListener("mouseleave", hideTip);
    L.canvases.push(c);
    return;
  }
  const [ch, h, w] = shape;
  for (let i = 0; i < ch; i++) {
    const m = document.createElement("div");
    m.className = "map";
    const c = document.createElement("canvas");
    c.width = w; c.height = h;
    maps.style.gridTemplateColumns = `repeat(${L.cols}, minmax(0, ${L.px}px))`;
    const label = document.createElement("span");
    label.textContent = `ch ${i}`;
    m.append(label, c);
    maps.appendChild(m);
    for (const type of ["mousemove", "pointerdown"]) c.addEventListener(type, (e) => hoverMap(e, L, i));
    c.addEventListener("mouseleave", hideTip);
    L.canvases.push(c);
  }
}

function render() {
  const d = state.data;
  if (!d) return;
  const scale = $("scale").value;
  $("status").textContent = `update ${state.updates} · ${state.latency.toFixed(0)} ms round trip`;
  $("input-name").textContent = `(${state.name})`;
  // the 28x28 input
  const seen = $("seen");
  const tmp = document.createElement("canvas");
  tmp.width = tmp.height = 28;
  paint(tmp, d.input, 0, 1, state.info.colormaps.gray);
  const sctx = seen.getContext("2d");
  sctx.imageSmoothingEnabled = false;
  sctx.drawImage(tmp, 0, 0, seen.width, seen.height);
  drawAttribution(d.attribution);
  // prediction
  $("pred-digit").textContent = d.label;
  $("pred-digit").classList.toggle("long", d.label.length > 2);
  $("pred-prob").textContent = `${(d.probabilities[d.prediction] * 100).toFixed(1)}%`;
  [...$("probs").children].forEach((row, i) => {
    const p = d.probabilities[i];
    row.classList.toggle("top", i === d.prediction);
    row.querySelector("i").style.width = `${(p * 100).toFixed(1)}%`;
    row.querySelector(".v").textContent = `${(p * 100).toFixed(1)}%`;
  });
  for (const L of SHOWN) {
    const layer = d.layers[L.name];
    ensureMaps(L, layer.shape);
    const signed = !layer.after_relu;
    const lut = lutFor(L.name);
    const vals = layer.values;
    let range = signed ? rangeOf(layer.global_range, true) : [0, layer.global_range[1] || 1e-6];
    if (scale !== "global") range = rangeOf(vals, signed);
    legend(L.box.querySelector(".legend"), range[0], range[1], lut, scale === "map" && !L.strip);
    if (L.strip) { paint(L.canvases[0], vals, range[0], range[1], lut); continue; }
    const n = layer.shape[1] * layer.shape[2];
    L.canvases.forEach((c, i) => {
      const v = vals.subarray(i * n, (i + 1) * n);
      const r = scale === "map" ? rangeOf(v, signed) : range;
      paint(c, v, r[0], r[1], lut);
      const dead = v.every((x) => x === 0);
      c.parentElement.classList.toggle("dead", dead);
      c.parentElement.firstChild.textContent = dead ? `ch ${i} · dead` : `ch ${i}`;
    });
  }
}

function drawAttribution(attr) {
  const c = $("seen-attr");
  const ctx = c.getContext("2d");
  ctx.clearRect(0, 0, 28, 28);
  if (!attr) return;
  const img = ctx.createImageData(28, 28);
  const lut = state.info.colormaps.inferno;
  attr.map.flat().forEach((v, i) => {
    const col = lut[Math.round(v * 255)];
    img.data.set([col[0], col[1], col[2], Math.round(220 * v)], i * 4);
  });
  ctx.putImageData(img, 0, 0);
}

function tinyImage(values, lo = 0, hi = 1) {  // a 2-D array of [0, 1] values as a canvas
  const h = values.length, w = values[0].length;
  const c = document.createElement("canvas");
  c.width = w; c.height = h;
  paint(c, values.flat(), lo, hi, state.info.colormaps.gray);
  return c;
}

function showViews(layerName, ch) {
  const box = $("tip-views");
  box.innerHTML = "";
  const v = state.views;
  if (!v) return;
  const ex = v.exemplars[layerName];
  if (ex) {
    const row = document.createElement("div");
    row.className = "row";
    row.innerHTML = `<span class="muted">top test patches:</span>`;
    ex[ch].forEach((p) => row.appendChild(tinyImage(p)));
    box.appendChild(row);
  }
  const opt = v.optimized[layerName];
  if (opt) {
    const row = document.createElement("div");
    row.className = "row";
    row.innerHTML = `<span class="muted">input it wants most:</span>`;
    row.appendChild(tinyImage(opt[ch]));
    box.appendChild(row);
  }
}

function showEmpty() {
  state.data = null;
  $("pred-digit").textContent = "–";
  $("pred-prob").textContent = "draw a digit";
  $("seen").getContext("2d").clearRect(0, 0, 168, 168);
}

// ---------- hover: the kernel behind a map, the receptive field of a pixel ----------
function hoverMap(e, L, ch) {
  const d = state.data;
  if (!d) return;
  const c = e.currentTarget;
  const r = c.getBoundingClientRect();
  const col = Math.min(c.width - 1, Math.floor((e.clientX - r.left) * c.width / r.width));
  const row = Math.min(c.height - 1, Math.floor((e.clientY - r.top) * c.height / r.height));
  const layer = d.layers[L.name];
  const v = layer.values[ch * c.width * c.height + row * c.width + col];
  const [stride, size] = L.rf;
  const r0 = row * stride, c0 = col * stride;
  const ov = $("seen-overlay").getContext("2d");
  ov.clearRect(0, 0, 168, 168);
  ov.strokeStyle = "#ff3b30"; ov.lineWidth = 2;
  ov.strokeRect(c0 * 6 + 1, r0 * 6 + 1, size * 6 - 2, size * 6 - 2);
  const kern = state.info.kernels[L.kernel][ch];  // (Cin, 5, 5)
  const tk = $("tip-kernel");
  const cell = kern.length === 1 ? 14 : 8;
  tk.width = kern.length * (5 * cell + 4); tk.height = 5 * cell;
  const kctx = tk.getContext("2d");
  let lim = 1e-6;
  kern.flat(2).forEach((x) => { lim = Math.max(lim, Math.abs(x)); });
  const lut = state.info.colormaps.RdBu_r;
  kern.forEach((k2, j) => k2.forEach((rowv, y) => rowv.forEach((x, xx) => {
    const col = lut[Math.round((x / lim + 1) * 127.5)];
    kctx.fillStyle = `rgb(${col[0]},${col[1]},${col[2]})`;
    kctx.fillRect(j * (5 * cell + 4) + xx * cell, y * cell, cell, cell);
  })));
  $("tip-title").textContent = `${L.name} · channel ${ch} · made by ${L.kernel} kernel ${ch}` +
    (kern.length > 1 ? ` (one 5x5 per input channel)` : " (5x5)");
  showViews(L.kernel, ch);
  $("tip-text").textContent = `value ${v.toFixed(3)} at row ${row}, col ${col}; ` +
    `sees input rows ${r0}-${r0 + size - 1}, cols ${c0}-${c0 + size - 1} (outlined)`;
  showTip(e);
}

function hoverStrip(e, L) {
  const d = state.data;
  if (!d) return;
  const c = e.currentTarget;
  const r = c.getBoundingClientRect();
  const i = Math.min(c.width - 1, Math.floor((e.clientX - r.left) * c.width / r.width));
  $("tip-title").textContent = `${L.name} · unit ${i}`;
  $("tip-text").textContent = `value ${d.layers[L.name].values[i].toFixed(3)} (sees the whole input)`;
  $("tip-kernel").width = 0;
  $("tip-views").innerHTML = "";
  showTip(e);
}

function showTip(e) {
  const tip = $("tooltip");
  tip.hidden = false;
  const x = Math.min(e.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
  tip.style.left = `${x}px`;
  tip.style.top = `${e.clientY + 14}px`;
}

function hideTip() {
  $("tooltip").hidden = true;
  $("seen-overlay").getContext("2d").clearRect(0, 0, 168, 168);
}

// ---------- download the current view ----------
$("download").onclick = () => {
  const d = state.data;
  if (!d) return;
  const W = 1000, pad0 = 20;
  const heights = SHOWN.map((L) => (L.strip ? 60 : 40 + Math.ceil(L.canvases.length / L.cols) * (L.px + 22)));
  const H = 250 + heights.reduce((a, b) => a + b, 0);
  const c = document.createElement("canvas");
  c.width = W; c.height = H;
  const x = c.getContext("2d");
  x.fillStyle = "#fff"; x.fillRect(0, 0, W, H);
  x.imageSmoothingEnabled = false;
  x.fillStyle = "#14141e"; x.font = "bold 20px sans-serif";
  x.fillText(`convsee · ${state.name} → ${d.label} (${(d.probabilities[d.prediction] * 100).toFixed(1)}%)`, pad0, 32);
  x.font = "13px sans-serif"; x.fillStyle = "#6e6e78";
  x.fillText(`scale ${$("scale").value} · blur ${$("blur").value || "off"} · colormap ${$("cmap").value} · ${state.info.checkpoint}`, pad0, 54);
  x.drawImage($("seen"), pad0, 70, 168, 168);
  d.probabilities.forEach((p, i) => {
    x.fillStyle = i === d.prediction ? "#d62728" : "#5a78c8";
    x.fillRect(230, 74 + i * 16, 300 * p + 1, 11);
    x.fillStyle = "#14141e";
    x.fillText(`${state.info.classes[i]}  ${(p * 100).toFixed(1)}%`, 540, 84 + i * 16);
  });
  let y = 260;
  SHOWN.forEach((L, k) => {
    x.fillStyle = "#14141e"; x.font = "bold 14px sans-serif";
    x.fillText(`${L.name}`, pad0, y + 14);
    x.font = "12px sans-serif"; x.fillStyle = "#6e6e78";
    x.fillText(L.what, pad0 + 60, y + 14);
    const lo = L.box.querySelector("span.lo").textContent, hi = L.box.querySelector("span.hi").textContent;
    x.fillText(hi ? `colour range ${lo} … ${hi}` : lo, pad0 + 420, y + 14);
    if (L.strip) {
      x.drawImage(L.canvases[0], pad0, y + 24, 720, 22);
    } else {
      L.canvases.forEach((cv, i) => {
        const cx = pad0 + (i % L.cols) * (L.px + 10), cy = y + 24 + Math.floor(i / L.cols) * (L.px + 22);
        x.drawImage(cv, cx, cy, L.px, L.px);
        x.fillText(cv.parentElement.firstChild.textContent, cx, cy + L.px + 13);
      });
    }
    y += heights[k];
  });
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  c.toBlob((blob) => save(blob, `convsee-view-${stamp}.png`));
  const side = {
    convsee_version: state.info.convsee_version, checkpoint: state.info.checkpoint,
    checkpoint_sha256: state.info.checkpoint_sha256, checkpoint_test_accuracy: state.info.test_accuracy,
    input: state.name, input_28x28: Array.from(d.input, (v) => +v.toFixed(4)),
    prediction: d.prediction, probabilities: d.probabilities,
    scale: $("scale").value, blur: $("blur").value || null, colormap: $("cmap").value,
    layers: SHOWN.map((L) => L.name), date: new Date().toISOString(),
  };
  save(new Blob([JSON.stringify(side, null, 2)], { type: "application/json" }), `convsee-view-${stamp}.json`);
};

function save(blob, name) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.appendChild(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}

// ---------- start ----------
async function init() {
  const info = await (await fetch("/api/info")).json();
  state.info = info;
  const acc = info.test_accuracy ? ` · test accuracy ${(info.test_accuracy * 100).toFixed(2)}%` : "";
  $("model-info").textContent = `${info.checkpoint}${acc} · convsee ${info.convsee_version}`;
  for (const name of Object.keys(info.colormaps)) {
    const o = document.createElement("option");
    o.value = o.textContent = name;
    $("cmap").appendChild(o);
  }
  for (let dg = 0; dg < 10; dg++) {
    const b = document.createElement("button");
    const cls = info.classes[dg];
    b.textContent = cls.length > 2 ? cls.split("/")[0].slice(0, 7) : cls;
    b.title = `sample: ${cls}`;
    b.dataset.sample = dg;
    b.onclick = () => loadSample(dg);
    $("samples").appendChild(b);
  }
  if (info.dataset !== "mnist") {
    $("draw-title").textContent = "Draw something";
    $("random").textContent = "Random test image";
  }
  if (!info.has_test_set) $("random").title = "MNIST not found on the server: picks a bundled sample";
  buildLayers();
  redraw();
  loadSample(3);
  fetch("/api/views").then((r) => r.json()).then((v) => { state.views = v; });
}
init();
