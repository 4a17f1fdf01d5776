// Step 1's polygons: every polygon drawn since the person was opened stays editable. Each one is
// kept with its part and the pixels it wrote (with what lay under them), so an edit lifts it off
// the labels (leaving what later polygons of the same part painted) and rasters it again, under the
// current "keep other parts" rule. Click a polygon to select it, drag its corners, Delete removes the
// selected corner (a triangle that loses one is removed whole).
"use strict";

const POLY_HIT_PX = 8; // screen pixels: how near a corner or an edge counts as on it

// even-odd scanline fill at pixel centres; returns the pixels written: (old value + 1), 0 = untouched
function fillPolygon(points, value, part) {
  const owned = new Uint8Array(S * S);
  for (let y = 0; y < S; y++) {
    const cy = y + 0.5, xs = [];
    for (let i = 0; i < points.length; i++) {
      const [x0, y0] = points[i], [x1, y1] = points[(i + 1) % points.length];
      if ((y0 <= cy) !== (y1 <= cy)) xs.push(x0 + (cy - y0) * (x1 - x0) / (y1 - y0));
    }
    xs.sort((a, b) => a - b);
    for (let k = 0; k + 1 < xs.length; k += 2) {
      for (let x = Math.max(0, Math.ceil(xs[k] - 0.5)); x <= Math.min(S - 1, Math.floor(xs[k + 1] - 0.5)); x++) {
        const i = y * S + x;
        if (!writable(i, value, part)) continue;
        owned[i] = state.labels[i] + 1;
        state.labels[i] = value;
      }
    }
  }
  return owned;
}

function rasterPolygon(poly) { return { ...poly, owned: fillPolygon(poly.points, poly.value, poly.part) }; }

// undo polygon k's fill where its value still stands and no later polygon painted the same value there
function liftPolygon(k) {
  const poly = state.polys[k], later = state.polys.slice(k + 1), labels = state.labels;
  for (let i = 0; i < S * S; i++) {
    if (!poly.owned[i] || labels[i] !== poly.value) continue;
    if (!later.some((q) => q.owned[i] && q.value === poly.value)) labels[i] = poly.owned[i] - 1;
  }
}

// polygon k gets new corners (or, with null, is removed): lifted, then rastered again on top
function editPolygon(k, points) {
  liftPolygon(k);
  if (points) state.polys[k] = rasterPolygon({ ...state.polys[k], points });
  else state.polys.splice(k, 1);
}

function addPolygon(points) {
  pushHistory();
  const value = state.tool === "erase" ? 0 : state.part;
  state.polys.push(rasterPolygon({ points, value, part: state.part }));
  state.selPoly = state.polys.length - 1;
  state.selCorner = -1;
  changed();
}

function insidePolygon(points, x, y) {
  let inside = false;
  for (let i = 0, j = points.length - 1; i < points.length; j = i++) {
    const [xi, yi] = points[i], [xj, yj] = points[j];
    if ((yi > y) !== (yj > y) && x < xj + (y - yj) * (xi - xj) / (yi - yj)) inside = !inside;
  }
  return inside;
}

function segmentDistance([x, y], [x0, y0], [x1, y1]) {
  const dx = x1 - x0, dy = y1 - y0, len = dx * dx + dy * dy;
  const t = len ? Math.max(0, Math.min(1, ((x - x0) * dx + (y - y0) * dy) / len)) : 0;
  return Math.hypot(x - x0 - t * dx, y - y0 - t * dy);
}

// grid units per screen pixel, along x (the box grid is stretched to the person box)
function gridPerScreenPx() { return S / state.task.bbox[2] / state.vpParts.scale; }

// the topmost polygon under grid point p (inside, or near an edge), or -1
function polygonAt(p) {
  const tol = POLY_HIT_PX * gridPerScreenPx();
  for (let k = state.polys.length - 1; k >= 0; k--) {
    const pts = state.polys[k].points;
    if (insidePolygon(pts, ...p) || pts.some((a, i) => segmentDistance(p, a, pts[(i + 1) % pts.length]) <= tol)) return k;
  }
  return -1;
}

// the selected polygon's corner at grid point p, or -1
function cornerAt(p) {
  if (state.selPoly < 0) return -1;
  const [bx, by, bw, bh] = state.task.bbox, tol = POLY_HIT_PX / state.vpParts.scale; // image pixels
  return state.polys[state.selPoly].points.findIndex(([gx, gy]) =>
    Math.hypot((gx - p[0]) * bw / S, (gy - p[1]) * bh / S) <= tol);
}

// pointer down with the polygon tool and no polygon being drawn: true if it selected or grabbed one
function polygonPointerDown(p) {
  const corner = cornerAt(p);
  if (corner >= 0) { // grabbed: history is kept once the corner really moves
    state.selCorner = state.dragCorner = corner;
    state.dragMoved = false;
    return true;
  }
  const k = polygonAt(p);
  if (k >= 0 && k !== state.selPoly) { state.selPoly = k; state.selCorner = -1; drawParts(); return true; }
  state.selPoly = state.selCorner = -1; // a click inside the selected polygon (or elsewhere) starts a new one
  return false;
}

function dragCornerTo(p) {
  if (!state.dragMoved) { pushHistory(); state.dragMoved = true; }
  const pts = state.polys[state.selPoly].points.slice();
  pts[state.dragCorner] = p;
  editPolygon(state.selPoly, pts);
}

function deleteSelectedCorner() {
  if (state.selPoly < 0 || state.selCorner < 0) return false;
  pushHistory();
  const pts = state.polys[state.selPoly].points.filter((_, i) => i !== state.selCorner);
  editPolygon(state.selPoly, pts.length >= 3 ? pts : null);
  if (pts.length < 3) state.selPoly = -1;
  state.selCorner = -1;
  changed();
  drawParts();
  return true;
}

// outlines of the session's polygons; the selected one with its corners
function drawPolygons(ctx, px) {
  state.polys.forEach((poly, k) => {
    const sel = k === state.selPoly;
    ctx.strokeStyle = sel ? "#ff0" : "rgba(255,255,255,0.6)";
    ctx.lineWidth = (sel ? 1.5 : 1) * px;
    ctx.beginPath();
    poly.points.forEach((g, i) => { const [x, y] = gridToImage(...g); if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y); });
    ctx.closePath();
    ctx.stroke();
    if (!sel) return;
    poly.points.forEach((g, i) => {
      const [x, y] = gridToImage(...g), r = (i === state.selCorner ? 4.5 : 3) * px;
      ctx.fillStyle = i === state.selCorner ? "#f80" : "#ff0";
      ctx.fillRect(x - r, y - r, 2 * r, 2 * r);
    });
  });
}
