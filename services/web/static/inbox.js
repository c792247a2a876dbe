// The live inbox: rows arrive from /inbox/events (server-sent events backed by the hub's WatchInbox stream)
// already rendered by the server; a row is replaced by its item id, never doubled; resolved items leave.
(function () {
  "use strict";
  var body = document.querySelector("#inbox tbody");
  var live = document.getElementById("live");
  var source = new EventSource("/inbox/events");
  function state(name, text) { live.dataset.state = name; live.textContent = text; }
  source.onopen = function () { state("live", "live"); };
  source.onerror = function () { state("reconnecting", "reconnecting…"); };
  source.addEventListener("problem", function () { state("reconnecting", "hub not answering, retrying…"); });
  source.addEventListener("item", function (event) {
    var change = JSON.parse(event.data);
    var existing = document.getElementById("item-" + change.item_id);
    if (change.status === "resolved") {
      if (existing) { existing.remove(); }
      return;
    }
    var holder = document.createElement("tbody");
    holder.innerHTML = change.html.trim();
    var row = holder.querySelector("tr");
    if (existing) { existing.replaceWith(row); } else { body.insertBefore(row, body.firstChild); }
  });
}());
