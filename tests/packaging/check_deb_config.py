#!/usr/bin/env python3
"""The Debian package's /etc/dbpulse/dbpulse.toml is a working production config.

    check_deb_config.py --build-dir BUILD --source-dir SRC --dbpulse BUILD/dbpulse

Installs the build tree into a temporary root (cmake --install, prefix /usr: the package's
layout, nothing rebuilt), then checks: the installed config is packaging/debian/dbpulse.toml;
its [rules] files name the installed rule pack and match every shipped rule file; state_dir
is the systemd unit's StateDirectory; and `dbpulse check-config` accepts it (with its
absolute paths moved under the temporary root, so rule files load from the staged tree).
"""
import argparse
import filecmp
import glob
import os
import shutil

from packaging_util import check_config, fail, listen_port, parse_toml, rooted, stage_install


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--dbpulse", required=True)
    args = ap.parse_args()
    errors = []
    root = stage_install(args.build_dir)
    try:
        installed = os.path.join(root, "etc/dbpulse/dbpulse.toml")
        source = os.path.join(args.source_dir, "packaging/debian/dbpulse.toml")
        if not os.path.isfile(installed):
            return fail(["/etc/dbpulse/dbpulse.toml is not installed"], "deb config")
        if not filecmp.cmp(installed, source, shallow=False):
            errors.append("installed /etc/dbpulse/dbpulse.toml differs from packaging/debian/dbpulse.toml")
        with open(installed, encoding="utf-8") as f:
            text = f.read()
        cfg = parse_toml(text)

        shipped = sorted(os.path.basename(p) for p in
                         glob.glob(os.path.join(args.source_dir, "rules/default/*.yml")))
        loaded = set()
        for pattern in cfg.get("rules", {}).get("files", []):
            if not pattern.startswith("/usr/share/dbpulse/rules/"):
                errors.append(f"[rules] files: {pattern!r} is not under /usr/share/dbpulse/rules/")
            matches = glob.glob(root + pattern) if pattern.startswith("/") else []
            if not matches:
                errors.append(f"[rules] files: {pattern!r} matches no installed file")
            loaded.update(os.path.basename(m) for m in matches)
        missing = [s for s in shipped if s not in loaded]
        if missing:
            errors.append(f"shipped rule files not loaded by the config: {missing}")

        unit = os.path.join(root, "lib/systemd/system/dbpulse.service")
        state_dir = cfg.get("agent", {}).get("state_dir", "")
        with open(unit, encoding="utf-8") as f:
            unit_text = f.read()
        if "StateDirectory=dbpulse" not in unit_text or state_dir != "/var/lib/dbpulse":
            errors.append(f"state_dir {state_dir!r} is not the unit's StateDirectory=dbpulse "
                          "(/var/lib/dbpulse)")
        if listen_port(cfg) != 9470:
            errors.append(f"[agent] listen port {listen_port(cfg)} is not 9470")
        if "/etc/dbpulse/dbpulse.toml" not in unit_text:
            errors.append("the unit's ExecStart does not name /etc/dbpulse/dbpulse.toml")

        checked = os.path.join(root, "etc/dbpulse/dbpulse.rooted.toml")
        with open(checked, "w", encoding="utf-8") as f:
            f.write(rooted(text, root))
        code, out = check_config(args.dbpulse, checked)
        if code != 0:
            errors.append(f"dbpulse check-config rejected the config (exit {code}):\n{out}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return fail(errors, "deb config")


if __name__ == "__main__":
    raise SystemExit(main())
