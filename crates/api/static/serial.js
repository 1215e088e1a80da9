// The serial console of a VM's page: shows what the VM writes to its serial port, live, and
// sends the lines typed below it. The page gives the websocket's path and the status texts (in
// the visitor's language) as data attributes of #serial; the server sends the console's text
// from its start at every connection, so a reconnection starts from a clean screen.
(function () {
  "use strict";
  var box = document.getElementById("serial");
  if (!box || !window.WebSocket) return;
  var out = document.getElementById("serial-output");
  var status = document.getElementById("serial-status");
  var form = document.getElementById("serial-form");
  var input = document.getElementById("serial-input");
  var interrupt = document.getElementById("serial-interrupt");
  var KEEP = 200000; // characters kept on screen
  var socket = null;
  var retries = 0;

  function say(state) {
    box.setAttribute("data-state", state);
    status.textContent = box.getAttribute("data-" + state) || "";
  }

  // Terminal control sequences (colours, cursor moves) and carriage returns are not text.
  function clean(s) {
    return s
      .replace(/\x1b\[[0-9;?]*[ -\/]*[@-~]/g, "")
      .replace(/\x1b[()][0-9A-Za-z]/g, "")
      .replace(/\x1b[=>78cDEHM]/g, "")
      .replace(/\r\n/g, "\n")
      .replace(/\r/g, "");
  }

  function append(text) {
    var bottom = out.scrollTop + out.clientHeight >= out.scrollHeight - 4;
    var all = out.textContent + clean(text);
    out.textContent = all.length > KEEP ? all.slice(all.length - KEEP) : all;
    if (bottom) out.scrollTop = out.scrollHeight;
  }

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + box.getAttribute("data-url"));
    say("connecting");
    socket.onopen = function () {
      retries = 0;
      out.textContent = "";
      say("connected");
    };
    socket.onmessage = function (e) {
      if (typeof e.data === "string") append(e.data);
    };
    socket.onclose = function (e) {
      socket = null;
      if (e.code === 1000) return say("ended");
      if (e.code === 1008) return say("session");
      say("disconnected");
      retries += 1;
      setTimeout(connect, Math.min(10000, 500 * Math.pow(2, retries)));
    };
  }

  function send(text) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(text);
  }

  if (form && input) {
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      send(input.value + "\n");
      input.value = "";
    });
  }
  if (interrupt) {
    interrupt.addEventListener("click", function () {
      send("\x03");
    });
  }
  connect();
})();
