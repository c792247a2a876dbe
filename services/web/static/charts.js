// The dashboard's charts, drawn by uPlot (vendored under /static/vendor, see its README) from the daily
// figures the server put in the page as JSON.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("chart-data").textContent);
  var xs = data.days.map(function (d) { return Date.parse(d + "T00:00:00Z") / 1000; });
  function draw(id, label, values, colour) {
    var holder = document.getElementById(id);
    var width = Math.max(320, holder.clientWidth || 480);
    new uPlot({
      width: width, height: 220,
      scales: { x: { time: true } },
      series: [{}, { label: label, stroke: colour, width: 2, fill: colour + "22", points: { show: true } }],
      axes: [{}, {}]
    }, [xs, values], holder);
  }
  draw("chart-utilisation", "utilisation %", data.utilisation, "#1565c0");
  draw("chart-warnings", "warnings", data.warnings_raised, "#c62828");
}());
