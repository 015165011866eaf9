// envparity web view: keeps the page current without a reload
// (docs/web.md). Every few seconds, while the tab is visible, it asks the
// server for this very URL with the last ETag; 304 means nothing changed.
// Otherwise it swaps the page's main part in, keeping focus and scroll,
// and tells screen readers politely. It never runs while a field of the
// page has focus (what is being typed stays). Pages work without it.
(function () {
  "use strict";
  var PERIOD = 3000;
  var etag = null;
  var busy = false;
  var main = document.getElementById("main");
  var status = document.getElementById("live-status");
  if (!main || !window.fetch || !window.DOMParser) return;

  function typing() {
    var a = document.activeElement;
    return a && main.contains(a) && /^(INPUT|SELECT|TEXTAREA)$/.test(a.tagName);
  }

  function swap(html) {
    var next = new DOMParser().parseFromString(html, "text/html").getElementById("main");
    if (!next || next.innerHTML === main.innerHTML) return;
    var a = document.activeElement;
    var key = a && a !== document.body && main.contains(a)
      ? (a.id ? "#" + a.id : a.getAttribute("href") ? 'a[href="' + a.getAttribute("href") + '"]' : null)
      : null;
    var x = window.scrollX, y = window.scrollY;
    main.innerHTML = next.innerHTML;
    if (key) {
      try {
        var again = main.querySelector(key);
        if (again) again.focus({ preventScroll: true });
      } catch (e) { /* a selector that does not parse: focus stays on the page */ }
    }
    window.scrollTo(x, y);
    if (status) status.textContent = "Updated at " + new Date().toLocaleTimeString();
  }

  function poll() {
    if (document.hidden || busy || typing()) return;
    busy = true;
    var headers = etag ? { "If-None-Match": etag } : {};
    fetch(location.href, { headers: headers, credentials: "same-origin", cache: "no-cache" })
      .then(function (r) {
        if (r.status !== 200) return null;
        etag = r.headers.get("ETag");
        return r.text();
      })
      .then(function (html) { if (html) swap(html); })
      .catch(function () { /* the server is away: try again later */ })
      .then(function () { busy = false; });
  }

  setInterval(poll, PERIOD);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) poll(); });
})();
