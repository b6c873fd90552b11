// The status line beside "Download view": the last update's numbers, or what went wrong.
import { $ } from "./dom.js";

export function setStatus(text, bad = false) {
  const s = $("status");
  s.textContent = text;
  s.classList.toggle("bad", bad);
}
