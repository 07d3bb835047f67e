// The review page: player, timeline (tracks and frames to check), manual masks, re-render, downloads.
"use strict";

const $ = (selector) => document.querySelector(selector);
const jobId = location.pathname.split("/").pop();
let job = null;
let report = null;
let fps = 25;
let masks = [];
let mutes = []; // the manifest's audio spans: [{start, end, label}] in seconds
let box = null; // [x0, y0, x1, y1] in video pixels, being drawn or drawn

const frameOf = (t) => Math.floor(t * fps + 1e-3);
const timeOf = (frame) => (frame + 0.5) / fps;

function seek(frame) {
  const video = $("#video");
  video.pause();
  video.currentTime = timeOf(Math.max(0, frame));
}

function span(bar, first, last, total, className, title) {
  const s = document.createElement("div");
  s.className = `span ${className}`;
  s.style.left = `${(100 * first) / total}%`;
  s.style.width = `${(100 * (last - first + 1)) / total}%`;
  s.title = title;
  bar.appendChild(s);
}

function row(label, runs, className, total, onClick, extend) {
  const r = document.createElement("div");
  r.className = "row";
  const l = document.createElement("div");
  l.className = "label";
  l.textContent = label;
  if (extend) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "extend";
    b.textContent = "extend";
    b.title = "mask this person's last box over the frames after their track ends";
    b.addEventListener("click", (e) => { e.stopPropagation(); extend(); });
    l.append(" ", b);
  }
  const bar = document.createElement("div");
  bar.className = "bar";
  for (const [cls, spans] of runs) for (const [a, b] of spans) span(bar, a, b, total, cls, `${label}: frames ${a}–${b}`);
  r.append(l, bar);
  r.addEventListener("click", (e) => {
    // on the bar: the frame clicked; on the label: the row's first frame
    const rect = bar.getBoundingClientRect();
    const onBar = e.clientX >= rect.left && e.clientX <= rect.right;
    seek(onBar ? Math.floor(((e.clientX - rect.left) / rect.width) * total) : onClick());
  });
  r.dataset.kind = className;
  $("#timeline").appendChild(r);
}

function timeline() {
  $("#timeline").replaceChildren();
  if (!report) return;
  const total = Math.max(report.frames, 1);
  for (const t of report.tracks) {
    row(`person ${t.id} (${t.first}–${t.last})`, [["detected", t.detected], ["held", t.held]], "track", total,
        () => t.first, () => extendTrack(t.id));
  }
  // what to check is the ranked list above (listChecks); the reviewer's own masks keep their row
  const manual = report.frames_by_reason.manual;
  if (manual && manual.spans.length) {
    row(`manual masks (${manual.frames})`, [["manual", manual.spans]], "manual", total, () => manual.spans[0][0]);
  }
  // the sound: the spans the last render muted (found, or by hand), in frames of the timeline
  const audio = report.audio || {};
  if (audio.spans) {
    const inFrames = (x) => [frameOf(x.start), Math.min(Math.max(frameOf(x.end), frameOf(x.start)), total - 1)];
    const found = audio.spans.filter((x) => x.why === "detected").map(inFrames);
    const byHand = audio.spans.filter((x) => x.why === "manual").map(inFrames);
    row(`speech (${audio.spans.length}, ${audio.spans.reduce((a, x) => a + x.end - x.start, 0).toFixed(1)} s)`,
        [["speech", found], ["manual", byHand]], "speech", total, () => (audio.spans.length ? frameOf(audio.spans[0].start) : 0));
  }
  if (!$("#timeline").children.length) $("#timeline").textContent = "Nobody was found or masked in this video.";
}

function listChecks() {
  // the report's moments, highest risk first: a click seeks, a tick records that it was looked at
  const list = $("#checks");
  list.replaceChildren();
  const checks = (report && report.checks) || [];
  if (!checks.length) { list.textContent = "Nothing to check: no moment the tool was unsure of."; return; }
  for (const c of checks) {
    const li = document.createElement("li");
    li.className = "check-item";
    li.dataset.id = c.id;
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = Boolean(c.checked);
    box.title = "checked";
    box.addEventListener("change", saveChecks);
    const risk = document.createElement("span");
    risk.className = `risk ${c.risk >= 0.75 ? "high" : c.risk >= 0.5 ? "medium" : "low"}`;
    risk.textContent = c.risk.toFixed(2);
    const text = document.createElement("a");
    text.href = "#";
    text.textContent = ` frames ${c.first}–${c.last} (${(c.first / fps).toFixed(1)} s): ${c.why}`;
    text.addEventListener("click", (e) => { e.preventDefault(); seek(c.first); });
    li.append(box, " ", risk, text);
    list.appendChild(li);
  }
  if (report.checks_more) list.append(`… and ${report.checks_more} more of lower risk (see the report)`);
}

async function saveChecks() {
  const checked = [...document.querySelectorAll("#checks li")].filter((li) => li.querySelector("input").checked).map((li) => li.dataset.id);
  const response = await fetch(`/api/jobs/${jobId}/checks`, {
    method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ checked }),
  });
  const body = await response.json();
  $("#mask-status").textContent = response.ok ? `${checked.length} of ${body.checks.length} checks marked checked` : `not saved: ${body.detail}`;
}

let keypoints = null; // the job's keypoint records, loaded once (for "extend")

async function extendTrack(trackId) {
  // a track the detector lost too early: its last box, grown, masked over the frames after it
  if (keypoints === null) {
    const response = await fetch(`/api/jobs/${jobId}/files/keypoints?render=${job.renders}`);
    keypoints = response.ok ? (await response.text()).split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l)) : [];
  }
  const mine = keypoints.filter((r) => r.track_id === trackId);
  if (!mine.length) { $("#box-text").textContent = `no keypoints for person ${trackId}: draw the box instead`; return; }
  const last = mine.reduce((a, r) => (r.frame > a.frame ? r : a));
  const video = $("#video");
  const { x1, y1, x2, y2 } = last.box;
  const gx = (x2 - x1) * 0.15, gy = (y2 - y1) * 0.15;
  box = [Math.max(0, x1 - gx), Math.max(0, y1 - gy), Math.min(video.videoWidth, x2 + gx), Math.min(video.videoHeight, y2 + gy)];
  const lastFrame = report ? report.frames - 1 : last.frame + 30;
  $("#start").value = Math.min(last.frame + 1, lastFrame);
  $("#end").value = Math.min(last.frame + 30, lastFrame);
  $("#label").value = `person ${trackId}, extended`;
  $("#add").disabled = false;
  $("#box-text").textContent = `person ${trackId}'s last box [${box.map(Math.round).join(", ")}] (frame ${last.frame})`;
  seek(last.frame);
  drawOverlay();
}

function listMasks() {
  const list = $("#masks");
  list.replaceChildren();
  masks.forEach((m, i) => {
    const li = document.createElement("li");
    li.textContent = `${m.label || "mask"}: box [${m.box.map((v) => Math.round(v)).join(", ")}], frames ${m.start}–${m.end ?? "end"} `;
    const del = document.createElement("button");
    del.type = "button";
    del.textContent = "remove";
    del.addEventListener("click", () => { masks.splice(i, 1); listMasks(); drawOverlay(); });
    li.appendChild(del);
    list.appendChild(li);
  });
}

function listMutes() {
  const list = $("#mutes");
  list.replaceChildren();
  mutes.forEach((m, i) => {
    const li = document.createElement("li");
    li.textContent = `${m.label || "muted"}: sound muted ${m.start.toFixed(2)}–${m.end.toFixed(2)} s `;
    const del = document.createElement("button");
    del.type = "button";
    del.textContent = "remove";
    del.addEventListener("click", () => { mutes.splice(i, 1); listMutes(); });
    li.appendChild(del);
    list.appendChild(li);
  });
}

function addMute() {
  const start = Number($("#mute-start").value), end = Number($("#mute-end").value);
  if (!(start >= 0 && end > start)) { $("#mask-status").textContent = "a mute span needs 0 <= from < to"; return; }
  mutes.push({ start, end, label: $("#mute-label").value });
  listMutes();
}

function sizeCanvas() {
  const video = $("#video");
  const canvas = $("#draw");
  canvas.width = video.clientWidth;
  canvas.height = video.clientHeight;
  drawOverlay();
}

function drawOverlay() {
  const video = $("#video");
  const canvas = $("#draw");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!video.videoWidth) return;
  const sx = canvas.width / video.videoWidth;
  const sy = canvas.height / video.videoHeight;
  const frame = frameOf(video.currentTime);
  const boxes = masks.filter((m) => m.start <= frame && (m.end === null || frame <= m.end)).map((m) => [m.box, "#7a3"]);
  if (box) boxes.push([box, "#ff0"]);
  for (const [[x0, y0, x1, y1], colour] of boxes) {
    ctx.strokeStyle = colour;
    ctx.lineWidth = 2;
    ctx.strokeRect(x0 * sx, y0 * sy, (x1 - x0) * sx, (y1 - y0) * sy);
  }
}

function drawing() {
  const canvas = $("#draw");
  const video = $("#video");
  let from = null;
  const at = (e) => {
    const rect = canvas.getBoundingClientRect();
    return [((e.clientX - rect.left) / rect.width) * video.videoWidth, ((e.clientY - rect.top) / rect.height) * video.videoHeight];
  };
  canvas.addEventListener("mousedown", (e) => { from = at(e); box = null; });
  canvas.addEventListener("mousemove", (e) => {
    if (!from) return;
    const to = at(e);
    box = [Math.min(from[0], to[0]), Math.min(from[1], to[1]), Math.max(from[0], to[0]), Math.max(from[1], to[1])];
    drawOverlay();
  });
  canvas.addEventListener("mouseup", () => {
    from = null;
    const ok = box && box[2] - box[0] >= 2 && box[3] - box[1] >= 2;
    $("#add").disabled = !ok;
    $("#box-text").textContent = ok ? `box [${box.map(Math.round).join(", ")}]` : "Drag a larger box.";
    if (ok) {  // from the frame on screen to the end, unless a range was typed
      const frame = frameOf(video.currentTime);
      const last = report ? report.frames - 1 : frame;
      $("#start").value = frame;
      if (parseInt($("#end").value || "0", 10) < frame) $("#end").value = last;
    }
  });
  $("#drawing").addEventListener("change", (e) => { canvas.classList.toggle("on", e.target.checked); video.pause(); });
  $("#add").addEventListener("click", () => {
    const start = Math.max(0, parseInt($("#start").value || "0", 10));
    const end = Math.max(start, parseInt($("#end").value || `${start}`, 10));
    masks.push({ box: box.map((v) => Math.round(v * 10) / 10), start, end, label: $("#label").value });
    box = null;
    $("#add").disabled = true;
    listMasks();
    drawOverlay();
  });
}

async function saveManifest() {
  const response = await fetch(`/api/jobs/${jobId}/manifest`, {
    method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ version: 1, masks, audio: mutes }),
  });
  const body = await response.json();
  $("#mask-status").textContent = response.ok
    ? `saved ${masks.length} mask(s), ${mutes.length} mute span(s)` : `not saved: ${body.detail}`;
  return response.ok;
}

async function markReviewed() {
  if (job.has_original && !confirm("Mark this job reviewed? Its unmasked original is deleted now: no re-render after.")) return;
  const response = await fetch(`/api/jobs/${jobId}/reviewed`, { method: "POST" });
  const body = await response.json();
  if (!response.ok) { $("#mask-status").textContent = `not marked reviewed: ${body.detail}`; return; }
  await load();
}

async function rerender() {
  if (!(await saveManifest())) return;
  const response = await fetch(`/api/jobs/${jobId}/rerender`, { method: "POST" });
  const body = await response.json();
  if (!response.ok) { $("#mask-status").textContent = `cannot re-render: ${body.detail}`; return; }
  $("#mask-status").textContent = "re-rendering…";
  const events = new EventSource("/api/events");
  events.onmessage = (e) => {
    const mine = JSON.parse(e.data).find((j) => j.id === jobId);
    if (!mine) return;
    $("#status").textContent = `${mine.status} ${mine.total ? Math.floor((100 * mine.frames) / mine.total) : 0}%`;
    if (mine.status === "done" || mine.status === "failed" || mine.status === "cancelled") {
      events.close();
      $("#mask-status").textContent = mine.status === "done" ? `re-rendered (render ${mine.renders})` : `${mine.status}: ${mine.error}`;
      load();
    }
  };
}

function downloads() {
  const names = { video: "video", image: "image", keypoints: "keypoints (JSONL)", events: "analytics events (CSV)",
                  report_json: "report (JSON)", report_html: "report (HTML)" };
  const p = $("#downloads");
  p.replaceChildren();
  for (const [kind, label] of Object.entries(names)) {
    if (!job.outputs[kind]) continue;
    const a = document.createElement("a");
    a.href = `/api/jobs/${jobId}/files/${kind}?download=1`;
    a.textContent = label;
    a.className = `download-${kind}`;
    p.append(a, " · ");
  }
  const zip = document.createElement("a");
  zip.href = `/api/jobs/${jobId}/files/zip`;
  zip.textContent = "everything (zip)";
  zip.className = "download-zip";
  p.append(zip);
  const shots = $("#snapshots");
  shots.replaceChildren();
  for (const name of job.outputs.snapshots || []) {
    const img = document.createElement("img");
    img.src = `/api/jobs/${jobId}/files/snapshot?name=${encodeURIComponent(name)}`;
    img.alt = name;
    shots.appendChild(img);
  }
}

async function load() {
  job = await (await fetch(`/api/jobs/${jobId}`)).json();
  $("#name").textContent = job.name;
  $("#status").textContent = `${job.status} · ${job.width}×${job.height} · render ${job.renders}`;
  const response = await fetch(`/api/jobs/${jobId}/files/report_json?render=${job.renders}`);
  report = response.ok ? await response.json() : null;
  fps = report && report.fps ? report.fps : 25;
  const manifest = await (await fetch(`/api/jobs/${jobId}/manifest`)).json();
  masks = manifest.masks || [];
  mutes = manifest.audio || [];
  const video = $("#video");
  video.src = `/api/jobs/${jobId}/files/video?render=${job.renders}`;
  $("#side").disabled = !job.has_original;
  $("#rerender").disabled = !job.has_original;
  if (!job.has_original) {
    $("#mask-status").textContent = `The original is gone (${job.original_gone || "not kept"}): corrections can be saved, not re-rendered.`;
  }
  $("#reviewed").title = job.original_until ? `The original is kept until ${new Date(job.original_until * 1000).toLocaleString()}, or until the job is marked reviewed or deleted.` : "";
  $("#reviewed").disabled = job.reviewed !== null || job.status === "queued" || job.status === "running";
  $("#reviewed").textContent = job.reviewed !== null ? "Reviewed" : "Mark reviewed (deletes the original)";
  timeline();
  listChecks();
  listMasks();
  listMutes();
  downloads();
}

window.addEventListener("DOMContentLoaded", () => {
  const video = $("#video");
  video.addEventListener("loadedmetadata", sizeCanvas);
  window.addEventListener("resize", sizeCanvas);
  video.addEventListener("timeupdate", () => {
    const frame = frameOf(video.currentTime);
    $("#clock").textContent = `frame ${frame} · ${video.currentTime.toFixed(2)} s`;
    drawOverlay();
    const original = $("#original");
    if (!$("#original-box").hidden && Math.abs(original.currentTime - video.currentTime) > 0.05) original.currentTime = video.currentTime;
  });
  $("#prev").addEventListener("click", () => seek(frameOf(video.currentTime) - 1));
  $("#next").addEventListener("click", () => seek(frameOf(video.currentTime) + 1));
  $("#side").addEventListener("change", (e) => {
    $("#original-box").hidden = !e.target.checked;
    const original = $("#original");
    if (e.target.checked) { original.src = `/api/jobs/${jobId}/files/original`; original.currentTime = video.currentTime; }
    else original.removeAttribute("src");
  });
  video.addEventListener("play", () => { if (!$("#original-box").hidden) $("#original").play(); });
  video.addEventListener("pause", () => $("#original").pause());
  $("#save").addEventListener("click", saveManifest);
  $("#mute-add").addEventListener("click", addMute);
  $("#rerender").addEventListener("click", rerender);
  $("#reviewed").addEventListener("click", markReviewed);
  drawing();
  load();
});
