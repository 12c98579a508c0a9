// Load the page's assets from this server only (no CDN: the page works offline). When
// the server was started with --token, the page is opened as /?token=TOKEN and every
// asset and API request carries it. This file is the one asset served without the
// token, and it is a file (not an inline script) so that the page's Content-Security-
// Policy can allow this server's scripts only. The assets are listed on its own <script>
// tag in index.html (data-css, data-scripts).
"use strict";

(function () {
  var me = document.currentScript;
  var token = new URLSearchParams(location.search).get("token");
  var q = token ? "?token=" + encodeURIComponent(token) : "";
  var css = document.createElement("link");
  css.rel = "stylesheet";
  css.href = me.dataset.css + q;
  document.head.appendChild(css);
  me.dataset.scripts.split(" ").forEach(function (src) {
    var s = document.createElement("script");
    s.src = src + q;
    s.async = false;  // run in order: Plotly first
    document.head.appendChild(s);
  });
})();
