// The jobs page: upload (drag and drop or choose), settings, and every job's live progress (SSE).
"use strict";

const $ = (selector) => document.querySelector(selector);

function fmtEta(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 60) return `${Math.round(seconds)} s`;
  return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

// how a choice reads on the form (the values themselves come from Config, through /api/settings)
const LABELS = { bbox: "bbox (boxes)", seg: "seg (instance masks)", none: "none (no fill: not private)" };

function fmtTime(seconds) {
  return new Date(seconds * 1000).toLocaleString([], {
    day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
}

function originalText(job) {
  if (!job.has_original) return job.original_gone || "not kept";
  return job.original_until ? `kept until ${fmtTime(job.original_until)}` : "kept";
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function button(label, onClick, className) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.className = className;
  b.addEventListener("click", onClick);
  return b;
}

function render(jobs) {
  const body = $("#jobs tbody");
  body.replaceChildren();
  $("#no-jobs").hidden = jobs.length > 0;
  const seen = {};
  const many = {};
  for (const job of jobs) many[job.name] = (many[job.name] || 0) + 1;
  for (const job of jobs) {
    const row = document.createElement("tr");
    row.dataset.job = job.id;
    row.className = "job";
    seen[job.name] = (seen[job.name] || 0) + 1; // the same file uploaded again: #2, #3 in upload order
    cell(row, many[job.name] > 1 ? `${job.name} #${seen[job.name]}` : job.name, "name");
    cell(row, fmtTime(job.created), "uploaded");
    cell(row, job.version, "version");
    cell(row, originalText(job), job.has_original ? "original kept" : "original gone");
    const status = cell(row, job.status, `status status-${job.status}`);
    if (job.error) status.title = job.error;
    if (job.error && job.status !== "cancelled") status.textContent = `${job.status}: ${job.error}`;
    const progress = document.createElement("progress");
    progress.max = job.total || 1;
    progress.value = job.status === "done" ? progress.max : job.frames;
    const pct = job.status === "done" ? 100 : job.total ? Math.floor((100 * job.frames) / job.total) : 0;
    const td = cell(row, "", "progress");
    td.appendChild(progress);
    const label = document.createElement("span");
    label.className = "percent";
    label.textContent = ` ${pct}% (${job.frames}${job.total ? "/" + job.total : ""} frames)`;
    td.appendChild(label);
    cell(row, job.fps ? job.fps.toFixed(1) : "");
    cell(row, job.status === "running" ? fmtEta(job.eta) : "");
    const actions = cell(row, "");
    if (job.status === "done") {
      const a = document.createElement("a");
      a.href = `/review/${job.id}`;
      a.textContent = "Review";
      a.className = "review";
      actions.appendChild(a);
      actions.append(" ");
    }
    if (job.status === "queued" || job.status === "running") {
      actions.appendChild(button("Cancel", () => fetch(`/api/jobs/${job.id}/cancel`, { method: "POST" }), "cancel"));
    }
    actions.appendChild(button("Delete", () => {
      if (confirm(`Delete ${job.name} and every file of it?`)) fetch(`/api/jobs/${job.id}`, { method: "DELETE" });
    }, "delete"));
    body.appendChild(row);
  }
}

async function upload(files) {
  if (!files.length) return;
  const form = new FormData($("#upload-form"));
  form.delete("files");
  for (const f of files) form.append("files", f, f.name);
  for (const name of ["pose", "keypoints", "keep_original"]) form.set(name, $(`[name=${name}]`).checked ? "true" : "false");
  $("#upload-status").textContent = `uploading ${files.length} file(s)…`;
  const response = await fetch("/api/jobs", { method: "POST", body: form });
  if (response.ok) {
    $("#upload-status").textContent = `${files.length} file(s) queued`;
    $("#files").value = "";
  } else {
    const detail = await response.json().catch(() => ({}));
    $("#upload-status").textContent = `upload refused: ${detail.detail || response.status}`;
  }
}

window.addEventListener("DOMContentLoaded", async () => {
  const settings = await (await fetch("/api/settings")).json();
  for (const [name, values] of Object.entries(settings.choices)) {
    const select = $(`select[name=${name}]`);
    for (const value of values) select.add(new Option(LABELS[value] || value, value));
    select.value = settings.defaults[name];
  }
  $("#keep_original").checked = settings.keep_originals;
  $("#keep_original").disabled = !settings.keep_originals;
  $("#originals-note").textContent = `Unmasked ${settings.originals}.`;
  const drop = $("#drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); upload([...e.dataTransfer.files]); });
  $("#upload-form").addEventListener("submit", (e) => { e.preventDefault(); upload([...$("#files").files]); });
  render(await (await fetch("/api/jobs")).json());
  const events = new EventSource("/api/events");
  events.onmessage = (e) => render(JSON.parse(e.data));
});
