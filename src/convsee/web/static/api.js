// Talking to the server: its JSON answers, POST /api/activations and the binary frame it
// answers with, and the base64 tiles of /api/views. Errors come back as Error(the server's
// one-sentence message). Nothing here reads or changes the page.

async function getJSON(url) {
  const r = await fetch(url);
  const j = await r.json();
  if (!r.ok) throw new Error(j.error || r.statusText);
  return j;
}

export function info() { return getJSON("/api/info"); }

export function randomSample() { return getJSON("/api/sample/random"); }

export function views(layer, unit) {
  return getJSON(`/api/views?layer=${encodeURIComponent(layer)}&unit=${unit}`);
}

export async function activations(body) {  // body: a JSON string; the answer's ArrayBuffer
  const r = await fetch("/api/activations", { method: "POST", headers: { "Content-Type": "application/json" }, body });
  if (!r.ok) {
    const j = await r.json().catch(() => ({}));
    throw new Error(j.error || r.statusText);
  }
  return r.arrayBuffer();
}

// server.encode_frame: "CVS1", the JSON header's length (uint32 LE), the header, then the
// 8-bit blobs it points to ({offset, length}): the input, each layer's values, the overlay
export function decodeFrame(buf) {
  const magic = String.fromCharCode(...new Uint8Array(buf, 0, 4));
  if (magic !== "CVS1") throw new Error("the server's answer is not a convsee frame");
  const n = new DataView(buf).getUint32(4, true);
  const head = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 8, n)));
  const blob = (ref) => new Uint8Array(buf, 8 + n + ref.offset, ref.length);
  head.input = blob(head.input);
  for (const l of Object.values(head.layers)) l.values = blob(l.values);
  if (head.attribution) head.attribution.map = blob(head.attribution.map);
  return head;
}

export function b64bytes(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// POST /api/explain: how one value was computed (run/explain.py's Explanation as JSON)
export async function explain(body) {
  const r = await fetch("/api/explain", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const j = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(j.error || r.statusText);
  return j;
}
