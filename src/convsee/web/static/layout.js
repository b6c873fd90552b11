// Keeping the prediction in sight while drawing: for a model that takes drawings, the pad
// stays on top of the side panel, the model's view and the prediction right under it, and
// the other inputs (files, samples, a random test image) move to a card below them. The
// side panel is sticky (style.css): at 1280×900 the pad, the model's view and the
// prediction fit on screen together; on a phone the model's view sticks to the bottom.
import { $, el } from "./dom.js";

export function arrange(info) {
  const seen = $("seen").closest(".card");
  seen.classList.add("seen-card");
  // a large picture of the input (an RGB model's 224 px) leaves no room beside it: the
  // prediction goes under it (on a phone the picture is small and stays beside it)
  seen.classList.toggle("stacked", parseInt($("seen-wrap").style.width, 10) > 180);
  if (!info.inputs.draw) return;
  const more = el("div", { class: "card more-inputs", id: "more-inputs" }, el("h2", { text: "Or start from an image" }));
  for (const node of [$("drop"), $("samples"), $("random").closest(".row")]) more.append(node);
  seen.after(more);
}

// the input's notes are clamped to two lines beside the prediction: all of them on hover
export function notesTitle() { $("input-notes").title = $("input-notes").textContent; }
