// Conveyor UI: live refresh of server-rendered regions and the job log
// viewer. No framework, no inline script (the CSP forbids it): text from
// the server only ever reaches the page through textContent or through
// HTML the server escaped.
"use strict";

(function () {
  // ---- live regions -------------------------------------------------
  // <main data-live="N">: every N ms the page is fetched again with
  // ?partial=1 and its #live region replaced. A region answering
  // data-live="0" (a finished run or job) stops the refresh.
  var refreshLive = function () {};

  function startLive() {
    var main = document.getElementById("main");
    var every = main && parseInt(main.dataset.live || "0", 10);
    if (!every) return;
    var busy = false, timer = null;
    refreshLive = function () {
      if (busy) return;
      busy = true;
      var u = new URL(location.href);
      u.hash = "";
      u.searchParams.set("partial", "1");
      fetch(u, { credentials: "same-origin", headers: { Accept: "text/html" } }).then(function (r) {
        if (!r.ok || r.redirected) { clearInterval(timer); return null; }
        return r.text();
      }).then(function (html) {
        if (html == null) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("live");
        var cur = document.getElementById("live");
        if (!fresh || !cur) return;
        // Keep a field being typed in (an approval comment).
        if (cur.contains(document.activeElement) && document.activeElement.tagName === "INPUT") return;
        cur.replaceWith(document.importNode(fresh, true));
        if (fresh.dataset.live === "0") clearInterval(timer);
      }).catch(function () {}).finally(function () { busy = false; });
    };
    timer = setInterval(function () { if (!document.hidden) refreshLive(); }, every);
  }

  // ---- ANSI -----------------------------------------------------------
  // Only SGR (colours, bold...) is kept; every other escape (OSC 8 links,
  // titles, cursor moves, DCS...) and control character is dropped.
  var ESC = /\x1b\[([0-9;:?<=>]*)([ -\/]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[PX^_][^\x1b]*(?:\x1b\\)?|\x1b[ -\/]*[0-~]?|[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]/g;

  function newState() { return { fg: null, bg: null, b: false, d: false, i: false, u: false, s: false, inv: false }; }
  function copyState(s) { return { fg: s.fg, bg: s.bg, b: s.b, d: s.d, i: s.i, u: s.u, s: s.s, inv: s.inv }; }
  function plainState(s) { return s.fg === null && s.bg === null && !s.b && !s.d && !s.i && !s.u && !s.s && !s.inv; }

  function rgb256(n) {
    if (n < 16) return n;
    if (n >= 232) { var g = 8 + (n - 232) * 10; return "rgb(" + g + "," + g + "," + g + ")"; }
    n -= 16;
    var c = [Math.floor(n / 36), Math.floor(n / 6) % 6, n % 6].map(function (v) { return v ? v * 40 + 55 : 0; });
    return "rgb(" + c.join(",") + ")";
  }

  // sgr applies the parameters of one SGR sequence to st.
  function sgr(st, params) {
    var p = params === "" ? [0] : params.split(/[;:]/).map(function (x) { return x === "" ? 0 : parseInt(x, 10); });
    for (var k = 0; k < p.length; k++) {
      var n = p[k];
      if (n === 0) { var z = newState(); for (var key in z) st[key] = z[key]; }
      else if (n === 1) st.b = true;
      else if (n === 2) st.d = true;
      else if (n === 3) st.i = true;
      else if (n === 4) st.u = true;
      else if (n === 7) st.inv = true;
      else if (n === 9) st.s = true;
      else if (n === 22) { st.b = false; st.d = false; }
      else if (n === 23) st.i = false;
      else if (n === 24) st.u = false;
      else if (n === 27) st.inv = false;
      else if (n === 29) st.s = false;
      else if (n >= 30 && n <= 37) st.fg = n - 30;
      else if (n >= 90 && n <= 97) st.fg = n - 90 + 8;
      else if (n === 39) st.fg = null;
      else if (n >= 40 && n <= 47) st.bg = n - 40;
      else if (n >= 100 && n <= 107) st.bg = n - 100 + 8;
      else if (n === 49) st.bg = null;
      else if (n === 38 || n === 48) {
        var c = null;
        if (p[k + 1] === 5 && k + 2 < p.length) { c = rgb256(p[k + 2] & 255); k += 2; }
        else if (p[k + 1] === 2 && k + 4 < p.length) {
          c = "rgb(" + (p[k + 2] & 255) + "," + (p[k + 3] & 255) + "," + (p[k + 4] & 255) + ")"; k += 4;
        } else break;
        if (n === 38) st.fg = c; else st.bg = c;
      }
    }
  }

  // parseLine strips the escapes of one line: its plain text, and its
  // styled segments ([start, end, state]) when it has any style.
  function parseLine(raw, st) {
    if (raw.indexOf("\x1b") < 0 && !/[\x00-\x08\x0b-\x1f\x7f-\x9f]/.test(raw)) {
      return { t: raw, seg: plainState(st) ? null : [[0, raw.length, copyState(st)]] };
    }
    var out = "", seg = [], last = 0, m;
    ESC.lastIndex = 0;
    function push(text) {
      if (!text) return;
      var a = out.length;
      out += text;
      if (!plainState(st)) seg.push([a, out.length, copyState(st)]);
    }
    while ((m = ESC.exec(raw)) !== null) {
      push(raw.slice(last, m.index));
      last = ESC.lastIndex;
      if (m[3] === "m" && m[2] === "" && !/[?<=>]/.test(m[1])) sgr(st, m[1]);
      if (m[0] === "") ESC.lastIndex++;
    }
    push(raw.slice(last));
    return { t: out, seg: seg.length ? seg : null };
  }

  function styled(text, s) {
    var span = document.createElement("span");
    span.textContent = text;
    var fg = s.inv ? s.bg : s.fg, bg = s.inv ? s.fg : s.bg;
    if (s.inv && fg === null) fg = "var(--logbg)";
    if (s.inv && bg === null) bg = "var(--logfg)";
    var cls = [];
    if (typeof fg === "number") cls.push("f" + fg); else if (fg) span.style.color = fg;
    if (typeof bg === "number") cls.push("g" + bg); else if (bg) span.style.backgroundColor = bg;
    if (s.b) cls.push("b"); if (s.d) cls.push("d"); if (s.i) cls.push("i"); if (s.u) cls.push("u"); if (s.s) cls.push("s");
    if (cls.length) span.className = cls.join(" ");
    return span;
  }

  // ---- the log viewer ---------------------------------------------------
  // Lines are kept as data; only the lines in view are in the DOM (a
  // 100k-line log stays as fast as a short one). Groups (::group:: /
  // ##[group]) fold; steps (##[step]) are listed above the log.
  var LH = 20; // px per line, as .ln in app.css

  function LogViewer(root) {
    this.root = root;
    this.view = root.querySelector("#logview");
    this.spacer = root.querySelector("#logspacer");
    this.box = root.querySelector("#loglines");
    this.stepsEl = root.querySelector("#steps");
    this.stateEl = root.querySelector("#logstate");
    this.countEl = root.querySelector("#logcount");
    this.lines = [];      // {t, seg, kind, grp}
    this.groups = [];     // {line, end, open}
    this.visible = [];    // indexes of lines shown
    this.steps = [];
    this.st = newState();
    this.carry = "";
    this.openGroup = -1;
    this.follow = true;
    this.matches = [];    // indexes of the lines matching the search
    this.matchSet = new Set();
    this.cur = -1;
    this.query = "";
    this.scanned = 0;     // lines tested against the search (for the tests)
    this.lastId = 0;
    this.started = performance.now();
    this.pending = false;
    var self = this;
    this.view.addEventListener("scroll", function () {
      self.follow = self.view.scrollTop + self.view.clientHeight >= self.view.scrollHeight - LH;
      self.schedule();
    });
    this.box.addEventListener("click", function (e) {
      var ln = e.target.closest(".ln");
      if (!ln || e.target.closest("a")) return;
      var i = +ln.dataset.i, g = self.lines[i].hdr;
      if (g !== undefined) { self.groups[g].open = !self.groups[g].open; self.reindex(); }
    });
    window.addEventListener("hashchange", function () { self.gotoHash(); });
    root.querySelector("#logexpand").addEventListener("click", function (e) {
      var open = e.target.textContent === "Expand all";
      self.groups.forEach(function (g) { g.open = open; });
      e.target.textContent = open ? "Collapse all" : "Expand all";
      self.reindex();
    });
    var search = root.querySelector("#logsearch"), t = null;
    search.addEventListener("input", function () {
      clearTimeout(t);
      t = setTimeout(function () { self.search(search.value); }, 150);
    });
    search.addEventListener("keydown", function (e) {
      if (e.key === "Enter") { e.preventDefault(); self.next(e.shiftKey ? -1 : 1); }
    });
    root.querySelector("#lognext").addEventListener("click", function () { self.next(1); });
    root.querySelector("#logprev").addEventListener("click", function () { self.next(-1); });
  }

  LogViewer.prototype.append = function (text) {
    var parts = (this.carry + text).split("\n");
    this.carry = parts.pop();
    for (var k = 0; k < parts.length; k++) this.addLine(parts[k]);
    this.schedule();
  };

  LogViewer.prototype.flushCarry = function () {
    if (this.carry) { this.addLine(this.carry); this.carry = ""; this.schedule(); }
  };

  var GROUP = /^(?:\[[^\]]*\] )?(?:##\[group\]|::group::)(.*)$/;
  var ENDGROUP = /^(?:\[[^\]]*\] )?(?:##\[endgroup\]|::endgroup::)/;
  var STEP = /^(?:\[[^\]]*\] )?##\[step\] (.*)$/;
  var STEPEND = /^(.*): (success|failure|cancelled|skipped|error) \(([^)]*)\)$/;

  LogViewer.prototype.addLine = function (raw) {
    if (raw.endsWith("\r")) raw = raw.slice(0, -1);
    var p = parseLine(raw, this.st), i = this.lines.length, m;
    var line = { t: p.t, seg: p.seg, grp: this.openGroup };
    if ((m = GROUP.exec(p.t))) {
      line.t = m[1]; line.seg = null;
      line.hdr = this.groups.length; line.grp = -1;
      this.groups.push({ line: i, open: false });
      this.openGroup = line.hdr;
      line.kind = "group";
    } else if (ENDGROUP.test(p.t) && this.openGroup >= 0) {
      line.kind = "endgroup";
      this.openGroup = -1;
    } else if ((m = STEP.exec(p.t))) {
      line.kind = "step";
      line.t = p.t.replace("##[step] ", "▶ "); line.seg = null;
      this.openGroup = -1;
      line.grp = -1;
      var end = STEPEND.exec(m[1]), last = this.steps[this.steps.length - 1];
      if (end && last && last.name === end[1] && !last.result) {
        last.result = end[2]; last.dur = end[3];
      } else {
        this.steps.push({ name: m[1], line: i });
      }
      this.stepsDirty = true;
    } else if (/^(?:\[[^\]]*\] )?##\[error\]/.test(p.t)) line.kind = "err";
    else if (/^(?:\[[^\]]*\] )?##\[warning\]/.test(p.t)) line.kind = "warn";
    this.lines.push(line);
    if (this.shown(line)) this.visible.push(i);
    // A live search takes in each new line once: no re-scan of the log.
    if (this.query) {
      this.scanned++;
      if (line.t.toLowerCase().indexOf(this.query) >= 0) {
        this.matches.push(i);
        this.matchSet.add(i);
        this.countDirty = true;
      }
    }
  };

  LogViewer.prototype.shown = function (line) {
    return line.kind !== "endgroup" && (line.grp < 0 || this.groups[line.grp].open);
  };

  LogViewer.prototype.reindex = function () {
    this.visible = [];
    for (var i = 0; i < this.lines.length; i++) if (this.shown(this.lines[i])) this.visible.push(i);
    this.rendered = null;
    this.schedule();
  };

  LogViewer.prototype.schedule = function () {
    if (this.pending) return;
    this.pending = true;
    var self = this;
    requestAnimationFrame(function () { self.pending = false; self.render(); });
  };

  LogViewer.prototype.render = function () {
    var n = this.visible.length;
    this.spacer.style.height = (n * LH) + "px";
    if (this.follow && this.live) this.view.scrollTop = this.view.scrollHeight;
    var first = Math.max(0, Math.floor(this.view.scrollTop / LH) - 40);
    var last = Math.min(n, Math.ceil((this.view.scrollTop + this.view.clientHeight) / LH) + 40);
    var key = first + ":" + last + ":" + n + ":" + this.cur + ":" + this.target + ":" + this.matches.length;
    if (key !== this.rendered) {
      this.rendered = key;
      this.box.style.transform = "translateY(" + (first * LH) + "px)";
      var frag = document.createDocumentFragment();
      for (var v = first; v < last; v++) frag.appendChild(this.lineEl(this.visible[v]));
      this.box.replaceChildren(frag);
    }
    if (this.stepsDirty) this.renderSteps();
    if (this.countDirty) this.showCount();
  };

  LogViewer.prototype.lineEl = function (i) {
    var line = this.lines[i], el = document.createElement("div");
    el.className = "ln" + (line.kind ? " " + line.kind : "");
    if (line.hdr !== undefined && this.groups[line.hdr].open) el.className += " open";
    if (i === this.target) el.className += " target";
    if (this.matchSet && this.matchSet.has(i)) el.className += " match" + (this.matches[this.cur] === i ? " current" : "");
    el.dataset.i = i;
    el.id = "L" + (i + 1);
    var no = document.createElement("a");
    no.className = "no"; no.href = "#L" + (i + 1); no.textContent = i + 1;
    no.setAttribute("aria-label", "Line " + (i + 1));
    // A group's header is a button (keyboard and screen readers fold it too).
    var tx = document.createElement(line.hdr !== undefined ? "button" : "span");
    tx.className = "tx";
    if (line.hdr !== undefined) {
      tx.type = "button";
      tx.setAttribute("aria-expanded", this.groups[line.hdr].open ? "true" : "false");
    }
    if (!line.seg) tx.textContent = line.t;
    else {
      var at = 0;
      for (var k = 0; k < line.seg.length; k++) {
        var s = line.seg[k];
        if (s[0] > at) tx.appendChild(document.createTextNode(line.t.slice(at, s[0])));
        tx.appendChild(styled(line.t.slice(s[0], s[1]), s[2]));
        at = s[1];
      }
      if (at < line.t.length) tx.appendChild(document.createTextNode(line.t.slice(at)));
    }
    el.append(no, tx);
    return el;
  };

  LogViewer.prototype.renderSteps = function () {
    this.stepsDirty = false;
    var self = this, frag = document.createDocumentFragment();
    this.steps.forEach(function (s) {
      var li = document.createElement("li");
      var status = s.result || (self.done ? "cancelled" : "running");
      var st = document.createElement("span");
      st.className = "st st-" + status;
      var icon = document.createElement("span");
      icon.className = "st-icon"; icon.setAttribute("aria-hidden", "true");
      var label = document.createElement("span");
      label.className = "sr"; label.textContent = status;
      st.append(icon, label);
      var a = document.createElement("a");
      a.href = "#L" + (s.line + 1); a.textContent = s.name;
      var dur = document.createElement("span");
      dur.className = "dur"; dur.textContent = s.dur || "";
      li.append(st, a, dur);
      frag.appendChild(li);
    });
    this.stepsEl.replaceChildren(frag);
  };

  // scrollTo shows line i (opening its group), highlighted when mark.
  LogViewer.prototype.scrollTo = function (i, mark) {
    var line = this.lines[i];
    if (!line) return;
    if (line.grp >= 0 && !this.groups[line.grp].open) { this.groups[line.grp].open = true; this.reindex(); }
    var v = this.visible.indexOf(i);
    if (v < 0) return;
    if (mark) this.target = i;
    this.follow = false;
    this.view.scrollTop = Math.max(0, v * LH - this.view.clientHeight / 3);
    this.rendered = null;
    this.render();
  };

  LogViewer.prototype.gotoHash = function () {
    var m = /^#L(\d+)$/.exec(location.hash);
    if (!m) return false;
    var i = parseInt(m[1], 10) - 1;
    if (i >= this.lines.length) return false;
    this.scrollTo(i, true);
    return true;
  };

  // search scans the lines so far once; addLine tests each line that
  // arrives after, so the count and next/previous include them.
  LogViewer.prototype.search = function (q) {
    this.query = q.toLowerCase();
    this.matches = [];
    this.cur = -1;
    this.scanned = 0;
    if (this.query) {
      this.scanned = this.lines.length;
      for (var i = 0; i < this.lines.length; i++) if (this.lines[i].t.toLowerCase().indexOf(this.query) >= 0) this.matches.push(i);
    }
    this.matchSet = new Set(this.matches);
    this.showCount();
    if (this.matches.length) this.next(1); else { this.rendered = null; this.schedule(); }
  };

  LogViewer.prototype.showCount = function () {
    this.countDirty = false;
    var n = this.matches.length;
    this.countEl.textContent = !this.query ? "" :
      (this.cur >= 0 ? (this.cur + 1) + " of " + n : n) + (n === 1 ? " matching line" : " matching lines");
  };

  LogViewer.prototype.next = function (d) {
    if (!this.matches.length) return;
    var n = this.matches.length;
    this.cur = this.cur < 0 ? (d > 0 ? 0 : n - 1) : (this.cur + d + n) % n;
    this.showCount();
    this.scrollTo(this.matches[this.cur], false);
  };

  // stream follows the log over SSE; EventSource resumes with
  // Last-Event-ID after a dropped connection, and a stream the browser
  // gave up on is reopened after the last chunk seen.
  LogViewer.prototype.stream = function (url) {
    var self = this;
    this.live = true;
    this.stateEl.textContent = "Loading…";
    var es = new EventSource(this.lastId ? url + "?after=" + this.lastId : url);
    es.onmessage = function (e) {
      if (e.lastEventId) self.lastId = +e.lastEventId;
      // The event's data is the chunk (SSE turns its line breaks into
      // LF; a chunk ends with one).
      self.append(e.data);
      self.stateEl.textContent = "Live: " + self.lines.length + " lines";
    };
    es.addEventListener("end", function (e) {
      es.close();
      self.flushCarry();
      self.live = false;
      self.done = true;
      self.stepsDirty = true;
      self.render();
      var ms = Math.round(performance.now() - self.started);
      self.root.dataset.lines = self.lines.length;
      self.root.dataset.loadMs = ms;
      self.root.dataset.done = e.data;
      self.stateEl.textContent = self.lines.length + " lines · job " + e.data;
      refreshLive(); // the job's header shows its end at once
      if (!self.jumped) self.gotoHash();
    });
    es.onerror = function () {
      if (es.readyState === EventSource.CLOSED && !self.done) {
        self.stateEl.textContent = "Connection lost; retrying…";
        setTimeout(function () { self.stream(url); }, 3000);
      } else if (!self.done) {
        self.stateEl.textContent = "Reconnecting…";
      }
    };
    // A permalink shows its line as soon as it has arrived.
    var check = setInterval(function () {
      if (self.done || self.jumped) { clearInterval(check); return; }
      if (location.hash && self.gotoHash()) { self.jumped = true; clearInterval(check); }
    }, 200);
  };

  function startLog() {
    var root = document.getElementById("log");
    if (!root || !root.dataset.stream) return;
    var v = new LogViewer(root);
    window.conveyorLog = v; // for the browser tests and the curious
    v.stream(root.dataset.stream);
  }

  document.addEventListener("DOMContentLoaded", function () {
    startLive();
    startLog();
  });
})();
