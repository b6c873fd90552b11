// The softmax step beside the probabilities: after each answer, POST /api/explain for the
// predicted class gives every class's logit z and e^(z − max); each probability row then
// shows its logit, and a line says how they become probabilities. A click on a class row
// opens its arithmetic panel (explain.js).
import * as api from "./api.js";
import { $, el } from "./dom.js";
import { openExplain } from "./explain.js";
import { state } from "./state.js";
import { inputFields } from "./updates.js";

let asked = 0;
let logits = null;

function z(v) { return Math.abs(v) >= 1e4 ? v.toExponential(1) : v.toFixed(2); }

export function paintLogits() {  // after drawProbabilities has made the rows
  const rows = [...$("probs").children];
  $("probs").classList.toggle("with-logits", !!logits);
  if (!logits || !state.data || !state.data.probabilities) return;
  const many = state.data.probabilities.length > rows.length;
  rows.forEach((row, n) => {
    const i = many ? state.info.classes.indexOf(row.querySelector(".cls").textContent) : n;
    let s = row.querySelector(".z");
    if (!s) { s = el("span", { class: "z" }); row.append(s); }
    s.textContent = i >= 0 && i < logits.length ? z(logits[i]) : "";
    s.title = "the class score (logit) before softmax";
    row.onclick = () => openExplain("softmax", [i], $("probs"));
    row.classList.add("clickable");
  });
  $("softmax-note").replaceChildren("logits → softmax: p = e", el("sup", { text: "z" }), " ÷ Σ e", el("sup", { text: "z" }),
    ` (the largest logit ${z(Math.max(...logits))} wins) · click a class for its numbers`);
}

export function askLogits() {
  const d = state.data;
  if (!d || !d.probabilities || !state.info.scores_layer) { logits = null; $("softmax-note").textContent = ""; return; }
  const n = ++asked;
  const body = inputFields({ layer: "softmax", index: d.prediction });
  delete body.keep;
  api.explain(body).then((e) => { if (n === asked) { logits = e.inputs; paintLogits(); } })
    .catch(() => { if (n === asked) { logits = null; $("softmax-note").textContent = ""; } });
}

export function initSoftmax() {
  $("probs").after(el("div", { id: "softmax-note", class: "muted small" }));
}
