// Helpers shared by the workbench pages (index.html with app.js, match.html with
// match.js): DOM building that never parses HTML, and the JSON API client. Loaded before
// the page's own script (boot.js runs scripts in order); exposed as window.ocplanUI.
"use strict";

(function () {
  const TOKEN = new URLSearchParams(location.search).get("token");
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

  /** Build an element; attrs may hold properties (className, onclick, ...), children
   *  are nodes or strings (set as text, never parsed as HTML). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k.startsWith("data-") || k === "for" || k === "colspan" || k === "list") {
        node.setAttribute(k, v);
      } else {
        node[k] = v;
      }
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : String(c));
    }
    return node;
  }

  /** Replace a node's children (arrays are flattened; null and false are skipped). */
  function put(node, ...children) {
    node.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  }

  class ApiError extends Error {
    constructor(status, lines) {
      super(lines.join("\n"));
      this.status = status;
      this.lines = lines;
    }
  }

  /** Call the API; resolves to the parsed JSON, rejects with ApiError(status, lines).
   *  Every request but a GET is sent as JSON, body or not: the server refuses any other
   *  content type for requests that change state (415). */
  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (TOKEN) headers.Authorization = "Bearer " + TOKEN;
    const opts = { method, headers };
    if (method !== "GET") headers["Content-Type"] = "application/json";
    if (body !== undefined) opts.body = JSON.stringify(body);
    let resp;
    try {
      resp = await fetch(path, opts);
    } catch (exc) {
      throw new ApiError(0, ["cannot reach the ocplan server: " + exc.message]);
    }
    let data = null;
    try {
      data = await resp.json();
    } catch (_) {
      data = null;
    }
    if (!resp.ok) {
      let lines = data && data.detail;
      if (!Array.isArray(lines)) lines = [lines ? String(lines) : "HTTP " + resp.status];
      lines = lines.map((l) => (typeof l === "string" ? l : JSON.stringify(l)));
      throw new ApiError(resp.status, lines);
    }
    return data;
  }

  /** A number for display: thousands separators, 4 significant digits (no model
   *  arithmetic). */
  function fmtNum(v) {
    if (Number.isInteger(v) && Math.abs(v) < 1e15) return v.toLocaleString("en-US");
    if (v !== 0 && Math.abs(v) < 1e-3) return v.toExponential(3);
    return v.toLocaleString("en-US", { maximumSignificantDigits: 4 });
  }

  /** Show an error (an ApiError's lines, else its message) in ``box``; none hides it. */
  function showErrors(box, err) {
    put(box);
    if (!err) {
      box.hidden = true;
      return;
    }
    let lines = err instanceof ApiError ? err.lines : [String((err && err.message) || err)];
    if (err.status === 401) lines = lines.concat([`open the page as ${location.pathname}?token=TOKEN`]);
    if (err.status === 413) lines = lines.concat(["the request is larger than the server accepts"]);
    box.append(el("ul", {}, lines.map((l) => el("li", {}, l))));
    box.hidden = false;
  }

  window.ocplanUI = Object.freeze({ TOKEN, $, $$, el, put, ApiError, api, showErrors, fmtNum });
})();
