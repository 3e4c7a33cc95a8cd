/* Draws the report's charts with the vendored Vega-Lite, and wires the filters.
   Specs come from <script type="application/json" id="nexcart-charts"> in the page.
   Each chart container gets data-rendered="1" (or "error") when done; <body> gets
   data-charts="done" once all have finished, which the tests read from the DOM. */
(function () {
  "use strict";
  var specsEl = document.getElementById("nexcart-charts");
  var specs = specsEl ? JSON.parse(specsEl.textContent) : {};
  var views = [];
  function fail(el, message) {
    el.setAttribute("data-rendered", "error");
    el.textContent = "Chart could not be drawn: " + message;
  }
  if (typeof vegaEmbed === "undefined") {
    Object.keys(specs).forEach(function (id) {
      var el = document.getElementById(id);
      if (el) fail(el, "the chart library (assets/vega*.js) did not load");
    });
    document.body.setAttribute("data-charts", "done");
    return;
  }
  var options = { renderer: "svg", actions: false, mode: "vega-lite", tooltip: { theme: "light" } };
  var jobs = Object.keys(specs).map(function (id) {
    var el = document.getElementById(id);
    if (!el) return Promise.resolve();
    return vegaEmbed(el, specs[id], options).then(function (result) {
      views.push(result.view);
      el.setAttribute("data-rendered", "1");
    }).catch(function (err) { fail(el, String(err && err.message || err)); });
  });
  var selects = Array.prototype.slice.call(document.querySelectorAll("select[data-signal]"));

  function setSignal(name, value) {
    return Promise.all(views.map(function (view) {
      try { view.signal(name); } catch (e) { return null; }  // this chart has no such filter
      return view.signal(name, value).runAsync();
    }));
  }

  // A filter can be preset from the address: 2024-03.html?region_filter=Texas&channel_filter=Web
  var preset = new URLSearchParams(window.location.search);
  selects.forEach(function (select) {
    var wanted = preset.get(select.getAttribute("data-signal"));
    if (wanted !== null && Array.prototype.some.call(select.options, function (o) { return o.value === wanted; })) {
      select.value = wanted;
    }
    select.addEventListener("change", function () {
      setSignal(select.getAttribute("data-signal"), select.value === "" ? null : select.value);
    });
  });

  Promise.all(jobs).then(function () {
    return Promise.all(selects.filter(function (s) { return s.value !== ""; }).map(function (s) {
      return setSignal(s.getAttribute("data-signal"), s.value);
    }));
  }).catch(function (err) {
    if (window.console) console.error(err);
  }).then(function () { document.body.setAttribute("data-charts", "done"); });
})();
