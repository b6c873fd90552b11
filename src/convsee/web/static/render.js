// An answer on the page: render() paints state.data everywhere (status, the input, the
// overlay, the prediction, every layer card under the scale and colormap chosen);
// showEmpty() clears all of it when there is no input.
import { colourBar, layerRange, lutFor, paintBytes, shaped } from "./colour.js";
import { $ } from "./dom.js";
import { fmt } from "./format.js";
import { ensureMaps, pagerText } from "./maps.js";
import { drawAttribution } from "./overlay.js";
import { clearProbabilities, drawProbabilities } from "./prediction.js";
import { drawSeen, inputLabel } from "./seen.js";
import { state } from "./state.js";
import { setStatus } from "./status.js";
import { hideTip } from "./tooltip.js";

export function render() {
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

export function showEmpty() {  // nothing to show: every map, the input and the probabilities cleared
  state.data = null;
  state.empty = true;
  clearProbabilities();
  $("pred-prob").textContent = state.info && state.info.inputs.draw ? "draw something" : "choose an input";
  $("input-name").textContent = "";
  $("input-notes").textContent = "";
  for (const id of ["seen", "seen-attr", "seen-overlay"]) { const c = $(id); c.getContext("2d").clearRect(0, 0, c.width, c.height); }
  $("attr-legend").hidden = true;
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
