// View 2, one unit's arithmetic. The server (POST /api/unit, the same image again) returns the
// window the unit reads on every input channel, the kernel, the products and their sum; this
// module lays them out: value = Σ window · kernel + bias, then the activation. For a pooling
// layer: the window and what max, average, sum, min and L2 pooling make of it.

import { postImage } from "./api.js";
import { css, diverging, fmt, ink, span } from "./colors.js";

const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};

// A matrix as a table of coloured cells, each with its number.
function matrix(rows, scale, { digits = 2, padded = null, label = "" } = {}) {
  const t = el("table", "matrix");
  if (label) t.setAttribute("aria-label", label);
  rows.forEach((row, i) => {
    const tr = el("tr");
    row.forEach((v, j) => {
      const td = el("td", "", fmt(v, digits));
      const rgb = diverging(v, scale);
      td.style.background = css(rgb);
      td.style.color = ink(rgb);
      if (padded && padded[i][j]) td.classList.add("pad");
      tr.append(td);
    });
    t.append(tr);
  });
  return t;
}

// The layer's input plane with its padding ring, the window's taps and the next window
// (one stride to the right, dashed): where stride and padding show.
function inputPicture(plane, u, scale, target) {
  const [top, bottom, left, right] = u.padding;
  const H = plane.length, W = plane[0].length;
  const rows = H + top + bottom, cols = W + left + right;
  const z = Math.max(3, Math.min(14, Math.floor(target / Math.max(rows, cols))));
  const canvas = el("canvas", "unit-input");
  canvas.width = cols * z;
  canvas.height = rows * z;
  const c = canvas.getContext("2d");
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < cols; x++) {
      const iy = y - top, ix = x - left;
      const inside = iy >= 0 && iy < H && ix >= 0 && ix < W;
      c.fillStyle = inside ? css(diverging(plane[iy][ix], scale)) : (x + y) % 2 ? "#e5e7eb" : "#f3f4f6";
      c.fillRect(x * z, y * z, z, z);
    }
  }
  const [kh, kw] = u.kernel_size, [dh, dw] = u.dilation, [, sw] = u.stride;
  const box = (y0, x0, style, dash) => {
    c.strokeStyle = style;
    c.lineWidth = 2;
    c.setLineDash(dash);
    c.strokeRect(x0 * z + 1, y0 * z + 1, ((kw - 1) * dw + 1) * z - 2, ((kh - 1) * dh + 1) * z - 2);
  };
  const y0 = u.rows[0] + top, x0 = u.cols[0] + left;
  if (x0 + sw + (kw - 1) * dw < cols) box(y0, x0 + sw, "#6b7280", [4, 3]);       // the next window
  box(y0, x0, "#111827", []);
  c.setLineDash([]);
  c.fillStyle = "rgba(250, 204, 21, 0.35)";                                   // the taps themselves
  for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) c.fillRect((x0 + j * dw) * z, (y0 + i * dh) * z, z, z);
  return canvas;
}

function geometry(u) {
  const [kh, kw] = u.kernel_size, [sh, sw] = u.stride, [t, b, l, r] = u.padding, [dh, dw] = u.dilation;
  const pad = t === b && l === r && t === l ? `${t}` : `top ${t}, bottom ${b}, left ${l}, right ${r}`;
  const parts = [`window ${kh}×${kw}`, `stride ${sh === sw ? sh : `${sh}×${sw}`}`, `padding ${pad}`];
  if (dh !== 1 || dw !== 1) parts.push(`dilation ${dh}×${dw}`);
  const rows = `${u.rows[0]}–${u.rows[u.rows.length - 1]}`, cols = `${u.cols[0]}–${u.cols[u.cols.length - 1]}`;
  return `${parts.join(" · ")}: unit (${u.y}, ${u.x}) reads rows ${rows} and columns ${cols} of its ` +
    `${u.input_shape.join("×")} input (rows y·${sh} − ${t} + i, columns x·${sw} − ${l} + j).`;
}

const SHOWN = 16;          // input channels whose products are laid out; the sum covers them all

function convTerms(u) {
  const wrap = el("div", "terms");
  const ws = span(u.window), ks = span(u.kernel), ps = span(u.products);
  if (u.window.length > SHOWN) {
    wrap.append(el("p", "muted", `The first ${SHOWN} of the ${u.window.length} input channels this map reads; ` +
      `the sum below covers all of them.`));
  }
  u.window.slice(0, SHOWN).forEach((win, c) => {
    const row = el("div", "term");
    const ch = u.channels[c];
    row.append(el("div", "term-label", u.input_shape[0] > 1 ? `input channel ${ch}` : "input"));
    const eq = el("div", "term-eq");
    eq.append(
      figure(matrix(win, ws, { padded: u.padded, label: `window, channel ${ch}` }), "window"),
      el("span", "op", "×"),
      figure(matrix(u.kernel[c], ks, { label: `kernel, channel ${ch}` }), `kernel [${u.channel}, ${ch}]`),
      el("span", "op", "="),
      figure(matrix(u.products[c], ps, { label: `products, channel ${ch}` }), "products"),
      el("span", "op", "→"),
      el("span", "channel-sum", `Σ ${fmt(u.channel_sums[c], 4)}`));
    row.append(eq);
    wrap.append(row);
  });
  return wrap;
}

function figure(content, caption) {
  const f = el("figure", "mfig");
  f.append(content, el("figcaption", "", caption));
  return f;
}

// A number of the result line, marked for the reader (and for tests).
function marked(text, id) {
  const b = el("b", "", text);
  b.dataset.testid = id;
  return b;
}

// value = Σ + bias → activation.
function convTotal(u) {
  const line = el("div", "total");
  const n = u.products.length * u.kernel_size[0] * u.kernel_size[1];
  line.append(el("span", "", `Σ of the ${n} products `), marked(fmt(u.sum, 4), "unit-sum"),
    el("span", "", " + bias "), marked(fmt(u.bias, 4), "unit-bias"), el("span", "", " = "),
    marked(fmt(u.value, 4), "unit-value"));
  return activated(line, u);
}

function poolTotal(u) {
  const line = el("div", "total");
  line.append(el("span", "", `${u.pool} pooling gives `), marked(fmt(u.value, 4), "unit-value"));
  return activated(line, u);
}

function activated(line, u) {
  if (u.activation && u.activation !== "none") {
    line.append(el("span", "", ` → ${u.activation} → `), marked(fmt(u.after_activation, 4), "unit-after"));
  }
  return line;
}

// The value the overview's forward pass returned for this unit, beside the one computed here.
function check(u, fromForward) {
  const p = el("p", "check");
  if (fromForward !== null) {
    const ok = Math.abs(fromForward - u.value) < 1e-4;
    p.textContent = `${ok ? "✓" : "✗"} the forward pass gave ${u.layer}[${u.channel}, ${u.y}, ${u.x}] = ${fmt(fromForward, 4)}`;
    p.classList.toggle("bad", !ok);
  }
  return p;
}

const POOLS = ["max", "average", "sum", "min", "L2"];

function poolTerms(u) {
  const wrap = el("div", "pool-view");
  wrap.append(figure(matrix(u.window, span(u.window), { padded: u.padded, label: "window" }), `window of channel ${u.channel}`));
  const cards = el("div", "pool-cards");
  for (const name of POOLS) {
    const card = el("div", name === u.pool ? "pool-card this" : "pool-card");
    card.append(el("span", "pool-name", name), el("span", "pool-value", fmt(u.results[name], 4)));
    if (name === u.pool) card.append(el("span", "pool-this", "this layer"));
    cards.append(card);
  }
  wrap.append(cards);
  return wrap;
}

export async function showUnit(body, blob, asIs, sel, fromForward) {
  const q = new URLSearchParams({ layer: sel.layer, channel: sel.channel, y: sel.y, x: sel.x });
  if (asIs) q.set("as_is", "1");
  let u;
  try {
    u = await postImage(`/api/unit?${q}`, blob);
  } catch (err) {
    body.replaceChildren(el("p", "message error", err.message));
    return;
  }
  const head = el("div", "unit-head");
  head.append(el("h3", "", `${u.layer} · channel ${u.channel} · unit (${u.y}, ${u.x})`), el("p", "muted", geometry(u)));
  const inputs = el("div", "unit-inputs");
  const planes = (u.kind === "conv" ? u.input : [u.input]).slice(0, SHOWN);
  const names = u.kind === "conv" ? u.channels : [u.channel];
  const scale = span(planes);
  const target = planes.length > 1 ? 140 : 224;            // px: several channels get smaller pictures
  planes.forEach((plane, c) => inputs.append(figure(inputPicture(plane, u, scale, target),
    u.input_shape[0] > 1 ? `input channel ${names[c]}` : "input")));
  const legend = el("p", "legend muted", "Yellow: the taps of this window; solid frame: this window; dashed: the next one, " +
    "one stride on; grey checks: padding (" + (u.kind === "pool" ? "never chosen by max or min; zeros for " +
    "average, sum and L2)" : "zeros)"));
  const parts = [head, inputs, legend];
  if (u.kind === "conv") parts.push(convTerms(u), convTotal(u), check(u, fromForward));
  else parts.push(poolTerms(u), poolTotal(u), check(u, fromForward));
  body.replaceChildren(...parts);
}
