// The page's plain words: a short hint under each control (scale, blur, colormap, overlay)
// and a "how to read this page" panel that opens and closes. The layer cards' own sentences
// come from /api/info's layer_words (web/explain_api.py) and are set where cards are built.
import { $, el } from "./dom.js";

export const HINTS = {
  scale: "which numbers the colours span: the layer's usual range, this input's, or each map's own",
  blur: "smooths the maps a little before they are coloured, so that shapes stand out",
  attr: "colours the input by how much each pixel decided the prediction",
  cmap: "the colours: blue–white–red for signed values (white is 0), dark–bright for non-negative ones",
};

// "How to read this page", in words that fit the served model: its input (a drawing or a
// photo, grey or colour, its size and normalisation), the kinds of layers it has, and how
// many classes its softmax spreads over. Only what the model has is explained.
export function howTo(info) {
  const [c, h, w] = info.spec.input_shape;
  const types = new Set(info.spec.layers.map((L) => L.type));
  const has = (re) => [...types].some((t) => re.test(t));
  const pre = info.preprocess || {};
  const norm = pre.mean ? `, then normalised: minus the mean ${fmtList(pre.mean)}, divided by the std ${fmtList(pre.std)}` : "";
  const colour = c === 1 ? "one grey channel" : c === 3 ? "three channels (red, green, blue)" : `${c} channels`;
  const input = info.inputs.draw && info.inputs.digit_form
    ? `draw a digit (or pick a sample): the model sees it as the small picture beside the prediction, ${w}×${h} numbers from 0 (black) to 1 (white)${norm}.`
    : `drop, paste or choose an image${info.inputs.samples.length ? " (or pick a sample)" : ""}: the model sees it as the picture beside the prediction, ${w}×${h} pixels in ${colour}, each from 0 to 1${norm}.`;
  const k = info.classes.length;
  const out = [
    ["The input", input],
    ["A layer card", "one row of maps per layer, in the order the model computes them. Each map is one channel: the output of one kernel (a small grid of learned weights) slid over the layer's input. Red: a positive value; blue: negative; white: 0."],
    ["Convolution", "each pixel of a conv map is a weighted sum: the kernel times the window of the input under it, added up, plus a bias. Click any map pixel to see that sum with its numbers; arrow keys slide the window."],
  ];
  const act = [];
  if (has(/ReLU/)) act.push("ReLU sets negatives to 0 (the blue disappears)");
  if (has(/GELU|SiLU|Swish|Hardswish|Tanh|Sigmoid/)) act.push("smooth activations (GELU, SiLU, ...) squash negatives towards 0 instead");
  if (has(/MaxPool/)) act.push("max pooling keeps the largest value of each window, so the maps get smaller");
  if (has(/AvgPool|AdaptiveAvg/)) act.push("average pooling takes each window's mean (a global one leaves one number per channel)");
  if (has(/BatchNorm|LayerNorm|GroupNorm/)) act.push("normalisation layers shift and scale each channel by numbers learnt in training");
  if (act.length) out.push(["Between convolutions", `${act.join("; ")}.`]);
  out.push(["Channels add up", "a convolution over several maps sums over all of them: each of its kernels has one slice per input channel, and the panel shows each channel's partial sum."]);
  if (k) out.push(["The end", `${has(/Linear/) ? "fully connected layers make each unit a weighted sum of all the numbers before them; " : ""}the ${k} scores (logits) go through softmax: e to each score, divided by the sum, gives the probabilities.`]);
  out.push(["Hover", "hover a map for the input region its pixel sees (outlined on the input), the kernel, the dataset patches it likes most and the input that excites it most."]);
  return out;
}

function fmtList(v) { return Array.isArray(v) ? `(${v.map((x) => +x.toFixed(4)).join(", ")})` : String(v); }

export function initWords(info) {
  for (const [id, text] of Object.entries(HINTS)) {
    const c = $(id);
    if (!c) continue;
    c.title = text;
    const label = c.closest("label");
    if (label && !label.querySelector(".control-hint")) label.append(el("span", { class: "control-hint", text }));
  }
  const body = el("div", { class: "how-body" }, ...howTo(info).map(([t, text]) => el("p", {}, el("b", { text: `${t}: ` }), text)));
  const how = el("details", { id: "how", class: "how" }, el("summary", { text: "How to read this page" }), body);
  document.querySelector("header").append(how);
}
