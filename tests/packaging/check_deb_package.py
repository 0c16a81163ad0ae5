#!/usr/bin/env python3
"""`cpack -G DEB` builds the package we document.

    check_deb_package.py --build-dir BUILD --source-dir SRC

Runs cpack on this build tree's CPackConfig.cmake into a temporary directory (the Ninja
generator has no preinstall step: cpack installs what is built and compiles nothing), then
checks with dpkg-deb: the file list (binary, conffile config, every shipped rule file and
dashboard, the systemd unit), Depends (computed by dpkg-shlibdeps: libpq, plus
adduser for postinst), conffiles, the maintainer scripts (executable; postinst creates the
system user and starts nothing), and that the packaged (stripped) binary runs.
"""
import argparse
import glob
import os
import re
import shutil
import subprocess
import tempfile

from packaging_util import fail


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--source-dir", required=True)
    args = ap.parse_args()
    errors = []
    for tool in ("cpack", "dpkg-deb", "dpkg-shlibdeps"):
        if not shutil.which(tool):
            return fail([f"{tool} not found (packaging/deps.sh installs it)"], "deb package")
    out_dir = tempfile.mkdtemp(prefix="dbpulse-deb-")
    try:
        r = run(["cpack", "-G", "DEB", "-B", out_dir, "--config",
                 os.path.join(args.build_dir, "CPackConfig.cmake")], cwd=args.build_dir)
        debs = glob.glob(os.path.join(out_dir, "*.deb"))
        if r.returncode != 0 or len(debs) != 1:
            return fail([f"cpack -G DEB failed (exit {r.returncode}):\n{r.stdout}{r.stderr}"],
                        "deb package")
        deb = debs[0]
        print(f"package: {os.path.basename(deb)}, {os.path.getsize(deb)} bytes")

        listing = run(["dpkg-deb", "-c", deb]).stdout
        files = set(re.findall(r"\s\.(/\S+)$", listing, re.M))
        want = ["/usr/bin/dbpulse", "/etc/dbpulse/dbpulse.toml",
                "/lib/systemd/system/dbpulse.service",
                "/usr/share/dbpulse/dashboards/provisioning/dashboards.yml",
                "/usr/share/dbpulse/dashboards/provisioning/datasources.yml"]
        want += ["/usr/share/dbpulse/rules/default/" + os.path.basename(p)
                 for p in glob.glob(os.path.join(args.source_dir, "rules/default/*.yml"))]
        want += ["/usr/share/dbpulse/dashboards/" + os.path.basename(p)
                 for p in glob.glob(os.path.join(args.source_dir, "dashboards/*.json"))]
        for w in want:
            if w not in files:
                errors.append(f"dpkg-deb -c: {w} missing from the package")
        for f in files:
            if f.endswith(".py") or "/build" in f:
                errors.append(f"dpkg-deb -c: unexpected file {f}")

        depends = run(["dpkg-deb", "-f", deb, "Depends"]).stdout.strip()
        print(f"Depends: {depends}")
        names = {d.strip().split(" ")[0] for d in depends.split(",") if d.strip()}
        for need in (r"libpq\d+", r"adduser", r"libhiredis[0-9.]+",
                     r"libc6"):
            if not any(re.fullmatch(need, n) for n in names):
                errors.append(f"Depends does not name {need}: {depends}")
        if any(n.endswith("-dev") for n in names):
            errors.append(f"Depends names a -dev package: {depends}")

        ctrl = tempfile.mkdtemp(dir=out_dir)
        run(["dpkg-deb", "-e", deb, ctrl])
        with open(os.path.join(ctrl, "conffiles"), encoding="utf-8") as f:
            if "/etc/dbpulse/dbpulse.toml" not in f.read().split():
                errors.append("conffiles does not list /etc/dbpulse/dbpulse.toml")
        for script in ("postinst", "prerm", "postrm"):
            path = os.path.join(ctrl, script)
            if not os.access(path, os.X_OK):
                errors.append(f"{script} missing or not executable")
                continue
            with open(path, encoding="utf-8") as f:
                body = f.read()
            if run(["sh", "-n", path]).returncode != 0:
                errors.append(f"{script}: sh -n reports a syntax error")
            code = "\n".join(l for l in body.splitlines() if not l.lstrip().startswith("#"))
            if re.search(r"systemctl\s+(start|enable|restart)|invoke-rc\.d|deb-systemd-invoke", code):
                errors.append(f"{script} starts or enables a service")
        with open(os.path.join(ctrl, "postinst"), encoding="utf-8") as f:
            if not re.search(r"adduser --system", f.read()):
                errors.append("postinst does not create a system user (adduser --system)")
        with open(os.path.join(ctrl, "postrm"), encoding="utf-8") as f:
            if not re.search(r"deluser --system", f.read()):
                errors.append("postrm does not remove the system user (deluser --system)")

        tree = tempfile.mkdtemp(dir=out_dir)
        run(["dpkg-deb", "-x", deb, tree])
        v = run([os.path.join(tree, "usr/bin/dbpulse"), "--version"])
        if v.returncode != 0:
            errors.append(f"the packaged /usr/bin/dbpulse --version failed: {v.stdout}{v.stderr}")
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    return fail(errors, "deb package")


if __name__ == "__main__":
    raise SystemExit(main())
