// Segment editor: as the rules change, POST them to the admin's live endpoint and show the count,
// a sample of members, or the error naming the bad condition.
(function () {
  const script = document.currentScript;
  const rules = document.querySelector("textarea.segment-rules");
  const workspace = document.getElementById("id_workspace");
  if (!rules) return;
  const count = document.getElementById("segment-count");
  const error = document.getElementById("segment-error");
  const body = document.querySelector("#segment-sample tbody");
  const csrf = document.querySelector("[name=csrfmiddlewaretoken]").value;
  let timer = null;
  async function update() {
    let parsed;
    try { parsed = JSON.parse(rules.value); } catch (e) { error.textContent = "not valid JSON yet"; return; }
    const r = await fetch(script.dataset.liveUrl, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrf},
      body: JSON.stringify({workspace: workspace && workspace.value, rules: parsed}),
    });
    const data = await r.json();
    body.innerHTML = "";
    if (!r.ok) { error.textContent = data.error; count.textContent = "–"; return; }
    error.textContent = "";
    count.textContent = data.count.toLocaleString();
    for (const c of data.sample) {
      const tr = document.createElement("tr");
      const link = document.createElement("a");
      link.href = `/admin/crm/customer/${c.id}/change/`; link.textContent = c.id;
      const first = document.createElement("td"); first.appendChild(link); tr.appendChild(first);
      for (const v of [c.email || "", `${c.first_name} ${c.last_name}`.trim(), c.country]) {
        const td = document.createElement("td"); td.textContent = v; tr.appendChild(td);
      }
      body.appendChild(tr);
    }
  }
  function schedule() { clearTimeout(timer); timer = setTimeout(update, 400); }
  rules.addEventListener("input", schedule);
  if (workspace) workspace.addEventListener("change", schedule);
  update();
})();
