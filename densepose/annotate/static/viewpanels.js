// Step 2's part views: one canvas per rendered view, each with its own zoom and pan (wheel zooms
// about the cursor; drag, right-drag or Space+drag pans). A press released without moving is a
// click: it is mapped through the view's zoom to a pixel of the rendered picture.
"use strict";

const CLICK_SLOP_PX = 4; // a press that moves farther than this is a pan, not a click

class ViewPanel {
  constructor(name, img, onClick) {
    this.name = name;
    this.img = img;
    this.mark = null; // [px, py] in picture pixels: the placed point, where it shows in this view
    this.canvas = document.createElement("canvas");
    this.canvas.id = "view-" + name;
    this.canvas.dataset.view = name;
    this.vp = new Viewport(this.canvas, () => this.draw(), "#fff");
    let press = null;
    this.canvas.addEventListener("pointerdown", (ev) => {
      if (ev.button !== 0) return;
      press = { xy: this.vp.canvasXY(ev), moved: false };
      this.canvas.setPointerCapture(ev.pointerId);
    });
    this.canvas.addEventListener("pointermove", (ev) => {
      if (!press) return;
      const [cx, cy] = this.vp.canvasXY(ev);
      if (!press.moved && Math.hypot(cx - press.xy[0], cy - press.xy[1]) < CLICK_SLOP_PX) return;
      press.moved = true;
      this.vp.panBy(cx - press.xy[0], cy - press.xy[1]);
      press.xy = [cx, cy];
    });
    this.canvas.addEventListener("pointerup", (ev) => {
      if (press && !press.moved) onClick(this.name, ...this.vp.toImage(ev));
      press = null;
    });
  }

  fit() { this.vp.fit([0, 0, this.img.naturalWidth, this.img.naturalHeight]); }

  draw() {
    const ctx = this.vp.begin(), px = 1 / this.vp.scale;
    ctx.imageSmoothingEnabled = this.vp.scale < 2; // zoomed in: show the rendered pixels as they are
    ctx.drawImage(this.img, 0, 0);
    if (!this.mark) return;
    const [x, y] = this.mark;
    ctx.beginPath();
    ctx.arc(x, y, 6 * px, 0, 2 * Math.PI);
    ctx.fillStyle = "#e00";
    ctx.fill();
    ctx.lineWidth = 2 * px;
    ctx.strokeStyle = "#fff";
    ctx.stroke();
  }

  setMark(xy) { this.mark = xy || null; this.draw(); }
}
