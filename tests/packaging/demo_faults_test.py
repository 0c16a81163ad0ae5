#!/usr/bin/env python3
"""Each fault of the demo fires the one alert of the shipped rule pack meant for it.

    demo_faults_test.py --source-dir SRC --dbpulse BUILD/dbpulse

Runs the `make demo` sandbox (packaging/demo/run.sh with DEMO_AGENT=0, in a temporary
DEMO_DIR on free loopback ports: PostgreSQL 15 with the chat schema and the pgbench chat
workload, Redis, the Node chat server with its traffic, Alertmanager) and runs dbpulse with
the demo's own config and rule pack, once per phase, each time with a fresh state directory
(so every phase starts with an empty history: a rate over the last 5 minutes then sees
only that phase's traffic, and no phase inherits the previous fault's alert):

    phase       what the test does                                  the alert it expects
    healthy     nothing                                             none
    unready     chat server /_demo/fault?mode=unready               ChatCompanionDown
    errors      chat server /_demo/fault?mode=errors (20 % 5xx)     ChatHttpErrorRatioHigh
    slow        chat server /_demo/fault?mode=slow (>= 1.5 s)       ChatHttpLatencyP95High
    lock        a session holds EXCLUSIVE on conversations          PostgresBlockedSessions
    postgres    PostgreSQL stopped (started again afterwards)       PostgresDown
    redis       Redis stopped                                       RedisDown

In the healthy phase the test also waits (at most PAGE_TIMEOUT seconds past HEALTHY_SECONDS)
until the status page GET / has the demo's data (a statement, from the statements collector's
second run; the advisor's suggestions), asserts on its HTML that every section shows it (the
planted missing index messages (conversation_id, sent_at) suggested, the workload's slow
statement listed, sparklines drawn, the Node chat server's 5xx ratio and p95 judged on numbers)
and keeps the page and a full-page screenshot by headless Chromium in the artifacts directory
(demo-status-page.html, .png). The demo configures no admin token and listens on loopback, so
every caller is an admin there: the page shown is the admin's (with statement texts).

In every phase the expected alert must become active (pending or firing on
GET /admin/alerts), and no other alert may be active at any poll of the phase, before or
after it: both directions of "this fault, this alert". Pending is enough here: an alert is
pending from the first evaluation at which its expression holds, and firing `for` later;
the `for` durations themselves are checked by the rule pack's promtool tests
(tests/rules/*_test.yml).

Without node, PostgreSQL 15, Redis, Alertmanager or chromium the test is skipped (exit 77),
or fails under CI=true.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree for the module below
import status_page_shots  # noqa: E402  (tests/packaging/status_page_shots.py)

PG_BIN = "/usr/lib/postgresql/15/bin"
# How long an expected alert may take to become active: two collector runs (15 s) and an
# evaluation (15 s) on an idle machine, with room for a loaded CI machine.
ACTIVATE_TIMEOUT = 180
# After the expected alert is active, the phase keeps watching this long for others.
WATCH_AFTER = 20
HEALTHY_SECONDS = 75
# How much longer the healthy phase may wait for the status page's data: the statements
# collector's second run comes a minute after its first, the advisor's first run at start.
PAGE_TIMEOUT = 180


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


class Failure(Exception):
    pass


class Sandbox:
    def __init__(self, source_dir, work):
        self.source_dir = source_dir
        self.work = work
        self.demo_dir = os.path.join(work, "demo")
        (self.pg_port, self.redis_port, self.dbpulse_port, self.chat_port,
         self.am_port) = free_ports(5)
        self.proc = None
        self.log_path = os.path.join(work, "run.log")

    def start(self):
        env = dict(os.environ, DEMO_DIR=self.demo_dir, DEMO_AGENT="0", DEMO_DURATION="3600",
                   DEMO_PG_PORT=str(self.pg_port), DEMO_REDIS_PORT=str(self.redis_port),
                   DEMO_DBPULSE_PORT=str(self.dbpulse_port), DEMO_CHAT_PORT=str(self.chat_port),
                   DEMO_ALERTMANAGER_PORT=str(self.am_port))
        log(f"starting the demo sandbox in {self.demo_dir}")
        self.proc = subprocess.Popen(
            ["bash", os.path.join(self.source_dir, "packaging/demo/run.sh"), "/bin/true"],
            env=env, stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 900  # initdb, seed, npm install on a cold machine
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Failure(f"run.sh exited ({self.proc.returncode}):\n{self.tail()}")
            with open(self.log_path) as f:
                if "DEMO_AGENT=0: not starting dbpulse" in f.read():
                    return
            time.sleep(0.5)
        raise Failure(f"the sandbox was not up within 900 s:\n{self.tail()}")

    def tail(self, n=40):
        try:
            with open(self.log_path) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def fault(self, mode):
        status, body = http_get(
            f"http://127.0.0.1:{self.chat_port}/_demo/fault?mode={mode}&seconds=900")
        if status != 200:
            raise Failure(f"the chat server refused fault {mode}: {status} {body}")

    def as_postgres(self, argv):
        if os.getuid() == 0:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        return argv

    def pg_ctl(self, action):
        subprocess.run(self.as_postgres([f"{PG_BIN}/pg_ctl", "-D",
                                         os.path.join(self.demo_dir, "pg/data"), action,
                                         "-m", "fast", "-w", "-t", "60"]),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def psql(self, sql):
        return subprocess.run([f"{PG_BIN}/psql", "-X", "-q", "-At", "-h", "127.0.0.1", "-p",
                               str(self.pg_port), "-U", "postgres", "-d", "chat", "-c", sql],
                              check=True, capture_output=True, text=True).stdout


class Agent:
    """dbpulse with the demo's config and a state directory of its own."""

    def __init__(self, dbpulse, sandbox, phase):
        self.sandbox = sandbox
        with open(os.path.join(sandbox.demo_dir, "dbpulse.toml")) as f:
            toml = f.read()
        state = os.path.join(sandbox.work, f"state-{phase}")
        old = f'state_dir = "{sandbox.demo_dir}/state"'
        if old not in toml:
            raise Failure(f"the demo's config has no {old} line to replace")
        toml = toml.replace(old, f'state_dir = "{state}"')
        self.config = os.path.join(sandbox.work, f"dbpulse-{phase}.toml")
        with open(self.config, "w") as f:
            f.write(toml)
        self.log_path = os.path.join(sandbox.work, f"dbpulse-{phase}.log")
        self.proc = subprocess.Popen([dbpulse, "run", "--config", self.config],
                                     stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{sandbox.dbpulse_port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Failure(f"dbpulse exited ({self.proc.returncode}):\n{self.tail()}")
            try:
                if http_get(self.base + "/health/ready", timeout=2)[0] == 200:
                    return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise Failure(f"dbpulse was not ready within 60 s:\n{self.tail()}")

    def tail(self, n=30):
        with open(self.log_path) as f:
            return "".join(f.readlines()[-n:])

    def active_alerts(self):
        status, body = http_get(self.base + "/admin/alerts")
        if status != 200:
            raise Failure(f"GET /admin/alerts answered {status}")
        out = []
        for a in json.loads(body)["alerts"]:
            if a.get("state") in ("pending", "firing"):
                labels = a.get("labels", {})
                detail = ",".join(f"{k}={v}" for k, v in sorted(labels.items())
                                  if k not in ("alertname", "severity", "component"))
                out.append((labels.get("alertname", "?"), a["state"], detail))
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def watch(agent, expected, seconds_after, errors, phase, until=None):
    """Polls the agent's alerts: `expected` (an alert name, or None) must become active,
    nothing else may. Returns when the expected alert has been active for seconds_after
    seconds (or, with None, after seconds_after seconds) and `until()` holds (if given;
    it gets PAGE_TIMEOUT seconds more)."""
    start = time.monotonic()
    seen_at = None if expected else start
    unexpected = {}
    while True:
        now = time.monotonic()
        for name, state, detail in agent.active_alerts():
            if name == expected:
                if seen_at is None:
                    seen_at = now
                    log(f"{phase}: {name} {state} after {now - start:.0f} s")
            else:
                unexpected.setdefault((name, detail), f"{state} at {now - start:.0f} s")
        if seen_at is not None and now - seen_at >= seconds_after:
            if until is None or until():
                break
            if now - seen_at >= seconds_after + PAGE_TIMEOUT:
                errors.append(f"{phase}: the status page had not both a statement and a "
                              f"create suggestion {seconds_after + PAGE_TIMEOUT} s after "
                              "the start")
                break
        if seen_at is None and now - start > ACTIVATE_TIMEOUT:
            errors.append(f"{phase}: {expected} did not become active within "
                          f"{ACTIVATE_TIMEOUT} s")
            break
        time.sleep(1)
    for (name, detail), when in sorted(unexpected.items()):
        errors.append(f"{phase}: unexpected alert {name} {{{detail}}} ({when})")


def page_has_data(agent):
    try:
        return status_page_shots.has_demo_data(http_get(agent.base + "/")[1])
    except (urllib.error.URLError, OSError):
        return False


def check_page(agent, artifacts, errors):
    """Asserts on the healthy demo's status page and keeps its HTML and screenshots in
    `artifacts` (if given)."""
    status, page = http_get(agent.base + "/")
    if status != 200:
        errors.append(f"healthy: GET / answered {status}")
    for p in status_page_shots.demo_page_problems(page):
        errors.append(f"healthy: status page: {p}")
    if not artifacts:
        return
    os.makedirs(artifacts, exist_ok=True)
    with open(os.path.join(artifacts, "demo-status-page.html"), "w") as f:
        f.write(page)
    browser = None
    try:
        browser = status_page_shots.Chromium(shutil.which("chromium"), width=1280)
        browser.screenshot(agent.base + "/", os.path.join(artifacts, "demo-status-page.png"))
        log(f"healthy: screenshot in {artifacts}/demo-status-page.png")
    except (status_page_shots.ChromiumError, OSError) as e:
        errors.append(f"healthy: screenshot: {e}")
    finally:
        if browser:
            browser.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--dbpulse", required=True)
    ap.add_argument("--artifacts-dir", default=None,
                    help="where the status page and its screenshot go (default: not kept)")
    args = ap.parse_args()

    missing = [t for t in ("node", "redis-server", "redis-cli", "prometheus-alertmanager",
                           "chromium")
               if shutil.which(t) is None]
    missing += [p for p in (f"{PG_BIN}/initdb", f"{PG_BIN}/pgbench") if not os.path.exists(p)]
    if missing:
        msg = f"demo_faults_test: missing {', '.join(missing)} (bash packaging/deps.sh)"
        if os.environ.get("CI") in ("true", "1"):
            print(msg + "; CI=true, so this is a failure", file=sys.stderr)
            return 1
        print(msg + "; skipped", file=sys.stderr)
        return 77

    work = tempfile.mkdtemp(prefix="dbpulse-faults-", dir="/var/tmp")
    os.chmod(work, 0o755)  # the postgres OS user runs the sandbox's server under it
    sandbox = Sandbox(args.source_dir, work)
    errors = []
    holder = None
    ok = False
    try:
        sandbox.start()
        phases = [
            ("healthy", None, None, None),
            ("unready", "ChatCompanionDown",
             lambda: sandbox.fault("unready"), lambda: sandbox.fault("none")),
            ("errors", "ChatHttpErrorRatioHigh",
             lambda: sandbox.fault("errors"), lambda: sandbox.fault("none")),
            ("slow", "ChatHttpLatencyP95High",
             lambda: sandbox.fault("slow"), lambda: sandbox.fault("none")),
            ("lock", "PostgresBlockedSessions", None, None),
            ("postgres", "PostgresDown",
             lambda: sandbox.pg_ctl("stop"), lambda: sandbox.pg_ctl("start")),
            ("redis", "RedisDown",
             lambda: subprocess.run(["redis-cli", "-p", str(sandbox.redis_port), "shutdown",
                                     "nosave"], capture_output=True), None),
        ]
        for phase, expected, begin, end in phases:
            agent = Agent(args.dbpulse, sandbox, phase)
            try:
                if phase == "lock":
                    # Held by an active statement (not idle in transaction, and far from
                    # PostgresLongRunningTransaction's 5 minutes); EXCLUSIVE blocks the
                    # workload's UPDATE conversations but no reader (dbpulse's collectors).
                    holder = subprocess.Popen(
                        [f"{PG_BIN}/psql", "-X", "-q", "-h", "127.0.0.1", "-p",
                         str(sandbox.pg_port), "-U", "postgres", "-d", "chat",
                         "-c", "SET application_name = 'dbpulse-fault-lock'",
                         "-c", "BEGIN", "-c", "LOCK TABLE conversations IN EXCLUSIVE MODE",
                         "-c", "SELECT pg_sleep(600)"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                elif begin:
                    begin()
                log(f"{phase}: expecting {expected or 'no alert'}")
                watch(agent, expected, WATCH_AFTER if expected else HEALTHY_SECONDS, errors,
                      phase, until=(lambda: page_has_data(agent)) if phase == "healthy" else None)
                if phase == "healthy":
                    check_page(agent, args.artifacts_dir, errors)
            finally:
                if phase == "lock" and holder:
                    sandbox.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE application_name = 'dbpulse-fault-lock'")
                    holder.wait(timeout=30)
                    holder = None
                elif end:
                    end()
                agent.stop()
        ok = not errors
    except Failure as e:
        errors.append(str(e))
    finally:
        if holder:
            holder.kill()
        sandbox.stop()
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"logs kept in {work}")
    for e in errors:
        print(f"FAIL {e}", file=sys.stderr)
    if errors:
        return 1
    log("every fault fired its alert and nothing else")
    return 0


if __name__ == "__main__":
    sys.exit(main())
