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

const HOW = [
  ["The input", "draw a digit (or pick a sample): the model sees it as the small picture beside the prediction, as numbers from 0 (black) to 1 (white)."],
  ["A layer card", "one row of maps per layer, in the order the model computes them. Each map is one channel: the output of one kernel (a small grid of learned weights) slid over the layer's input. Bright red: a large positive value; blue: negative; white: 0."],
  ["Convolution", "each pixel of a conv map is a weighted sum: the kernel times the window of the input under it, added up, plus a bias. Click any map pixel to see that sum with its numbers; arrow keys slide the window."],
  ["ReLU and pooling", "ReLU sets negatives to 0 (the blue disappears); max pooling keeps the largest value of each 2×2 block, so the maps get half as wide."],
  ["Channels add up", "a second convolution sums over all the maps before it: each of its kernels has one slice per input channel, and the panel shows each channel's partial sum."],
  ["The end", "the last layers are fully connected (each unit a weighted sum of all the numbers before it); their 10 scores (logits) go through softmax: e to each score, divided by the sum, gives the probabilities."],
  ["Hover", "hover a map for the input region its pixel sees (outlined on the input), the kernel, the dataset patches it likes most and the input that excites it most."],
];

export function initWords() {
  for (const [id, text] of Object.entries(HINTS)) {
    const c = $(id);
    if (!c) continue;
    c.title = text;
    const label = c.closest("label");
    if (label && !label.querySelector(".control-hint")) label.append(el("span", { class: "control-hint", text }));
  }
  const body = el("div", { class: "how-body" }, ...HOW.map(([t, text]) => el("p", {}, el("b", { text: `${t}: ` }), text)));
  const how = el("details", { id: "how", class: "how" }, el("summary", { text: "How to read this page" }), body);
  document.querySelector("header").append(how);
}
