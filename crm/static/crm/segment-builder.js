// Segment editor: a builder of field / operator / value rows in AND / OR groups, kept in step
// with the JSON rules textarea (which stays for power users), and the live count with a sample of
// members, posted to the admin's live endpoint as the rules change (debounced).
//
// The builder shows a subset of the rule language (crm/segments.py): one group of conditions,
// which may hold groups of conditions, and the conditions below with the keys listed. Rules
// outside it ("not", deeper groups, an event's "where") are left to the JSON editor, with a
// message saying why, rather than shown wrongly. What the builder writes it reads back the same
// (toRules(fromRules(x)) equals x for what it writes), so switching between the two loses nothing.
(function () {
  "use strict";

  const ATTRIBUTES = [
    ["country", "Country"], ["email", "E-mail"], ["first_name", "First name"],
    ["last_name", "Last name"], ["locale", "Language (locale)"], ["time_zone", "Time zone"],
    ["phone", "Phone"], ["created_at", "Signed up (ISO date)"],
  ];
  const FIELDS = [
    ...ATTRIBUTES.map(([name, label]) => ["attr:" + name, label]),
    ["attr:custom", "Custom attribute"],
    ["event", "Did an event"],
    ["orders", "Number of orders"],
    ["revenue", "Revenue (returns subtracted)"],
    ["score", "Model score"],
    ["segment", "Member of segment"],
    ["forecast", "Bought a product forecast to"],
  ];
  const ATTR_OPS = [
    ["eq", "is"], ["ne", "is not"], ["in", "is one of (a, b)"], ["not_in", "is none of (a, b)"],
    ["contains", "contains"], ["gt", ">"], ["gte", "≥"], ["lt", "<"], ["lte", "≤"],
    ["exists", "is set"], ["not_exists", "is not set"],
  ];
  const CMP_OPS = [["gte", "at least"], ["gt", "more than"], ["eq", "exactly"],
                   ["lte", "at most"], ["lt", "fewer than"]];
  const LISTS = {country: "seg-countries", event: "seg-event-types", score: "seg-scores"};

  class Unshowable extends Error {}

  const isObj = (x) => x !== null && typeof x === "object" && !Array.isArray(x);
  const isNum = (x) => typeof x === "number" && isFinite(x);

  function onlyKeys(node, allowed, what) {
    for (const key of Object.keys(node)) {
      if (!allowed.includes(key)) throw new Unshowable(`${what} with "${key}"`);
    }
  }
  function numberOrEmpty(x, what) {
    if (x === undefined || x === null) return "";
    if (!isNum(x)) throw new Unshowable(`${what} that is not a number`);
    return x;
  }
  function stringOrEmpty(x, what) {
    if (x === undefined || x === null) return "";
    if (typeof x !== "string") throw new Unshowable(`${what} that is not text`);
    return x;
  }
  function threshold(spec, what) {
    if (spec === undefined) return {op: "gte", value: ""};
    if (!isObj(spec)) throw new Unshowable(what);
    onlyKeys(spec, ["op", "value"], what);
    if (!CMP_OPS.some(([op]) => op === spec.op)) throw new Unshowable(`${what} with "${spec.op}"`);
    return {op: spec.op, value: numberOrEmpty(spec.value, what)};
  }

  // --- rules -> builder ---------------------------------------------------------------------
  function condition(node) {
    if (!isObj(node)) throw new Unshowable("a condition that is not an object");
    if ("not" in node) throw new Unshowable('a "not" condition');
    if ("attribute" in node) {
      onlyKeys(node, ["attribute", "op", "value"], "an attribute condition");
      const name = node.attribute;
      let field, key = "";
      if (typeof name === "string" && ATTRIBUTES.some(([n]) => n === name)) field = name;
      else if (typeof name === "string" && name.startsWith("attributes.")) {
        field = "custom"; key = name.slice("attributes.".length);
      } else throw new Unshowable(`the field ${JSON.stringify(name)}`);
      const op = node.op === undefined ? "eq" : node.op;
      if (!ATTR_OPS.some(([o]) => o === op)) throw new Unshowable(`the operator ${JSON.stringify(op)}`);
      let value = "";
      if (op === "in" || op === "not_in") {
        if (!Array.isArray(node.value) || node.value.some((x) => typeof x !== "string" || x.includes(",")))
          throw new Unshowable("a list of values other than plain text");
        value = node.value.join(", ");
      } else if (op === "exists" || op === "not_exists") {
        if ("value" in node) throw new Unshowable(`"${op}" with a value`);
      } else value = stringOrEmpty(node.value, "a value");
      return {type: "attribute", field, key, op, value};
    }
    if ("event" in node) {
      onlyKeys(node, ["event", "count", "within_days"], "an event condition");
      const count = node.count === undefined ? {op: "gte", value: ""} : threshold(node.count, "an event count");
      if (node.count !== undefined && count.value === "") throw new Unshowable("an event count without a number");
      return {type: "event", event: stringOrEmpty(node.event, "an event type"), op: count.op,
              value: count.value, days: numberOrEmpty(node.within_days, "within_days")};
    }
    if ("orders" in node) {
      onlyKeys(node, ["orders", "within_days", "metric"], "an orders condition");
      if (!["count", "revenue", undefined].includes(node.metric)) throw new Unshowable(`the metric ${node.metric}`);
      const t = threshold(node.orders, "an orders threshold");
      return {type: node.metric === "revenue" ? "revenue" : "orders", op: t.op, value: t.value,
              days: numberOrEmpty(node.within_days, "within_days"), metric: node.metric || ""};
    }
    if ("score" in node) {
      onlyKeys(node, ["score", "op", "value"], "a score condition");
      if (!CMP_OPS.some(([op]) => op === node.op)) throw new Unshowable(`a score with "${node.op}"`);
      return {type: "score", score: stringOrEmpty(node.score, "a score kind"), op: node.op,
              value: numberOrEmpty(node.value, "a score value")};
    }
    if ("segment" in node) {
      onlyKeys(node, ["segment"], "a segment condition");
      if (!Number.isInteger(node.segment)) throw new Unshowable("a segment id that is not a number");
      return {type: "segment", segment: node.segment};
    }
    if ("bought_forecast" in node) {
      onlyKeys(node, ["bought_forecast", "within_days", "measure"], "a forecast condition");
      if (!["slowing", "rising"].includes(node.bought_forecast)) throw new Unshowable("a forecast direction");
      if (!["units", "revenue", undefined].includes(node.measure)) throw new Unshowable("a forecast measure");
      return {type: "forecast", direction: node.bought_forecast, measure: node.measure || "",
              days: numberOrEmpty(node.within_days, "within_days")};
    }
    throw new Unshowable(`the condition ${Object.keys(node).join(", ")}`);
  }

  function group(node, depth) {
    const join = "all" in node ? "all" : "any";
    onlyKeys(node, [join], "a group");
    const children = node[join];
    if (!Array.isArray(children) || !children.length) throw new Unshowable("an empty group");
    return {type: "group", join, children: children.map((child) => {
      if (isObj(child) && ("all" in child || "any" in child)) {
        if (depth > 0) throw new Unshowable("groups inside groups inside groups");
        return group(child, depth + 1);
      }
      return condition(child);
    })};
  }

  function fromRules(rules) {
    if (!isObj(rules) || !Object.keys(rules).length) throw new Unshowable("rules that are not an object");
    const copy = Object.assign({}, rules);
    const asOf = stringOrEmpty(copy.as_of, "an as_of");
    delete copy.as_of;
    if ("all" in copy || "any" in copy) return Object.assign(group(copy, 0), {asOf, bare: false});
    return {type: "group", join: "all", children: [condition(copy)], asOf, bare: true};
  }

  // --- builder -> rules ---------------------------------------------------------------------
  const num = (x) => (x === "" || x === undefined ? null : Number(x));
  function conditionRules(row) {
    switch (row.type) {
      case "attribute": {
        const out = {attribute: row.field === "custom" ? "attributes." + row.key : row.field, op: row.op};
        if (row.op === "in" || row.op === "not_in") {
          out.value = row.value.split(",").map((x) => x.trim()).filter((x) => x);
        } else if (row.op !== "exists" && row.op !== "not_exists") out.value = row.value;
        return out;
      }
      case "event": {
        const out = {event: row.event};
        if (row.value !== "") out.count = {op: row.op, value: num(row.value)};
        if (row.days !== "") out.within_days = num(row.days);
        return out;
      }
      case "orders": case "revenue": {
        const out = {orders: {op: row.op, value: num(row.value)}};
        if (row.days !== "") out.within_days = num(row.days);
        if (row.type === "revenue") out.metric = "revenue";
        else if (row.metric) out.metric = row.metric;
        return out;
      }
      case "score": return {score: row.score, op: row.op, value: num(row.value)};
      case "segment": return {segment: row.segment === "" ? null : Number(row.segment)};
      case "forecast": {
        const out = {bought_forecast: row.direction};
        if (row.days !== "") out.within_days = num(row.days);
        if (row.measure) out.measure = row.measure;
        return out;
      }
    }
    throw new Error("unknown row " + row.type);
  }

  function toRules(root) {
    if (!root.children.length) return null;
    const kids = root.children.map((c) =>
      c.type === "group" ? {[c.join]: c.children.map(conditionRules)} : conditionRules(c));
    let out = root.bare && kids.length === 1 && root.children[0].type !== "group"
      ? kids[0] : {[root.join]: kids};
    if (root.asOf) out = Object.assign({}, out, {as_of: root.asOf});
    return out;
  }

  function newRow(field) {
    if (field.startsWith("attr:")) {
      return {type: "attribute", field: field.slice(5), key: "", op: "eq", value: ""};
    }
    return {
      event: {type: "event", event: "", op: "gte", value: "", days: ""},
      orders: {type: "orders", op: "gte", value: 1, days: "", metric: ""},
      revenue: {type: "revenue", op: "gte", value: 100, days: "", metric: "revenue"},
      score: {type: "score", score: "", op: "gt", value: 0.5},
      segment: {type: "segment", segment: ""},
      forecast: {type: "forecast", direction: "slowing", measure: "", days: ""},
    }[field];
  }
  const fieldOf = (row) => (row.type === "attribute" ? "attr:" + row.field : row.type);

  window.segmentBuilder = {fromRules, toRules, Unshowable};

  // --- the page -----------------------------------------------------------------------------
  const script = document.currentScript;
  const rulesArea = document.querySelector("textarea.segment-rules");
  const mount = document.getElementById("segment-builder");
  if (!rulesArea || !mount) return;
  const workspaceSelect = document.getElementById("id_workspace");
  const count = document.getElementById("segment-count");
  const estimate = document.getElementById("segment-estimate");
  const error = document.getElementById("segment-error");
  const note = document.getElementById("segment-as-of");
  const sampleBody = document.querySelector("#segment-sample tbody");
  const fallback = document.getElementById("segment-builder-fallback");
  const csrf = document.querySelector("[name=csrfmiddlewaretoken]").value;
  let root = {type: "group", join: "all", children: [], asOf: "", bare: false};
  let segments = [];
  let suggestion = null;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const child of children) node.append(child);
    return node;
  }
  function select(options, value, cls, onchange) {
    const s = el("select", {class: cls, onchange: () => onchange(s.value)});
    for (const [v, label] of options) s.append(el("option", {value: v}, label));
    if (!options.some(([v]) => String(v) === String(value))) s.append(el("option", {value}, String(value)));
    s.value = String(value);
    return s;
  }
  function input(value, cls, attrs, oninput) {
    const i = el("input", Object.assign({class: cls}, attrs));
    i.value = value;
    i.addEventListener("input", () => oninput(i.value));
    return i;
  }

  function rowEditor(row, siblings) {
    const line = el("div", {class: "seg-row"});
    const set = (key) => (value) => { row[key] = value; changed(); };
    line.append(select(FIELDS, fieldOf(row), "seg-field", (field) => {
      siblings[siblings.indexOf(row)] = newRow(field); changed(); render();
    }));
    if (row.type === "attribute") {
      if (row.field === "custom") line.append(input(row.key, "seg-key", {placeholder: "attribute name", size: 12}, set("key")));
      line.append(select(ATTR_OPS, row.op, "seg-op", (op) => { row.op = op; changed(); render(); }));
      if (row.op !== "exists" && row.op !== "not_exists") {
        const attrs = {placeholder: "value", size: 24};
        if (LISTS[row.field]) attrs.list = LISTS[row.field];
        line.append(input(row.value, "seg-value", attrs, set("value")));
      }
    } else if (row.type === "event") {
      line.append(input(row.event, "seg-value", {list: LISTS.event, placeholder: "event type", size: 14}, set("event")));
      line.append(select(CMP_OPS, row.op, "seg-op", set("op")));
      line.append(input(row.value, "seg-number", {type: "number", min: 0, placeholder: "1"}, set("value")), " times");
    } else if (row.type === "orders" || row.type === "revenue") {
      line.append(select(CMP_OPS, row.op, "seg-op", set("op")));
      line.append(input(row.value, "seg-number seg-value", {type: "number", min: 0, step: "any"}, set("value")));
    } else if (row.type === "score") {
      line.append(input(row.score, "seg-value", {list: LISTS.score, placeholder: "churn_risk", size: 14}, set("score")));
      line.append(select(CMP_OPS, row.op, "seg-op", set("op")));
      line.append(input(row.value, "seg-number", {type: "number", step: "any"}, set("value")));
    } else if (row.type === "segment") {
      const options = [["", "choose…"], ...segments.map((s) => [String(s.id), s.name])];
      line.append(select(options, row.segment, "seg-value", set("segment")));
    } else if (row.type === "forecast") {
      line.append(select([["slowing", "slow down (clearance)"], ["rising", "rise"]], row.direction, "seg-op", set("direction")));
      line.append(select([["", "in units"], ["units", "in units (stated)"], ["revenue", "in revenue"]], row.measure, "seg-measure", set("measure")));
    }
    if ("days" in row) {
      line.append(" within ", input(row.days, "seg-number seg-days", {type: "number", min: 1, placeholder: "any"}, set("days")), " days");
    }
    line.append(el("button", {type: "button", class: "seg-remove", title: "remove", onclick: () => {
      siblings.splice(siblings.indexOf(row), 1); changed(); render();
    }}, "✕"));
    return line;
  }

  function groupEditor(g, parentList) {
    const box = el("div", {class: parentList ? "seg-group seg-subgroup" : "seg-group"});
    const joins = [["all", "All of these (AND)"], ["any", "Any of these (OR)"]];
    const head = el("div", {class: "seg-group-head"},
      select(joins, g.join, "seg-join", (join) => { g.join = join; changed(); }));
    if (parentList) {
      head.append(el("button", {type: "button", class: "seg-remove", title: "remove group", onclick: () => {
        parentList.splice(parentList.indexOf(g), 1); changed(); render();
      }}, "✕"));
    }
    box.append(head);
    for (const child of g.children) {
      box.append(child.type === "group" ? groupEditor(child, g.children) : rowEditor(child, g.children));
    }
    const buttons = el("div", {class: "seg-buttons"},
      el("button", {type: "button", class: "seg-add-row", onclick: () => {
        g.children.push(newRow("attr:country")); changed(); render();
      }}, "+ condition"));
    if (!parentList) {
      buttons.append(el("button", {type: "button", class: "seg-add-group", onclick: () => {
        g.children.push({type: "group", join: "any", children: [newRow("attr:country")]});
        changed(); render();
      }}, "+ group"));
    }
    box.append(buttons);
    return box;
  }

  function render() {
    mount.replaceChildren(groupEditor(root, null), el("div", {class: "seg-as-of"},
      "Count windows back from ",
      input(root.asOf, "seg-as-of-input", {placeholder: "now (or 2011-12-10)", size: 22}, (value) => {
        root.asOf = value; changed();
      })));
  }

  function changed() {
    const rules = toRules(root);
    rulesArea.value = rules === null ? "" : JSON.stringify(rules, null, 2);
    schedule();
  }

  function fromTextarea() {
    let parsed;
    try { parsed = JSON.parse(rulesArea.value); } catch (e) { return; } // typing: wait for more
    try {
      root = fromRules(parsed);
      fallback.hidden = true;
      mount.hidden = false;
      render();
    } catch (e) {
      if (!(e instanceof Unshowable)) throw e;
      fallback.textContent = `The builder cannot show these rules (${e.message}); edit them as JSON below.`;
      fallback.hidden = false;
      mount.hidden = true;
    }
  }

  function workspace() {
    return (workspaceSelect && workspaceSelect.value) || script.dataset.workspace || null;
  }

  async function loadChoices() {
    const url = new URL(script.dataset.choicesUrl, location.href);
    if (workspace()) url.searchParams.set("workspace", workspace());
    const r = await fetch(url, {credentials: "same-origin"});
    if (!r.ok) return;
    const data = await r.json();
    const fill = (id, values) => {
      document.getElementById(id).replaceChildren(...values.map((v) => el("option", {value: v})));
    };
    fill(LISTS.country, data.countries);
    fill(LISTS.event, data.event_types);
    fill(LISTS.score, data.scores);
    segments = data.segments;
    if (!mount.hidden) render();
  }

  let timer = null;
  let asked = 0;
  async function update() {
    let parsed;
    try { parsed = JSON.parse(rulesArea.value); } catch (e) {
      error.textContent = rulesArea.value.trim() ? "not valid JSON yet" : "add a condition";
      count.textContent = "–";
      return;
    }
    const mine = ++asked;
    const r = await fetch(script.dataset.liveUrl, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrf},
      body: JSON.stringify({workspace: workspace(), rules: parsed}),
    });
    const data = await r.json();
    if (mine !== asked) return; // an answer to rules already changed again
    sampleBody.replaceChildren();
    note.hidden = true;
    if (!r.ok) { error.textContent = data.error; count.textContent = "–"; return; }
    error.textContent = "";
    count.textContent = (data.estimated ? "about " : "") + data.count.toLocaleString();
    estimate.hidden = !data.estimated;
    if (data.estimated) {
      // Counted on one customer in `sampled`: an exact count would take too long to show as
      // you edit; saving the segment counts every member.
      estimate.textContent = `(estimated from 1 customer in ${data.sampled}: ` +
        `${data.low.toLocaleString()} to ${data.high.toLocaleString()} at 95%; saving counts exactly)`;
    }
    if (data.as_of_note) {
      suggestion = data.as_of_suggestion;
      document.getElementById("segment-as-of-text").textContent = data.as_of_note;
      note.hidden = false;
    }
    for (const c of data.sample) {
      const link = el("a", {href: `/admin/crm/customer/${c.id}/change/`}, String(c.id));
      sampleBody.append(el("tr", {}, el("td", {}, link),
        ...[c.email || "", `${c.first_name} ${c.last_name}`.trim(), c.country].map((v) => el("td", {}, v))));
    }
  }
  function schedule() { clearTimeout(timer); timer = setTimeout(update, 400); }

  document.getElementById("segment-as-of-apply").addEventListener("click", () => {
    if (!suggestion) return;
    let parsed;
    try { parsed = JSON.parse(rulesArea.value); } catch (e) { return; }
    parsed.as_of = suggestion;
    rulesArea.value = JSON.stringify(parsed, null, 2);
    fromTextarea();
    schedule();
  });
  rulesArea.addEventListener("input", () => { fromTextarea(); schedule(); });
  if (workspaceSelect) workspaceSelect.addEventListener("change", () => { loadChoices(); schedule(); });
  if (rulesArea.value.trim()) fromTextarea(); else render();
  loadChoices();
  update();
})();
