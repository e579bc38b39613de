// Colours for numbers: blue below zero, white at zero, red above (one scale per layer),
// and a grey ramp for pictures. Also the number format used everywhere on the page.

const NEG = [37, 99, 235];      // blue
const POS = [220, 38, 38];      // red

// [r, g, b] of value v on the scale −span … +span.
export function diverging(v, span) {
  const t = span > 0 ? Math.max(-1, Math.min(1, v / span)) : 0;
  const end = t < 0 ? NEG : POS;
  const a = Math.abs(t);
  return end.map((c) => Math.round(255 + (c - 255) * a));
}

export function css([r, g, b]) {
  return `rgb(${r}, ${g}, ${b})`;
}

// Text colour that stays readable on a cell of colour rgb.
export function ink([r, g, b]) {
  return 0.299 * r + 0.587 * g + 0.114 * b < 140 ? "#fff" : "#1f2937";
}

// The largest |v| of a nested array: the half-width of its colour scale.
export function span(values) {
  let m = 0;
  const visit = (v) => (Array.isArray(v) ? v.forEach(visit) : (m = Math.max(m, Math.abs(v))));
  visit(values);
  return m;
}

// Draw a 2-D array (rows of numbers) into a canvas, one canvas pixel per value;
// CSS scales it up with sharp edges. gray: 0 black … 1 white; otherwise diverging.
export function drawMap(canvas, rows, scale, { gray = false } = {}) {
  const h = rows.length, w = rows[0].length;
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(w, h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v = rows[y][x];
      const rgb = gray ? [0, 0, 0].map(() => Math.round(255 * Math.max(0, Math.min(1, v)))) : diverging(v, scale);
      const i = 4 * (y * w + x);
      img.data.set([...rgb, 255], i);
    }
  }
  ctx.putImageData(img, 0, 0);
}

// A number as the page shows it: fixed decimals, a true minus sign avoided for easy copying.
export function fmt(v, digits = 3) {
  if (v === null || v === undefined) return "–";
  const s = Number(v).toFixed(digits);
  return s === `-${(0).toFixed(digits)}` ? (0).toFixed(digits) : s;
}
