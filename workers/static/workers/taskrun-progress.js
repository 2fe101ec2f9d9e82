// Moves the admin's task-run progress bars live by polling GET /api/v1/tasks/<id>.
// When a run finishes the page reloads once, so status, message and result columns are current.
(function () {
  const bars = Array.from(document.querySelectorAll(".taskrun-progress[data-active='1']"));
  if (!bars.length) return;
  const finished = new Set(["succeeded", "failed", "cancelled"]);
  async function poll() {
    let done = false;
    for (const bar of bars) {
      try {
        const r = await fetch(`/api/v1/tasks/${bar.dataset.run}`, {credentials: "same-origin"});
        if (!r.ok) continue;
        const run = await r.json();
        bar.querySelector("progress").value = run.progress;
        bar.querySelector("span").textContent = `${run.progress}% ${run.message || ""}`;
        if (finished.has(run.status)) done = true;
      } catch (e) { /* network blip: try again next tick */ }
    }
    if (done) window.location.reload(); else setTimeout(poll, 1500);
  }
  setTimeout(poll, 1000);
})();
