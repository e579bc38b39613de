// The drawing pad: white ink on black, like MNIST, drawn with a mouse, a pen or a finger
// (pointer events cover all three). `onInk` is called while drawing and once more when a
// stroke ends; the page sends the pad's PNG to the server (throttled) each time.

const INK = 20;                  // stroke width in pad pixels (of 280)

export class DrawingPad {
  constructor(canvas, onInk) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.onInk = onInk;
    this.inked = false;
    this.last = null;
    this.clear();
    canvas.addEventListener("pointerdown", (e) => this.down(e));
    canvas.addEventListener("pointermove", (e) => this.move(e));
    for (const type of ["pointerup", "pointercancel"]) canvas.addEventListener(type, (e) => this.up(e));
  }

  // Pointer position in the canvas's own pixels, whatever size CSS gives it on screen.
  at(e) {
    const r = this.canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * (this.canvas.width / r.width), (e.clientY - r.top) * (this.canvas.height / r.height)];
  }

  down(e) {
    e.preventDefault();
    this.canvas.setPointerCapture(e.pointerId);
    this.last = this.at(e);
    this.stroke(this.last, this.last);
  }

  move(e) {
    if (!this.last) return;
    e.preventDefault();
    const p = this.at(e);
    this.stroke(this.last, p);
    this.last = p;
  }

  up() {
    if (!this.last) return;
    this.last = null;
    this.onInk(true);
  }

  stroke(from, to) {
    const c = this.ctx;
    c.strokeStyle = "#fff";
    c.lineWidth = INK;
    c.lineCap = c.lineJoin = "round";
    c.beginPath();
    c.moveTo(...from);
    c.lineTo(...to);
    c.stroke();
    this.inked = true;
    this.onInk(false);
  }

  clear() {
    this.ctx.fillStyle = "#000";
    this.ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    this.inked = false;
  }

  // Show a picture (an <img> or bitmap) on the pad, fitted and centred; drawing goes on over it.
  show(picture) {
    this.clear();
    const { width: W, height: H } = this.canvas;
    const s = Math.min(W / picture.width, H / picture.height);
    const w = picture.width * s, h = picture.height * s;
    this.ctx.imageSmoothingEnabled = picture.width < W / 2 ? false : true;
    this.ctx.drawImage(picture, (W - w) / 2, (H - h) / 2, w, h);
    this.inked = true;
  }

  toBlob() {
    return new Promise((resolve) => this.canvas.toBlob(resolve, "image/png"));
  }
}
