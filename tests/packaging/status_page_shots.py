"""The status page of a running dbpulse, seen by the demo fault test: what its HTML must show
once the demo's data has arrived, and full-page screenshots through headless Chromium.

Chromium is driven over its DevTools pipe (--remote-debugging-pipe: JSON messages ended by a
NUL byte, the browser reading fd 3 and writing fd 4), as the C++ harness does
(tests/integration/harness/chromium.cpp): a plain --screenshot only captures the window, and
the page's height is known only once it is laid out.
"""
import base64
import html
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time


def section(page, sid):
    """The HTML of <section id=sid> (sections do not nest)."""
    m = re.search(r'<section id="%s">(.*?)</section>' % re.escape(sid), page, re.S)
    return m.group(1) if m else None


def text_of(fragment):
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]*>", " ", fragment))).strip()


def check(page, check_id):
    """(level, shown value, note) of the health check data-check=check_id, or None."""
    m = re.search(r'<div class="check [^"]*" data-check="%s" data-level="([^"]*)">(.*?)</div>'
                  % re.escape(check_id), page, re.S)
    if not m:
        return None
    value = re.search(r'<span class="v">(.*?)</span>', m.group(2), re.S)
    note = re.search(r'<span class="note">(.*?)</span>', m.group(2), re.S)
    return (m.group(1), text_of(value.group(1)) if value else "",
            text_of(note.group(1)) if note else "")


def has_demo_data(page):
    """Whether the two slow parts have arrived: a statement in the queries section (the
    statements collector's second run) and a create suggestion (the advisor's first run)."""
    queries, indexes = section(page, "queries"), section(page, "indexes")
    return bool(queries and "<tr data-queryid=" in queries and indexes and
                '<table id="index-create">' in indexes)


def demo_page_problems(page):
    """What the page of a healthy demo (loopback caller, so an admin: the demo configures no
    admin token) lacks. Empty when it shows the demo's data in every section."""
    problems = []
    indexes = section(page, "indexes") or ""
    create = re.search(r'<table id="index-create">(.*?)</table>', indexes, re.S)
    rows = re.findall(r"<tr>(<td>.*?)</tr>", create.group(1), re.S) if create else []
    planted = [r for r in rows
               if re.search(r"<td>public\.messages</td><td>conversation_id, sent_at</td>", r)]
    if not planted:
        problems.append("indexes: no create suggestion for the planted missing index "
                        "public.messages (conversation_id, sent_at); rows: "
                        + "; ".join(text_of(r)[:160] for r in rows))
    elif not re.search(r"CREATE INDEX .*\bON\b.*messages.*\(conversation_id, sent_at",
                       text_of(planted[0]), re.I):
        problems.append("indexes: the planted index's statement is not a CREATE INDEX on "
                        f"messages (conversation_id, sent_at): {text_of(planted[0])}")
    queries = section(page, "queries") or ""
    texts = [text_of(q) for q in re.findall(r'<pre class="sql">(.*?)</pre>', queries, re.S)]
    # read_latest.sql of packaging/demo/workload, as pg_stat_statements normalises it.
    if not any(re.search(r"FROM messages WHERE conversation_id = \$\d+ AND deleted_at IS NULL "
                         r"ORDER BY sent_at DESC", t) for t in texts):
        problems.append("queries: the workload's read_latest statement is not listed; texts: "
                        + " | ".join(t[:100] for t in texts))
    health = section(page, "health") or ""
    drawn = re.findall(r'<figure class="sparkline" data-series="([^"]*)">(?:(?!</figure>).)*'
                       r"<polyline", health, re.S)
    for series in ("spark_connections", "spark_chat_rps"):
        if series not in drawn:
            problems.append(f"sparklines: {series} has no line (drawn: {drawn})")
    for check_id in ("chat_errors", "chat_p95", "pg_up", "connections"):
        c = check(page, check_id)
        if c is None:
            problems.append(f"health: no check {check_id}")
        elif c[0] not in ("ok", "warn", "crit") or c[2] or not re.search(r"\d|up", c[1]):
            problems.append(f"health: {check_id} has no verdict on a number: level {c[0]}, "
                            f"value {c[1]!r}, note {c[2]!r}")
    for sid in ("space", "maintenance", "alerts", "collectors"):
        if section(page, sid) is None:
            problems.append(f"no section {sid}")
    space = section(page, "space") or ""
    if "messages" not in space:
        problems.append("space: the demo's messages table is not listed")
    return problems


class ChromiumError(Exception):
    pass


class Chromium:
    """Headless Chromium over the DevTools pipe; one page at a time."""

    def __init__(self, binary, width=1280, height=900, timeout=60):
        self.width, self.height, self.timeout = width, height, timeout
        self.dir = tempfile.mkdtemp(prefix="dbpulse-chromium-")
        to_r, self.to_w = os.pipe()
        self.from_r, from_w = os.pipe()
        self.log_path = os.path.join(self.dir, "chromium.log")
        args = [binary, "--headless", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
                "--disable-extensions", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                "--mute-audio", "--user-data-dir=" + os.path.join(self.dir, "profile"),
                f"--window-size={width},{height}", "about:blank"]
        # The browser wants the pipe on fds 3 and 4 (where other files of this process may
        # be): a small Python trampoline moves them out of the way, then there.
        move = ("import fcntl, os, sys\n"
                "r, w = (fcntl.fcntl(int(fd), fcntl.F_DUPFD, 10) for fd in sys.argv[1:3])\n"
                "os.dup2(r, 3)\nos.dup2(w, 4)\n"
                "os.execv(sys.argv[3], sys.argv[3:])\n")
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", move, str(to_r), str(from_w)] + args,
                pass_fds=(to_r, from_w), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)
        os.close(to_r)
        os.close(from_w)
        self.buffer = b""
        self.next_id = 1
        self.events = []
        try:
            self.call("Browser.getVersion")
        except (ChromiumError, OSError):
            self.close()
            raise

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def receive(self, deadline):
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChromiumError("chromium: no answer in time; log:\n" + self.log())
            ready, _, _ = select.select([self.from_r], [], [], left)
            if not ready:
                continue
            chunk = os.read(self.from_r, 1 << 16)
            if not chunk:
                raise ChromiumError("chromium: the DevTools pipe closed; log:\n" + self.log())
            self.buffer += chunk
        msg, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, session=None):
        mid = self.next_id
        self.next_id += 1
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            m = self.receive(deadline)
            if "id" not in m:
                self.events.append(m)
            elif m["id"] == mid:
                if "error" in m:
                    raise ChromiumError(f"chromium: {method}: {m['error']}")
                return m.get("result", {})

    def screenshot(self, url, path, fmt="png", quality=None, scale=1.0, max_height=20000):
        """Loads url in a new tab and writes a full-page screenshot to path."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget",
                            {"targetId": target, "flatten": True})["sessionId"]
        try:
            self.call("Page.enable", session=session)
            self.call("Emulation.setDeviceMetricsOverride",
                      {"width": self.width, "height": self.height, "deviceScaleFactor": 1,
                       "mobile": False}, session)
            self.events.clear()
            nav = self.call("Page.navigate", {"url": url}, session)
            if nav.get("errorText"):
                raise ChromiumError(f"chromium: cannot load {url}: {nav['errorText']}")
            deadline = time.monotonic() + self.timeout
            while not any(e.get("method") == "Page.loadEventFired" and
                          e.get("sessionId") == session for e in self.events):
                self.events.append(self.receive(deadline))
            metrics = self.call("Page.getLayoutMetrics", session=session)
            size = metrics.get("cssContentSize") or metrics.get("contentSize") or {}
            width = max(1.0, size.get("width", self.width))
            height = min(float(max_height), max(1.0, size.get("height", self.height)))
            params = {"format": fmt, "captureBeyondViewport": True,
                      "clip": {"x": 0, "y": 0, "width": width, "height": height,
                               "scale": scale}}
            if quality is not None:
                params["quality"] = quality
            shot = self.call("Page.captureScreenshot", params, session)
            with open(path, "wb") as f:
                f.write(base64.b64decode(shot["data"]))
        finally:
            self.call("Target.closeTarget", {"targetId": target})

    def close(self):
        try:
            if self.proc.poll() is None:
                self.timeout = 5
                self.call("Browser.close")
        except (ChromiumError, OSError):
            pass
        for fd in (self.to_w, self.from_r):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(self.proc.pid, 9)  # helpers (renderer, zygote) left in the group
        except OSError:
            pass
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
