// The layer cards: one per layer shown, in the model's order, each a title, a colour
// legend, a pager for layers with more channels than one answer holds, and a grid of map
// canvases (or one strip for vector layers), sized to what the last answer sent. Also the
// layer picker that chooses which cards there are. Painting them is render.js's job.
import { $, el } from "./dom.js";
import { clickMap, clickStrip } from "./explain.js";
import { isVector, layerText } from "./spec.js";
import { optsFor, state } from "./state.js";
import { hideTip, hoverMap, hoverStrip } from "./tooltip.js";
import { markDirty } from "./updates.js";

export function pagerText(name, d) {
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
  const words = el("p", { class: "words", text: (state.info.layer_words || {})[name] || "" });  // explain_api.py
  const box = el("div", { class: "layer" + (vector ? " strip" : ""), "data-layer": name }, head, words, pager, maps);
  Object.assign(card, { box, maps, legend, legendCanvas, lo, hi, pagerLabel });
  if (vector) {
    const c = el("canvas", { width: 1, height: 1 });
    c.addEventListener("pointermove", (e) => hoverStrip(e, card));
    c.addEventListener("pointerdown", (e) => hoverStrip(e, card));
    c.addEventListener("mouseleave", hideTip);
    c.addEventListener("click", (e) => { hideTip(); clickStrip(e, card); });  // the panel, not the tooltip, over it
    maps.append(c);
    card.canvases.push(c);
  }
  return card;
}

export function ensureMaps(card, d) {  // one canvas per map sent (their count and size may change)
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
      c.addEventListener("click", (e) => { hideTip(); clickMap(e, card, i); });
      card.maps.append(m);
      card.canvases.push(c);
    }
  }
  for (const c of card.canvases) if (c.width !== w || c.height !== h) { c.width = w; c.height = h; }
}

export function syncCards() {  // the cards of state.shown, in the model's order
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

export function buildPicker() {
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
