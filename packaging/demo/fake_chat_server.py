#!/usr/bin/env python3
"""A stand-in for the chat server, for the image's pod test (tests/packaging/
chat-server-standin.Containerfile), whose debian:12 container has no npm packages.
`make demo` and the integration tests run the real one, chat-server/server.js (Node,
prom-client).

It serves what dbpulse's companion collector reads from the real (Node, prom-client)
chat server, with the metric names listed in DESIGN.md ("The chat server's own metrics"):

  GET /health, GET /health/ready   {"status": "ok"} (503 {"status": "unavailable"} while
                                   the "unready" fault is on)
  GET /metrics                     Prometheus text exposition, values evolving over time
  GET|POST /_demo/fault?mode=M&seconds=N
                                   demo knob: M is errors (about 20 % 5xx), slow (10x
                                   latency, event-loop lag), unready, or none; N defaults
                                   to 300

Traffic is simulated once a second by a background thread (a few dozen requests per
second with a slow daily-looking wave and ~0.5 % 5xx). The process_* series are this
process's real RSS and CPU time, so they agree with what dbpulse's process collector
reads through the pid file. With --redis-port, it also reads and writes a few session
keys per second in Redis, so the cache hit ratio there moves too.

Python 3 standard library only.
"""

import argparse
import json
import math
import os
import random
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

# prom-client's default buckets, and the ones the chat server configures for its own
# histograms.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
DELIVERY_BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)
DB_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)

# (method, route, weight, median latency in seconds, database operations it performs)
ROUTES = (
    ("GET", "/api/conversations", 20, 0.012, (("find", "conversations"),)),
    ("GET", "/api/conversations/:id/messages", 30, 0.018, (("find", "messages"),)),
    ("POST", "/api/conversations/:id/messages", 25, 0.025,
     (("insert", "messages"), ("update", "conversations"))),
    ("POST", "/api/conversations/:id/read", 12, 0.008, (("update", "participants"),)),
    ("GET", "/api/users/me", 8, 0.004, (("find", "users"),)),
    ("POST", "/api/auth/login", 2, 0.090, (("find", "users"),)),
    ("GET", "/api/search", 3, 0.150, (("aggregate", "messages"),)),
)
CHANNEL_TYPES = (("direct", 55), ("group", 35), ("channel", 10))


def fmt(value):
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def labels_text(names, values, extra=""):
    parts = ['%s="%s"' % (n, v) for n, v in zip(names, values)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class Histogram:
    def __init__(self, name, help_text, label_names, buckets):
        self.name = name
        self.help = help_text
        self.label_names = label_names
        self.buckets = buckets
        self.series = {}  # label values -> [bucket counts (non-cumulative), sum, count]

    def observe(self, label_values, value):
        s = self.series.get(label_values)
        if s is None:
            s = self.series[label_values] = [[0] * len(self.buckets), 0.0, 0]
        for i, upper in enumerate(self.buckets):
            if value <= upper:
                s[0][i] += 1
                break
        s[1] += value
        s[2] += 1

    def render(self, out):
        out.append("# HELP %s %s" % (self.name, self.help))
        out.append("# TYPE %s histogram" % self.name)
        for lv in sorted(self.series):
            counts, total, count = self.series[lv]
            cumulative = 0
            for upper, c in zip(self.buckets, counts):
                cumulative += c
                out.append("%s_bucket%s %d" % (
                    self.name, labels_text(self.label_names, lv, 'le="%s"' % fmt(float(upper))),
                    cumulative))
            out.append("%s_bucket%s %d" % (
                self.name, labels_text(self.label_names, lv, 'le="+Inf"'), count))
            out.append("%s_sum%s %s" % (self.name, labels_text(self.label_names, lv), fmt(total)))
            out.append("%s_count%s %d" % (self.name, labels_text(self.label_names, lv), count))


class Counter:
    def __init__(self, name, help_text, label_names=()):
        self.name = name
        self.help = help_text
        self.label_names = label_names
        self.series = {}

    def inc(self, label_values=(), by=1):
        self.series[label_values] = self.series.get(label_values, 0) + by

    def render(self, out):
        out.append("# HELP %s %s" % (self.name, self.help))
        out.append("# TYPE %s counter" % self.name)
        for lv in sorted(self.series):
            out.append("%s%s %s" % (self.name, labels_text(self.label_names, lv),
                                    fmt(self.series[lv])))


def gauge(out, name, help_text, value, typ="gauge"):
    out.append("# HELP %s %s" % (name, help_text))
    out.append("# TYPE %s %s" % (name, typ))
    out.append("%s %s" % (name, fmt(value)))


class ChatSimulation:
    """All simulated state; every method takes the lock."""

    def __init__(self, rng):
        self.rng = rng
        self.lock = threading.Lock()
        self.started = time.time()
        self.fault = "none"
        self.fault_until = 0.0
        self.requests = Counter("http_requests_total", "Total number of HTTP requests",
                                ("method", "route", "status_code"))
        self.request_duration = Histogram(
            "http_request_duration_seconds", "Duration of HTTP requests in seconds",
            ("method", "route"), HTTP_BUCKETS)
        self.delivery = Histogram(
            "message_delivery_time_ms",
            "Time from a message being accepted to its delivery to every online recipient",
            (), DELIVERY_BUCKETS_MS)
        self.messages_sent = Counter("messages_sent_total", "Messages sent",
                                     ("channel_type",))
        self.cache_hits = Counter("cache_hits_total", "Application cache hits")
        self.cache_misses = Counter("cache_misses_total", "Application cache misses")
        self.db_duration = Histogram(
            "database_query_duration_seconds", "Duration of database queries in seconds",
            ("operation", "collection"), DB_BUCKETS)
        self.websockets = 250.0
        self.heap = 70e6
        self.lag = 0.003
        # Make every series exist from the first scrape, as prom-client does once a
        # route has been hit.
        self.cache_hits.inc(by=0)
        self.cache_misses.inc(by=0)
        for name, _ in CHANNEL_TYPES:
            self.messages_sent.inc((name,), 0)

    def set_fault(self, mode, seconds):
        with self.lock:
            self.fault = mode
            self.fault_until = time.time() + seconds if mode != "none" else 0.0

    def current_fault(self):
        if self.fault != "none" and time.time() >= self.fault_until:
            self.fault = "none"
        return self.fault

    def tick(self, dt):
        rng = self.rng
        with self.lock:
            fault = self.current_fault()
            # A slow wave (period 20 minutes) so rates visibly move during a demo.
            load = 1.0 + 0.5 * math.sin((time.time() - self.started) / 1200.0 * 2 * math.pi)
            n = max(0, int(rng.gauss(30 * load * dt, 4)))
            weights = [r[2] for r in ROUTES]
            slow = 10.0 if fault == "slow" else 1.0
            error_share = 0.20 if fault == "errors" else 0.005
            for method, route, _, median, db_ops in rng.choices(ROUTES, weights, k=n):
                latency = median * slow * rng.lognormvariate(0, 0.6)
                roll = rng.random()
                if roll < error_share:
                    status = "503" if rng.random() < 0.3 else "500"
                    latency *= 3
                elif roll < error_share + 0.02:
                    status = rng.choice(("400", "401", "404"))
                    latency *= 0.3
                else:
                    status = "201" if method == "POST" and route.endswith("/messages") else "200"
                self.requests.inc((method, route, status))
                self.request_duration.observe((method, route), latency)
                if rng.random() < 0.9:
                    self.cache_hits.inc()
                else:
                    self.cache_misses.inc()
                    for op, coll in db_ops:
                        self.db_duration.observe(
                            (op, coll), latency * 0.6 * rng.lognormvariate(0, 0.4))
                if status == "201":
                    ctype = rng.choices([c[0] for c in CHANNEL_TYPES],
                                        [c[1] for c in CHANNEL_TYPES])[0]
                    self.messages_sent.inc((ctype,))
                    self.delivery.observe((), 1000 * latency * rng.lognormvariate(0.5, 0.5))
                    for op, coll in db_ops:
                        self.db_duration.observe(
                            (op, coll), latency * 0.5 * rng.lognormvariate(0, 0.4))
            # Connected clients: a random walk pulled toward the load wave.
            target = 300 * load
            self.websockets += (target - self.websockets) * 0.05 + rng.gauss(0, 3)
            self.websockets = max(0.0, self.websockets)
            # V8 heap: grows until a major GC drops it.
            self.heap += rng.uniform(0.2e6, 0.8e6) * load * dt
            if self.heap > 140e6:
                self.heap = rng.uniform(60e6, 75e6)
            base_lag = 0.004 * load * slow
            self.lag = max(0.0005, rng.gauss(base_lag, base_lag / 4))

    def render(self):
        out = []
        with self.lock:
            self.requests.render(out)
            self.request_duration.render(out)
            gauge(out, "websocket_active_connections", "Open WebSocket connections",
                  int(round(self.websockets)))
            self.delivery.render(out)
            self.messages_sent.render(out)
            self.cache_hits.render(out)
            self.cache_misses.render(out)
            self.db_duration.render(out)
            heap = int(self.heap)
            lag = self.lag
        rss, cpu = process_stats()
        gauge(out, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
              cpu, "counter")
        gauge(out, "process_resident_memory_bytes", "Resident memory size in bytes.", rss)
        gauge(out, "process_start_time_seconds",
              "Start time of the process since unix epoch in seconds.", int(self.started))
        gauge(out, "nodejs_heap_size_used_bytes", "Process heap size used from Node.js in bytes.",
              heap)
        gauge(out, "nodejs_eventloop_lag_seconds", "Lag of event loop in seconds.", lag)
        return "\n".join(out) + "\n"


def process_stats():
    """This process's resident memory (bytes) and CPU time (seconds)."""
    rss = 0
    try:
        with open("/proc/self/statm") as f:
            rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        pass
    t = os.times()
    return rss, t.user + t.system


class RedisTraffic:
    """A few session reads and writes per second against the demo Redis (RESP by hand)."""

    def __init__(self, port, rng, stop):
        self.port = port
        self.rng = rng
        self.stop = stop
        self.sock = None

    def command(self, *args):
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=2)
            self.reader = self.sock.makefile("rb")
        payload = b"*%d\r\n" % len(args)
        for a in args:
            a = str(a).encode()
            payload += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(payload)
        line = self.reader.readline()
        if line.startswith(b"$") and int(line[1:]) >= 0:
            self.reader.read(int(line[1:]) + 2)

    def run(self):
        while not self.stop.wait(0.25):
            try:
                # Sessions 1..500 were seeded by run.sh; higher ids are misses that the
                # server then fills, as a cache-aside application would.
                sid = self.rng.randint(1, 560)
                self.command("GET", "session:%d" % sid)
                if sid > 500 and self.rng.random() < 0.5:
                    self.command("SET", "session:%d" % sid, "user=%d" % sid, "EX", 30)
                self.command("GET", "user:%d:profile" % self.rng.randint(1, 250))
            except (OSError, ValueError):
                if self.sock is not None:
                    self.sock.close()
                self.sock = None
                self.stop.wait(2)


def make_handler(sim):
    class Handler(BaseHTTPRequestHandler):
        server_version = "fake-chat-server/1"

        def log_message(self, fmt_, *args):  # scrapes every few seconds: keep the log quiet
            pass

        def send(self, code, body, ctype="application/json"):
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def route(self):
            url = urlsplit(self.path)
            if url.path == "/health":
                return self.send(200, json.dumps({"status": "ok"}))
            if url.path == "/health/ready":
                with sim.lock:
                    fault = sim.current_fault()
                if fault == "unready":
                    return self.send(503, json.dumps({"status": "unavailable",
                                                      "reason": "demo fault"}))
                return self.send(200, json.dumps({"status": "ok"}))
            if url.path == "/metrics":
                return self.send(200, sim.render(), "text/plain; version=0.0.4; charset=utf-8")
            if url.path == "/_demo/fault":
                q = parse_qs(url.query)
                mode = q.get("mode", ["none"])[0]
                if mode not in ("none", "errors", "slow", "unready"):
                    return self.send(400, json.dumps({"error": "mode must be none, errors, "
                                                      "slow or unready"}))
                try:
                    seconds = float(q.get("seconds", ["300"])[0])
                except ValueError:
                    return self.send(400, json.dumps({"error": "seconds must be a number"}))
                sim.set_fault(mode, seconds)
                return self.send(200, json.dumps({"fault": mode, "seconds": seconds}))
            return self.send(404, json.dumps({"error": "not found"}))

        do_GET = route
        do_HEAD = route

        def do_POST(self):
            if urlsplit(self.path).path == "/_demo/fault":
                return self.route()
            return self.send(405, json.dumps({"error": "method not allowed"}))

    return Handler


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9471)
    ap.add_argument("--pid-file", help="write our pid here; removed on exit")
    ap.add_argument("--redis-port", type=int, help="also generate cache traffic in this Redis")
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: time)")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    sim = ChatSimulation(rng)
    sim.tick(5.0)  # some history before the first scrape
    stop = threading.Event()

    server = ThreadingHTTPServer((args.host, args.port), make_handler(sim))
    server.daemon_threads = True

    def simulate():
        last = time.monotonic()
        while not stop.wait(1.0):
            now = time.monotonic()
            sim.tick(now - last)
            last = now

    threading.Thread(target=simulate, name="simulate", daemon=True).start()
    if args.redis_port:
        traffic = RedisTraffic(args.redis_port, random.Random(rng.random()), stop)
        threading.Thread(target=traffic.run, name="redis", daemon=True).start()

    def on_signal(signum, _frame):
        stop.set()
        # shutdown() waits for serve_forever(), which runs in this very thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    # Started in the background by run.sh, SIGINT arrives ignored: keep it so, and let
    # run.sh stop us with SIGTERM after Ctrl-C, in its own order.
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, on_signal)

    if args.pid_file:
        tmp = args.pid_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % os.getpid())
        os.replace(tmp, args.pid_file)
    print("fake chat server on http://%s:%d/ (pid %d)" % (args.host, args.port, os.getpid()),
          file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        stop.set()
        server.server_close()
        if args.pid_file:
            try:
                with open(args.pid_file) as f:
                    if f.read().strip() == str(os.getpid()):
                        os.unlink(args.pid_file)
            except OSError:
                pass


if __name__ == "__main__":
    main()
