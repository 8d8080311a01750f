// Follows running pre-warm jobs on the Dependency Proxy page: polls the group's
// warm_jobs.json and updates each image's line and bar. Without scripts the
// page shows the same figures as of its loading (reload to follow).

const POLL_MS = 1000;
const FINISHED = new Set(["done", "failed"]);

function size(bytes) {
  let value = Number(bytes) || 0;
  for (const unit of ["B", "KiB", "MiB", "GiB", "TiB"]) {
    if (value < 1024 || unit === "TiB") {
      return unit === "B" ? `${Math.trunc(value)} B` : `${value.toFixed(2)} ${unit}`;
    }
    value /= 1024;
  }
  return "";
}

function describe(image) {
  const text =
    `${image.state}, ${image.layers_done}/${image.layers_total} layers, ` +
    `${size(image.bytes_done)} / ${size(image.bytes_total)}`;
  return image.error ? `${text}: ${image.error}` : text;
}

function update(list, job) {
  const row = list.querySelector(`[data-job-id="${job.id}"]`);
  if (!row) return;
  row.dataset.state = job.state;
  row.querySelector(".warm-state").textContent = job.state;
  for (const image of job.images) {
    const line = [...row.querySelectorAll(".warm-image")].find((li) => li.dataset.image === image.image);
    if (!line) continue;
    line.querySelector(".warm-image-progress").textContent = describe(image);
    const bar = line.querySelector("progress");
    bar.max = image.bytes_total || 1;
    bar.value = image.state === "done" ? bar.max : image.bytes_done;
  }
}

export function installWarmProgress(root = document) {
  const list = root.querySelector("[data-warm-progress]");
  if (!list) return;
  const running = () =>
    [...list.querySelectorAll("[data-job-id]")].some((row) => !FINISHED.has(row.dataset.state));
  const poll = async () => {
    if (!running()) return;
    try {
      const answer = await fetch(list.dataset.warmProgress, { credentials: "same-origin" });
      if (answer.ok) for (const job of (await answer.json()).jobs) update(list, job);
    } catch {
      // A missed poll is retried; the page itself still works.
    }
    setTimeout(poll, POLL_MS);
  };
  setTimeout(poll, POLL_MS);
}
