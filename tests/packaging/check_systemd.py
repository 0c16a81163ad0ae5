#!/usr/bin/env python3
"""packaging/systemd/dbpulse.service: `systemd-analyze verify` and the directives we rely on.

    check_systemd.py --build-dir BUILD --source-dir SRC

`systemd-analyze verify` needs no running systemd (it loads the unit offline), but it checks
that ExecStart/ExecReload programs exist: it runs with --root on a temporary tree made of the
staged install (cmake --install, prefix /usr: /usr/bin/dbpulse and the unit where the package
puts them), the host's systemd units (targets the unit orders against) and /bin/kill. Any
output (unknown keys, bad values, missing programs) is a failure. Without systemd-analyze:
exit 77 (skipped), a failure with CI=true; the static checks run either way.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys

from packaging_util import fail, stage_install

REQUIRED = {
    "Type": "simple",
    "ExecStart": "/usr/bin/dbpulse run --config /etc/dbpulse/dbpulse.toml",
    "ExecReload": "/bin/kill -HUP $MAINPID",
    "Restart": "on-failure",
    "TimeoutStopSec": "15",
    "User": "dbpulse",
    "StateDirectory": "dbpulse",
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
}


def parse_unit(text):
    sections, current = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        m = re.fullmatch(r"\[(\w+)\]", line)
        if m:
            current = sections.setdefault(m.group(1), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def static_checks(text, postinst, errors):
    units = parse_unit(text)
    service = units.get("Service", {})
    for key, want in REQUIRED.items():
        got = service.get(key, [])
        if want not in got:
            errors.append(f"[Service] {key}={want} missing (found {got})")
    # The process collector reads other processes' /proc entries: keep them visible.
    if service.get("ProtectProc", ["default"])[-1] in ("invisible", "noaccess", "ptraceable"):
        errors.append("ProtectProc hides the chat server's /proc entries from the process collector")
    if service.get("ProcSubset", ["all"])[-1] == "pid":
        errors.append("ProcSubset=pid hides /proc/stat and /proc/meminfo from the process collector")
    if "multi-user.target" not in units.get("Install", {}).get("WantedBy", []):
        errors.append("[Install] WantedBy=multi-user.target missing")
    user = service.get("User", ["?"])[-1]
    at = postinst.find("adduser --system")
    if at < 0 or not re.search(rf"\b{re.escape(user)}\b", postinst[at:at + 300]):
        errors.append(f"packaging/debian/postinst does not create the unit's user {user!r}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--source-dir", required=True)
    args = ap.parse_args()
    errors = []
    unit_path = os.path.join(args.source_dir, "packaging/systemd/dbpulse.service")
    with open(unit_path, encoding="utf-8") as f:
        text = f.read()
    with open(os.path.join(args.source_dir, "packaging/debian/postinst"), encoding="utf-8") as f:
        postinst = f.read()
    static_checks(text, postinst, errors)

    analyze = shutil.which("systemd-analyze")
    if not analyze:
        errors.append("systemd-analyze not found (Debian package 'systemd')")
        if os.environ.get("CI") != "true":
            for e in errors:
                print(e, file=sys.stderr)
            print("systemd unit: systemd-analyze missing, only static checks ran: skipped")
            return 77
        return fail(errors, "systemd unit")

    root = stage_install(args.build_dir)
    try:
        staged_unit = os.path.join(root, "lib/systemd/system/dbpulse.service")
        if not os.path.isfile(staged_unit):
            errors.append("the install does not put dbpulse.service in /lib/systemd/system")
        host_units = "/usr/lib/systemd/system"
        shutil.copytree(host_units, os.path.join(root, "usr/lib/systemd/system"),
                        symlinks=True, dirs_exist_ok=True,
                        ignore=lambda d, names: [n for n in names if n == "dbpulse.service"])
        os.makedirs(os.path.join(root, "bin"), exist_ok=True)
        shutil.copy2(shutil.which("kill") or "/bin/kill", os.path.join(root, "bin/kill"))
        r = subprocess.run([analyze, "verify", f"--root={root}",
                            "/lib/systemd/system/dbpulse.service"],
                           capture_output=True, text=True, timeout=60)
        out = (r.stdout + r.stderr).strip()
        if r.returncode != 0 or out:
            errors.append(f"systemd-analyze verify (exit {r.returncode}): {out}")
        s = subprocess.run([analyze, "security", "--offline=true", f"--root={root}",
                            "/lib/systemd/system/dbpulse.service"],
                           capture_output=True, text=True, timeout=60)
        m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", s.stdout + s.stderr)
        if m:
            print(f"systemd-analyze security: exposure {m.group(1)} (0 = locked down, 10 = none)")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return fail(errors, "systemd unit")


if __name__ == "__main__":
    raise SystemExit(main())
