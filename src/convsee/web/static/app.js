// convsee live page: an input in, every layer of the model out. Plain JS, no build step.
// The page builds itself from /api/info (the model's description): no layer names or
// channel counts are written here. Text from the server (class names, layer names) only
// ever goes into the page through textContent, never as markup.
"use strict";

const $ = (id) => document.getElementById(id);
const MIN_INTERVAL = 40;  // ms between requests while drawing (<= 25 updates a second)
const MANY_CLASSES = 20;  // more classes than this: the top TOP_CLASSES are listed
const TOP_CLASSES = 10;
const UPLOAD_JPEG_QUALITY = 0.9;

const state = {
  info: null, layers: {}, shown: [], opts: {}, cards: {},
  input: { kind: "draw", name: "your drawing" },  // draw | file | name
  strokes: [], base: null, drawing: false,
  data: null, empty: true, dirty: false, inflight: false, last: 0, timer: null,
  updates: 0, latency: 0, bytes: 0, error: null, views: {}, tip: null,
};
window.convsee = state;  // for tests and the curious

// ---------- small helpers ----------
function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "text") e.textContent = v;
    else if (k === "class") e.className = v;
    else if (k === "style") Object.assign(e.style, v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function fmt(v) {
  if (v === null || v === undefined || !isFinite(v)) return "–";
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
  return v.toPrecision(3);
}

function pct(p) { return `${(p * 100).toFixed(1)}%`; }

function b64bytes(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function layerText(L) {
  const shape = L.shape.join("×");
  const sign = L.nonneg ? "non-negative" : "signed";
  let field = "";
  if (L.field && !L.field.whole) field = ` · sees ${L.field.size[0]}×${L.field.size[1]} px`;
  else if (L.field && L.field.whole) field = " · sees the whole input";
  return `${L.type} · ${shape} · ${sign}${field}`;
}

function isVector(L) { return L.kind === "vector" || (L.kind === "map" && L.shape[1] * L.shape[2] === 1); }

// ---------- the drawing pad (1-channel models) ----------
const pad = $("pad");
const pctx = pad.getContext("2d");

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

function useDrawing() {
  const from = state.input;
  if (from.kind !== "draw") {
    const name = from.kind === "name" && state.base ? `${from.name} (edited)` : "your drawing";
    if (from.kind === "file") state.base = null;
    state.input = { kind: "draw", name };
  }
}

pad.addEventListener("pointerdown", (e) => {
  e.preventDefault();
  pad.setPointerCapture(e.pointerId);
  state.drawing = true;
  useDrawing();
  state.strokes.push({ w: +$("brush").value, pts: [padPoint(e)] });
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
  state.strokes = []; state.base = null; state.baseName = null;
  state.input = { kind: "draw", name: "your drawing" };
  redraw(); markDirty();
};
$("undo").onclick = () => {
  state.strokes.pop();
  // back to an unedited sample: the exact stored image again
  if (!state.strokes.length && state.base && state.baseName) state.input = { kind: "name", name: state.baseName };
  redraw(); markDirty();
};

// ---------- other inputs: files, samples, the test set ----------
function setNamed(name) {
  state.input = { kind: "name", name };
  state.strokes = [];
  state.base = null;
  state.baseName = name;
  state.pendingBase = state.info.inputs.draw;  // draw the model's view on the pad when it comes
  redraw();
  markDirty();
}

async function loadFile(file) {
  if (!file) return;
  try {
    const url = await downscaled(file, state.info.inputs.upload_side);
    state.strokes = []; state.base = null; state.baseName = null;
    redraw();
    state.input = { kind: "file", name: `file ${file.name || "pasted image"}`, png: url };
    markDirty();
  } catch (err) {
    setStatus(`could not read that file as an image (${err.message || err})`, true);
  }
}

function downscaled(file, side) {
  // the image drawn on a white canvas (transparency on white, as the server does) at most
  // `side` px on its longer side, as JPEG: uploads stay well under the server's body cap
  return new Promise((resolve, reject) => {
    const img = new Image();
    const src = URL.createObjectURL(file);
    img.onload = () => {
      URL.revokeObjectURL(src);
      let s = Math.min(1, side / Math.max(img.naturalWidth, img.naturalHeight));
      for (let attempt = 0; attempt < 4; attempt++) {
        const w = Math.max(1, Math.round(img.naturalWidth * s));
        const h = Math.max(1, Math.round(img.naturalHeight * s));
        const c = el("canvas", { width: w, height: h });
        const x = c.getContext("2d");
        x.fillStyle = "#fff"; x.fillRect(0, 0, w, h);
        x.drawImage(img, 0, 0, w, h);
        const url = c.toDataURL("image/jpeg", UPLOAD_JPEG_QUALITY);
        if (url.length < 0.8 * state.info.inputs.max_body) { resolve(url); return; }
        s *= 0.7;
      }
      reject(new Error("too large even when scaled down"));
    };
    img.onerror = () => { URL.revokeObjectURL(src); reject(new Error("not an image the browser reads")); };
    img.src = src;
  });
}

$("file").addEventListener("change", (e) => { loadFile(e.target.files[0]); e.target.value = ""; });
const drop = $("drop");
for (const type of ["dragenter", "dragover"]) {
  drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add("over"); });
}
for (const type of ["dragleave", "drop"]) drop.addEventListener(type, () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => { e.preventDefault(); loadFile(e.dataTransfer.files[0]); });
document.addEventListener("paste", (e) => {
  const item = [...(e.clipboardData ? e.clipboardData.items : [])].find((i) => i.type.startsWith("image/"));
  if (item) { e.preventDefault(); loadFile(item.getAsFile()); }
});

$("random").onclick = async () => {
  const r = await fetch("/api/sample/random");
  const j = await r.json();
  if (!r.ok) { setStatus(j.error, true); return; }
  setNamed(j.name);
};

// ---------- talking to the server: throttled, never more than one request in flight ----------
function markDirty() { state.dirty = true; pump(); }

function inputIsEmpty() {
  return state.input.kind === "draw" && !state.base && !state.strokes.length;
}

function request() {
  const req = { encoding: "u8", layers: {} };
  for (const name of state.shown) req.layers[name] = optsFor(name);
  const inp = state.input;
  if (inp.kind === "draw") req.png = pad.toDataURL("image/png");
  else if (inp.kind === "file" && inp.id) req.input = inp.id;  // kept by the server
  else if (inp.kind === "file") { req.png = inp.png; req.keep = true; }
  else req.input = inp.name;
  if ($("blur").value) req.blur = $("blur").value.split(",").map(Number);
  if ($("attr").value) {
    req.attribution = $("attr").value;
    if (req.attribution === "gradcam") req.attribution_layer = $("attr-layer").value;
  }
  return req;
}

function pump() {
  if (!state.dirty || state.inflight || state.timer) return;
  const wait = MIN_INTERVAL - (performance.now() - state.last);
  if (wait > 0) { state.timer = setTimeout(() => { state.timer = null; pump(); }, wait); return; }
  state.dirty = false;
  if (inputIsEmpty()) { showEmpty(); return; }
  state.inflight = true;
  const t0 = state.last = performance.now();
  const sent = state.input;
  const body = JSON.stringify(request());
  fetch("/api/activations", { method: "POST", headers: { "Content-Type": "application/json" }, body })
    .then(async (r) => {
      if (!r.ok) {
        const j = await r.json().catch(() => ({}));
        throw new Error(j.error || r.statusText);
      }
      const buf = await r.arrayBuffer();
      if (state.dirty && inputIsEmpty()) return;  // cleared meanwhile: this answer is stale
      state.data = decodeFrame(buf);
      if (sent === state.input && sent.kind === "file") sent.id = state.data.input_name;
      state.bytes = buf.byteLength;
      state.empty = false;
      state.error = null;
      state.updates += 1;
      state.latency = performance.now() - t0;
      if (state.pendingBase && state.input.kind === "name") baseFromInput();
      state.pendingBase = false;
      render();
    })
    .catch((err) => {
      state.error = String(err.message || err);
      if (sent.id && state.error.includes("no longer kept")) { delete sent.id; markDirty(); return; }
      setStatus(state.error, true);
    })
    .finally(() => { state.inflight = false; pump(); });
}

function decodeFrame(buf) {
  const magic = String.fromCharCode(...new Uint8Array(buf, 0, 4));
  if (magic !== "CVS1") throw new Error("the server's answer is not a convsee frame");
  const n = new DataView(buf).getUint32(4, true);
  const head = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 8, n)));
  const blob = (ref) => new Uint8Array(buf, 8 + n + ref.offset, ref.length);
  head.input = blob(head.input);
  for (const l of Object.values(head.layers)) l.values = blob(l.values);
  if (head.attribution) head.attribution.map = blob(head.attribution.map);
  return head;
}

function baseFromInput() {  // a named input on the pad, to edit from
  const d = state.data;
  const [h, w] = d.input_shape;
  const c = el("canvas", { width: w, height: h });
  const img = c.getContext("2d").createImageData(w, h);
  const rgb = d.input_shape.length === 3;
  for (let i = 0; i < h * w; i++) {
    const g = rgb ? Math.round((d.input[3 * i] + d.input[3 * i + 1] + d.input[3 * i + 2]) / 3) : d.input[i];
    img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = g; img.data[4 * i + 3] = 255;
  }
  c.getContext("2d").putImageData(img, 0, 0);
  state.base = c;
  redraw();
}

function setStatus(text, bad = false) {
  const s = $("status");
  s.textContent = text;
  s.classList.toggle("bad", bad);
}

// ---------- colours ----------
function lutFor(L) {
  const choice = $("cmap").value;
  const cm = state.info.colormaps;
  return cm[choice === "auto" ? (L.nonneg ? "viridis" : "RdBu_r") : choice];
}

function shaped(r, signed) {  // a display range: symmetric for signed layers, from 0 if not
  if (signed) { const m = Math.max(Math.abs(r[0]), Math.abs(r[1])) || 1e-6; return [-m, m]; }
  return [0, r[1] > 0 ? r[1] : 1e-6];
}

function layerRange(d) {  // [range, words] of a layer under the scale chosen (not "map")
  const scale = $("scale").value;
  if (scale === "global" && d.reference) return [shaped(d.reference, !d.nonneg), "reference range"];
  const words = scale === "global" ? "this input: no reference range" : "this input";
  return [shaped([d.min, d.max], !d.nonneg), words];
}

// paint n 8-bit values (map range [lo, hi]) on ctx's w x h image with display range [a, b]
function paintBytes(canvas, q, lo, hi, a, b, lut) {
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(canvas.width, canvas.height);
  const table = new Uint8Array(256);
  const step = (hi - lo) / 255, k = 255 / (b - a || 1);
  for (let t = 0; t < 256; t++) table[t] = Math.max(0, Math.min(255, Math.floor((lo + t * step - a) * k)));
  const px = img.data;
  for (let i = 0; i < q.length; i++) {
    const c = lut[table[q[i]]];
    px[4 * i] = c[0]; px[4 * i + 1] = c[1]; px[4 * i + 2] = c[2]; px[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

function colourBar(canvas, lut) {
  const ctx = canvas.getContext("2d");
  for (let x = 0; x < canvas.width; x++) {
    const col = lut[Math.floor(x * 255 / (canvas.width - 1))];
    ctx.fillStyle = `rgb(${col[0]},${col[1]},${col[2]})`;
    ctx.fillRect(x, 0, 1, canvas.height);
  }
}

// ---------- the layer cards ----------
function optsFor(name) {
  const L = state.layers[name];
  if (!state.opts[name]) state.opts[name] = { order: !isVector(L) && L.shape[0] > state.info.page_size ? "top" : "index", page: 0 };
  return state.opts[name];
}

function pagerText(name, d) {
  const L = state.layers[name];
  const n = L.shape[0], P = state.info.page_size;
  if (isVector(L)) {
    const units = L.kind === "vector" ? L.shape[0] : n;
    return d && d.channels ? `top ${d.channels.length} of ${units} units by value` : `${units} units`;
  }
  if (n <= P) return `all ${n} channels`;
  const o = optsFor(name);
  const lo = o.page * P, hi = Math.min(n, lo + P);
  if (o.order === "top") return lo === 0 ? `top ${P} of ${n} channels by mean activation` : `ranks ${lo + 1}-${hi} of ${n} by mean activation`;
  return `channels ${lo}-${hi - 1} of ${n}`;
}

function buildCard(name) {
  const L = state.layers[name];
  const vector = isVector(L);
  const card = { name, L, vector, canvases: [] };
  const legendCanvas = el("canvas", { width: 120, height: 10 });
  const lo = el("span", { class: "lo" }), hi = el("span", { class: "hi" });
  const legend = el("div", { class: "legend" }, lo, legendCanvas, hi);
  const title = el("h3", {}, el("span", { class: "name", text: name }), " ", el("span", { class: "muted", text: layerText(L) }));
  const head = el("div", { class: "layer-head" }, title, legend);
  const pager = el("div", { class: "pager muted" });
  const pagerLabel = el("span", { class: "pager-label" });
  if (!vector && L.shape[0] > state.info.page_size) {
    const pages = Math.ceil(L.shape[0] / state.info.page_size);
    const prev = el("button", { class: "small-button prev", text: "◀", title: "previous channels", "aria-label": "previous channels" });
    const next = el("button", { class: "small-button next", text: "▶", title: "next channels", "aria-label": "next channels" });
    const order = el("select", { class: "order", "aria-label": "channel order" },
      el("option", { value: "top", text: "by mean activation" }), el("option", { value: "index", text: "by channel number" }));
    order.value = optsFor(name).order;
    prev.onclick = () => { const o = optsFor(name); o.page = (o.page - 1 + pages) % pages; markDirty(); };
    next.onclick = () => { const o = optsFor(name); o.page = (o.page + 1) % pages; markDirty(); };
    order.onchange = () => { const o = optsFor(name); o.order = order.value; o.page = 0; markDirty(); };
    pager.append(prev, pagerLabel, next, order);
  } else {
    pager.append(pagerLabel);
  }
  pagerLabel.textContent = pagerText(name);
  const maps = el("div", { class: "maps" });
  const box = el("div", { class: "layer" + (vector ? " strip" : ""), "data-layer": name }, head, pager, maps);
  Object.assign(card, { box, maps, legend, legendCanvas, lo, hi, pagerLabel });
  if (vector) {
    const c = el("canvas", { width: 1, height: 1 });
    c.addEventListener("pointermove", (e) => hoverStrip(e, card));
    c.addEventListener("pointerdown", (e) => hoverStrip(e, card));
    c.addEventListener("mouseleave", hideTip);
    maps.append(c);
    card.canvases.push(c);
  }
  return card;
}

function ensureMaps(card, d) {  // one canvas per map sent (their count and size may change)
  if (card.vector) {
    const c = card.canvases[0];
    if (c.width !== d.values.length) { c.width = d.values.length; c.height = 1; }
    return;
  }
  const n = d.channels.length, [h, w] = d.size;
  if (card.canvases.length !== n) {
    card.maps.replaceChildren();
    card.canvases = [];
    const px = n <= 6 ? 104 : 72;
    card.px = px; card.cols = Math.min(n, 8);
    card.maps.style.gridTemplateColumns = `repeat(${card.cols}, minmax(0, ${px}px))`;
    for (let i = 0; i < n; i++) {
      const c = el("canvas", { width: w, height: h });
      const m = el("div", { class: "map" }, el("span", { class: "label" }), c);
      for (const type of ["pointermove", "pointerdown"]) c.addEventListener(type, (e) => hoverMap(e, card, i));
      c.addEventListener("mouseleave", hideTip);
      card.maps.append(m);
      card.canvases.push(c);
    }
  }
  for (const c of card.canvases) if (c.width !== w || c.height !== h) { c.width = w; c.height = h; }
}

function syncCards() {  // the cards of state.shown, in the model's order
  const root = $("layers");
  for (const name of Object.keys(state.cards)) {
    if (!state.shown.includes(name)) { state.cards[name].box.remove(); delete state.cards[name]; }
  }
  for (const name of state.shown) {
    if (!state.cards[name]) state.cards[name] = buildCard(name);
    root.append(state.cards[name].box);  // appending in order keeps them sorted
  }
  const leaves = state.info.spec.layers.filter((L) => L.kind !== "other").length;
  $("layer-summary").textContent = `layers: ${state.shown.length} of ${leaves} shown`;
  for (const cb of document.querySelectorAll("#layer-list input")) cb.checked = state.shown.includes(cb.value);
}

function setShown(names) {
  const order = state.info.spec.layers.map((L) => L.name);
  state.shown = order.filter((n) => names.includes(n));
  syncCards();
  markDirty();
}

function buildPicker() {
  const list = $("layer-list");
  for (const L of state.info.spec.layers) {
    if (L.kind === "other") continue;
    const cb = el("input", { type: "checkbox", value: L.name });
    cb.onchange = () => setShown(cb.checked ? [...state.shown, L.name] : state.shown.filter((n) => n !== L.name));
    const label = el("label", { class: "pick", style: { paddingLeft: `${L.depth * 12}px` } }, cb,
      el("span", { text: ` ${L.name}` }), el("span", { class: "muted", text: ` ${L.type} ${L.shape.join("×")}` }));
    list.append(label);
  }
  $("layers-default").onclick = () => setShown(state.info.default_layers);
  $("layers-leaves").onclick = () => setShown(state.info.spec.layers.filter((L) => L.leaf && L.kind !== "other" && L.name !== state.info.scores_layer).map((L) => L.name));
  $("layers-all").onclick = () => setShown(state.info.spec.layers.filter((L) => L.kind !== "other").map((L) => L.name));
}

// ---------- drawing an answer ----------
function render() {
  const d = state.data;
  if (!d) return;
  setStatus(`update ${state.updates} · ${state.latency.toFixed(0)} ms round trip · ${(state.bytes / 1024).toFixed(0)} KB`);
  $("input-name").textContent = `(${inputLabel()})`;
  $("input-notes").textContent = d.input_notes.join("; ");
  drawSeen(d);
  drawAttribution(d.attribution);
  drawProbabilities(d);
  for (const name of state.shown) {
    const card = state.cards[name], ld = d.layers[name];
    if (!ld) continue;
    ensureMaps(card, ld);
    card.pagerLabel.textContent = pagerText(name, ld);
    const lut = lutFor(card.L);
    const signed = !ld.nonneg;
    const [range, words] = layerRange(ld);
    colourBar(card.legendCanvas, lut);
    const own = $("scale").value === "map" && !card.vector;
    card.lo.textContent = own ? "each map: its own range" : fmt(range[0]);
    card.hi.textContent = own ? "" : `${fmt(range[1])} · ${words}`;
    card.range = own ? null : range;
    if (card.vector) {
      const r = $("scale").value === "map" ? shaped(ld.ranges[0], signed) : range;
      paintBytes(card.canvases[0], ld.values, ld.ranges[0][0], ld.ranges[0][1], r[0], r[1], lut);
      continue;
    }
    const [h, w] = ld.size, n = h * w;
    card.canvases.forEach((c, i) => {
      const [lo, hi] = ld.ranges[i];
      const r = own ? shaped(ld.ranges[i], signed) : range;
      paintBytes(c, ld.values.subarray(i * n, (i + 1) * n), lo, hi, r[0], r[1], lut);
      const dead = lo === 0 && hi === 0;
      c.parentElement.classList.toggle("dead", dead);
      c.parentElement.firstChild.textContent = `ch ${ld.channels[i]}${dead ? " · dead" : ""}`;
    });
  }
}

function inputLabel() {
  const inp = state.input;
  if (inp.kind === "name" && state.data) {
    const d = state.data;
    return d.input_source && d.input_source !== d.input_name ? `${d.input_name}, ${d.input_source}` : d.input_name;
  }
  return inp.name;
}

function seenSize() {
  const [, h, w] = state.info.spec.input_shape;
  const side = Math.max(h, w) <= 64 ? 168 : Math.min(224, Math.max(h, w));
  return [Math.round(side * w / Math.max(h, w)), Math.round(side * h / Math.max(h, w))];
}

function drawSeen(d) {
  const seen = $("seen");
  const [h, w] = d.input_shape;
  if (seen.width !== w || seen.height !== h) { seen.width = w; seen.height = h; }
  const ctx = seen.getContext("2d");
  const img = ctx.createImageData(w, h);
  const rgb = d.input_shape.length === 3;
  for (let i = 0; i < h * w; i++) {
    if (rgb) { img.data[4 * i] = d.input[3 * i]; img.data[4 * i + 1] = d.input[3 * i + 1]; img.data[4 * i + 2] = d.input[3 * i + 2]; }
    else img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = d.input[i];
    img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

function drawAttribution(attr) {
  const c = $("seen-attr");
  const legendBox = $("attr-legend");
  if (!attr) {
    c.getContext("2d").clearRect(0, 0, c.width, c.height);
    legendBox.hidden = true;
    return;
  }
  const [h, w] = attr.shape;
  c.width = w; c.height = h;
  const ctx = c.getContext("2d");
  const img = ctx.createImageData(w, h);
  const lut = state.info.colormaps.inferno;
  for (let i = 0; i < h * w; i++) {
    const v = attr.map[i], col = lut[v];
    img.data[4 * i] = col[0]; img.data[4 * i + 1] = col[1]; img.data[4 * i + 2] = col[2];
    img.data[4 * i + 3] = Math.round(220 * v / 255);
  }
  ctx.putImageData(img, 0, 0);
  legendBox.hidden = false;
  colourBar(legendBox.querySelector("canvas"), lut);
  legendBox.querySelector(".what").textContent = attributionWords(attr);
  legendBox.querySelector(".hi").textContent = fmt(attr.max);
}

function attributionWords(attr) {
  const cls = (state.info.classes[attr.target] ?? attr.target);
  if (attr.kind === "saliency") return `saliency for “${cls}”: |d ${attr.quantity} / d pixel|`;
  return `Grad-CAM at ${attr.layer} for “${cls}”${attr.field_known ? "" : " (stretched: field unknown)"}`;
}

function probRows(d) {  // [[class index, probability], ...] in the order listed
  const p = d.probabilities;
  const idx = p.map((v, i) => i);
  if (p.length <= MANY_CLASSES) return idx.map((i) => [i, p[i]]);
  idx.sort((a, b) => p[b] - p[a]);
  return idx.slice(0, TOP_CLASSES).map((i) => [i, p[i]]);
}

function drawProbabilities(d) {
  const probs = $("probs");
  if (d.probabilities === null) {
    $("pred-label").textContent = "–";
    $("pred-prob").textContent = "the model's output is not class scores";
    probs.replaceChildren();
    return;
  }
  $("pred-label").textContent = d.label;
  $("pred-label").title = d.label;
  $("pred-label").classList.toggle("long", d.label.length > 2);
  $("pred-prob").textContent = pct(d.probabilities[d.prediction]);
  const rows = probRows(d);
  probs.replaceChildren(...rows.map(([i, p]) => {
    const name = state.info.classes[i] ?? String(i);
    return el("div", { class: "prob" + (i === d.prediction ? " top" : "") },
      el("span", { class: "cls", text: name, title: name }),
      el("span", { class: "bar" }, el("i", { style: { width: `${(p * 100).toFixed(1)}%` } })),
      el("span", { class: "v", text: pct(p) }));
  }));
  $("probs-note").textContent = d.probabilities.length > MANY_CLASSES ? `top ${TOP_CLASSES} of ${d.probabilities.length} classes` : "";
}

function showEmpty() {  // nothing to show: every map, the input and the probabilities cleared
  state.data = null;
  state.empty = true;
  $("pred-label").textContent = "–";
  $("pred-label").classList.remove("long");
  $("pred-prob").textContent = state.info && state.info.inputs.draw ? "draw something" : "choose an input";
  $("input-name").textContent = "";
  $("input-notes").textContent = "";
  for (const id of ["seen", "seen-attr", "seen-overlay"]) { const c = $(id); c.getContext("2d").clearRect(0, 0, c.width, c.height); }
  $("attr-legend").hidden = true;
  for (const row of $("probs").children) {
    row.classList.remove("top");
    row.querySelector("i").style.width = "0";
    row.querySelector(".v").textContent = "–";
  }
  for (const card of Object.values(state.cards)) {
    for (const c of card.canvases) {
      c.getContext("2d").clearRect(0, 0, c.width, c.height);
      if (c.parentElement.classList.contains("map")) c.parentElement.classList.remove("dead");
    }
    const lc = card.legendCanvas;
    lc.getContext("2d").clearRect(0, 0, lc.width, lc.height);
    card.lo.textContent = ""; card.hi.textContent = "";
  }
  setStatus(state.info && state.info.inputs.draw ? "empty: nothing drawn"
    : "no input yet: drop, paste or choose an image");
  hideTip();
}

// ---------- hover: value, receptive field, kernel, views ----------
function fieldBox(field, i, j) {  // spec.Field.box: input rows/cols (inclusive) of map pixel (i, j)
  const out = [];
  for (const [axis, k] of [[0, i], [1, j]]) {
    const centre = field.start[axis] + k * field.stride[axis];
    const half = (field.size[axis] - 1) / 2;
    out.push(Math.floor(centre - half + 1e-6), Math.floor(centre + half + 1e-6));
  }
  return out;
}

function outline(box) {  // box: [r0, r1, c0, c1] in input pixels, or null to clear
  const ov = $("seen-overlay");
  const [dw, dh] = seenSize();
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

function hoverMap(e, card, k) {
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

function hoverStrip(e, card) {
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
  const q = b64bytes(b64);
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
    const r = await fetch(`/api/views?layer=${encodeURIComponent(layer)}&unit=${unit}`);
    const j = await r.json();
    if (!r.ok) throw new Error(j.error || r.statusText);
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
  } else {
    box.append(el("div", { class: "muted", text: `top dataset patches: ${ex.status === "computing" ? "computing…" : ex.why}` }));
  }
  const opt = v.optimized;
  if (opt.status === "ready") {
    const where = opt.whole ? "" : ` (its ${opt.size[0]}×${opt.size[1]} field)`;
    box.append(el("div", { class: "muted", text: `input it wants most${where}, ${opt.steps} steps:` }),
      el("div", { class: "row tiles" }, tileCanvas(opt.tile, opt.shape)));
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

function hideTip() {
  $("tooltip").hidden = true;
  state.tip = null;
  outline(null);
}

document.addEventListener("pointerdown", (e) => {  // a tap elsewhere closes the tooltip
  if (!e.target.closest(".maps")) hideTip();
});

// ---------- download the current view ----------
function downloadView() {
  const d = state.data;
  if (!d) return;
  const W = 1000, M = 20;
  const [sw, sh] = seenSize();
  const rows = d.probabilities ? probRows(d) : [];
  const cards = state.shown.map((n) => state.cards[n]).filter((c) => d.layers[c.name]);
  const heights = cards.map((c) => (c.vector ? 64 : 44 + Math.ceil(c.canvases.length / c.cols) * (c.px + 22)));
  const top = Math.max(sh + 70, 40 + rows.length * 18) + 70;
  const H = top + heights.reduce((a, b) => a + b, 0) + 20;
  const c = el("canvas", { width: W, height: H });
  const x = c.getContext("2d");
  x.fillStyle = "#fff"; x.fillRect(0, 0, W, H);
  x.imageSmoothingEnabled = false;
  x.fillStyle = "#14141e"; x.font = "bold 20px sans-serif";
  const verdict = d.probabilities ? ` → ${d.label} (${pct(d.probabilities[d.prediction])})` : "";
  x.fillText(`convsee · ${inputLabel()}${verdict}`, M, 32);
  x.font = "13px sans-serif"; x.fillStyle = "#6e6e78";
  x.fillText(`${state.info.model} · ${state.info.checkpoint || "no checkpoint"} · scale ${$("scale").value} · blur ${$("blur").value || "off"} · colormap ${$("cmap").value}`, M, 54);
  x.drawImage($("seen"), M, 70, sw, sh);
  if (d.attribution) {
    x.drawImage($("seen-attr"), M, 70, sw, sh);
    const lg = $("attr-legend");
    x.drawImage(lg.querySelector("canvas"), M, 78 + sh, 120, 10);
    x.fillStyle = "#14141e"; x.font = "12px sans-serif";
    x.fillText(`0 … ${fmt(d.attribution.max)}`, M + 126, 88 + sh);
    x.fillText(attributionWords(d.attribution), M, 106 + sh);
  }
  const px0 = M + Math.max(sw, 200) + 30;
  x.font = "13px sans-serif";
  rows.forEach(([i, p], r) => {
    x.fillStyle = i === d.prediction ? "#d62728" : "#5a78c8";
    x.fillRect(px0, 74 + r * 18, 300 * p + 1, 12);
    x.fillStyle = "#14141e";
    x.fillText(`${state.info.classes[i] ?? i}  ${pct(p)}`, px0 + 310, 85 + r * 18);
  });
  let y = top;
  cards.forEach((card, k) => {
    x.fillStyle = "#14141e"; x.font = "bold 14px sans-serif";
    x.fillText(card.name, M, y + 14);
    const nameW = x.measureText(card.name).width;
    x.font = "12px sans-serif"; x.fillStyle = "#6e6e78";
    x.fillText(`${layerText(card.L)} · ${card.pagerLabel.textContent}`, M + nameW + 12, y + 14);
    const rangeText = card.range ? `colour range ${fmt(card.range[0])} … ${card.hi.textContent}` : "each map: its own range";
    x.fillText(rangeText, M, y + 30);
    x.drawImage(card.legendCanvas, W - 160, y + 21, 120, 10);
    if (card.vector) {
      x.drawImage(card.canvases[0], M, y + 38, 720, 22);
    } else {
      card.canvases.forEach((cv, i) => {
        const cx = M + (i % card.cols) * (card.px + 10), cy = y + 38 + Math.floor(i / card.cols) * (card.px + 22);
        x.drawImage(cv, cx, cy, card.px, card.px);
        x.fillText(cv.parentElement.firstChild.textContent, cx, cy + card.px + 13);
      });
    }
    y += heights[k];
  });
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  c.toBlob((blob) => save(blob, `convsee-view-${stamp}.png`));
  save(new Blob([JSON.stringify(sidecar(d), null, 2)], { type: "application/json" }), `convsee-view-${stamp}.json`);
}

function sidecar(d) {
  const info = state.info;
  const small = d.input.length <= 4096;
  return {
    convsee_version: info.convsee_version, model: info.model, model_type: info.model_type,
    checkpoint: info.checkpoint, checkpoint_sha256: info.checkpoint_sha256,
    checkpoint_test_accuracy: info.test_accuracy, preprocess: info.preprocess,
    input: inputLabel(), input_kind: state.input.kind, input_server_name: d.input_name,
    input_source: d.input_source, input_label: d.input_label, input_notes: d.input_notes,
    input_shape: d.input_shape,
    input_pixels: small ? Array.from(d.input, (v) => +(v / 255).toFixed(4)) : null,
    prediction: d.prediction, label: d.label,
    probabilities: d.probabilities, classes_listed: d.probabilities ? probRows(d).map(([i]) => info.classes[i] ?? String(i)) : [],
    scale: $("scale").value, blur: $("blur").value || null, colormap: $("cmap").value,
    overlay: d.attribution ? { kind: d.attribution.kind, layer: d.attribution.layer, target: d.attribution.target,
      quantity: d.attribution.quantity, max: d.attribution.max, colormap: "inferno", range: [0, d.attribution.max] } : null,
    layers: state.shown.filter((n) => d.layers[n]).map((n) => {
      const ld = d.layers[n], card = state.cards[n];
      return { name: n, shape: ld.shape, channels: ld.channels, order: ld.order, page: ld.page,
        shown: card.pagerLabel.textContent, min: ld.min, max: ld.max, reference: ld.reference,
        colour_range: card.range, thumbnail_factor: ld.factor ?? 1 };
    }),
    date: new Date().toISOString(),
  };
}

function save(blob, name) {
  const a = el("a", { href: URL.createObjectURL(blob), download: name });
  document.body.append(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}

$("download").onclick = downloadView;

// ---------- start ----------
function buildControls(info) {
  for (const name of Object.keys(info.colormaps)) $("cmap").append(el("option", { value: name, text: name }));
  for (const id of ["scale", "cmap"]) $(id).onchange = () => render();
  for (const id of ["blur", "attr", "attr-layer"]) $(id).onchange = () => { syncOverlay(); markDirty(); };
  const ov = info.overlays;
  if (!ov.available) {
    $("attr").disabled = true;
    $("attr").title = "the model has no map layer and class scores to attribute";
  }
  for (const name of ov.layers) $("attr-layer").append(el("option", { value: name, text: name }));
  if (ov.default) $("attr-layer").value = ov.default;
  syncOverlay();
}

function syncOverlay() { $("attr-layer").hidden = $("attr").value !== "gradcam"; }

function buildInputs(info) {
  const inp = info.inputs;
  $("draw-box").hidden = !inp.draw;
  $("input-title").textContent = inp.draw ? (inp.digit_form && info.dataset === "mnist" ? "Draw a digit" : "Draw something") : "Input";
  if (inp.draw) $("drop-text").textContent = "or drop an image here, paste one, or";
  $("samples").hidden = !inp.samples.length;  // another dataset's samples are not offered
  for (const s of inp.samples) {
    const b = el("button", { text: s.label, title: `${s.name}: the bundled sample (${s.label})`, "data-sample": s.name.split(":")[1] });
    b.onclick = () => setNamed(s.name);
    $("samples").append(b);
  }
  const rnd = inp.random;
  if (rnd.available) {
    $("random").textContent = info.dataset === "mnist" && rnd.kind === "test" ? "Random test digit" : "Random test image";
    $("random").title = `a random image of ${rnd.what} (${rnd.count.toLocaleString()} images)`;
  } else {
    $("random").disabled = true;
    $("random-why").textContent = rnd.why;
  }
}

async function init() {
  const info = await (await fetch("/api/info")).json();
  state.info = info;
  for (const L of info.spec.layers) state.layers[L.name] = L;
  const acc = info.test_accuracy ? ` · test accuracy ${(info.test_accuracy * 100).toFixed(2)}%` : "";
  $("model-info").textContent = `${info.model}${info.checkpoint ? ` · ${info.checkpoint}` : ""}${acc} · input ${info.preprocess_text} · convsee ${info.convsee_version}`;
  const [dw, dh] = seenSize();
  $("seen-wrap").style.width = `${dw}px`; $("seen-wrap").style.height = `${dh}px`;
  buildControls(info);
  buildInputs(info);
  buildPicker();
  redraw();
  state.shown = info.default_layers.slice();
  syncCards();
  if (info.classes.length && info.classes.length <= MANY_CLASSES) {  // rows exist from the start
    $("probs").replaceChildren(...info.classes.map((name) => el("div", { class: "prob" },
      el("span", { class: "cls", text: name, title: name }), el("span", { class: "bar" }, el("i", { style: { width: "0" } })),
      el("span", { class: "v", text: "–" }))));
  }
  const first = info.inputs.samples.find((s) => s.name === "sample:3") || info.inputs.samples[0];
  if (first) setNamed(first.name); else showEmpty();
}
init();
