"""Helpers shared by the tests/packaging checks (stdlib only)."""
import os
import re
import shutil
import subprocess
import sys
import tempfile


def fail(errors, what):
    for e in errors:
        print(e, file=sys.stderr)
    print(f"{what}: {len(errors)} problems" if errors else f"{what}: ok")
    return 1 if errors else 0


def stage_install(build_dir):
    """`cmake --install` of the build tree into a temporary root with the Debian package's
    prefix (/usr): the same files, at the same paths, as the .deb and the Docker image.
    Nothing is built. Returns the root (a temporary directory the caller removes)."""
    root = tempfile.mkdtemp(prefix="dbpulse-stage-")
    env = dict(os.environ, DESTDIR=root)
    r = subprocess.run(["cmake", "--install", build_dir, "--prefix", "/usr"], env=env,
                       capture_output=True, text=True)
    if r.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"cmake --install {build_dir} failed: {r.stdout}{r.stderr}")
    return root


def rooted(text, root):
    """The config text with every absolute path in a quoted string moved under root, so a
    config written for /etc, /usr/share, /var/lib... is checked against a staged tree."""
    return re.sub(r'"(/[^"]*)"', lambda m: '"' + root + m.group(1) + '"', text)


def check_config(dbpulse, path, extra_env=None):
    """Runs `dbpulse check-config PATH` with no DBPULSE_* variables from the caller's
    environment (plus extra_env). Returns (exit code, output)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBPULSE_")}
    env.update(extra_env or {})
    r = subprocess.run([dbpulse, "check-config", path], env=env, capture_output=True,
                       text=True, timeout=60)
    return r.returncode, (r.stdout + r.stderr).strip()


def parse_toml(text):
    import tomllib  # Python 3.11+
    return tomllib.loads(text)


def listen_port(cfg):
    listen = cfg.get("agent", {}).get("listen", "0.0.0.0:9470")
    return int(listen.rsplit(":", 1)[1])
