// convsee live page: an input in, every layer of the model out. Plain JS modules, no build
// step. This entry module wires the others together and starts the page; each of them owns
// one part (see its header). The page builds itself from /api/info (the model's
// description): no layer names or channel counts are written here. Text from the server
// (class names, layer names) only ever goes into the page through textContent, never as
// markup.
import * as api from "./api.js";
import { buildControls } from "./controls.js";
import { $ } from "./dom.js";
import { initDownload } from "./download.js";
import { afterAnswer, initExplain } from "./explain.js";
import { initPad, redraw, takeBase } from "./draw/canvas.js";
import { buildInputs, initInputs, setNamed } from "./inputs.js";
import { arrange, notesTitle } from "./layout.js";
import { buildPicker, syncCards } from "./maps.js";
import { buildPlayground } from "./playground.js";
import { buildProbabilities } from "./prediction.js";
import { render, showEmpty } from "./render.js";
import { askLogits, initSoftmax, paintLogits } from "./softmax.js";
import { seenSize } from "./spec.js";
import { state } from "./state.js";
import { initTooltip } from "./tooltip.js";
import { markDirty, onAnswer } from "./updates.js";
import { initWords } from "./words.js";

onAnswer(() => { takeBase(); render(); notesTitle(); paintLogits(); askLogits(); afterAnswer(); }, showEmpty);
initPad(markDirty);
initInputs();
initTooltip();
initDownload();
initExplain();
initSoftmax();

async function init() {
  const info = await api.info();
  state.info = info;
  for (const L of info.spec.layers) state.layers[L.name] = L;
  const acc = info.test_accuracy ? ` · test accuracy ${(info.test_accuracy * 100).toFixed(2)}%` : "";
  $("model-info").textContent = `${info.model}${info.checkpoint ? ` · ${info.checkpoint}` : ""}${acc} · input ${info.preprocess_text} · convsee ${info.convsee_version}`;
  const [dw, dh] = seenSize(info.spec.input_shape);
  $("seen-wrap").style.width = `${dw}px`; $("seen-wrap").style.height = `${dh}px`;
  initWords(info);
  buildControls(info);
  buildInputs(info);
  arrange(info);
  buildPicker();
  redraw();
  state.shown = (info.page_layers || info.default_layers).slice();  // page_layers: LeNet-5's ReLUs too
  syncCards();
  buildProbabilities(info);
  buildPlayground(info);
  const first = info.inputs.samples.find((s) => s.name === "sample:3") || info.inputs.samples[0];
  if (first) setNamed(first.name); else showEmpty();
}
init();
