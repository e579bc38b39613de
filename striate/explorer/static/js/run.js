// View 5, the run: training curves from metrics.json (polled while the run still trains),
// the confusion matrix on the run's test images (click a cell for its images), and the
// first layer's kernels.

import { getJSON } from "./api.js";
import { css, diverging, drawMap, fmt, span } from "./colors.js";
import { attach } from "./tooltip.js";

const SVG = "http://www.w3.org/2000/svg";
const POLL_MS = 3000;

const svgEl = (tag, attrs = {}, text) => {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
};
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};

// One chart: epochs along x, one line per series [{key, label, cls}], hover a point for its value.
function chart(epochs, series, { title, percent }) {
  const W = 300, H = 190, L = 44, R = 12, T = 26, B = 30;
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": title });
  const values = series.flatMap((s) => epochs.map((e) => e[s.key]).filter((v) => v !== null && v !== undefined));
  let lo = Math.min(...values), hi = Math.max(...values);
  if (percent) { lo = Math.max(0, Math.floor(lo * 20) / 20); hi = 1; }
  else { lo = 0; hi = hi > 0 ? hi * 1.08 : 1; }
  const n = epochs.length;
  const x = (i) => L + (n === 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (n - 1));
  const y = (v) => T + (1 - (v - lo) / (hi - lo || 1)) * (H - T - B);
  svg.append(svgEl("text", { x: L, y: 15, class: "chart-title" }, title));
  for (let k = 0; k <= 4; k++) {
    const v = lo + ((hi - lo) * k) / 4;
    svg.append(svgEl("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
    svg.append(svgEl("text", { x: L - 6, y: y(v) + 4, class: "tick", "text-anchor": "end" },
      percent ? `${Math.round(100 * v)}%` : v.toFixed(2)));
  }
  epochs.forEach((e, i) => {
    if (n <= 12 || i % Math.ceil(n / 10) === 0) {
      svg.append(svgEl("text", { x: x(i), y: H - 10, class: "tick", "text-anchor": "middle" }, e.epoch ?? i + 1));
    }
  });
  series.forEach((s, si) => {
    const pts = epochs.map((e, i) => [x(i), e[s.key]]).filter(([, v]) => v !== null && v !== undefined);
    svg.append(svgEl("polyline", { points: pts.map(([px, v]) => `${px},${y(v)}`).join(" "), class: `line ${s.cls}` }));
    pts.forEach(([px, v], i) => {
      const dot = svgEl("circle", { cx: px, cy: y(v), r: 4, class: `dot ${s.cls}` });
      dot.dataset.tip = `epoch ${epochs[i].epoch ?? i + 1}, ${s.label}: ${percent ? `${(100 * v).toFixed(2)}%` : v.toFixed(4)}`;
      svg.append(dot);
    });
    svg.append(svgEl("text", { x: W - R - (series.length - 1 - si) * 44, y: 15, class: `legend ${s.cls}`,
      "text-anchor": "end" }, s.label));
  });
  attach(svg, (e) => e.target.dataset?.tip ?? null);
  return svg;
}

function confusionMatrix(c, classes, onCell) {
  const K = classes.length, z = 30, L = 54, T = 44;
  const W = L + K * z + 4, H = T + K * z + 4;
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, class: "confusion", role: "img", "aria-label": "confusion matrix" });
  svg.append(svgEl("text", { x: L + (K * z) / 2, y: 14, class: "axis", "text-anchor": "middle" }, "predicted class"));
  svg.append(svgEl("text", { x: 12, y: T + (K * z) / 2, class: "axis", "text-anchor": "middle",
    transform: `rotate(-90 12 ${T + (K * z) / 2})` }, "true class"));
  const rows = c.matrix.map((r) => r.reduce((a, b) => a + b, 0));
  classes.forEach((name, k) => {
    svg.append(svgEl("text", { x: L + k * z + z / 2, y: T - 8, class: "tick", "text-anchor": "middle" }, name.slice(0, 4)));
    svg.append(svgEl("text", { x: L - 6, y: T + k * z + z / 2 + 4, class: "tick", "text-anchor": "end" }, name.slice(0, 6)));
  });
  c.matrix.forEach((row, t) => row.forEach((count, p) => {
    const share = rows[t] ? count / rows[t] : 0;
    const fill = t === p ? css(diverging(-Math.sqrt(share), 1)) : css(diverging(Math.sqrt(share), 0.5));
    const g = svgEl("g", { class: count ? "cm-cell clickable" : "cm-cell" });
    const rect = svgEl("rect", { x: L + p * z, y: T + t * z, width: z - 1, height: z - 1, fill });
    const tip = `true ${classes[t]}, predicted ${classes[p]}: ${count} of ${rows[t]} (${(100 * share).toFixed(1)}%)`;
    rect.dataset.tip = tip;
    g.append(rect);
    if (count) {
      const text = svgEl("text", { x: L + p * z + z / 2, y: T + t * z + z / 2 + 4, "text-anchor": "middle",
        class: share > 0.5 ? "count light" : "count" }, count);
      text.dataset.tip = tip;
      g.append(text);
      g.addEventListener("click", () => onCell(t, p, count));
    }
    svg.append(g);
  }));
  attach(svg, (e) => e.target.dataset?.tip ?? null);
  return svg;
}

function kernelsView(k) {
  const wrap = el("div", "kernel-grid");
  const [K, C, kh] = k.shape;
  const scale = span(k.values);
  const z = Math.max(8, Math.floor(60 / kh));
  for (let o = 0; o < K; o++) {
    for (let c = 0; c < C; c++) {
      const f = el("figure", "kernel-fig");
      const canvas = el("canvas", "map");
      drawMap(canvas, k.values[o][c], scale);
      canvas.style.width = canvas.style.height = `${kh * z}px`;
      attach(canvas, (e) => {
        const r = canvas.getBoundingClientRect();
        const i = Math.min(kh - 1, Math.floor(((e.clientY - r.top) / r.height) * kh));
        const j = Math.min(kh - 1, Math.floor(((e.clientX - r.left) / r.width) * kh));
        return `kernel ${o}${C > 1 ? `, channel ${c}` : ""} [${i}, ${j}] = ${fmt(k.values[o][c][i][j])}`;
      });
      f.append(canvas, el("figcaption", "", C > 1 ? `${o}.${c}` : `${o}`));
      wrap.append(f);
    }
  }
  return wrap;
}

export class RunView {
  constructor(root) {
    this.root = root;
    this.epochs = -1;
  }

  async start(info) {
    this.info = info;
    this.render(info);
    if (info.state !== "finished") this.timer = setInterval(() => this.poll(), POLL_MS);
  }

  async poll() {
    const info = await getJSON("/api/run").catch(() => null);
    if (!info || !info.available) return;
    this.render(info);
    if (info.state === "finished") clearInterval(this.timer);
  }

  status(info) {
    const m = info.metrics;
    const box = this.root.querySelector("#run-status");
    const state = info.state === "finished" ? "finished" : "training…";
    const n = (m.epochs || []).length;
    const parts = [`${info.title || info.name}`, `${n} epoch${n === 1 ? "" : "s"}`];
    if (m.final_test_acc !== undefined) parts.push(`test accuracy ${(100 * m.final_test_acc).toFixed(2)}%`);
    if (m.total_seconds) parts.push(`${m.total_seconds.toFixed(0)} s of training`);
    box.replaceChildren(el("span", `badge ${info.state === "finished" ? "done" : "live"}`, state), el("span", "run-summary", parts.join(" · ")));
    for (const p of info.pictures) {
      const a = el("a", "muted small", p);
      a.href = `/run/${p}`;
      a.target = "_blank";
      box.append(a);
    }
  }

  async render(info) {
    this.status(info);
    const epochs = info.metrics.epochs || [];
    const curves = this.root.querySelector("#curves");
    if (epochs.length) {
      curves.replaceChildren(
        chart(epochs, [{ key: "train_loss", label: "train", cls: "train" }, { key: "test_loss", label: "test", cls: "test" }],
          { title: "loss per epoch" }),
        chart(epochs, [{ key: "train_acc", label: "train", cls: "train" }, { key: "test_acc", label: "test", cls: "test" }],
          { title: "accuracy per epoch", percent: true }));
    } else {
      curves.replaceChildren(el("p", "empty", "No epoch finished yet."));
    }
    if (epochs.length === this.epochs) return;
    this.epochs = epochs.length;                 // new weights: the matrix and the kernels change
    const confusion = this.root.querySelector("#confusion");
    if (!confusion.querySelector("svg")) {
      confusion.replaceChildren(el("p", "empty", "Classifying the test images with these weights…"));
    }
    try {
      const c = await getJSON("/api/confusion");
      confusion.replaceChildren(confusionMatrix(c, info.classes, (t, p, n) => this.examples(c, info.classes, t, p, n)));
    } catch (err) {
      confusion.replaceChildren(el("p", "empty", err.message));
    }
    const { kernels } = await getJSON("/api/kernels");
    if (kernels) {
      this.root.querySelector("#kernels-caption").textContent =
        `First-layer kernels: ${kernels.layer}, ${kernels.shape.join("×")}`;
      this.root.querySelector("#kernels").replaceChildren(kernelsView(kernels));
    }
  }

  examples(c, classes, t, p, n) {
    const box = this.root.querySelector("#cell-examples");
    const ids = c.examples[t][p];
    const head = el("h3", "", `True ${classes[t]}, predicted ${classes[p]}: ${n} test image${n === 1 ? "" : "s"}` +
      (ids.length < n ? ` (the first ${ids.length})` : ""));
    const thumbs = el("div", "thumbs");
    for (const i of ids) {
      const img = el("img", "thumb");
      img.src = `/api/test-images/${i}.png`;
      img.alt = `test image ${i}`;
      img.title = `test image ${i}`;
      thumbs.append(img);
    }
    box.replaceChildren(head, thumbs);
  }
}
