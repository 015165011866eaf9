// envparity web view: keeps the page current without a reload
// (docs/web.md). It listens to /events (server-sent events), which names
// the fleet's change generation at most once a second, and asks the server
// for this very URL again only when that moved. Where events fail, it asks
// every few seconds with the last ETag instead (304: nothing changed). A
// hidden tab listens to nothing and asks nothing. It swaps the page's main
// part in, keeping focus and scroll, tells screen readers politely, and
// waits while a field of the page has focus. Pages work without it.
(function () {
  "use strict";
  var PERIOD = 3000;
  var etag = null, busy = false, again = false, seen = null, source = null, timer = null;
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
        var back = main.querySelector(key);
        if (back) back.focus({ preventScroll: true });
      } catch (e) { /* a selector that does not parse: focus stays on the page */ }
    }
    window.scrollTo(x, y);
    if (status) status.textContent = "Updated at " + new Date().toLocaleTimeString();
  }

  // Asks for the page (conditionally); once more afterwards when asked
  // again meanwhile or while a field had focus.
  function refresh() {
    if (document.hidden) return;
    if (busy || typing()) { again = true; return; }
    busy = true;
    again = false;
    var headers = etag ? { "If-None-Match": etag } : {};
    fetch(location.href, { headers: headers, credentials: "same-origin", cache: "no-cache" })
      .then(function (r) {
        if (r.status !== 200) return null;
        etag = r.headers.get("ETag");
        return r.text();
      })
      .then(function (html) { if (html) swap(html); })
      .catch(function () { /* the server is away: the next change or poll asks again */ })
      .then(function () { busy = false; if (again && !typing()) refresh(); });
  }

  // How the page is kept current, for whoever looks (tests do).
  function mode(m) { document.documentElement.setAttribute("data-live", m); }

  function poll() {
    mode("polling");
    if (!timer) timer = setInterval(refresh, PERIOD);
  }

  function listen() {
    if (!window.EventSource) { poll(); return; }
    source = new EventSource("/events");
    source.onmessage = function (e) {
      mode("events");
      if (e.data !== seen) { seen = e.data; refresh(); }
    };
    source.onerror = function () {
      // Closed for good (refused, or not an event stream): poll instead.
      // Otherwise the browser connects again by itself.
      if (source && source.readyState === 2) { source = null; poll(); }
    };
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      if (source) { source.close(); source = null; }
    } else if (timer) {
      refresh();
    } else if (!source) {
      listen();
    }
  });
  main.addEventListener("focusout", function () { if (again) setTimeout(refresh, 0); });
  if (!document.hidden) listen();
})();
