#!/usr/bin/env python3
"""The container image, built and run as the Kubernetes sidecar pod (ctest -L image).

    image_pod_test.py --source-dir SRC

1. Builds the image with packaging/docker/build-image.sh (what `make image` runs) in
   dbpulse's cache storage (--cache-store: base image, apt layers and the compiled build
   stage are reused by the next run), plus the chat-server stand-in
   (tests/packaging/chat-server-standin.Containerfile), and loads both into a podman
   storage of this test's own (--root/--runroot/--tmpdir in a temporary directory).
2. Starts PostgreSQL 15 (scram-sha-256 over TCP, so the dbpulse role needs its password)
   and Redis on free loopback ports.
3. `podman kube play` of a copy of packaging/kubernetes/dbpulse-sidecar.yaml generated from
   the real file: only the two image names and addresses differ (the DSN's host and port,
   the Redis and Alertmanager addresses, and a loopback hostIP/hostPort for each
   containerPort), plus `replicas: 1` (podman 4.3 starts every replica of a Deployment on
   this one host, where they cannot publish the same ports), and the Secret delivered as a
   ConfigMap of the same name, keys and items (podman 4.3's Secret volumes are broken:
   `stringData` is dropped, `data` is written still base64-encoded, and a secret volume
   without `optional` crashes it, containers/podman#16636); dbpulse still reads the
   Secret's values from files at the Secret's mount path. Every rewrite must match exactly
   once, so a changed manifest fails the test loudly. The pod has a network namespace of its own, as in Kubernetes (dbpulse
   listens on 0.0.0.0:9470 there and reaches the chat server on 127.0.0.1:3000), through
   slirp4netns: it makes no firewall rules, publishes the ports on 127.0.0.1 only, and
   lets the pod reach the host's loopback servers at 10.0.2.2. (`--network host` is not
   possible: podman 4.3 publishes every containerPort and refuses that on the host
   network.)
4. Checks the liveness and readiness probes (/health, /health/ready), pg_up 1, redis_up 1,
   the chat server seen by the process collector through the shared PID namespace, config
   from the ConfigMap, passwords from the Secret's files, non-root with a read-only root
   filesystem, the image's HEALTHCHECK command, and the container's memory (cgroup peak
   and peak RSS) against the manifest's limit during a workload (pgbench, redis-benchmark,
   HTTP requests) until the collectors have run twice more.
5. Removes everything it made (pod, containers, volumes, secrets, storage, servers, files),
   also on failure; a run killed before that is cleaned up by the next run.

Needs root, podman, slirp4netns, debootstrap (packaging/deps.sh installs them; the test
runs it when one is missing), postgresql-15 and redis-server. Without them it is skipped
(exit 77), or fails under CI=true.
"""
import argparse
import contextlib
import http.client
import ctypes
import glob
import json
import os
import pwd
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

PG_BIN = "/usr/lib/postgresql/15/bin"
REDIS_SERVER = "/usr/bin/redis-server"
WORK_PREFIX = "dbpulse-img."
WORK_PARENT = "/var/tmp"
STANDIN_IMAGE = "localhost/dbpulse-test-chat-server:latest"
MANIFEST = "packaging/kubernetes/dbpulse-sidecar.yaml"
# slirp4netns: the pod's own network namespace; allow_host_loopback makes the host's
# 127.0.0.1 reachable from the pod as 10.0.2.2; published ports listen on hostIP only.
POD_NETWORK = "slirp4netns:allow_host_loopback=true,port_handler=slirp4netns"
HOST_FROM_POD = "10.0.2.2"
# What podman makes outside its storage: a network definition for kube play, and its
# cgroups (cgroupfs manager) under libpod_parent in every hierarchy.
CNI_KUBE_NETWORK = "/etc/cni/net.d/podman-default-kube-network.conflist"
CGROUP_PARENT = "libpod_parent"
DEADLINE = time.monotonic() + 28 * 60  # below CTest's TIMEOUT (30 min): cleanup still runs


class Skip(Exception):
    pass


class TestFailure(Exception):
    pass


def in_ci():
    return os.environ.get("CI") in ("true", "1")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)
    log(f"ok: {msg}")


def run(argv, timeout=300, check_rc=True, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if check_rc and r.returncode != 0:
        raise TestFailure(f"{' '.join(argv)} exited {r.returncode}:\n{r.stdout[-3000:]}{r.stderr[-3000:]}")
    return r


def poll(what, fn, timeout, interval=0.25):
    """fn() until it returns a true value, or TestFailure naming what and fn's last answer."""
    end = min(time.monotonic() + timeout, DEADLINE)
    last = None
    while True:
        try:
            last = fn()
            if last:
                return last
        except (OSError, http.client.HTTPException, ValueError) as e:
            last = e
        if time.monotonic() >= end:
            raise TestFailure(f"{what}: not within {timeout} s (last: {str(last)[-1500:]})")
        time.sleep(interval)


def free_port(taken):
    """A free loopback port in 20000-32000 (below the ephemeral range, like the harness)."""
    for _ in range(200):
        port = random.randint(20000, 32000)
        if port in taken:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        taken.add(port)
        return port
    raise TestFailure("no free loopback port")


def http_get(url, headers=None, timeout=5):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def metric_values(text, name):
    """{label text: value} of every sample of metric `name` in an exposition."""
    out = {}
    for line in text.splitlines():
        m = re.match(rf"^{re.escape(name)}(\{{[^}}]*\}})?\s+(\S+)", line)
        if m:
            out[m.group(1) or ""] = float(m.group(2))
    return out


def stop_group(proc, grace=20):
    """SIGTERM to the process group of proc (started with start_new_session), then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def set_pdeathsig(sig=signal.SIGKILL):
    """Child dies with this test (a killed test leaves no server behind)."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(sig))  # PR_SET_PDEATHSIG


# ---- podman in a storage of the test's own -------------------------------------------

class Podman:
    def __init__(self, work, source_dir):
        self.work = work
        self.env = dict(os.environ,
                        CONTAINERS_CONF=os.path.join(source_dir, "packaging/docker/containers.conf"))
        self.base = ["podman", "--root", os.path.join(work, "storage"),
                     "--runroot", os.path.join(work, "run"),
                     "--tmpdir", os.path.join(work, "t")]  # short: slirp4netns's socket path

    def __call__(self, *args, timeout=300, check_rc=True):
        return run(self.base + list(args), timeout=timeout, check_rc=check_rc, env=self.env)

    def json(self, *args):
        return json.loads(self(*args).stdout)

    def teardown(self):
        """Everything in this storage: pods (with their infra), containers, volumes,
        secrets. Failures are reported, not raised: cleanup goes on."""
        for args in (["pod", "rm", "-a", "-f", "-t", "10"], ["rm", "-a", "-f", "-t", "5"],
                     ["volume", "rm", "-a", "-f"], ["secret", "rm", "-a"],
                     ["rmi", "-a", "-f"]):
            try:
                r = self(*args, timeout=120, check_rc=False)
                if r.returncode != 0 and "no such" not in r.stderr.lower():
                    log(f"cleanup: podman {' '.join(args)}: {r.stderr.strip()[-300:]}")
            except (subprocess.TimeoutExpired, OSError) as e:
                log(f"cleanup: podman {' '.join(args)}: {e}")


def unmount_under(path):
    mounts = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp == path or mp.startswith(path + "/"):
                mounts.append(mp)
    for mp in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], capture_output=True)


def remove_work(work, source_dir):
    """Stops what a run in `work` started and removes the directory."""
    pods = Podman(work, source_dir)
    if os.path.isdir(os.path.join(work, "storage")):
        with contextlib.suppress(Exception):
            ids = pods("pod", "ps", "-q", "--no-trunc", timeout=60).stdout.split()
            with open(os.path.join(work, "pod-ids"), "a", encoding="utf-8") as f:
                f.write("".join(i + "\n" for i in ids))
        pods.teardown()
    for name in ("postgres.pid", "redis.pid"):
        with contextlib.suppress(OSError, ValueError):
            with open(os.path.join(work, name), encoding="utf-8") as f:
                pid = int(f.read().split()[0])
            if os.readlink(f"/proc/{pid}/cwd").startswith(work + "/"):  # still ours
                os.kill(pid, signal.SIGKILL)
    remove_podman_system_leftovers(work)
    unmount_under(work)
    shutil.rmtree(work, ignore_errors=True)


def record_podman_system_state(work):
    """Notes which of podman's system-wide leftovers exist before this run."""
    made = [CNI_KUBE_NETWORK] if not os.path.exists(CNI_KUBE_NETWORK) else []
    for h in glob.glob("/sys/fs/cgroup/*/"):
        if not os.path.isdir(os.path.join(h, CGROUP_PARENT)):
            made += [os.path.join(h, CGROUP_PARENT, "conmon"), os.path.join(h, CGROUP_PARENT)]
    with open(os.path.join(work, "remove-after"), "w", encoding="utf-8") as f:
        f.write("".join(p + "\n" for p in made))


def remove_podman_system_leftovers(work):
    """The pod's cgroups (podman 4.3 leaves them in the name=systemd and unified
    hierarchies), then what the run found missing at its start: the kube network file, the
    cgroup parents (rmdir: one still in use by someone else's container stays)."""
    with contextlib.suppress(OSError):
        with open(os.path.join(work, "pod-ids"), encoding="utf-8") as f:
            for pod_id in f.read().split():
                for h in glob.glob(f"/sys/fs/cgroup/*/{CGROUP_PARENT}/{pod_id}"):
                    for d in sorted((r for r, _, _ in os.walk(h)), key=len, reverse=True):
                        with contextlib.suppress(OSError):
                            os.rmdir(d)
    with contextlib.suppress(OSError):
        with open(os.path.join(work, "remove-after"), encoding="utf-8") as f:
            for path in f.read().split():
                with contextlib.suppress(OSError):
                    (os.rmdir if path.startswith("/sys/fs/cgroup/") else os.unlink)(path)


def sweep_leftovers(source_dir):
    """Work directories of earlier runs that were killed before their cleanup."""
    for name in os.listdir(WORK_PARENT):
        if not name.startswith(WORK_PREFIX):
            continue
        work = os.path.join(WORK_PARENT, name)
        try:
            with open(os.path.join(work, "owner"), encoding="utf-8") as f:
                pid, start = f.read().split()
            with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
                alive = f.read().rsplit(")", 1)[1].split()[19] == start
        except (OSError, ValueError, IndexError):
            alive = False
        if not alive:
            log(f"removing the leftovers of an earlier run: {work}")
            remove_work(work, source_dir)


def own_start_time():
    with open("/proc/self/stat", encoding="utf-8") as f:
        return f.read().rsplit(")", 1)[1].split()[19]


# ---- PostgreSQL and Redis on loopback -------------------------------------------------

class Servers:
    def __init__(self, work, ports, pg_password):
        self.work = work
        self.procs = []
        self.pg_port = free_port(ports)
        self.redis_port = free_port(ports)
        self.pg_dir = os.path.join(work, "pg")
        os.makedirs(self.pg_dir)
        pg = pwd.getpwnam("postgres")
        os.chown(self.pg_dir, pg.pw_uid, pg.pw_gid)
        self.pg_user = pg

        def as_postgres():
            os.setgid(pg.pw_gid)
            os.setgroups([pg.pw_gid])
            os.setuid(pg.pw_uid)
            set_pdeathsig()
        self.as_postgres = as_postgres

        data = os.path.join(self.pg_dir, "data")
        pwfile = os.path.join(self.pg_dir, "initdb.pw")
        run([f"{PG_BIN}/initdb", "-D", data, "-U", "postgres", "--auth-local=trust",
             "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync",
             "--no-instructions"], preexec_fn=as_postgres, cwd=self.pg_dir, timeout=120)
        settings = ["listen_addresses=127.0.0.1", f"port={self.pg_port}",
                    f"unix_socket_directories={self.pg_dir}",
                    "shared_preload_libraries=pg_stat_statements", "fsync=off",
                    "synchronous_commit=off", "full_page_writes=off", "shared_buffers=16MB",
                    "max_connections=60", "logging_collector=off",
                    "log_connections=on"]
        argv = [f"{PG_BIN}/postgres", "-D", data]
        for s in settings:
            argv += ["-c", s]
        self.pg_log = os.path.join(self.pg_dir, "postgres.log")
        self.postgres = subprocess.Popen(argv, stdout=open(self.pg_log, "w"),
                                         stderr=subprocess.STDOUT, preexec_fn=as_postgres,
                                         cwd=self.pg_dir)
        self.procs.append(self.postgres)
        self._pidfile("postgres.pid", self.postgres.pid)
        poll("PostgreSQL accepts connections",
             lambda: self.postgres.poll() is None and self.psql("postgres", "SELECT 1",
                                                                check_rc=False).returncode == 0
             or self.postgres.poll() is not None, 60)
        if self.postgres.poll() is not None:
            raise TestFailure("postgres exited:\n" + open(self.pg_log).read()[-3000:])
        self.psql("postgres", "CREATE ROLE dbpulse LOGIN PASSWORD '%s' IN ROLE pg_monitor"
                  % pg_password.replace("'", "''"))
        self.psql("postgres", "CREATE DATABASE chat")
        self.psql("chat", "CREATE EXTENSION pg_stat_statements;")
        run([f"{PG_BIN}/pgbench", "-i", "-q", "-s", "2", "-h", self.pg_dir, "-p",
             str(self.pg_port), "-U", "postgres", "chat"], preexec_fn=as_postgres, timeout=300)

        self.redis_dir = os.path.join(work, "redis")
        os.makedirs(self.redis_dir)
        self.redis = subprocess.Popen(
            [REDIS_SERVER, "--bind", "127.0.0.1", "--port", str(self.redis_port), "--save", "",
             "--appendonly", "no", "--dir", self.redis_dir, "--daemonize", "no",
             "--logfile", os.path.join(self.redis_dir, "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, preexec_fn=set_pdeathsig)
        self.procs.append(self.redis)
        self._pidfile("redis.pid", self.redis.pid)
        poll("Redis answers PING", lambda: self.redis_ping(), 30)
        log(f"PostgreSQL 15 on 127.0.0.1:{self.pg_port}, Redis on 127.0.0.1:{self.redis_port}")

    def _pidfile(self, name, pid):
        with open(os.path.join(self.work, name), "w", encoding="utf-8") as f:
            f.write(f"{pid}\n")

    def psql(self, db, sql, check_rc=True):
        return run([f"{PG_BIN}/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", self.pg_dir,
                    "-p", str(self.pg_port), "-U", "postgres", "-d", db, "-c", sql],
                   preexec_fn=self.as_postgres, check_rc=check_rc, timeout=60)

    def redis_ping(self):
        with socket.create_connection(("127.0.0.1", self.redis_port), timeout=2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")

    def stop(self):
        if self.postgres.poll() is None:
            self.postgres.send_signal(signal.SIGINT)  # fast shutdown
        if self.redis.poll() is None:
            self.redis.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


# ---- the test copy of the manifest ----------------------------------------------------

def sub_once(text, pattern, repl, what):
    new, n = re.subn(pattern, repl, text, flags=re.M)
    if n != 1:
        raise TestFailure(f"{MANIFEST}: expected exactly one {what} ({pattern!r}), found {n}; "
                          "update image_pod_test.py's rewrite with the manifest")
    return new


def test_manifest(source_dir, dbpulse_image, ports, srv):
    """The manifest with the images and addresses of this run: (documents, Secret data,
    config text, dbpulse's container spec, {container name: {port name: host port}})."""
    import yaml  # python3-yaml
    with open(os.path.join(source_dir, MANIFEST), encoding="utf-8") as f:
        docs = list(yaml.safe_load_all(f))
    by_kind = {d["kind"]: d for d in docs if d}
    secret = by_kind["Secret"]["stringData"]
    cm = by_kind["ConfigMap"]["data"]
    toml = cm["dbpulse.toml"]
    closed = [free_port(ports), free_port(ports)]  # nothing listens: Alertmanagers down
    toml = sub_once(toml, r"host=postgres\.chat\.svc port=5432",
                    f"host={HOST_FROM_POD} port={srv.pg_port}", "DSN host and port")
    toml = sub_once(toml, r'^address = "redis\.chat\.svc:6379"',
                    f'address = "{HOST_FROM_POD}:{srv.redis_port}"', "Redis address")
    toml = sub_once(toml, r'"http://alertmanager-0\.alertmanager\.monitoring\.svc:9093"',
                    f'"http://{HOST_FROM_POD}:{closed[0]}"', "first Alertmanager URL")
    toml = sub_once(toml, r'"http://alertmanager-1\.alertmanager\.monitoring\.svc:9093"',
                    f'"http://{HOST_FROM_POD}:{closed[1]}"', "second Alertmanager URL")
    cm["dbpulse.toml"] = toml

    deployment = by_kind["Deployment"]["spec"]
    deployment["replicas"] = 1
    pod = deployment["template"]["spec"]
    # The Secret as a ConfigMap (see the module docstring): same name, keys, items, mode.
    secret_doc = by_kind["Secret"]
    docs[docs.index(secret_doc)] = {"apiVersion": "v1", "kind": "ConfigMap",
                                    "metadata": secret_doc["metadata"], "data": dict(secret)}
    for vol in pod["volumes"]:
        if vol.get("secret", {}).get("secretName") == secret_doc["metadata"]["name"]:
            src_ = vol.pop("secret")
            vol["configMap"] = {"name": src_["secretName"], "items": src_["items"]}
            if "defaultMode" in src_:
                vol["configMap"]["defaultMode"] = src_["defaultMode"]
    containers = {c["name"]: c for c in pod["containers"]}
    images = {"chat-server": STANDIN_IMAGE, "dbpulse": dbpulse_image}
    if set(containers) != set(images):
        raise TestFailure(f"{MANIFEST}: containers {sorted(containers)}, expected {sorted(images)}")
    published = {}
    for name, c in containers.items():
        c["image"] = images[name]
        published[name] = {}
        for p in c.get("ports", []):
            if "hostPort" in p or "hostIP" in p:
                raise TestFailure(f"{MANIFEST}: {name} has a hostPort/hostIP; the test sets them")
            p["hostIP"] = "127.0.0.1"
            p["hostPort"] = free_port(ports)
            published[name][p.get("name", p["containerPort"])] = p["hostPort"]
    return docs, secret, toml, containers["dbpulse"], published


def probe_url(container, probe, published):
    """http://127.0.0.1:<published port><path> of a container's httpGet probe."""
    get = container[probe]["httpGet"]
    return f"http://127.0.0.1:{published[get['port']]}{get['path']}", get["path"]


# ---- the test ------------------------------------------------------------------------

def cgroup_memory_dir(podman, ctr):
    path = podman("inspect", "--format", "{{.State.CgroupPath}}", ctr).stdout.strip()
    for candidate in (f"/sys/fs/cgroup/memory{path}", f"/sys/fs/cgroup{path}"):
        if os.path.isdir(candidate):
            return candidate
    raise TestFailure(f"no memory cgroup directory for {ctr} ({path})")


def read_int(path):
    with open(path, encoding="utf-8") as f:
        v = f.read().strip()
    return None if v == "max" else int(v)


def memory_files(cg):
    if os.path.exists(os.path.join(cg, "memory.usage_in_bytes")):  # cgroup v1
        return ("memory.usage_in_bytes", "memory.max_usage_in_bytes", "memory.limit_in_bytes")
    return ("memory.current", "memory.peak", "memory.max")  # v2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source-dir", required=True)
    args = ap.parse_args()
    src = os.path.abspath(args.source_dir)
    t0 = time.monotonic()

    # Requirements.
    if os.geteuid() != 0:
        raise Skip("needs root (rootful podman, debootstrap, a memory cgroup per container)")
    needed = (("podman", "podman"), ("buildah", "buildah"), ("runc", "runc"),
              ("/usr/libexec/podman/catatonit", "catatonit"), ("slirp4netns", "slirp4netns"),
              ("debootstrap", "debootstrap"), (f"{PG_BIN}/initdb", "postgresql-15"),
              (f"{PG_BIN}/pgbench", "postgresql-15"), (REDIS_SERVER, "redis-server"),
              ("redis-benchmark", "redis-tools"))
    if not all(shutil.which(tool) for tool, _ in needed):
        log("installing what is missing: bash packaging/deps.sh")
        subprocess.run(["bash", os.path.join(src, "packaging/deps.sh")], check=False)
    for tool, pkg in needed:
        if not shutil.which(tool):
            raise Skip(f"{tool} is missing: install the Debian package {pkg} (packaging/deps.sh)")

    sweep_leftovers(src)
    work = tempfile.mkdtemp(prefix=WORK_PREFIX, dir=WORK_PARENT)
    os.chmod(work, 0o755)  # postgres (its own user) works in a subdirectory
    with open(os.path.join(work, "owner"), "w", encoding="utf-8") as f:
        f.write(f"{os.getpid()} {own_start_time()}\n")
    record_podman_system_state(work)
    podman = Podman(work, src)
    servers = None
    interrupted = []

    def on_signal(signum, _frame):
        interrupted.append(signum)
        raise TestFailure(f"interrupted by signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    pod_yaml = os.path.join(work, "dbpulse-sidecar.test.yaml")
    ok = False
    try:
        # 1. The images.
        version = re.search(r"project\(dbpulse VERSION ([0-9.]+)",
                            open(os.path.join(src, "CMakeLists.txt")).read()).group(1)
        image = f"localhost/dbpulse:{version}"
        archive = os.path.join(work, "images.tar")
        t = time.monotonic()
        build_log = os.path.join(work, "build-image.log")
        with open(build_log, "w") as out:
            # A session of its own: on a timeout or an interruption the whole build (podman,
            # buildah, the compiler) is stopped, not only the script.
            build = subprocess.Popen(
                ["bash", os.path.join(src, "packaging/docker/build-image.sh"), "--cache-store",
                 "--tag", image, "--also", STANDIN_IMAGE,
                 os.path.join(src, "tests/packaging/chat-server-standin.Containerfile"),
                 "--save", archive],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                rc = build.wait(timeout=DEADLINE - time.monotonic())
            except subprocess.TimeoutExpired:
                raise TestFailure("build-image.sh did not finish before the test's deadline:\n"
                                  + open(build_log).read()[-3000:]) from None
            finally:
                if build.poll() is None:
                    stop_group(build)
        build_out = open(build_log).read()
        if rc != 0:
            raise TestFailure(f"build-image.sh exited {rc}:\n{build_out[-5000:]}")
        for line in build_out.splitlines():
            if line.startswith("build-image.sh:"):
                log(line)
        log(f"images built and saved in {time.monotonic() - t:.0f} s")
        podman("load", "-q", "-i", archive, timeout=600)
        os.unlink(archive)
        img = podman.json("image", "inspect", image)[0]
        log(f"{image}: {img['Size'] / 1e6:.0f} MB")
        hc = (img.get("Healthcheck") or {}).get("Test") or []
        check(hc[:1] == ["CMD-SHELL"] and "/health" in " ".join(hc),
              f"the image keeps its HEALTHCHECK (docker format): {hc}")
        r = podman("run", "--rm", "--network", "none", "--no-healthcheck",
                   "--entrypoint", "/usr/bin/dbpulse",
                   image, "--version")
        check(r.stdout.strip().startswith("dbpulse") and version in r.stdout,
              f"dbpulse --version runs in the image: {r.stdout.strip()}")

        # 2. Servers.
        ports = set()
        import yaml  # noqa: F401  (python3-yaml: fail here, not after the servers start)
        with open(os.path.join(src, MANIFEST), encoding="utf-8") as f:
            secret = next(d for d in yaml.safe_load_all(f) if d and d["kind"] == "Secret")
        pg_password = secret["stringData"]["pg-password"]
        servers = Servers(work, ports, pg_password)

        # 3. The pod.
        docs, secret, config_text, dbp_spec, published = test_manifest(src, image, ports, servers)
        with open(pod_yaml, "w", encoding="utf-8") as f:
            yaml.safe_dump_all(docs, f, sort_keys=False)
        log(f"test manifest {pod_yaml}: {MANIFEST} with images {image}, {STANDIN_IMAGE}; "
            f"PostgreSQL and Redis at {HOST_FROM_POD}; ports published on 127.0.0.1: {published}")
        t = time.monotonic()
        r = podman("kube", "play", "--network", POD_NETWORK, pod_yaml, timeout=300,
                   check_rc=False)
        pods = podman.json("pod", "ps", "--format", "json")
        with open(os.path.join(work, "pod-ids"), "w", encoding="utf-8") as f:
            f.write("".join(p["Id"] + "\n" for p in pods))
        if r.returncode != 0:
            raise TestFailure(f"podman kube play exited {r.returncode}:\n{r.stdout[-3000:]}{r.stderr[-3000:]}")
        log("podman kube play: " + " ".join(r.stdout.split()))
        check(len(pods) == 1, f"one pod (the Deployment's {len(pods)} replica(s) podman runs)")
        pod = podman.json("pod", "inspect", pods[0]["Id"])
        pod = pod[0] if isinstance(pod, list) else pod
        ctrs = {c["Name"]: c["Id"] for c in pod["Containers"]}
        dbp = next(i for n, i in ctrs.items() if n.endswith("-dbpulse"))
        chat = next(i for n, i in ctrs.items() if n.endswith("-chat-server"))
        base = f"http://127.0.0.1:{published['dbpulse']['metrics']}"

        # 4. Checks. The manifest's probes, as the kubelet runs them (podman 4.3 turns
        # probes on named ports into health checks on port 0, so the test runs them).
        for probe, want_path, timeout in (("livenessProbe", "/health", 60),
                                          ("readinessProbe", "/health/ready", 120)):
            url, path = probe_url(dbp_spec, probe, published["dbpulse"])
            check(path == want_path, f"{probe} is GET {path}")
            poll(f"{probe} GET {path} answers 200", lambda: http_get(url)[0] == 200, timeout)
            log(f"ok: {probe}: GET {path} answers 200 ({time.monotonic() - t:.1f} s after kube play)")

        def metrics_have():
            code, text = http_get(base + "/metrics")
            want = {"pg_up": {"": 1.0}, "redis_up": {"": 1.0},
                    "dbpulse_process_up": {'{process="companion"}': 1.0,
                                           '{process="dbpulse"}': 1.0}}
            for name, samples in want.items():
                got = metric_values(text, name)
                for labels, value in samples.items():
                    if got.get(labels) != value:
                        return None
            return text
        text = poll("pg_up 1, redis_up 1 and both processes up in /metrics", metrics_have, 90)
        check(True, "/metrics: pg_up 1, redis_up 1")
        check(metric_values(text, "dbpulse_process_up").get('{process="companion"}') == 1,
              "the process collector sees the chat server (process_name = \"node\") "
              "through the shared PID namespace")
        chat_rss = metric_values(text, "dbpulse_process_resident_memory_bytes").get(
            '{process="companion"}', 0)
        check(chat_rss > 1e6, f"... and reads its memory ({chat_rss / 2**20:.1f} MiB RSS)")
        dbp_pid = podman("inspect", "--format", "{{.State.Pid}}", dbp).stdout.strip()
        chat_pid = podman("inspect", "--format", "{{.State.Pid}}", chat).stdout.strip()
        check(os.readlink(f"/proc/{dbp_pid}/ns/pid") == os.readlink(f"/proc/{chat_pid}/ns/pid"),
              "dbpulse and the chat server share one PID namespace")
        ps = podman("exec", dbp, "sh", "-c",
                    "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done").stdout
        check("/app/chat_server.py" in ps, "the chat server's process is visible in dbpulse's container")

        # Config from the ConfigMap, passwords from the Secret.
        mounted = podman("exec", dbp, "cat", "/etc/dbpulse/dbpulse.toml").stdout
        check(mounted == config_text, "/etc/dbpulse/dbpulse.toml is the ConfigMap's dbpulse.toml "
              f"(pg_up 1 through its DSN host {HOST_FROM_POD} shows it is the one in use)")
        pw = podman("exec", dbp, "cat", "/var/run/secrets/dbpulse/pg-password").stdout
        check(pw == secret["pg-password"], "the Secret's pg-password is mounted for dbpulse")
        env = podman("inspect", "--format", "{{json .Config.Env}}", dbp).stdout
        check("change-me" not in env and "DBPULSE_POSTGRES" not in env,
              "no password or DSN in the container's environment")
        r = servers.psql("postgres", "SELECT count(*) FROM pg_stat_activity WHERE usename = 'dbpulse'"
                         " AND client_addr = '127.0.0.1'")
        check(int(r.stdout.strip()) >= 2, "dbpulse holds password-authenticated (scram-sha-256) "
              f"TCP sessions as role dbpulse ({r.stdout.strip()})")
        token = secret["admin-token"]
        code, _ = http_get(base + "/admin/alerts")
        check(code == 401, f"/admin/alerts without the token: {code}")
        code, _ = http_get(base + "/admin/alerts", {"Authorization": f"Bearer {token}"})
        check(code == 200, "/admin/alerts with the Secret's admin-token: 200")
        check(metric_values(text, "dbpulse_leader").get("") == 1, "dbpulse_leader 1")

        # Non-root, read-only root filesystem.
        insp = podman.json("inspect", dbp)[0]
        check(insp["Config"]["User"].split(":")[0] == "10001", f"runs as user {insp['Config']['User']}")
        with open(f"/proc/{dbp_pid}/status", encoding="utf-8") as f:
            uids = re.search(r"^Uid:\s+(.*)$", f.read(), re.M).group(1).split()
        check(set(uids) == {"10001"}, f"the dbpulse process's uids on the host: {uids}")
        check(podman("exec", dbp, "id", "-u").stdout.strip() == "10001", "id -u in the container: 10001")
        check(insp["HostConfig"]["ReadonlyRootfs"] is True, "ReadonlyRootfs")
        r = podman("exec", dbp, "touch", "/usr/share/dbpulse/x", check_rc=False)
        check(r.returncode != 0 and "Read-only file system" in r.stderr,
              "writing to the root filesystem fails: " + r.stderr.strip())
        r = podman("exec", dbp, "sh", "-c", "touch /var/lib/dbpulse/.w && rm /var/lib/dbpulse/.w",
                   check_rc=False)
        check(r.returncode == 0, "the state directory (emptyDir volume) is writable")

        # The image's own HEALTHCHECK command (what Docker runs) inside the pod.
        r = podman("exec", dbp, "sh", "-c", hc[1], check_rc=False)
        check(r.returncode == 0, f"the image's HEALTHCHECK command passes in the pod: {hc[1]}")

        # Memory against the manifest's limit, during a workload.
        limit_text = dbp_spec["resources"]["limits"]["memory"]
        units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
        m = re.fullmatch(r"(\d+)(Ki|Mi|Gi)", limit_text)
        manifest_limit = int(m.group(1)) * units[m.group(2)]
        cg = cgroup_memory_dir(podman, dbp)
        usage_f, peak_f, limit_f = memory_files(cg)
        cg_limit = read_int(os.path.join(cg, limit_f))
        check(cg_limit == manifest_limit,
              f"the container's cgroup memory limit is the manifest's {limit_text} ({cg_limit})")

        def runs(name):
            code, text = http_get(base + "/metrics")
            return metric_values(text, "dbpulse_collector_last_run_timestamp_seconds").get(
                f'{{collector="{name}"}}')
        start_runs = {c: runs(c) for c in ("connections", "redis", "process", "companion")}
        workload = [
            subprocess.Popen([f"{PG_BIN}/pgbench", "-n", "-c", "8", "-j", "2", "-t", "1500",
                              "-h", servers.pg_dir, "-p", str(servers.pg_port), "-U", "postgres",
                              "chat"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                             preexec_fn=servers.as_postgres),
            subprocess.Popen(["redis-benchmark", "-p", str(servers.redis_port), "-h", "127.0.0.1",
                              "-n", "100000", "-c", "20", "-q", "-t", "get,set,incr,lpush"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                             preexec_fn=set_pdeathsig),
        ]
        samples, scrapes = [], 0
        hdr = {"Authorization": f"Bearer {token}"}

        def advanced_twice():
            # Each collector ran at least twice since the workload started (a run during
            # it and one after it), the workload finished, and memory was sampled.
            nonlocal scrapes
            for path in ("/metrics", "/", "/admin/database/metrics", "/admin/database/size"):
                http_get(base + path, hdr)
                scrapes += 1
            samples.append(read_int(os.path.join(cg, usage_f)))
            if any(p.poll() is None for p in workload):
                return False
            code, text = http_get(base + "/metrics")
            last = metric_values(text, "dbpulse_collector_last_run_timestamp_seconds")
            return all(last.get(f'{{collector="{c}"}}', 0) >= (v or 0) + 15 for c, v in start_runs.items())
        t = time.monotonic()
        poll("the workload ends and the collectors run twice more", advanced_twice, 240, interval=0.1)
        rcs = [p.wait() for p in workload]
        check(rcs == [0, 0], f"workload: pgbench and redis-benchmark exit 0 ({time.monotonic() - t:.0f} s, "
                             f"{scrapes} HTTP requests to dbpulse meanwhile)")
        peak = read_int(os.path.join(cg, peak_f))
        log(f"container memory during the workload: {len(samples)} samples, max "
            f"{max(samples) / 2**20:.1f} MiB, cgroup peak {peak / 2**20:.1f} MiB, limit "
            f"{manifest_limit / 2**20:.0f} MiB")
        with open(f"/proc/{dbp_pid}/status", encoding="utf-8") as f:
            status = f.read()
        rss = int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1)) * 1024
        hwm = int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.M).group(1)) * 1024
        log(f"dbpulse process: VmRSS {rss / 2**20:.1f} MiB, VmHWM (peak RSS) {hwm / 2**20:.1f} MiB")
        check(peak < manifest_limit, "the container's cgroup memory peak stays under the manifest's limit")
        # The cgroup is not charged for pages of the binary and libraries that something
        # else read first (podman load); peak RSS counts them all: the stricter bound.
        check(hwm < manifest_limit, "dbpulse's peak RSS stays under the manifest's limit too")
        if os.path.exists(os.path.join(cg, "memory.failcnt")):
            check(read_int(os.path.join(cg, "memory.failcnt")) == 0, "memory.failcnt 0 (never at the limit)")
        st = podman.json("inspect", dbp)[0]["State"]
        check(st["Running"] and not st["OOMKilled"] and st.get("Restarts", 0) == 0
              and str(st["Pid"]) == dbp_pid, "dbpulse still runs, never OOM-killed or restarted")
        check(http_get(base + "/health/ready")[0] == 200, "/health/ready still 200")
        ok = True
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if not ok:
            with contextlib.suppress(Exception):
                for name in ("dbpulse", "chat-server"):
                    for c in podman.json("ps", "-a", "--format", "json"):
                        if any(n.endswith("-" + name) for n in c["Names"]):
                            r = podman("logs", "--tail", "40", c["Id"], check_rc=False)
                            log(f"{name} log (tail):\n{r.stdout}{r.stderr}")
            if servers:
                with contextlib.suppress(OSError):
                    log("postgres log (tail):\n" + open(servers.pg_log).read()[-2000:])
        t = time.monotonic()
        with contextlib.suppress(Exception):
            podman("kube", "down", pod_yaml, timeout=120, check_rc=False)
        if servers:
            servers.stop()
        remove_work(work, src)
        log(f"cleaned up in {time.monotonic() - t:.0f} s")
    log(f"passed in {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Skip as e:
        if in_ci():
            print(f"FAIL: {e} [CI=true: a missing test dependency fails the run]", flush=True)
            sys.exit(1)
        print(f"SKIP: {e}", flush=True)
        sys.exit(77)
    except TestFailure as e:
        print(f"FAIL: {e}", flush=True)
        sys.exit(1)
