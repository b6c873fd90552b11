// "Download view": the page as it is now, redrawn on one 1000 px wide PNG (title and
// settings, the input with its overlay, the probabilities, every layer card shown), and a
// JSON sidecar saying what it shows (model, checkpoint, preprocessing, input, settings,
// each layer's channels and colour range), saved under one timestamped name.
import { $, el } from "./dom.js";
import { fmt, pct, short } from "./format.js";
import { attributionWords } from "./overlay.js";
import { probRows } from "./prediction.js";
import { inputLabel } from "./seen.js";
import { layerText, seenSize } from "./spec.js";
import { state } from "./state.js";

export function downloadView() {
  const d = state.data;
  if (!d) return;
  const W = 1000, M = 20;
  const [sw, sh] = seenSize(state.info.spec.input_shape);
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
  const verdict = d.probabilities ? ` → ${short(d.label)} (${pct(d.probabilities[d.prediction])})` : "";
  x.fillText(`convsee · ${inputLabel()}${verdict}`, M, 32);
  x.font = "13px sans-serif"; x.fillStyle = "#6e6e78";
  x.fillText(`${state.info.model} · ${state.info.checkpoint || "no checkpoint"} · scale ${$("scale").value} · blur ${$("blur").value || "off"} · colormap ${$("cmap").value}`, M, 54);
  x.drawImage($("seen"), M, 70, sw, sh);
  if (d.attribution) {
    x.drawImage($("seen-attr"), M, 70, sw, sh);
    const lg = $("attr-legend");
    x.fillStyle = "#14141e"; x.font = "12px sans-serif";
    if (d.attribution.none) x.fillText(d.attribution.none, M, 88 + sh);  // nothing drawn: said
    else {
      x.drawImage(lg.querySelector("canvas"), M, 78 + sh, 120, 10);
      x.fillText(`0 … ${fmt(d.attribution.max)}`, M + 126, 88 + sh);
    }
    x.fillText(attributionWords(d.attribution), M, 106 + sh);
  }
  const px0 = M + Math.max(sw, 200) + 30;
  x.font = "13px sans-serif";
  rows.forEach(([i, p], r) => {
    x.fillStyle = i === d.prediction ? "#d62728" : "#5a78c8";
    x.fillRect(px0, 74 + r * 18, 300 * p + 1, 12);
    x.fillStyle = "#14141e";
    x.fillText(`${short(state.info.classes[i] ?? i)}  ${pct(p)}`, px0 + 310, 85 + r * 18);
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

// convsee_version, model, checkpoint, checkpoint_sha256, checkpoint_test_accuracy and
// preprocess are the header of the Python sidecar (draw/render.py `sidecar`), read from
// /api/info; the rest describe this view.
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
      quantity: d.attribution.quantity, max: d.attribution.max, colormap: "inferno", range: [0, d.attribution.max], none: d.attribution.none || "" } : null,
    layers: state.shown.filter((n) => d.layers[n]).map((n) => {
      const ld = d.layers[n], card = state.cards[n];
      return { name: n, shape: ld.shape, channels: ld.channels, order: ld.order, page: ld.page,
        shown: card.pagerLabel.textContent, min: ld.min, max: ld.max, reference: ld.reference,
        colour_range: card.range, thumbnail_factor: ld.factor ?? 1 };
    }),
    date: new Date().toISOString(),
  };
}

export function initDownload() { $("download").onclick = downloadView; }

function save(blob, name) {
  const a = el("a", { href: URL.createObjectURL(blob), download: name });
  document.body.append(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}
