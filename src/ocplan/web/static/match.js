// ocplan workbench, Match page: a thin client of POST api/match.
//
// The form is built from the declarations of GET api/match/form (archetypes, constraint
// and cost fields, platform ids); the request is the mapping of a mix file; every number
// shown and the chart come from the server. No formula or model constant lives here:
// formatting only (thousands separators, significant digits, SI prefixes). Values are
// sent as typed, so that the API's one-line messages (field and value) are what the user
// sees when one is wrong.
"use strict";

(function () {
  const { TOKEN, $, $$, el, put, api, showErrors, fmtNum } = window.ocplanUI;

  // ---- display formatting (no model arithmetic) -----------------------------------

  const PREFIXES = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];


  function fmtUnit(v, unit) {
    for (const [scale, prefix] of PREFIXES) {
      if (Math.abs(v) >= scale) return fmtNum(v / scale) + " " + prefix + unit;
    }
    return fmtNum(v) + " " + unit;
  }

  function coerce(raw, kind) {
    if (kind === "int") return /^[+-]?\d+$/.test(raw) ? Number(raw) : raw;
    if (kind === "float" || kind === "quantity") {
      const n = Number(raw);
      return raw !== "" && Number.isFinite(n) ? n : raw;
    }
    if (kind === "ints") return raw.split(",").map((x) => coerce(x.trim(), "int"));
    return raw;
  }

  // ---- the form, from the declarations ---------------------------------------------

  let form = null; // GET api/match/form

  function fieldInput(prefix, f) {
    const id = prefix + "-" + f.name.replaceAll("_", "-");
    const title = [f.unit ? "unit: " + f.unit + " (or a unit string, e.g. 4 GB, 20 kW)" : null,
      f.low !== null || f.high !== null ? "from " + (f.low ?? "–") + " to " + (f.high ?? "–") : null]
      .filter(Boolean).join("; ");
    if (f.kind === "choices") {
      return el("div", { className: "hw", "data-field": f.name, "data-kind": f.kind, id },
        f.label + ": ", f.choices.map((c) => el("label", { className: "inline" },
          el("input", { type: "checkbox", value: c, className: "mt-choice" }), " " + c, " ")));
    }
    let input;
    if (f.kind === "choice") {
      input = el("select", { id, "data-field": f.name, "data-kind": f.kind },
        el("option", { value: "" }, "(" + f.default + ")"),
        f.choices.map((c) => el("option", { value: c }, c)));
    } else {
      const placeholder = f.default !== null ? String(f.default)
        : f.kind === "ints" ? "e.g. 1,2" : f.kind === "quantity" ? "e.g. … " + f.unit : "";
      input = el("input", { id, type: "text", "data-field": f.name, "data-kind": f.kind,
        title, placeholder, inputMode: f.kind === "int" || f.kind === "float" ? "decimal" : "text" });
    }
    return el("label", {}, f.label + (f.unit ? " (" + f.unit + ")" : ""), " ", input);
  }

  function buildForm() {
    put($("#mt-demand"), form.archetypes.map((a) => el("label", { title: a.summary },
      el("span", {}, a.id, el("br"), el("small", { className: "muted" }, a.unit)), " ",
      el("input", { type: "text", inputMode: "decimal", id: "mt-demand-" + a.id,
        "data-archetype": a.id, placeholder: "0" }))));
    put($("#mt-constraints"), form.constraints.map((f) => fieldInput("mt-c", f)));
    put($("#mt-settings"), form.settings.map((f) => fieldInput("mt-s", f)));
    put($("#mt-platform-ids"), form.platforms.map((p) =>
      el("option", { value: p.id }, p.kind + " · " + p.isa + " · " + p.sockets + "S")));
    $("#mt-example").disabled = !form.example;
  }

  function addPriceRow(key, value) {
    const row = el("li", { className: "mt-price", "data-key": key || "" },
      el("input", { type: "text", className: "mt-price-key", list: "mt-platform-ids",
        placeholder: "platform or CPU id", value: key || "",
        oninput: (ev) => { row.dataset.key = ev.target.value.trim(); } }), " ",
      el("input", { type: "text", className: "mt-price-value", inputMode: "decimal",
        placeholder: "price", value: value === undefined ? "" : String(value) }), " ",
      el("button", { type: "button", className: "mt-price-remove", onclick: () => row.remove() }, "remove"));
    $("#mt-prices").append(row);
    return row;
  }

  function readFields(box) {
    const out = {};
    for (const node of $$("[data-field]", box)) {
      const kind = node.dataset.kind;
      if (kind === "choices") {
        const picked = $$(".mt-choice", node).filter((c) => c.checked).map((c) => c.value);
        if (picked.length) out[node.dataset.field] = picked;
        continue;
      }
      const raw = node.value.trim();
      if (raw !== "") out[node.dataset.field] = coerce(raw, kind);
    }
    return out;
  }

  /** The match request the form describes: the mapping of a mix file. */
  function matchRequest() {
    const req = { name: $("#mt-name").value.trim() || "workbench mix", demand: {} };
    for (const input of $$("[data-archetype]")) {
      const raw = input.value.trim();
      if (raw !== "") req.demand[input.dataset.archetype] = coerce(raw, "float");
    }
    const constraints = readFields($("#mt-constraints"));
    if (Object.keys(constraints).length) req.constraints = constraints;
    const prices = {};
    const fallback = $("#mt-price-default").value.trim();
    if (fallback !== "") prices.default = coerce(fallback, "float");
    for (const row of $$(".mt-price")) {
      const key = $(".mt-price-key", row).value.trim();
      const value = $(".mt-price-value", row).value.trim();
      if (key !== "" && value !== "") prices[key] = coerce(value, "float");
    }
    if (Object.keys(prices).length) req.prices = prices;
    return Object.assign(req, readFields($("#mt-settings")));
  }

  function setFields(box, values) {
    for (const node of $$("[data-field]", box)) {
      const v = (values || {})[node.dataset.field];
      if (node.dataset.kind === "choices") {
        for (const c of $$(".mt-choice", node)) c.checked = Array.isArray(v) && v.includes(c.value);
      } else if (Array.isArray(v)) {
        node.value = v.join(", ");
      } else {
        node.value = v === undefined || v === null ? "" : String(v);
      }
    }
  }

  /** Put a mix (a request mapping, as a mix file holds it) into the form. */
  function setForm(mix) {
    $("#mt-name").value = mix.name || "";
    for (const input of $$("[data-archetype]")) {
      const v = (mix.demand || {})[input.dataset.archetype];
      input.value = v === undefined ? "" : String(v);
    }
    setFields($("#mt-constraints"), mix.constraints);
    setFields($("#mt-settings"), mix);
    put($("#mt-prices"));
    const prices = Object.assign({}, mix.prices || {});
    $("#mt-price-default").value = prices.default === undefined ? "" : String(prices.default);
    delete prices.default;
    for (const [key, value] of Object.entries(prices)) addPriceRow(key, value);
  }

  async function uploadMix(ev) {
    const file = ev.target.files && ev.target.files[0];
    if (!file) return;
    try {
      const mix = await api("POST", "api/match/parse", { name: file.name, text: await file.text() });
      setForm(mix);
      showErrors($("#mt-errors"), null);
      $("#mt-status").textContent = "Loaded " + file.name + "; press Match.";
    } catch (exc) {
      showErrors($("#mt-errors"), exc);
    } finally {
      ev.target.value = "";
    }
  }

  function download(name, type, text) {
    const url = URL.createObjectURL(new Blob([text], { type }));
    const a = el("a", { href: url, download: name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  // ---- running and showing a match --------------------------------------------------

  let last = null;

  /** Columns of the ranked table: result field -> [label, how to show it]. */
  const COLUMNS = {
    platform: ["platform", null], isa: ["ISA", null], sockets: ["sockets", null],
    servers: ["servers", null], binding: ["binding", null],
    load: ["mean load", (v) => (100 * v).toFixed(1) + " %"],
    fleet_power_W: ["power at load", (v) => fmtUnit(v, "W")],
    perf_per_kW: ["perf per kW", null], perf_per_cost: ["perf per million", null],
    capex: ["servers' price", null], energy_cost: ["energy", null], tco: ["TCO", null],
    racks: ["racks", null],
  };

  function cell(key, value, currency) {
    const show = COLUMNS[key][1];
    let text;
    if (value === null || value === undefined) text = "–";
    else if (show) text = show(value);
    else if (typeof value === "number") text = fmtNum(value);
    else text = String(value);
    if (["capex", "energy_cost", "tco"].includes(key) && value !== null) text += " " + currency;
    return el("td", { className: typeof value === "number" ? "num" : "", "data-key": key,
      "data-value": value === null || value === undefined ? "" : String(value) }, text);
  }

  /** Where the platform's capacities came from, one line per archetype. */
  function sources(row) {
    return Object.entries(row.capacities).map(([k, c]) => k + ": " + fmtNum(c.value) +
      " (" + c.source + (c.low !== c.high ? ", " + fmtNum(c.low) + "–" + fmtNum(c.high) : "") + ")");
  }

  /** The flags of a platform's numbers and its module's findings, one line each. */
  function notes(row) {
    return [...row.flags, ...row.findings.map((f) => f.severity + " " + f.rule + ": " + f.message)];
  }

  /** Lines behind a one-line summary that opens on a click (the table stays compact). */
  function folded(summary, lines) {
    if (!lines.length) return "–";
    return el("details", {}, el("summary", {}, summary),
      el("ul", {}, lines.map((l) => el("li", {}, l))));
  }

  async function render(result) {
    const table = $("#mt-table");
    const rows = result.platforms.filter((r) => r.feasible);
    const refused = result.platforms.filter((r) => !r.feasible);
    put(table.tHead, el("tr", {}, el("th", {}, "#"),
      Object.entries(COLUMNS).map(([k, [label]]) => el("th", { "data-key": k },
        label + (k === "perf_per_cost" ? " " + result.currency : ""))),
      el("th", {}, "capacities and sources"), el("th", {}, "flags and findings")));
    put(table.tBodies[0], rows.map((r, i) => el("tr", { "data-platform": r.platform },
      el("td", { className: "num" }, String(i + 1)),
      Object.keys(COLUMNS).map((k) => cell(k, r[k], result.currency)),
      el("td", {}, folded(Object.keys(r.capacities).length + " capacities", sources(r))),
      el("td", {}, folded(notes(r).length ? notes(r).length + " notes" : "", notes(r))))));
    put($("#mt-refused").tBodies[0], refused.map((r) => el("tr", { "data-platform": r.platform },
      el("td", {}, r.platform), el("td", {}, r.isa), el("td", { className: "num" }, String(r.sockets)),
      el("td", {}, r.reason || ""))));
    $("#mt-note").textContent = "perf: the share of the whole mix one server serves, per kW " +
      "at full load and per million " + result.currency + " of its price; binding: the " +
      "archetype that takes most of each server.";
    await draw($("#plot-match"), (result.figures || {}).pareto);
    return rows.length;
  }

  // A chart without points is still drawn when its layout says why (an annotation).
  function draw(div, fig) {
    if (!fig || (!fig.data.length && !(fig.layout.annotations || []).length)) {
      Plotly.purge(div);
      put(div);
      return Promise.resolve();
    }
    return Plotly.newPlot(div, fig.data, fig.layout, { displaylogo: false, responsive: true });
  }

  async function runMatch(ev) {
    ev.preventDefault();
    const status = $("#mt-status");
    status.dataset.state = "busy";
    status.textContent = "matching…";
    $("#mt-run").disabled = true;
    try {
      const req = matchRequest();
      const result = await api("POST", "api/match", req);
      last = { request: req, result };
      showErrors($("#mt-errors"), null);
      const served = await render(result);
      status.textContent = result.name + ": " + served + " platforms serve the mix, " +
        result.cannot_serve + " cannot, " + result.not_modelled + " not modelled; ranked by " +
        result.objective;
      $("#mt-csv").disabled = false;
      status.dataset.state = "done";
    } catch (exc) {
      showErrors($("#mt-errors"), exc);
      status.textContent = "The match failed (see above).";
      status.dataset.state = "error";
    } finally {
      $("#mt-run").disabled = false;
    }
  }

  /** Every platform as CSV (RFC 4180 quoting; raw values, SI units in the names). */
  function exportCsv() {
    const rows = (last && last.result.platforms) || [];
    if (!rows.length) return;
    const cols = Object.keys(rows[0]).filter((k) => rows[0][k] === null || typeof rows[0][k] !== "object");
    const quote = (v) => {
      if (v === null || v === undefined) return "";
      const t = String(v);
      return /[",\n]/.test(t) ? '"' + t.replace(/"/g, '""') + '"' : t;
    };
    const lines = [cols.concat(["flags", "sources"]).join(",")].concat(rows.map((r) =>
      cols.map((c) => quote(r[c])).concat([quote(r.flags.join("; ")), quote(sources(r).join("; "))]).join(",")));
    download("match.csv", "text/csv", lines.join("\n") + "\n");
  }

  // ---- start -------------------------------------------------------------------------

  async function init() {
    const q = TOKEN ? "?token=" + encodeURIComponent(TOKEN) : "";
    // the page's own styles, after style.css (boot.js loads that one), with the token
    document.head.append(el("link", { rel: "stylesheet", href: "static/match.css" + q }));
    if (TOKEN) $("#mt-home").href = "./" + q;
    $("#mt-form").addEventListener("submit", runMatch);
    $("#mt-add-price").addEventListener("click", () => addPriceRow("", undefined));
    $("#mt-example").addEventListener("click", () => form && form.example && setForm(form.example));
    $("#mt-upload").addEventListener("change", uploadMix);
    $("#mt-save-mix").addEventListener("click", () =>
      download("mix.json", "application/json", JSON.stringify(matchRequest(), null, 2) + "\n"));
    $("#mt-csv").addEventListener("click", exportCsv);
    try {
      const health = await api("GET", "api/health");
      $("#health").textContent = "server " + health.status;
      form = await api("GET", "api/match/form");
      buildForm();
      if (form.example) setForm(form.example);
    } catch (exc) {
      $("#health").textContent = "server unreachable";
      showErrors($("#global-errors"), exc);
    }
    document.body.dataset.ready = "1";
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
