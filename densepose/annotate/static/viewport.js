// A canvas that fills its container and shows image coordinates with zoom and pan:
// wheel zooms about the cursor, right- or middle-drag (or Space + drag) pans, fit() frames a rectangle.
"use strict";

class Viewport {
  constructor(canvas, draw, background = "#333") {
    this.canvas = canvas;
    this.draw = draw;
    this.background = background;
    this.scale = 1; this.ox = 0; this.oy = 0;
    this.pan = null;
    canvas.addEventListener("wheel", (ev) => {
      ev.preventDefault();
      const [ix, iy] = this.toImage(ev);
      const s = Math.min(Math.max(this.scale * Math.exp(-ev.deltaY * 0.0015), this.minScale / 4), 64);
      const [cx, cy] = this.canvasXY(ev);
      this.scale = s; this.ox = ix - cx / s; this.oy = iy - cy / s;
      this.draw();
    }, { passive: false });
    canvas.addEventListener("pointerdown", (ev) => {
      if (ev.button === 1 || ev.button === 2 || Viewport.space) {
        this.pan = this.canvasXY(ev);
        canvas.setPointerCapture(ev.pointerId);
        ev.stopImmediatePropagation();
      }
    }, true);
    canvas.addEventListener("pointermove", (ev) => {
      if (!this.pan) return;
      const [cx, cy] = this.canvasXY(ev);
      ev.stopImmediatePropagation();
      this.panBy(cx - this.pan[0], cy - this.pan[1]);
      this.pan = [cx, cy];
    }, true);
    canvas.addEventListener("pointerup", (ev) => { if (this.pan) { this.pan = null; ev.stopImmediatePropagation(); } }, true);
    canvas.addEventListener("contextmenu", (ev) => ev.preventDefault());
  }

  // match the canvas's pixel grid to its on-screen size; true if it changed (a hidden canvas keeps its size)
  resize() {
    const w = Math.floor(this.canvas.clientWidth), h = Math.floor(this.canvas.clientHeight);
    if (!w || !h) return false;
    if (this.canvas.width === w && this.canvas.height === h) return false;
    this.canvas.width = w; this.canvas.height = h;
    return true;
  }

  // frame the image rectangle [x, y, w, h] in the middle of the canvas
  fit(rect) {
    this.resize();
    this.rect = rect;
    const [x, y, w, h] = rect, cw = this.canvas.width, ch = this.canvas.height;
    this.scale = this.minScale = Math.min(cw / w, ch / h);
    this.ox = x - (cw / this.scale - w) / 2;
    this.oy = y - (ch / this.scale - h) / 2;
    this.draw();
  }

  // move the picture by (dx, dy) canvas pixels
  panBy(dx, dy) {
    this.ox -= dx / this.scale; this.oy -= dy / this.scale;
    this.draw();
  }

  refit() { if (this.rect) this.fit(this.rect); }

  canvasXY(ev) {
    const r = this.canvas.getBoundingClientRect();
    return [(ev.clientX - r.left) * this.canvas.width / r.width, (ev.clientY - r.top) * this.canvas.height / r.height];
  }

  toImage(ev) {
    const [cx, cy] = this.canvasXY(ev);
    return [cx / this.scale + this.ox, cy / this.scale + this.oy];
  }

  // a cleared 2D context drawing in image coordinates
  begin() {
    this.resize();
    const ctx = this.canvas.getContext("2d");
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = this.background;
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    ctx.setTransform(this.scale, 0, 0, this.scale, -this.ox * this.scale, -this.oy * this.scale);
    return ctx;
  }
}
Viewport.space = false;
window.addEventListener("keydown", (ev) => { if (ev.code === "Space" && ev.target.tagName !== "INPUT") { Viewport.space = true; ev.preventDefault(); } });
window.addEventListener("keyup", (ev) => { if (ev.code === "Space") Viewport.space = false; });
