// View 3, the hyper-parameter playground. Five sliders; the server (GET /api/playground)
// convolves and pools a small example input with striate and returns the output size, the
// formula's numbers, the convolution's output and the five poolings'. The window then slides
// over the padded input, one output position at a time.

import { getJSON, throttled } from "./api.js";
import { css, diverging, fmt, ink, span } from "./colors.js";

const PARAMS = [
  // name, label, min, max, start
  ["size", "input size H", 1, 32, 7],
  ["kernel", "kernel size k", 1, 11, 3],
  ["stride", "stride s", 1, 8, 2],
  ["padding", "padding p", 0, 8, 1],
  ["dilation", "dilation d", 1, 5, 1],
];
const STEP_MS = 700;
const SVG = "http://www.w3.org/2000/svg";

const svgEl = (tag, attrs) => {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
};

export class Playground {
  constructor(root) {
    this.root = root;
    this.form = root.querySelector("#pg-controls");
    this.inputs = {};
    this.position = 0;
    this.data = null;
    this.playing = !window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    for (const [name, label, min, max, start] of PARAMS) {
      const row = document.createElement("label");
      row.className = "pg-param";
      const text = document.createElement("span");
      text.textContent = label;
      const input = Object.assign(document.createElement("input"), { type: "range", min, max, value: start, name });
      input.setAttribute("aria-label", label);
      const out = document.createElement("output");
      out.textContent = start;
      input.addEventListener("input", () => {
        out.textContent = input.value;
        this.refresh();
      });
      row.append(text, input, out);
      this.form.append(row);
      this.inputs[name] = input;
    }
    this.play = Object.assign(document.createElement("button"), { type: "button", className: "ghost small" });
    this.play.addEventListener("click", () => this.toggle());
    this.form.append(this.play);
    this.refresh = throttled(() => this.load(), 80);
    this.load();
    this.timer = setInterval(() => this.playing && this.step(1), STEP_MS);
    this.showPlay();
  }

  toggle() {
    this.playing = !this.playing;
    this.showPlay();
  }

  showPlay() {
    this.play.textContent = this.playing ? "Pause" : "Play";
  }

  values() {
    return Object.fromEntries(Object.entries(this.inputs).map(([k, i]) => [k, Number(i.value)]));
  }

  async load() {
    const v = this.values();
    try {
      this.data = await getJSON(`/api/playground?${new URLSearchParams(v)}`);
    } catch (err) {
      this.data = { error: err.message, output: null };
    }
    this.position = 0;
    this.draw();
  }

  step(by) {
    if (!this.data || !this.data.output) return;
    const [OH, OW] = this.data.output;
    this.position = (this.position + by) % (OH * OW);
    this.draw();
  }

  draw() {
    const d = this.data;
    const f = this.root.querySelector("#pg-formula");
    f.replaceChildren();
    const general = document.createElement("div");
    general.className = "formula-general";
    general.textContent = "output size = ⌊(H + 2·p − d·(k − 1) − 1) / s⌋ + 1";
    f.append(general);
    const numbers = document.createElement("div");
    numbers.className = "formula-numbers";
    if (d.output) {
      numbers.append(`${d.formula} = `);
      const out = document.createElement("output");
      out.dataset.testid = "pg-output-size";
      out.textContent = `${d.output[0]} × ${d.output[1]}`;
      numbers.append(out);
    } else {
      numbers.classList.add("error");
      numbers.textContent = `striate says: ${d.error}`;
    }
    f.append(numbers);
    this.drawInput();
    this.drawOutput();
    this.drawPools();
  }

  // The window's top-left corner in padded coordinates for output position (oy, ox): (oy·s, ox·s).
  current() {
    const [, OW] = this.data.output;
    return [Math.floor(this.position / OW), this.position % OW];
  }

  drawInput() {
    const svg = this.root.querySelector("#pg-input");
    svg.replaceChildren();
    const d = this.data;
    if (!d.input) return;
    const { size: H, padding: p, kernel: k, dilation: dil, stride: s } = d;
    const n = H + 2 * p;
    const z = Math.max(6, Math.min(30, Math.floor(300 / n)));
    svg.setAttribute("viewBox", `0 0 ${n * z} ${n * z}`);
    svg.setAttribute("width", n * z);
    svg.setAttribute("height", n * z);
    for (let y = 0; y < n; y++) {
      for (let x = 0; x < n; x++) {
        const inside = y >= p && y < p + H && x >= p && x < p + H;
        svg.append(svgEl("rect", { x: x * z, y: y * z, width: z, height: z, class: inside ? "cell" : "cell pad" }));
        if (inside && z >= 18) {
          const t = svgEl("text", { x: x * z + z / 2, y: y * z + z / 2 + 4, class: "num" });
          t.textContent = d.input[y - p][x - p];
          svg.append(t);
        }
      }
    }
    if (!d.output) return;
    const [oy, ox] = this.current();
    for (let i = 0; i < k; i++) {
      for (let j = 0; j < k; j++) {
        svg.append(svgEl("rect", { x: (ox * s + j * dil) * z, y: (oy * s + i * dil) * z, width: z, height: z, class: "tap" }));
      }
    }
    const reach = (k - 1) * dil + 1;
    svg.append(svgEl("rect", { x: ox * s * z + 1, y: oy * s * z + 1, width: reach * z - 2, height: reach * z - 2, class: "window" }));
    this.root.querySelector("#pg-input-caption").textContent =
      `input ${H}×${H}` + (p ? ` with ${p} of padding on each side (grey)` : "") + `; window reach ${reach}×${reach}`;
  }

  drawOutput() {
    const svg = this.root.querySelector("#pg-output");
    svg.replaceChildren();
    const d = this.data;
    const cap = this.root.querySelector("#pg-output-caption");
    if (!d.output) {
      cap.textContent = "no output";
      return;
    }
    const [OH, OW] = d.output;
    const z = Math.max(6, Math.min(40, Math.floor(240 / Math.max(OH, OW))));
    svg.setAttribute("viewBox", `0 0 ${OW * z} ${OH * z}`);
    svg.setAttribute("width", OW * z);
    svg.setAttribute("height", OH * z);
    const scale = span(d.conv);
    const [cy, cx] = this.current();
    for (let y = 0; y < OH; y++) {
      for (let x = 0; x < OW; x++) {
        const rgb = diverging(d.conv[y][x], scale);
        const r = svgEl("rect", { x: x * z, y: y * z, width: z, height: z, class: "cell", fill: css(rgb) });
        r.addEventListener("click", () => {
          this.position = y * OW + x;
          this.playing = false;
          this.showPlay();
          this.draw();
        });
        svg.append(r);
        if (z >= 26) {
          const t = svgEl("text", { x: x * z + z / 2, y: y * z + z / 2 + 4, class: "num", fill: ink(rgb) });
          t.textContent = d.conv[y][x];
          svg.append(t);
        }
      }
    }
    svg.append(svgEl("rect", { x: cx * z + 1, y: cy * z + 1, width: z - 2, height: z - 2, class: "window" }));
    cap.textContent = `convolution output ${OH}×${OW} (kernel: a ±1/±2 pattern); click a cell`;
  }

  drawPools() {
    const box = this.root.querySelector("#pg-pools");
    box.replaceChildren();
    const d = this.data;
    if (!d.output) return;
    const [y, x] = this.current();
    const add = (name, value, note) => {
      const card = document.createElement("div");
      card.className = "pool-card";
      const a = document.createElement("span");
      a.className = "pool-name";
      a.textContent = name;
      const b = document.createElement("span");
      b.className = "pool-value";
      b.textContent = value;
      card.append(a, b);
      if (note) card.title = note;
      box.append(card);
    };
    add(`conv at (${y}, ${x})`, fmt(d.conv[y][x], 0));
    for (const [name, out] of Object.entries(d.pools)) {
      add(`${name} pool`, out ? fmt(out[y][x], name === "average" || name === "L2" ? 2 : 0) : "n/a", d.pool_notes[name]);
    }
  }
}
