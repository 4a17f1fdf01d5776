// Step 2: for each sampled point, click its place on the rendered views of its part.
// The person (left) zooms and pans; the views (viewpanels.js, each zooming and panning too) fill
// the rest of the window; the placed point is marked on every view at once.
"use strict";

// what each view shows, in the person's own terms
const VIEW_CAPTIONS = { front: "front", back: "back", left: "their left side", right: "their right side",
  top: "from above", bottom: "from below" };

function currentPoint() {
  return state.task.points.find((p) => p.status === "todo");
}

async function showPoints(t) {
  if (!state.labels || state.labelsFor !== t.person_id) await loadLabels(t.person_id);
  const fresh = $("step-points").hidden || state.pointsFor !== t.person_id;
  showStep("points");
  if (fresh) { state.vpPoint.fit(personRect(0.08)); state.pointsFor = t.person_id; }
  await showPoint();
}

async function showPoint() {
  const t = state.task, p = currentPoint();
  const answered = t.points.filter((q) => q.status !== "todo").length;
  $("task-progress").textContent = "point " + Math.min(answered + 1, t.points.length) + " / " + t.points.length;
  $("btn-finish").hidden = !!p;
  drawPoint();
  if (!p) { $("point-part").textContent = "(all points answered: finish, or undo)"; return; }
  $("point-part").textContent = "the " + state.parts.names[p.part - 1];
  await showViews(p.part);
}

function drawPoint() {
  const vp = state.vpPoint, ctx = vp.begin(), t = state.task, p = currentPoint();
  const [bx, by, bw, bh] = t.bbox;
  ctx.drawImage(state.image.img, 0, 0);
  ctx.globalAlpha = 0.35;
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(labelsCanvas(255), bx, by, bw, bh);
  ctx.imageSmoothingEnabled = true;
  ctx.globalAlpha = 1;
  const px = 1 / vp.scale;
  for (const q of t.points) {
    if (q.status === "todo") continue;
    const [x, y] = gridToImage(q.x, q.y);
    ctx.fillStyle = q.status === "done" ? "#0c0" : "#999";
    ctx.beginPath(); ctx.arc(x, y, 3 * px, 0, 2 * Math.PI); ctx.fill();
  }
  if (!p) return;
  const [cx, cy] = gridToImage(p.x, p.y);
  ctx.strokeStyle = "#fff"; ctx.lineWidth = 3 * px;
  crosshair(ctx, cx, cy, px);
  ctx.strokeStyle = "#e00"; ctx.lineWidth = 1.5 * px;
  crosshair(ctx, cx, cy, px);
}

function crosshair(ctx, x, y, px) {
  ctx.beginPath();
  ctx.arc(x, y, 7 * px, 0, 2 * Math.PI);
  ctx.moveTo(x - 14 * px, y); ctx.lineTo(x - 4 * px, y); ctx.moveTo(x + 4 * px, y); ctx.lineTo(x + 14 * px, y);
  ctx.moveTo(x, y - 14 * px); ctx.lineTo(x, y - 4 * px); ctx.moveTo(x, y + 4 * px); ctx.lineTo(x, y + 14 * px);
  ctx.stroke();
}

async function showViews(part) {
  if (state.viewsPart === part) return;
  const list = await api("GET", "/api/views/" + part);
  const box = $("views");
  box.innerHTML = "";
  state.viewPanels = {};
  for (const v of list.views) {
    const panel = new ViewPanel(v.name, await fetchImage(v.url), clickView);
    panel.canvas.setAttribute("aria-label", list.name + ", " + v.name + " view");
    const fig = document.createElement("figure");
    const cap = document.createElement("figcaption");
    cap.textContent = VIEW_CAPTIONS[v.name] || v.name;
    fig.append(panel.canvas, cap);
    box.append(fig);
    state.viewPanels[v.name] = panel;
  }
  state.viewsPart = part;
  layoutViews();
}

// the largest square cells that fit all views in the space left of the views column
function layoutViews() {
  const box = $("views"), n = box.children.length;
  if (!n) return;
  const w = box.clientWidth, h = box.clientHeight, gap = 6;
  let best = 0, cols = 1;
  for (let c = 1; c <= n; c++) {
    const rows = Math.ceil(n / c);
    const size = Math.min((w - gap * (c - 1)) / c, (h - gap * (rows - 1)) / rows);
    if (size > best) { best = size; cols = c; }
  }
  best = Math.max(80, Math.floor(best));
  box.style.gridTemplateColumns = "repeat(" + cols + ", " + best + "px)";
  for (const fig of box.children) { fig.style.width = best + "px"; fig.style.height = best + "px"; }
  for (const panel of Object.values(state.viewPanels)) {
    panel.canvas.style.width = (best - 8) + "px";
    panel.canvas.style.height = (best - 8) + "px";
    panel.fit();
  }
}

async function clickView(view, px, py) {
  const p = currentPoint();
  if (!p || state.busy) return;
  state.busy = true;
  try {
    const r = await api("POST", "/api/points/" + p.id + "/click", { view, px, py });
    markEverywhere(r.marks || {});
    state.lastClick = { view, px, py, I: r.I, U: r.U, V: r.V };
    say("placed on chart " + r.I + " (U " + r.U.toFixed(2) + ", V " + r.V.toFixed(2) + ")");
    await refreshTask();
  } catch (e) { say(e.message, true); } finally { state.busy = false; }
}

// the point just placed, on every view where it shows
function markEverywhere(marks) {
  for (const [name, panel] of Object.entries(state.viewPanels || {})) panel.setMark(marks[name]);
}

async function skipPoint() {
  const p = currentPoint();
  if (!p || state.busy) return;
  state.busy = true;
  try {
    await api("POST", "/api/points/" + p.id + "/skip");
    say("skipped");
    await refreshTask();
  } catch (e) { say(e.message, true); } finally { state.busy = false; }
}

async function undoPoint() {
  if (state.busy) return;
  state.busy = true;
  try {
    await api("POST", "/api/persons/" + state.task.person_id + "/undo");
    markEverywhere({});
    say("undone");
    await refreshTask();
  } catch (e) { say(e.message, true); } finally { state.busy = false; }
}

async function repaint() {
  try {
    const t = await api("POST", "/api/persons/" + state.task.person_id + "/reopen");
    say("back in step 1: answers whose point stays inside its part are kept");
    await showTask(t);
  } catch (e) { say(e.message, true); }
}

async function finishPerson() {
  try {
    await api("POST", "/api/persons/" + state.task.person_id + "/finish");
    await refreshTask();
  } catch (e) { say(e.message, true); }
}

function setupPoints() {
  state.vpPoint = new Viewport($("point-canvas"), () => { if (state.task && state.task.stage === "points") drawPoint(); });
  $("btn-skip").onclick = skipPoint;
  $("btn-undo").onclick = undoPoint;
  $("btn-done-undo").onclick = undoPoint;
  $("btn-repaint").onclick = repaint;
  $("btn-finish").onclick = finishPerson;
}
