// ocplan workbench: a thin client of the JSON API under /api.
//
// No formulas and no model constants live here: every number and every figure spec
// comes from the server; figures are drawn as given with Plotly.newPlot(div, data,
// layout). Bad input is sent as typed so that the API's one-line messages (field and
// value) are what the user sees.
"use strict";

(function () {
  const { TOKEN, $, $$, el, put, ApiError, api, showErrors, fmtNum } = window.ocplanUI;
  const TABS = ["catalog", "composer", "estimate", "search", "compare", "inference", "sweeps",
    "scenarios"];
  const POLL_MS = 250;

  // ---- small helpers ---------------------------------------------------------------

  // Display formatting only (thousands separators, 4 significant digits, SI prefixes
  // for the unit a field's name carries); no model arithmetic.
  const PREFIXES = [[1e15, "P"], [1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];
  /** Joules in a watt-hour: energies (fields ending in _J) are shown in Wh, kWh, MWh. */
  const J_PER_WH = 3600;
  const UNITS = [[/_per_s$/, ""], [/_Bps(_|$)/, "B/s"], [/_bytes(_|$)/, "B"], [/_W$/, "W"], [/_J$/, "J"],
    [/_s$/, "s"]];


  /** Fields that are fractions of a whole, shown as percentages. */
  const PERCENT = ["mfu", "hfu", "memory_headroom", "tie_tolerance", "goodput"];
  /** Fields that are costs, shown with the currency label of the answer. */
  const MONEY = ["cost_to_train", "cost_per_mtok"];
  /** The server's currency label (GET api/settings): for answers saved without one. */
  let serverCurrency = "";

  /** A value for display; ``currency`` labels a cost (the answer's "currency"). */
  function fmtValue(key, v, currency) {
    if (v === null || v === undefined) return "–";
    if (typeof v === "boolean") return v ? "yes" : "no";
    if (typeof v === "number" && MONEY.includes(key.replace(/^.*\./, ""))) {
      const label = currency || serverCurrency;
      return fmtNum(v) + (label ? " " + label : "");
    }
    if (typeof v === "number" && PERCENT.includes(key.replace(/^.*\./, ""))) return (100 * v).toFixed(1) + " %";
    if (typeof v === "number" && key.endsWith("_pct")) return v.toFixed(1) + " %";  // already %
    if (typeof v === "number" && key.endsWith("_s") && !key.endsWith("_per_s")
        && v >= 2 * 3600) {
      // long durations in the largest sensible unit
      return v >= 2 * 86400 ? fmtNum(v / 86400) + " days" : fmtNum(v / 3600) + " h";
    }
    if (typeof v === "number" && /_J$/.test(key)) {
      // energy in watt-hours, as the CLI and the report print it (1 Wh = 3600 J)
      const wh = v / J_PER_WH;
      for (const [scale, prefix] of PREFIXES) {
        if (Math.abs(wh) >= scale) return fmtNum(wh / scale) + " " + prefix + "Wh";
      }
      return fmtNum(wh) + " Wh";
    }
    if (typeof v === "number") {
      const unit = (UNITS.find(([re]) => re.test(key)) || [null, ""])[1];
      if (!unit) return fmtNum(v);
      if (unit === "s") return fmtNum(v) + " s";
      for (const [scale, prefix] of PREFIXES) {
        if (Math.abs(v) >= scale) return fmtNum(v / scale) + " " + prefix + unit;
      }
      return fmtNum(v) + " " + unit;
    }
    if (Array.isArray(v) && v.length === 2 && /(^|\.)likely_/.test(key)) {
      // a likely range: where a measurement of the estimate would likely fall
      return fmtNum(v[0]) + " to " + fmtNum(v[1]);
    }
    if (Array.isArray(v)) return v.map((x) => fmtValue(key, x)).join(", ");
    if (typeof v === "object") {
      return Object.entries(v).map(([k, x]) => k + "=" + fmtValue(k, x)).join(" ");
    }
    return String(v);
  }

  const isScalar = (v) => v === null || typeof v !== "object";

  /** The known limits of the model that apply to a result (its "caveats"), one per line
   *  beside the number they qualify; hidden when none apply. */
  function showCaveats(list, caveats) {
    put(list, (caveats || []).map((c) => el("li", {}, c)));
    list.hidden = !(caveats || []).length;
  }

  /** A two-column table of a mapping's fields (nested mappings on one line); costs in
   *  the mapping's own "currency". */
  function kvTable(obj, skip) {
    const rows = Object.entries(obj || {}).filter(([k]) => !(skip || []).includes(k));
    const currency = (obj || {}).currency;
    return el("table", { className: "kv" }, rows.map(([k, v]) =>
      el("tr", { "data-key": k }, el("th", {}, k), el("td", {}, fmtValue(k, v, currency)))));
  }

  /** The rows a person reads of a result, [label, text] pairs as the server words and
   *  formats them for every surface (ocplan/reports/summary.py); a label indented by two
   *  spaces is a part of the row above it. */
  function rowsTable(rows) {
    return el("table", { className: "kv summary" }, (rows || []).map(([label, text]) =>
      el("tr", { "data-key": label.trim(), className: label.startsWith("  ") ? "part" : "" },
        el("th", {}, label.trim()), el("td", {}, text))));
  }

  /** A nested rendering of a catalog entry's fields. */
  function valueNode(key, v) {
    if (isScalar(v)) return document.createTextNode(fmtValue(key, v));
    if (Array.isArray(v)) {
      if (v.every(isScalar)) return document.createTextNode(v.map((x) => fmtValue(key, x)).join(", "));
      return el("div", {}, v.map((x) => valueNode(key, x)));
    }
    return el("table", { className: "kv" }, Object.entries(v).map(([k, x]) =>
      el("tr", {}, el("th", {}, k), el("td", {}, valueNode(k, x)))));
  }

  function draw(div, fig) {
    if (!fig) {
      Plotly.purge(div);
      put(div);
      return Promise.resolve();
    }
    return Plotly.newPlot(div, fig.data, fig.layout, { displaylogo: false, responsive: true });
  }

  function debounce(fn, ms) {
    let timer = null;
    return () => {
      clearTimeout(timer);
      timer = setTimeout(fn, ms);
    };
  }

  function setOptions(select, entries, placeholder) {
    const keep = select.value;
    put(select,
      el("option", { value: "" }, placeholder),
      entries.map((e) => el("option", { value: e.id }, e.id + " — " + e.name)));
    select.value = keep;
  }

  function coerce(raw, type) {
    if (type === "int") return /^[+-]?\d+$/.test(raw) ? Number(raw) : raw;
    if (type === "ints") return raw.split(",").map((x) => coerce(x.trim(), "int"));
    if (type === "floats") return raw.split(",").map((x) => coerce(x.trim(), "float"));
    if (type === "float") {
      const n = Number(raw);
      return Number.isFinite(n) ? n : raw;
    }
    if (type === "bool") return raw === "true";
    return raw;
  }

  // ---- tabs ------------------------------------------------------------------------

  function showTab(name) {
    if (!TABS.includes(name)) name = TABS[0];
    for (const t of TABS) {
      $("#tab-" + t).classList.toggle("active", t === name);
      $(`#tabs button[data-tab="${t}"]`).classList.toggle("active", t === name);
    }
    history.replaceState(null, "", location.pathname + location.search + "#" + name);
    for (const div of $$("#tab-" + name + " .js-plotly-plot")) Plotly.Plots.resize(div);
    if (name === "scenarios") loadScenarios();
    if (name === "sweeps") loadSweeps();
  }

  // ---- catalog ---------------------------------------------------------------------

  let catalog = [];
  const byKind = {};

  const entriesOf = (kind) => catalog.filter((e) => e.kind === kind);

  async function loadCatalog() {
    catalog = await api("GET", "api/catalog");
    const kinds = [...new Set(catalog.map((e) => e.kind))];
    const kindSel = $("#cat-kind");
    put(kindSel, kinds.map((k) =>
      el("option", { value: k }, k + " (" + entriesOf(k).length + ")")));
    setOptions($("#sys-server"), entriesOf("server"), "— pick a server —");
    setOptions($("#sys-accelerator"), entriesOf("accelerator"), "(server's own)");
    setOptions($("#sys-fabric"), entriesOf("fabric"), "(server's default)");
    setOptions($("#sys-nic"), entriesOf("nic"), "(default)");
    for (const p of ["est", "srch", "inf", "cmp"]) {
      setOptions($("#" + p + "-model"), entriesOf("model"), "— pick a model —");
      setOptions($("#" + p + "-chip"), entriesOf("accelerator"), "— pick an accelerator —");
    }
    await listKind();
  }

  async function listKind() {
    const kind = $("#cat-kind").value;
    if (!kind) return;
    if (!byKind[kind]) byKind[kind] = await api("GET", "api/catalog?kind=" + encodeURIComponent(kind));
    const needle = $("#cat-filter").value.trim().toLowerCase();
    const shown = byKind[kind].filter((e) =>
      !needle || e.id.toLowerCase().includes(needle) || e.name.toLowerCase().includes(needle));
    put($("#cat-list"), shown.map((e) =>
      el("li", { "data-id": e.id, onclick: () => showEntry(e.id) },
        el("span", { className: "id" }, e.id), " ", el("span", { className: "muted" }, e.name))));
  }

  async function showEntry(id) {
    for (const li of $$("#cat-list li")) li.classList.toggle("selected", li.dataset.id === id);
    const box = $("#cat-entry");
    let entry;
    try {
      entry = await api("GET", "api/catalog/" + encodeURIComponent(id) + "?display=1");
    } catch (exc) {
      put(box, el("div", { className: "errors" }));
      showErrors(box.firstChild, exc);
      return;
    }
    // the server's display strings: every quantity with its unit (GET ?display=1)
    const shown = entry.display || {};
    const rows = Object.entries(shown).filter(
      ([k]) => !["id", "name", "kind", "notes"].includes(k));
    put(box,
      el("h2", {}, entry.name),
      el("p", { className: "muted" }, el("code", {}, entry.id), " · " + entry.kind),
      el("table", { className: "grid", id: "cat-fields" }, el("tbody", {}, rows.map(([k, v]) =>
        el("tr", { "data-key": k }, el("th", {}, k), el("td", {}, v))))),
      entry.notes ? el("p", { className: "notes" }, entry.notes) : null,
      el("h3", {}, "Sources"),
      el("ol", { className: "sources", id: "cat-sources" }, entry.sources.map((s) => el("li", {},
        s.url ? el("a", { href: s.url, target: "_blank", rel: "noopener" }, s.title) : s.title,
        s.locator ? el("span", { className: "muted" }, " — " + s.locator) : null,
        el("div", { className: "muted" }, "covers: " + s.covers.join(", "))))));
  }

  // ---- system composer -------------------------------------------------------------

  let sysSeq = 0;
  let lastSystem = null;

  /** The system mapping the composer describes (what a system YAML file holds). */
  function composerMapping() {
    const v = (id) => $("#" + id).value.trim();
    const m = {};
    if (v("sys-server")) m.server = v("sys-server");
    m.name = v("sys-name") || (v("sys-servers") || "1") + " x " + (v("sys-server") || "?");
    if (v("sys-accelerator")) m.accelerator = v("sys-accelerator");
    // blank means one server (the field's placeholder), not a missing field
    m.servers = v("sys-servers") ? coerce(v("sys-servers"), "int") : 1;
    if (v("sys-cooling")) m.cooling = v("sys-cooling");
    const so = {};
    if (v("sys-fabric")) so.fabric = v("sys-fabric");
    if (v("sys-nic")) so.nic = v("sys-nic");
    if (v("sys-nics")) so.nics_per_server = coerce(v("sys-nics"), "int");
    if (v("sys-topology")) so.topology = v("sys-topology");
    if (v("sys-oversub")) so.oversubscription = coerce(v("sys-oversub"), "float");
    if (Object.keys(so).length) m.scale_out = so;
    const rack = {};
    if (v("sys-rack-servers")) rack.servers_per_rack = coerce(v("sys-rack-servers"), "int");
    if (v("sys-rack-power")) rack.power_limit = v("sys-rack-power");
    if (Object.keys(rack).length) m.rack = rack;
    if (v("sys-pue")) m.facility = { pue: coerce(v("sys-pue"), "float") };
    // any storage field typed sends the block, so a bandwidth given without a kind (or a
    // kind without bandwidths) comes back as the field's error instead of vanishing
    const st = {};
    if (v("sys-storage-kind")) st.kind = v("sys-storage-kind");
    if (v("sys-storage-write")) st.write_bandwidth = v("sys-storage-write");
    if (v("sys-storage-read")) st.read_bandwidth = v("sys-storage-read");
    if (v("sys-storage-client")) st.client_bandwidth = v("sys-storage-client");
    if (Object.keys(st).length) m.storage = st;
    return m;
  }

  function setComposer(m) {
    const set = (id, value) => { $("#" + id).value = value === undefined || value === null ? "" : String(value); };
    const so = m.scale_out || {};
    const rack = m.rack || {};
    set("sys-name", m.name);
    set("sys-server", m.server);
    set("sys-accelerator", m.accelerator);
    set("sys-servers", m.servers);
    set("sys-cooling", m.cooling);
    set("sys-fabric", so.fabric);
    set("sys-nic", so.nic);
    set("sys-nics", so.nics_per_server);
    set("sys-topology", so.topology);
    set("sys-oversub", so.oversubscription);
    set("sys-rack-servers", rack.servers_per_rack);
    set("sys-rack-power", rack.power_limit);
    set("sys-pue", (m.facility || {}).pue);
    const st = m.storage || {};
    set("sys-storage-kind", st.kind);
    set("sys-storage-write", st.write_bandwidth);
    set("sys-storage-read", st.read_bandwidth);
    set("sys-storage-client", st.client_bandwidth);
    updateComposer();
  }

  async function updateComposer() {
    const seq = ++sysSeq;
    const mapping = composerMapping();
    const status = $("#sys-status");
    status.dataset.state = "busy";
    if (!mapping.server) {
      lastSystem = null;
      showErrors($("#sys-errors"), null);
      status.textContent = "Pick a server to check a composition.";
      put($("#findings tbody"));
      put($("#topo-summary"));
      draw($("#plot-topology"), null);
      status.dataset.state = "idle";
      return;
    }
    status.textContent = "checking…";
    const [check, topo] = await Promise.allSettled([
      api("POST", "api/check", mapping), api("POST", "api/topology", mapping)]);
    if (seq !== sysSeq) return; // a newer edit is on its way
    const failed = [check, topo].filter((r) => r.status === "rejected").map((r) => r.reason);
    if (failed.length) {
      const lines = [...new Set(failed.flatMap((e) => (e instanceof ApiError ? e.lines : [String(e)])))];
      showErrors($("#sys-errors"), new ApiError(failed[0].status, lines));
    } else {
      showErrors($("#sys-errors"), null);
    }
    if (check.status === "fulfilled") {
      const c = check.value;
      status.textContent = c.system + ": " + fmtNum(c.chips) + " chips — " + c.errors +
        " errors, " + c.warnings + " warnings, " + c.findings.length + " findings";
      put($("#findings tbody"), c.findings.map((f) =>
        el("tr", { className: "sev-" + f.severity, "data-rule": f.rule },
          el("td", {}, f.rule), el("td", { className: "sev" }, f.severity),
          el("td", {}, f.message), el("td", {}, f.section))));
    } else {
      status.textContent = "The composition has input errors (see above).";
      put($("#findings tbody"));
    }
    if (topo.status === "fulfilled") {
      put($("#topo-summary"), kvTable(topo.value, ["board", "cluster", "figures"]));
      await draw($("#plot-topology"), topo.value.figures.topology);
      await draw($("#plot-cluster"), topo.value.figures.cluster || null);
    } else {
      put($("#topo-summary"));
      draw($("#plot-topology"), null);
      draw($("#plot-cluster"), null);
    }
    lastSystem = check.status === "fulfilled" && topo.status === "fulfilled"
      ? { request: mapping, check: check.value, topology: topo.value } : null;
    if (seq === sysSeq) status.dataset.state = "ready";
  }

  async function saveSystem() {
    const out = $("#sys-saved");
    if (!lastSystem) {
      out.textContent = "nothing to save: the composition does not check";
      return;
    }
    const t = Object.fromEntries(Object.entries(lastSystem.topology).filter(
      ([k]) => !["board", "cluster", "figures"].includes(k)));
    const result = {
      chips: lastSystem.check.chips, errors: lastSystem.check.errors,
      warnings: lastSystem.check.warnings, findings: lastSystem.check.findings, ...t,
      figures: { topology: lastSystem.topology.figures.topology },
    };
    await saveScenario($("#sys-save-name").value, "system", lastSystem.request, result, out);
  }

  // ---- estimate and search forms ---------------------------------------------------

  /** The input of one declared field (a layout field, a training or serving option):
   *  numbers as text boxes, flags and choices as selects, blank meaning the API's default
   *  (or, for a field a search varies, that the search picks it), which the blank shows.
   *  Its id is prefix-flag (est-micro-batch; inf-rate for rate_per_s, whose flag is
   *  --rate), its value goes to data-field. */
  function fieldInput(prefix, f) {
    const id = prefix + "-" + f.flag.slice(2);
    const attrs = { id, "data-field": f.name, title: f.help + " (" + f.allowed + ")" };
    const blank = f.searched ? "(searched)" : f.empty ? "(" + f.empty + ")"
      : f.kind === "choice" ? "(" + f.default + ")" : "(default)";
    if (f.kind === "bool" || f.kind === "choice") {
      const options = f.kind === "bool"
        ? [el("option", { value: "true" }, "on"), el("option", { value: "false" }, "off")]
        : f.choices.map((c) => el("option", { value: c }, c));
      return el("select", { ...attrs, "data-type": f.kind === "bool" ? "bool" : undefined },
        el("option", { value: "" }, blank), options);
    }
    const number = f.kind === "number";
    return el("input", { ...attrs, "data-type": number ? "float" : "int", type: "text",
      inputMode: number ? "decimal" : "numeric",
      placeholder: f.searched ? "searched" : f.empty ? f.empty
        : f.default === null ? "" : String(f.default) });
  }

  /** The layout inputs of a form, one per field the API declares (GET api/layout). */
  async function buildLayoutForm(prefix, path = "api/layout") {
    const fields = await api("GET", path);
    put($("#" + prefix + "-layout"), fields.map((f) => el("label", { "data-layout": f.name },
      f.name.replaceAll("_", " "), " ", fieldInput(prefix, f))));
  }

  /** A form's job inputs, one per option the API declares, under the option's label
   *  and unit: a training job's (GET api/training-options: precision, optimizer states,
   *  MoE routing) or a serving job's (GET api/serving-options: lengths, load, limits,
   *  formats). */
  function buildOptionsForm(prefix, fields) {
    put($("#" + prefix + "-options"), fields.map((f) => el("label", { "data-option": f.name },
      f.label + (f.unit ? ", " + f.unit : ""), " ", fieldInput(prefix, f))));
  }


  /** A request from a form's data-field inputs (blank ones left to the API's defaults)
   *  plus the hardware: the composed system or a chip. */
  function jobRequest(prefix) {
    const req = {};
    for (const input of $$("#" + prefix + "-form [data-field]")) {
      const raw = input.value.trim();
      if (raw === "" || input.dataset.field === "chip") continue;
      req[input.dataset.field] = coerce(raw, input.dataset.type);
    }
    const hw = $(`input[name="${prefix}-hw"]:checked`).value;
    if (hw === "chip") {
      const chip = $("#" + prefix + "-chip").value;
      if (chip) req.chip = chip;
    } else if ($("#sys-server").value) {
      req.system = composerMapping();
    }
    return req;
  }

  /** Fill a form's [data-field] inputs from a request (a field typed in a human unit,
   *  data-scale, shown in it: days, MW). */
  function fillFields(form, req) {
    for (const input of $$(form + " [data-field]")) {
      let v = req[input.dataset.field];
      if (input.dataset.scale && typeof v === "number") v /= Number(input.dataset.scale);
      input.value = v === undefined || v === null ? "" : String(v);
    }
  }

  function setJobForm(prefix, req) {
    fillFields("#" + prefix + "-form", req);
    const hw = req.system ? "system" : "chip";
    $(`input[name="${prefix}-hw"][value="${hw}"]`).checked = true;
    if (req.system) setComposer(req.system);
  }

  async function saveScenario(name, kind, request, result, out) {
    out.textContent = "saving…";
    try {
      const s = await api("POST", "api/scenarios", { name, kind, request, result });
      out.textContent = "saved “" + s.name + "”";
      out.dataset.savedId = s.id;
    } catch (exc) {
      out.textContent = "";
      put(out, el("span", { className: "errors" }, exc.lines ? exc.lines.join("; ") : String(exc)));
    }
  }

  // ---- estimate --------------------------------------------------------------------

  let lastEstimate = null;

  async function runEstimate(ev) {
    ev.preventDefault();
    const req = jobRequest("est");
    const status = $("#est-status");
    status.textContent = "estimating…";
    status.dataset.state = "busy";
    $("#est-run").disabled = true;
    $("#est-saved").textContent = "";
    try {
      const res = await api("POST", "api/estimate", req);
      lastEstimate = { request: req, result: res };
      showErrors($("#est-errors"), null);
      await renderEstimate(res);
      $("#est-save").disabled = false;
    } catch (exc) {
      lastEstimate = null;
      $("#est-save").disabled = true;
      showErrors($("#est-errors"), exc);
      status.textContent = "The estimate failed (see above).";
      put($("#est-summary"));
      put($("#est-fields"));
      $("#est-fields-box").hidden = true;
      showCaveats($("#est-caveats"), []);
      for (const id of ["breakdown", "memory", "timeline", "sensitivity"]) draw($("#plot-" + id), null);
      $("#est-sensitivity").textContent = "";
      put($("#est-cluster"));
      for (const id of ["power-flow", "goodput"]) draw($("#plot-" + id), null);
      // no section headings over nothing
      $("#est-sensitivity-head").hidden = $("#est-cluster-head").hidden = true;
    } finally {
      $("#est-run").disabled = false;
      status.dataset.state = "ready";
    }
  }

  async function renderEstimate(res) {
    const status = $("#est-status");
    status.textContent = res.feasible
      ? res.system + ": step " + fmtValue("step_s", res.step_s) + ", " + res.bound + "-bound"
      : res.system + ": infeasible — " + (res.reason || "");
    showCaveats($("#est-caveats"), res.feasible ? res.caveats : []);
    // the caveats stand as their own list above, not as rows
    put($("#est-summary"), rowsTable((res.summary || []).filter(([label]) => label !== "caveat")));
    if (res.feasible) {
      put($("#est-fields"), kvTable(res, ["figures", "timeline", "time", "memory", "hint",
        "cluster", "findings", "caveats", "sensitivity", "summary", "cluster_summary"]));
    } else {
      // what does not fit and what to change, not a table of zeros
      const mem = res.memory || {};
      put($("#est-fields"), kvTable({
        layout: res.layout, reason: res.reason, "what to change": res.hint,
        ...Object.fromEntries(Object.entries(mem).filter(([, v]) => v !== null)),
      }));
    }
    $("#est-fields-box").hidden = false;
    const figs = res.figures || {};
    for (const id of ["breakdown", "memory", "timeline"]) await draw($("#plot-" + id), figs[id]);
    $("#est-sensitivity").textContent = res.sensitivity ? res.sensitivity.summary : "";
    $("#est-sensitivity-head").hidden = !res.sensitivity;
    await draw($("#plot-sensitivity"), figs.sensitivity);
    const cl = res.cluster;
    $("#est-cluster-head").hidden = !(cl && res.feasible);
    if (cl && res.feasible) {
      put($("#est-cluster"), rowsTable(res.cluster_summary));
    } else {
      put($("#est-cluster"));
    }
    await draw($("#plot-power-flow"), res.feasible ? figs.power_flow : null);
    await draw($("#plot-goodput"), res.feasible ? figs.goodput : null);
  }

  function saveEstimate() {
    if (!lastEstimate) return;
    // The pipeline timeline is redrawn by running the estimate again: it is by far the
    // largest part of a result and the scenario keeps the numbers and the small figures.
    const result = Object.fromEntries(Object.entries(lastEstimate.result).filter(([k]) => k !== "timeline"));
    result.figures = Object.fromEntries(Object.entries(result.figures || {}).filter(([k]) => k !== "timeline"));
    return saveScenario($("#est-save-name").value, "estimate", lastEstimate.request, result,
      $("#est-saved"));
  }

  // ---- search ----------------------------------------------------------------------

  let job = null;
  let lastSearch = null;

  async function startSearch(ev) {
    ev.preventDefault();
    if (job) await cancelSearch();
    const req = jobRequest("srch");
    lastSearch = null;
    $("#srch-save").disabled = true;
    $("#srch-saved").textContent = "";
    renderSearch(null);
    let started;
    try {
      started = await api("POST", "api/search", req);
    } catch (exc) {
      showErrors($("#srch-errors"), exc);
      $("#srch-status").textContent = "The search did not start (see above).";
      return;
    }
    showErrors($("#srch-errors"), null);
    job = { id: started.id, request: req };
    $("#srch-cancel").disabled = false;
    $("#srch-start").disabled = true;
    showJob(started);
    setTimeout(() => poll(started.id), POLL_MS);
  }

  function showJob(j) {
    const bar = $("#srch-progress");
    bar.max = Math.max(j.total, 1);
    bar.value = j.done;
    $("#srch-progress-text").textContent = j.total ? fmtNum(j.done) + " / " + fmtNum(j.total) : "";
    const status = $("#srch-status");
    status.textContent = "search " + j.status;
    status.dataset.state = j.status;
  }

  async function poll(id) {
    if (!job || job.id !== id) return;
    let j;
    try {
      j = await api("GET", "api/jobs/" + encodeURIComponent(id));
    } catch (exc) {
      showErrors($("#srch-errors"), exc);
      finishJob();
      return;
    }
    if (!job || job.id !== id) return;
    showJob(j);
    if (j.status === "done") {
      lastSearch = { request: job.request, result: j.result };
      $("#srch-csv").disabled = false;
      renderSearch(j.result);
      $("#srch-save").disabled = false;
      finishJob();
    } else if (j.status === "error") {
      showErrors($("#srch-errors"), new ApiError(422, j.error || ["the search failed"]));
      finishJob();
    } else if (j.status === "cancelled") {
      finishJob();
    } else {
      setTimeout(() => poll(id), POLL_MS);
    }
  }

  function finishJob() {
    job = null;
    $("#srch-cancel").disabled = true;
    $("#srch-start").disabled = false;
  }

  async function cancelSearch() {
    if (!job) return;
    const id = job.id;
    try {
      showJob(await api("DELETE", "api/jobs/" + encodeURIComponent(id)));
    } catch (exc) {
      showErrors($("#srch-errors"), exc);
    }
    // polling goes on until the job reports cancelled (or done, if it won the race)
  }

  function renderSearch(result) {
    const table = $("#srch-top");
    if (!result) {
      put(table.tHead);
      put(table.tBodies[0]);
      $("#srch-why").textContent = "";
      showCaveats($("#srch-caveats"), []);
      draw($("#plot-pareto"), null);
      return;
    }
    // the columns a buyer reads, in the order and with the headings the answer's
    // ``columns`` declare ([field, heading], from ocplan.reports.summary, as the CLI and
    // the report show them), each one some row has; "every column" shows every raw field
    const top = result.top || [];
    const all = top.length ? Object.keys(top[0]).filter((k) => isScalar(top[0][k])) : [];
    const headings = Object.fromEntries(result.columns || []);
    const cols = $("#srch-all-columns").checked ? all
      : (result.columns || []).map(([k]) => k)
        .filter((k) => top.some((t) => t[k] !== null && t[k] !== undefined));
    put(table.tHead, el("tr", {}, el("th", {}, "#"),
      cols.map((c) => el("th", { "data-key": c }, headings[c] || c))));
    put(table.tBodies[0], top.map((t, i) => el("tr", {},
      el("td", { className: "num" }, String(i + 1)),
      cols.map((c) => el("td", { className: typeof t[c] === "number" ? "num" : "" },
        fmtValue(c, t[c], result.currency))))));
    $("#srch-why").textContent = result.why || "";
    showCaveats($("#srch-caveats"), (result.best || {}).caveats);
    $("#srch-status").textContent = "search done: " + fmtNum(result.space_size) + " layouts, " +
      fmtNum(result.evaluated) + " evaluated, " + fmtNum(result.feasible) + " fit, " +
      fmtValue("elapsed_s", result.elapsed_s);
    draw($("#plot-pareto"), (result.figures || {}).pareto);
  }

  function saveSearch() {
    if (!lastSearch) return;
    return saveScenario($("#srch-save-name").value, "search", lastSearch.request,
      lastSearch.result, $("#srch-saved"));
  }


  // ---- compare ---------------------------------------------------------------------

  /** The systems to compare, in order: {name, chip} or {name, system}. */
  const cmpSystems = [];
  let cmpJob = null;
  let cmpSent = null;  // the request of the comparison running
  let cmpRequest = null;  // the request of the comparison shown (lastCompare)

  /** Fill the compare form with a saved request (fields in the form's units). */
  function setCompareForm(req) {
    fillFields("#cmp-form", req);
    $("#cmp-allow-invalid").checked = Boolean(req.allow_invalid);
    cmpSystems.splice(0, cmpSystems.length, ...(req.systems || []).map((t) => (t.chip
      ? { name: t.name, chip: t.chip } : { name: t.name, system: t.system })));
    renderCmpSystems();
  }

  function saveCompare() {
    if (!lastCompare || !cmpRequest) return;
    return saveScenario($("#cmp-save-name").value, "compare", cmpRequest, lastCompare,
      $("#cmp-saved"));
  }

  function renderCmpSystems() {
    put($("#cmp-systems"), cmpSystems.map((t, i) => el("li", { "data-index": String(i) },
      el("span", {}, (i === 0 ? "baseline: " : "") + t.name + (t.chip ? " (chip)" : " (system)")),
      " ",
      el("button", { type: "button", className: "cmp-remove", onclick: () => {
        cmpSystems.splice(i, 1);
        renderCmpSystems();
      } }, "remove"))));
  }

  function addCmpChip() {
    const chip = $("#cmp-chip").value;
    if (!chip) return;
    cmpSystems.push({ name: chip, chip });
    renderCmpSystems();
  }

  function addCmpSystem() {
    if (!$("#sys-server").value) {
      showErrors($("#cmp-errors"), new Error("compose a system first (System composer tab)"));
      return;
    }
    const system = composerMapping();
    const taken = new Set(cmpSystems.map((t) => t.name));
    let name = system.name;
    for (let k = 2; taken.has(name); k += 1) name = system.name + " (" + k + ")";
    cmpSystems.push({ name, system });
    renderCmpSystems();
    showErrors($("#cmp-errors"), null);
  }

  function compareRequest() {
    const req = {};
    for (const input of $$("#cmp-form [data-field]")) {
      const raw = input.value.trim();
      if (raw === "") continue;
      let value = coerce(raw, input.dataset.type);
      // a field typed in a human unit (days, MW) goes to the API in SI (s, W)
      if (input.dataset.scale && typeof value === "number") value *= Number(input.dataset.scale);
      req[input.dataset.field] = value;
    }
    if ($("#cmp-allow-invalid").checked) req.allow_invalid = true;
    req.systems = cmpSystems.map((t) => (t.chip ? { name: t.name, chip: t.chip }
      : { name: t.name, system: t.system }));
    return req;
  }

  async function runCompare(ev) {
    ev.preventDefault();
    renderCompare(null);
    const req = compareRequest();
    cmpRequest = null;
    $("#cmp-save").disabled = true;
    $("#cmp-saved").textContent = "";
    let started;
    try {
      started = await api("POST", "api/compare", req);
    } catch (exc) {
      showErrors($("#cmp-errors"), exc);
      $("#cmp-status").textContent = "The comparison did not start (see above).";
      return;
    }
    showErrors($("#cmp-errors"), null);
    cmpJob = started.id;
    cmpSent = req;
    $("#cmp-run").disabled = true;
    showCmpJob(started);
    setTimeout(() => pollCompare(started.id), POLL_MS);
  }

  function showCmpJob(j) {
    const bar = $("#cmp-progress");
    bar.max = Math.max(j.total, 1);
    bar.value = j.done;
    $("#cmp-progress-text").textContent = j.total ? j.done + " / " + j.total + " systems" : "";
    $("#cmp-status").textContent = "comparison " + j.status;
    $("#cmp-status").dataset.state = j.status;
  }

  async function pollCompare(id) {
    if (cmpJob !== id) return;
    let j;
    try {
      j = await api("GET", "api/jobs/" + encodeURIComponent(id));
    } catch (exc) {
      showErrors($("#cmp-errors"), exc);
      cmpJob = null;
      $("#cmp-run").disabled = false;
      return;
    }
    showCmpJob(j);
    if (j.status === "done" || j.status === "error" || j.status === "cancelled") {
      cmpJob = null;
      $("#cmp-run").disabled = false;
      if (j.status === "done") {
        lastCompare = j.result;
        cmpRequest = cmpSent;
        $("#cmp-csv").disabled = false;
        $("#cmp-save").disabled = false;
        await renderCompare(j.result);
      }
      if (j.status === "error") {
        showErrors($("#cmp-errors"), new ApiError(422, j.error || ["the comparison failed"]));
      }
      return;
    }
    setTimeout(() => pollCompare(id), POLL_MS);
  }

  /** The body rows of a comparison (training or serving): a row per measure some system
   *  has, in the order and with the labels the answer's ``rows`` declare ([field, label],
   *  from ocplan.reports.summary, as the CLI and the report show them), a cell per system
   *  printed by ``format(key, value)`` with its ratio to the baseline, the leader of the
   *  measure marked "lead". */
  function sideBySide(result, format) {
    const rows = result.systems;
    const body = [];
    for (const [key, label] of result.rows || []) {
      if (rows.every((r) => r[key] === null || r[key] === undefined)) continue;
      body.push(el("tr", { "data-key": key }, el("th", {}, label), rows.map((r) => {
        let text = format(key, r[key]);
        const ratio = (r.ratios || {})[key];
        if (ratio !== null && ratio !== undefined && r.name !== result.baseline) {
          text += " (" + ratio.toFixed(2) + "x)";
        }
        const lead = (result.leaders || {})[key] === r.name;
        return el("td", { className: (typeof r[key] === "number" ? "num" : "") + (lead ? " lead" : "") }, text);
      })));
    }
    return body;
  }

  /** A training comparison's cell printer: a facility total named ``_w``/``_j`` reads
   *  in watts/joules as ``_W``/``_J`` do. */
  function compareCell(result) {
    return (key, v) => (key.endsWith("_w") || key.endsWith("_j")
      ? fmtValue(key.slice(0, -2) + "_" + key.slice(-1).toUpperCase(), v)
      : fmtValue(key, v, result.currency));
  }

  async function renderCompare(result) {
    const table = $("#cmp-table");
    if (!result) {
      put(table.tHead);
      put(table.tBodies[0]);
      put($("#cmp-findings"));
      $("#cmp-budget").hidden = true;
      $("#cmp-ranking").hidden = true;
      await draw($("#plot-cmp-bars"), null);
      await draw($("#plot-cmp-pareto"), null);
      return;
    }
    const rows = result.systems;
    put(table.tHead, el("tr", {}, el("th", {}, ""), rows.map((r) =>
      el("th", { "data-name": r.name }, r.name + (r.allowed_invalid ? " (INVALID, allowed)" : "")))));
    put(table.tBodies[0], sideBySide(result, compareCell(result)));
    put($("#cmp-findings"), rows.flatMap((r) => r.findings.filter((f) => f.severity !== "info")
      .map((f) => el("li", { className: "sev-" + f.severity },
        r.name + ": " + f.severity + " " + f.rule + ": " + f.message))));
    $("#cmp-status").textContent = rows.length + " systems compared in " +
      fmtValue("elapsed_s", result.elapsed_s) + "; ratios against " + result.baseline +
      "; the best of each row is bold";
    const ranking = $("#cmp-ranking");
    ranking.textContent = result.ranking_note || "";
    ranking.hidden = !result.ranking_note;
    const budget = $("#cmp-budget");
    budget.textContent = result.budget_note || "";
    budget.hidden = !result.budget_note;
    budget.dataset.pick = result.pick && result.pick.name ? result.pick.name : "";
    const figs = result.figures || {};
    await draw($("#plot-cmp-bars"), figs.bars);
    await draw($("#plot-cmp-pareto"), rows.some((r) => r.time_to_train_s !== null) ? figs.pareto : null);
  }


  // ---- exports ---------------------------------------------------------------------

  /** Offer ``text`` as a file download (no network: a blob URL). */
  function download(name, type, text) {
    const url = URL.createObjectURL(new Blob([text], { type }));
    const a = el("a", { href: url, download: name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  /** Rows of objects as CSV (RFC 4180 quoting; the raw values, SI units in the names). */
  function toCsv(rows, cols) {
    const cell = (v) => {
      if (v === null || v === undefined) return "";
      const t = typeof v === "object" ? JSON.stringify(v) : String(v);
      return /[",\n]/.test(t) ? '"' + t.replace(/"/g, '""') + '"' : t;
    };
    return [cols.join(","), ...rows.map((r) => cols.map((c) => cell(r[c])).join(","))].join("\n") + "\n";
  }

  async function exportSystem() {
    const headers = { "Content-Type": "application/json" };
    if (TOKEN) headers.Authorization = "Bearer " + TOKEN;
    const resp = await fetch("api/system.yaml", { method: "POST", headers,
      body: JSON.stringify(composerMapping()) });
    if (!resp.ok) {
      let lines = ["HTTP " + resp.status];
      try { lines = (await resp.json()).detail; } catch (_) { /* keep the status */ }
      showErrors($("#sys-errors"), new ApiError(resp.status, lines));
      return;
    }
    download("system.yaml", "application/yaml", await resp.text());
  }

  function exportSearchCsv() {
    const top = (lastSearch && lastSearch.result.top) || [];
    if (!top.length) return;
    const cols = Object.keys(top[0]).filter((k) => isScalar(top[0][k]));
    download("search.csv", "text/csv", toCsv(top, cols));
  }

  let lastCompare = null;

  function exportCompareCsv() {
    const rows = (lastCompare && lastCompare.systems) || [];
    if (!rows.length) return;
    const cols = Object.keys(rows[0]).filter((k) => isScalar(rows[0][k]));
    download("compare.csv", "text/csv", toCsv(rows, cols));
  }

  // ---- sweeps ----------------------------------------------------------------------

  let sweepJob = null;
  let shownSweep = null;

  /** The stored sweeps in the picker (keeping ``pick``, or the one shown); the example
   *  sweep file in an empty editor. */
  async function loadSweeps(pick) {
    let list;
    try {
      list = await api("GET", "api/sweeps");
    } catch (exc) {
      showErrors($("#swp-errors"), exc);
      return;
    }
    if (!$("#swp-text").value && list.example) {
      $("#swp-text").value = list.example.text;
      $("#swp-name").value = list.example.name;
    }
    const select = $("#swp-pick");
    const keep = pick || select.value;
    put(select, el("option", { value: "" }, list.sweeps.length ? "(pick one)" : "(none stored yet)"),
      list.sweeps.map((s) => el("option", { value: s.name }, s.name + (s.error
        ? " (unreadable: " + s.error + ")"
        : " (" + s.kind + ", " + s.stored + " of " + s.tasks + " stored)"))));
    if (keep && list.sweeps.some((s) => s.name === keep)) {
      select.value = keep;
      if (!shownSweep || shownSweep.sweep !== keep || pick) await showSweep(keep);
    }
    if (!sweepJob && !select.value) {
      $("#swp-status").textContent = list.sweeps.length + " sweeps stored in " + list.db +
        "; pick one, or run one.";
    }
  }

  async function showSweep(name) {
    if (!name) {
      renderSweep(null);
      return;
    }
    try {
      renderSweep(await api("GET", "api/sweeps/" + encodeURIComponent(name)));
      showErrors($("#swp-errors"), null);
    } catch (exc) {
      showErrors($("#swp-errors"), exc);
    }
  }

  /** What a task's layout cell says when it has no best layout (a missing or failed
   *  task's ``error``, as the server words it, else why no layout fits). */
  function sweepReason(r) {
    return r.error || (r.row || {}).reason || "no layout fits";
  }

  /** A stored sweep as the CLI's ``ocplan sweeps NAME`` shows it: a row per task with
   *  the columns its answer declares (``columns``: [field, heading], from
   *  ocplan.reports.summary), those no task has left out, and its figure. */
  function renderSweep(view) {
    shownSweep = view;
    const table = $("#swp-table");
    for (const id of ["#swp-csv", "#swp-edit", "#swp-forget"]) $(id).disabled = !view;
    if (!view) {
      put(table.tHead);
      put(table.tBodies[0]);
      showCaveats($("#swp-notes"), []);
      draw($("#plot-sweep"), null);
      return;
    }
    const figures = view.results.map((r) => Object.assign({}, r.best || {}, r.row || {}));
    const [layout, ...rest] = view.columns;
    const cols = [layout, ...rest.filter(([k]) => view.results.some((r, i) =>
      r.best && figures[i][k] !== null && figures[i][k] !== undefined))];
    put(table.tHead, el("tr", {}, ["#", "model", "hardware", "chips", "status"]
      .map((h) => el("th", {}, h)), cols.map(([k, h]) => el("th", { "data-key": k }, h))));
    put(table.tBodies[0], view.results.map((r, i) => el("tr", { "data-status": r.status },
      el("td", { className: "num" }, String(i + 1)), el("td", {}, r.model),
      el("td", {}, r.hardware), el("td", { className: "num" }, fmtNum(r.chips)),
      el("td", {}, r.status),
      r.best ? cols.map(([k]) => el("td", { className: typeof figures[i][k] === "number" ? "num" : "" },
        fmtValue(k, figures[i][k], (r.row || {}).currency)))
        : [el("td", { className: "reason" }, sweepReason(r)),
          ...cols.slice(1).map(() => el("td", {}, "–"))])));
    showCaveats($("#swp-notes"), [...new Set(view.results.map((r) => (r.row || {}).note)
      .filter(Boolean))]);
    if (!sweepJob) {
      $("#swp-status").textContent = "sweep " + view.sweep + " (" + view.kind + "): " +
        fmtNum(view.tasks) + " tasks, " + fmtNum(view.stored) + " stored, " +
        fmtNum(view.missing) + " missing; last run " + new Date(view.updated_at).toLocaleString() +
        " by code " + view.code;
    }
    draw($("#plot-sweep"), (view.figures || {}).sweep);
  }

  function showSweepJob(j) {
    const bar = $("#swp-progress");
    bar.max = Math.max(j.total, 1);
    bar.value = j.done;
    $("#swp-progress-text").textContent = j.total ? fmtNum(j.done) + " / " + fmtNum(j.total) + " tasks run" : "";
    const status = $("#swp-status");
    status.textContent = "sweep " + j.status;
    status.dataset.state = j.status;
  }

  async function startSweep(ev) {
    ev.preventDefault();
    if (sweepJob) return;
    let started;
    try {
      started = await api("POST", "api/sweeps",
        { name: $("#swp-name").value || "sweep", text: $("#swp-text").value });
    } catch (exc) {
      showErrors($("#swp-errors"), exc);
      $("#swp-status").textContent = "The sweep did not start (see above).";
      return;
    }
    showErrors($("#swp-errors"), null);
    sweepJob = started.id;
    $("#swp-start").disabled = true;
    $("#swp-cancel").disabled = false;
    showSweepJob(started);
    setTimeout(() => pollSweep(started.id), POLL_MS);
  }

  async function pollSweep(id) {
    if (sweepJob !== id) return;
    let j;
    try {
      j = await api("GET", "api/jobs/" + encodeURIComponent(id));
    } catch (exc) {
      showErrors($("#swp-errors"), exc);
      finishSweep();
      return;
    }
    showSweepJob(j);
    if (j.status === "queued" || j.status === "running") {
      setTimeout(() => pollSweep(id), POLL_MS);
      return;
    }
    finishSweep();
    if (j.status === "error") {
      showErrors($("#swp-errors"), new ApiError(422, j.error || ["the sweep failed"]));
    } else if (j.status === "done") {
      const res = j.result;
      renderSweep(res);
      await loadSweeps(res.sweep);
      const failed = (res.errors || []).map((e) => e.key.slice(0, 12) + ": " + e.error);
      showErrors($("#swp-errors"), failed.length ? new Error(failed.join("; ")) : null);
      $("#swp-status").textContent = "sweep " + res.sweep + " done: " + fmtNum(res.tasks) +
        " tasks, " + fmtNum(res.skipped) + " already stored, " + fmtNum(res.ran) + " run, " +
        fmtNum(res.failed) + " failed, in " + fmtValue("elapsed_s", res.elapsed_s);
    }
  }

  function finishSweep() {
    sweepJob = null;
    $("#swp-start").disabled = false;
    $("#swp-cancel").disabled = true;
  }

  async function cancelSweep() {
    if (!sweepJob) return;
    try {
      showSweepJob(await api("DELETE", "api/jobs/" + encodeURIComponent(sweepJob)));
    } catch (exc) {
      showErrors($("#swp-errors"), exc);
    }
  }

  /** The shown sweep's file (as its last run read it) into the editor. */
  function editSweep() {
    if (!shownSweep) return;
    $("#swp-text").value = shownSweep.text;
    $("#swp-name").value = shownSweep.sweep + ".yaml";
  }

  /** Forget the shown sweep's record (its tasks' results stay stored). */
  async function forgetSweep() {
    if (!shownSweep) return;
    const name = shownSweep.sweep;
    try {
      await api("DELETE", "api/sweeps/" + encodeURIComponent(name));
    } catch (exc) {
      showErrors($("#swp-errors"), exc);
      return;
    }
    renderSweep(null);
    $("#swp-pick").value = "";
    await loadSweeps();
    $("#swp-status").textContent = "forgot sweep " + name + " (its tasks' results stay stored)";
  }

  /** The sweep file picked from disk, into the editor (read here, sent as its text). */
  async function openSweepFile() {
    const file = $("#swp-file").files[0];
    if (!file) return;
    $("#swp-text").value = await file.text();
    $("#swp-name").value = file.name;
  }

  function exportSweepCsv() {
    if (!shownSweep) return;
    const fields = shownSweep.columns.map(([k]) => k);
    const rows = shownSweep.results.map((r) => Object.assign(
      { model: r.model, hardware: r.hardware, chip: r.chip, chips: r.chips, status: r.status },
      Object.fromEntries(fields.map((k) => [k, r.best
        ? Object.assign({}, r.best, r.row || {})[k] : null])),
      { reason: r.best ? null : sweepReason(r) }));
    download("sweep-" + shownSweep.sweep + ".csv", "text/csv",
      toCsv(rows, ["model", "hardware", "chip", "chips", "status", ...fields, "reason"]));
  }

  // ---- scenarios -------------------------------------------------------------------

  async function loadScenarios() {
    let list;
    try {
      list = await api("GET", "api/scenarios");
    } catch (exc) {
      showErrors($("#scn-errors"), exc);
      return;
    }
    showErrors($("#scn-errors"), null);
    $("#scn-status").textContent = list.length + " saved";
    put($("#scn-list"), list.slice().reverse().map((s) => el("tr", { "data-id": s.id },
      el("td", {}, el("input", { type: "checkbox", className: "scn-pick", value: s.id, onchange: pickChanged, disabled: Boolean(s.error) })),
      el("td", { className: "scn-name" }, s.name),
      // a stored row the server could not read back: named, with why, and deletable
      el("td", { title: s.error || "" }, s.kind, s.error ? " (unreadable: " + s.error + ")" : null),
      el("td", {}, new Date(s.created_at).toLocaleString()),
      el("td", {},
        s.error ? null
          : el("button", { type: "button", className: "scn-open", onclick: () => openScenarios([s.id]) }, "Open"), " ",
        s.kind === "search" || s.error ? null
          : el("button", { type: "button", className: "scn-load", onclick: () => loadScenario(s) }, "Load"), " ",
        el("button", { type: "button", className: "scn-delete", onclick: () => deleteScenario(s.id) }, "Delete")))));
    pickChanged();
  }

  let pickOrder = []; // scenario ids in the order they were ticked: left pane first

  function picked() {
    const ticked = $$(".scn-pick").filter((c) => c.checked).map((c) => c.value);
    pickOrder = pickOrder.filter((id) => ticked.includes(id))
      .concat(ticked.filter((id) => !pickOrder.includes(id)));
    return pickOrder;
  }

  function pickChanged() {
    $("#scn-compare").disabled = picked().length !== 2;
  }

  async function deleteScenario(id) {
    try {
      await api("DELETE", "api/scenarios/" + encodeURIComponent(id));
    } catch (exc) {
      showErrors($("#scn-errors"), exc);
    }
    await loadScenarios();
  }

  /** Put a saved scenario back in its form and run it again (its result is recomputed
   *  with today's model, not shown stale). */
  function loadScenario(s) {
    if (s.kind === "system") {
      setComposer(s.request);
      showTab("composer");
      sysSeq += 1;
      updateComposer();
    } else if (s.kind === "estimate") {
      setJobForm("est", s.request);
      showTab("estimate");
      runEstimate({ preventDefault() {} });
    } else if (s.kind === "compare") {
      setCompareForm(s.request);
      showTab("compare");
      runCompare({ preventDefault() {} });
    } else if (s.kind === "infer" || s.kind === "infer-compare") {
      setJobForm("inf", s.request);
      const many = s.kind === "infer-compare";
      $("#inf-vs").value = many ? (s.request.vs || []).join(",") : "";
      $("#inf-vs-prices").value = many ? (s.request.prices || []).join(",") : "";
      $("#inf-target-rate").value = many && s.request.target_rate_per_s != null
        ? String(s.request.target_rate_per_s) : "";
      $("#inf-availability").value = many && s.request.availability != null
        ? String(s.request.availability) : "";
      $("#inf-repair").value = many && s.request.repair_s != null
        ? String(s.request.repair_s / Number($("#inf-repair").dataset.scale)) : "";
      showTab("inference");
      if (many) runInferCompare(); else runInference({ preventDefault() {} });
    }
  }

  /** The headline numbers of a saved result, flattened for a side-by-side table. */
  function metricsOf(s) {
    const r = s.result || {};
    const scalars = (o, prefix) => Object.entries(o || {}).filter(([, v]) => isScalar(v))
      .map(([k, v]) => [prefix + k, v]);
    if (s.kind === "compare" || s.kind === "infer-compare") {
      return Object.fromEntries((r.systems || []).flatMap((row) => scalars(row, row.name + ".")));
    }
    if (s.kind === "search") {
      return Object.fromEntries([...scalars(r, ""), ...scalars(r.best, "best.")]
        .filter(([k]) => k !== "why"));
    }
    return Object.fromEntries([...scalars(r, ""), ...scalars(r.plan, "plan.")]);
  }

  function requestSummary(req) {
    const shown = Object.fromEntries(Object.entries(req || {}).filter(([k]) => k !== "system"));
    if (req && req.system) shown.system = req.system.name || req.system.server;
    return shown;
  }

  /** What a saved result shows: a comparison as its side-by-side table, an answer with
   *  the rows a person reads (ocplan.reports.summary) as those, else its fields. */
  function resultView(s) {
    const r = s.result || {};
    if ((s.kind === "compare" || s.kind === "infer-compare") && r.systems) {
      const cell = s.kind === "compare" ? compareCell(r) : (key, v) => fmtValue(key, v, r.currency);
      return el("table", { className: "grid scn-compare" },
        el("thead", {}, el("tr", {}, el("th", {}, ""), r.systems.map((row) => el("th", {}, row.name)))),
        el("tbody", {}, sideBySide(r, cell)));
    }
    return r.summary ? rowsTable(r.summary) : kvTable(metricsOf(s));
  }

  async function openScenarios(ids) {
    let items;
    try {
      items = await Promise.all(ids.map((id) => api("GET", "api/scenarios/" + encodeURIComponent(id))));
    } catch (exc) {
      showErrors($("#scn-errors"), exc);
      return;
    }
    const panes = $("#scn-panes");
    const plots = [];
    put(panes, items.map((s) => {
      const figs = Object.entries((s.result || {}).figures || {}).map(([name, fig]) => {
        const div = el("div", { className: "plot", "data-figure": name });
        plots.push([div, fig]);
        return div;
      });
      return el("div", { className: "scn-pane", "data-id": s.id },
        el("h3", {}, s.name),
        el("p", { className: "muted" }, s.kind + " · saved " + new Date(s.created_at).toLocaleString()),
        el("h4", {}, "Request"), kvTable(s.kind === "system" ? s.request : requestSummary(s.request)),
        // the rows a person reads (ocplan.reports.summary) where the result carries
        // them (estimates saved since they did), else its fields
        el("h4", {}, "Result"), resultView(s),
        figs);
    }));
    put($("#scn-diff"));
    if (items.length === 2) {
      const [a, b] = items.map(metricsOf);
      const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
      put($("#scn-diff"), el("h3", {}, "Side by side"), el("table", { className: "grid", id: "scn-diff-table" },
        el("thead", {}, el("tr", {}, el("th", {}, ""), items.map((s) => el("th", {}, s.name)))),
        el("tbody", {}, keys.map((k) => el("tr", { "data-key": k }, el("th", {}, k),
          el("td", { className: "num" }, fmtValue(k, a[k], a.currency)),
          el("td", { className: "num" }, fmtValue(k, b[k], b.currency)))))));
    }
    for (const [div, fig] of plots) await draw(div, fig);
  }

  // ---- inference -------------------------------------------------------------------

  /** The plots of one serving estimate (a comparison clears them). */
  const INFER_PLOTS = ["infer-curve", "infer-breakdown", "infer-sensitivity"];

  let lastInfer = null;  // {kind, request, result} of the serving answer shown

  function inferShown(kind, request, result) {
    lastInfer = result ? { kind, request, result } : null;
    $("#inf-save").disabled = !lastInfer;
  }

  function saveInfer() {
    if (!lastInfer) return;
    return saveScenario($("#inf-save-name").value, lastInfer.kind, lastInfer.request,
      lastInfer.result, $("#inf-saved"));
  }

  async function runInference(ev) {
    ev.preventDefault();
    const req = jobRequest("inf");
    inferShown(null);
    $("#inf-saved").textContent = "";
    const status = $("#inf-status");
    status.textContent = "estimating…";
    status.dataset.state = "busy";
    $("#inf-run").disabled = true;
    try {
      const res = await api("POST", "api/infer", req);
      inferShown("infer", req, res);
      showErrors($("#inf-errors"), null);
      status.textContent = res.feasible
        ? res.system + ": " + fmtNum(res.output_tokens_per_s_per_chip) +
          " output tok/s per chip, TPOT " + fmtValue("tpot_s", res.tpot_s) + ", " + res.bound
        : res.system + ": infeasible — " + (res.reason || "");
      showCaveats($("#inf-caveats"), res.feasible ? res.caveats : []);
      // the caveats stand as their own list above, not as rows
      put($("#inf-summary"), rowsTable((res.summary || []).filter(([label]) => label !== "caveat")));
      put($("#inf-fields"), kvTable(res, ["figures", "curve", "iteration", "memory", "plan",
        "caveats", "sensitivity", "summary", "simulation", "simulation_summary"]));
      put($("#inf-simulation"), res.simulation_summary ? rowsTable(res.simulation_summary) : null);
      $("#inf-simulation-head").hidden = !res.simulation_summary;
      $("#inf-fields-box").hidden = false;
      const figs = res.figures || {};
      await draw($("#plot-infer-curve"), figs.curve);
      await draw($("#plot-infer-breakdown"), figs.breakdown);
      $("#inf-sensitivity").textContent = res.sensitivity ? res.sensitivity.summary : "";
      $("#inf-sensitivity-head").hidden = !res.sensitivity;
      await draw($("#plot-infer-sensitivity"), figs.sensitivity);
      status.dataset.points = res.curve ? String(res.curve.tpot_s.length) : "0";
    } catch (exc) {
      showErrors($("#inf-errors"), exc);
      status.textContent = "The serving estimate failed (see above).";
      showCaveats($("#inf-caveats"), []);
      put($("#inf-summary"));
      put($("#inf-fields"));
      $("#inf-fields-box").hidden = true;
      for (const id of INFER_PLOTS) draw($("#plot-" + id), null);
      $("#inf-sensitivity").textContent = "";
      $("#inf-sensitivity-head").hidden = true;
      put($("#inf-simulation"));
      $("#inf-simulation-head").hidden = true;
    } finally {
      $("#inf-run").disabled = false;
      status.dataset.state = "ready";
    }
  }

  /** The serving job above on its chip and the "other chips", each at its best layout. */
  async function runInferCompare() {
    const req = jobRequest("inf");
    // a comparison searches the layouts: the layout fields do not apply
    for (const input of $$("#inf-layout [data-field]")) delete req[input.dataset.field];
    delete req.sensitivity;  // one layout's questions, not a comparison's
    delete req.simulate;
    req.vs = $("#inf-vs").value.split(",").map((x) => x.trim()).filter(Boolean);
    const prices = $("#inf-vs-prices").value.trim();
    if (prices) req.prices = coerce(prices, "floats");
    const target = $("#inf-target-rate").value.trim();
    if (target) req.target_rate_per_s = coerce(target, "float");
    const availability = $("#inf-availability").value.trim();
    if (availability) req.availability = coerce(availability, "float");
    const repair = $("#inf-repair");
    if (repair.value.trim()) {
      // hours in the form, seconds in the request (data-scale)
      const v = coerce(repair.value.trim(), "float");
      req.repair_s = typeof v === "number" ? v * Number(repair.dataset.scale) : v;
    }
    inferShown(null);
    $("#inf-saved").textContent = "";
    const status = $("#inf-status");
    status.textContent = "comparing…";
    status.dataset.state = "busy";
    $("#inf-compare").disabled = true;
    try {
      const res = await api("POST", "api/infer/compare", req);
      inferShown("infer-compare", req, res);
      showErrors($("#inf-errors"), null);
      const rows = res.systems;
      const head = el("tr", {}, el("th", {}, ""), rows.map((r) => el("th", {}, r.name)));
      const body = sideBySide(res, (key, v) => fmtValue(key, v, res.currency));
      put($("#inf-summary"), el("table", { id: "inf-compare-table", className: "grid" },
        el("thead", {}, head), el("tbody", {}, body)));
      put($("#inf-fields"));
      $("#inf-fields-box").hidden = true;
      for (const id of INFER_PLOTS) draw($("#plot-" + id), null);
      $("#inf-sensitivity").textContent = "";
      $("#inf-sensitivity-head").hidden = true;
      put($("#inf-simulation"));
      $("#inf-simulation-head").hidden = true;
      status.textContent = rows.length + " systems compared by " + res.objective +
        "; ratios against " + res.baseline + "; the best of each row is bold" +
        (res.note ? ". " + res.note : "") + (res.ranking_note ? ". " + res.ranking_note : "");
    } catch (exc) {
      showErrors($("#inf-errors"), exc);
      status.textContent = "The serving comparison failed (see above).";
      put($("#inf-summary"));
    } finally {
      $("#inf-compare").disabled = false;
      status.dataset.state = "ready";
    }
  }

  // ---- start -----------------------------------------------------------------------

  async function init() {
    for (const b of $$("#tabs button")) b.addEventListener("click", () => showTab(b.dataset.tab));
    // The Match page is its own page; it keeps the workbench's token.
    if (TOKEN) $("#match-link").href = "match?token=" + encodeURIComponent(TOKEN);
    showTab(location.hash.slice(1));
    $("#cat-kind").addEventListener("change", listKind);
    $("#cat-filter").addEventListener("input", listKind);
    const recheck = debounce(updateComposer, 250);
    for (const type of ["input", "change"]) {
      $("#sys-form").addEventListener(type, (ev) => {
        if (ev.target.id === "sys-save-name") return;
        sysSeq += 1; // answers to checks already on their way are now stale
        $("#sys-status").dataset.state = "pending"; // until the debounced check answers
        recheck();
      });
    }
    $("#sys-form").addEventListener("submit", (ev) => ev.preventDefault());
    $("#sys-save").addEventListener("click", saveSystem);
    $("#sys-export").addEventListener("click", exportSystem);
    $("#srch-csv").addEventListener("click", exportSearchCsv);
    $("#cmp-csv").addEventListener("click", exportCompareCsv);
    // picking an accelerator means running on it, not on the composed system
    for (const p of ["est", "srch", "inf"]) {
      $("#" + p + "-chip").addEventListener("change", () => {
        if ($("#" + p + "-chip").value) $(`input[name="${p}-hw"][value="chip"]`).checked = true;
      });
    }
    $("#est-form").addEventListener("submit", runEstimate);
    $("#est-save").addEventListener("click", saveEstimate);
    $("#srch-form").addEventListener("submit", startSearch);
    $("#srch-all-columns").addEventListener("change",
      () => renderSearch(lastSearch && lastSearch.result));
    $("#inf-form").addEventListener("submit", runInference);
    $("#inf-compare").addEventListener("click", runInferCompare);
    $("#inf-save").addEventListener("click", saveInfer);
    $("#cmp-save").addEventListener("click", saveCompare);
    $("#cmp-form").addEventListener("submit", runCompare);
    $("#cmp-add-chip").addEventListener("click", addCmpChip);
    $("#cmp-add-system").addEventListener("click", addCmpSystem);
    $("#srch-cancel").addEventListener("click", cancelSearch);
    $("#srch-save").addEventListener("click", saveSearch);
    $("#scn-refresh").addEventListener("click", loadScenarios);
    $("#swp-form").addEventListener("submit", startSweep);
    $("#swp-cancel").addEventListener("click", cancelSweep);
    $("#swp-refresh").addEventListener("click", () => loadSweeps());
    $("#swp-pick").addEventListener("change", () => showSweep($("#swp-pick").value));
    $("#swp-file").addEventListener("change", openSweepFile);
    $("#swp-csv").addEventListener("click", exportSweepCsv);
    $("#swp-edit").addEventListener("click", editSweep);
    $("#swp-forget").addEventListener("click", forgetSweep);
    $("#scn-compare").addEventListener("click", () => openScenarios(picked()));
    try {
      const health = await api("GET", "api/health");
      $("#health").textContent = "server " + health.status;
      // prices are given, and costs answered, in the currency the server runs with
      const settings = await api("GET", "api/settings");
      serverCurrency = settings.currency;
      for (const span of $$("[data-currency]")) span.textContent = serverCurrency;
      // a blank Chips box: every chip of the composed system, else the API's default
      for (const input of $$("[data-default-chips]")) {
        input.placeholder = "all of the system, else " + settings.default_chips;
      }
      // an empty number box of a training form shows what the API takes for it
      for (const input of $$("#est-form [data-field], #cmp-form [data-field], " +
                             "#srch-form [data-field]")) {
        const given = settings.job_defaults[input.dataset.field];
        if (given !== undefined && !input.placeholder) input.placeholder = String(given);
      }
      // what a search or comparison ranks by, as the API declares it
      for (const select of $$("select[data-objectives]")) {
        for (const o of settings.objectives) select.append(el("option", { value: o }, o));
      }
      const options = await api("GET", "api/training-options");
      for (const prefix of ["est", "cmp", "srch"]) buildOptionsForm(prefix, options);
      buildOptionsForm("inf", await api("GET", "api/serving-options"));
      await buildLayoutForm("est");
      await buildLayoutForm("inf", "api/serving-layout");
      await buildLayoutForm("srch", "api/search-layout");
      await loadCatalog();
    } catch (exc) {
      $("#health").textContent = "server unreachable";
      showErrors($("#global-errors"), exc);
    }
    document.body.dataset.ready = "1";
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
