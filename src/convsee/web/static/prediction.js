// The prediction: the top class and a bar per class (every class up to MANY_CLASSES, else
// the TOP_CLASSES most probable), or a note when the model's output is not class scores.
import { $, el } from "./dom.js";
import { pct, short } from "./format.js";
import { state } from "./state.js";

const MANY_CLASSES = 20;  // more classes than this: the top TOP_CLASSES are listed
const TOP_CLASSES = 10;

export function buildProbabilities(info) {
  if (info.classes.length && info.classes.length <= MANY_CLASSES) {  // rows exist from the start
    $("probs").replaceChildren(...info.classes.map((name) => el("div", { class: "prob" },
      el("span", { class: "cls", text: short(name), title: name }), el("span", { class: "bar" }, el("i", { style: { width: "0" } })),
      el("span", { class: "v", text: "–" }))));
  }
}

export function probRows(d) {  // [[class index, probability], ...] in the order listed
  const p = d.probabilities;
  const idx = p.map((v, i) => i);
  if (p.length <= MANY_CLASSES) return idx.map((i) => [i, p[i]]);
  idx.sort((a, b) => p[b] - p[a]);
  return idx.slice(0, TOP_CLASSES).map((i) => [i, p[i]]);
}

export function drawProbabilities(d) {
  const probs = $("probs");
  if (d.probabilities === null) {
    $("pred-label").textContent = "–";
    $("pred-prob").textContent = "the model's output is not class scores";
    probs.replaceChildren();
    return;
  }
  $("pred-label").textContent = short(d.label);
  $("pred-label").title = d.label;
  $("pred-label").classList.toggle("long", d.label.length > 2);
  $("pred-prob").textContent = pct(d.probabilities[d.prediction]);
  const rows = probRows(d);
  probs.replaceChildren(...rows.map(([i, p]) => {
    const name = state.info.classes[i] ?? String(i);
    return el("div", { class: "prob" + (i === d.prediction ? " top" : "") },
      el("span", { class: "cls", text: short(name), title: name }),
      el("span", { class: "bar" }, el("i", { style: { width: `${(p * 100).toFixed(1)}%` } })),
      el("span", { class: "v", text: pct(p) }));
  }));
  $("probs-note").textContent = d.probabilities.length > MANY_CLASSES ? `top ${TOP_CLASSES} of ${d.probabilities.length} classes` : "";
}

export function clearProbabilities() {  // the rows kept, their bars and values emptied
  $("pred-label").textContent = "–";
  $("pred-label").classList.remove("long");
  for (const row of $("probs").children) {
    row.classList.remove("top");
    row.querySelector("i").style.width = "0";
    row.querySelector(".v").textContent = "–";
  }
}
