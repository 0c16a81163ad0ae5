#!/usr/bin/env python3
"""packaging/docker/Dockerfile, checked without a Docker engine.

    check_dockerfile.py --source-dir SRC --build-dir BUILD --dbpulse BUILD/dbpulse

* Stages: a build stage and a runtime stage, both FROM debian:12.
* Every COPY source of the build context exists; copying exactly those paths into a
  scratch directory gives a tree that CMake configures with the build stage's flags (so
  the COPY list is complete). COPY --from names an earlier stage and a path it installs to.
* The build stage installs packaging/deps.sh's library packages (minus test-only ones).
* The runtime stage installs exactly the Debian packages that own the libraries the
  binary links (DT_NEEDED of BUILD/dbpulse, resolved with ldd and dpkg -S; libc6 is in
  the base image), no -dev package, and nothing else but ca-certificates and curl.
* It runs as a non-root numeric user, EXPOSEs the config's listen port, has a HEALTHCHECK
  on /health at that port, and its ENTRYPOINT is `dbpulse run --config` on a config file
  that the install puts in place (checked on a staged cmake --install).
* What `COPY --from=build /out/ /` lays over the runtime image: the staged install with the
  build stage's `rm -rf /out/...` applied must hold nothing at the top level that is a
  symlink in debian:12 (merged /usr: /lib -> usr/lib, /bin, /sbin, /lib64). A directory
  there, even an empty one, replaces the symlink: the dynamic loader disappears and no
  program in the image can execute.

Self-test: --replace REGEX TEXT edits the Dockerfile first (once, or it fails), and
--expect-error REGEX then succeeds only if a problem matching each REGEX is reported.
"""
import argparse
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

from packaging_util import fail, listen_port, parse_toml, stage_install

RUNTIME_EXTRAS = {"ca-certificates", "curl"}
BASE_IMAGE = {"libc6"}  # Essential in debian:12
TEST_ONLY = {"libgtest-dev", "libgmock-dev", "libbenchmark-dev", "libpqxx-dev"}  # libpqxx: harness only
# Top-level symlinks of debian:12 (merged /usr) that a COPY of a directory would replace.
BASE_SYMLINKS = {"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib", "lib32": "usr/lib32",
                 "lib64": "usr/lib64", "libx32": "usr/libx32"}


def instructions(text):
    """(INSTRUCTION, arguments) pairs with continuation lines joined, comments dropped."""
    out, buf = [], ""
    for line in text.splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        buf += line
        word, _, rest = buf.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    return out


def stages(instrs):
    result = []
    for ins, args in instrs:
        if ins == "FROM":
            m = re.fullmatch(r"(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?", args, re.I)
            result.append({"image": m.group(1), "name": m.group(2), "instrs": []})
        elif result:
            result[-1]["instrs"].append((ins, args))
    return result


def apt_packages(run_args):
    pkgs = []
    for m in re.finditer(r"apt-get install((?:\s+[^&;|]+)+)", run_args):
        pkgs += [w for w in m.group(1).split() if not w.startswith("-")]
    return pkgs


def deps_sh_libraries(path):
    """The packages of the '# libraries' block of packaging/deps.sh."""
    pkgs, inside = [], False
    with open(path, encoding="utf-8") as f:
        for line in f:
            s = line.strip()
            if s.startswith("#"):
                inside = s.startswith("# libraries")
                continue
            if inside:
                pkgs += s.split()
    return pkgs


def linked_packages(binary):
    needed = re.findall(r"\(NEEDED\).*\[(.+)\]",
                        subprocess.run(["readelf", "-d", binary], capture_output=True,
                                       text=True).stdout)
    ldd = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    paths = dict(re.findall(r"^\s*(\S+) => (\S+)", ldd, re.M))
    owners, problems = {}, []
    for lib in needed:
        path = paths.get(lib)
        if not path:
            problems.append(f"ldd does not resolve {lib}")
            continue
        candidates = {path, os.path.realpath(path)}
        candidates |= {"/usr" + c for c in list(candidates) if not c.startswith("/usr/")}
        owner = None
        for c in candidates:
            r = subprocess.run(["dpkg", "-S", c], capture_output=True, text=True)
            if r.returncode == 0:
                owner = r.stdout.split(":")[0].strip()
                break
        if owner:
            owners[lib] = owner
        else:
            problems.append(f"no Debian package owns {path} ({lib})")
    return owners, problems


def out_tree_problems(build_runs, staged_root):
    """What COPY --from=build /out/ / would put over the runtime image's top level: the
    staged install (same prefix as the build stage) minus the build stage's rm -rf."""
    problems = []
    for m in re.finditer(r"\brm\s+(-[rRf]+\s+)+((?:/out\S*\s*)+)", build_runs):
        for target in m.group(2).split():
            rel = os.path.relpath(os.path.normpath(target), "/out")
            if rel.startswith(".."):
                continue
            path = staged_root if rel == "." else os.path.join(staged_root, rel)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            elif os.path.lexists(path):
                os.unlink(path)
    for name in sorted(os.listdir(staged_root)):
        if name in BASE_SYMLINKS:
            what = "an empty directory" if not os.listdir(os.path.join(staged_root, name)) \
                else "a directory"
            problems.append(
                f"COPY --from=build /out/ /: the build stage leaves /out/{name} ({what}, after "
                f"its rm -rf), which replaces the runtime image's /{name} -> "
                f"{BASE_SYMLINKS[name]} symlink: the dynamic loader is gone and nothing in the "
                f"image can execute; remove /out/{name} entirely")
    return problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--dbpulse", required=True)
    ap.add_argument("--dockerfile", default=None)
    ap.add_argument("--replace", nargs=2, metavar=("REGEX", "TEXT"), action="append",
                    default=[], help="self-test: edit the Dockerfile first")
    ap.add_argument("--expect-error", action="append", default=[], metavar="REGEX",
                    help="self-test: succeed only if a problem matching each REGEX is reported")
    args = ap.parse_args()
    errors = check(args)
    if args.expect_error:
        missed = [r for r in args.expect_error if not any(re.search(r, e, re.S) for e in errors)]
        for r in missed:
            print(f"check_dockerfile: expected a problem matching {r!r}, none reported",
                  file=sys.stderr)
        for e in errors:
            print(f"(reported) {e}")
        return 1 if missed else 0
    return fail(errors, "Dockerfile")


def check(args):
    """The problems found (a list of messages)."""
    src = args.source_dir
    path = args.dockerfile or os.path.join(src, "packaging/docker/Dockerfile")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for regex, repl in args.replace:
        text, n = re.subn(regex, repl, text)
        if n != 1:
            return [f"--replace {regex!r}: {n} matches in {path}, expected 1"]
    st = stages(instructions(text))
    errors = []
    if len(st) < 2:
        return [f"{path}: expected a build and a runtime stage, found {len(st)}"]
    for s in st:
        if s["image"] not in ("debian:12", "debian:bookworm", "debian:12-slim", "debian:bookworm-slim"):
            errors.append(f"FROM {s['image']}: expected debian:12")
    build, runtime = st[0], st[-1]
    names = {s["name"] for s in st if s["name"]}

    # COPY sources and the scratch build context.
    ctx = tempfile.mkdtemp(prefix="dbpulse-docker-ctx-")
    try:
        workdir = "/"
        for ins, a in build["instrs"]:
            if ins == "WORKDIR":
                workdir = a
            if ins == "COPY" and "--from" not in a:
                parts = shlex.split(a)
                *sources, dest = [p for p in parts if not p.startswith("--")]
                for s_ in sources:
                    full = os.path.join(src, s_)
                    if not glob.glob(full):
                        errors.append(f"COPY {s_}: no such file in the build context")
                        continue
                    target = os.path.join(ctx, os.path.relpath(os.path.join(workdir, dest), "/"))
                    if os.path.isdir(full):
                        shutil.copytree(full, target if dest.endswith("/") else target,
                                        dirs_exist_ok=True)
                    else:
                        os.makedirs(target if dest.endswith("/") else os.path.dirname(target),
                                    exist_ok=True)
                        shutil.copy2(full, target if not dest.endswith("/") else
                                     os.path.join(target, os.path.basename(full)))
        build_runs = " ".join(a for i, a in build["instrs"] if i == "RUN")
        m = re.search(r"cmake -S \. -B (\S+)([^&;|]*)", build_runs)
        if not m:
            errors.append("build stage: no `cmake -S . -B DIR ...` configure step")
        else:
            flags = shlex.split(m.group(2))
            r = subprocess.run(["cmake", "-S", os.path.join(ctx, os.path.relpath(workdir, "/")),
                                "-B", os.path.join(ctx, "_configure")] + flags,
                               capture_output=True, text=True, timeout=300)
            if r.returncode != 0:
                errors.append("CMake does not configure the files the build stage COPYs:\n" +
                              (r.stdout + r.stderr)[-3000:])
        if "cmake --install" not in build_runs or "DESTDIR=/out" not in build_runs:
            errors.append("build stage: expected `DESTDIR=/out cmake --install`")
    finally:
        shutil.rmtree(ctx, ignore_errors=True)

    for ins, a in runtime["instrs"]:
        if ins == "COPY" and "--from" in a:
            m = re.search(r"--from=(\S+)\s+(\S+)", a)
            if not m or m.group(1) not in names:
                errors.append(f"COPY {a}: --from names no earlier stage")
            elif not m.group(2).startswith("/out"):
                errors.append(f"COPY {a}: the build stage installs into /out")

    # Packages.
    build_pkgs = set(apt_packages(" ".join(a for i, a in build["instrs"] if i == "RUN")))
    wanted_dev = set(deps_sh_libraries(os.path.join(src, "packaging/deps.sh"))) - TEST_ONLY
    for p in sorted(wanted_dev - build_pkgs):
        errors.append(f"build stage does not install {p} (packaging/deps.sh library)")
    runtime_pkgs = set(apt_packages(" ".join(a for i, a in runtime["instrs"] if i == "RUN")))
    owners, problems = linked_packages(args.dbpulse)
    errors += problems
    linked = set(owners.values())
    for lib, pkg in sorted(owners.items()):
        if pkg not in runtime_pkgs and pkg not in BASE_IMAGE:
            errors.append(f"runtime stage does not install {pkg} (the binary links {lib})")
    for pkg in sorted(runtime_pkgs - linked - RUNTIME_EXTRAS):
        errors.append(f"runtime stage installs {pkg}, which the binary does not link")
    for pkg in runtime_pkgs:
        if pkg.endswith("-dev") or pkg in ("build-essential", "cmake", "ninja-build"):
            errors.append(f"runtime stage installs build tool/-dev package {pkg}")
    print(f"runtime packages: {sorted(runtime_pkgs)}")

    # User, port, health check, entrypoint.
    rt = dict()
    for ins, a in runtime["instrs"]:
        rt.setdefault(ins, []).append(a)
    user = (rt.get("USER") or ["root"])[-1].split(":")[0]
    if user in ("root", "0") or not user.isdigit():
        errors.append(f"USER {user}: expected a numeric non-root user")
    entry = (rt.get("ENTRYPOINT") or ["[]"])[-1]
    try:
        entry = json.loads(entry)
    except ValueError:
        errors.append(f"ENTRYPOINT {entry}: expected the exec (JSON) form")
        entry = []
    if entry[:3] != ["/usr/bin/dbpulse", "run", "--config"] or len(entry) != 4:
        errors.append(f"ENTRYPOINT {entry}: expected /usr/bin/dbpulse run --config FILE")
        return errors
    root = stage_install(args.build_dir)
    try:
        config = root + entry[3]
        if not os.path.isfile(config):
            errors.append(f"ENTRYPOINT config {entry[3]} is not installed by cmake --install")
            return errors
        with open(config, encoding="utf-8") as f:
            port = listen_port(parse_toml(f.read()))
        if not os.access(root + entry[0], os.X_OK):
            errors.append(f"{entry[0]} is not installed by cmake --install")
        if any(ins == "COPY" and re.search(r"--from=\S+\s+/out/?\s+/\s*$", a)
               for ins, a in runtime["instrs"]):
            errors += out_tree_problems(" ".join(a for i, a in build["instrs"] if i == "RUN"),
                                        root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    exposed = " ".join(rt.get("EXPOSE", [])).split()
    if str(port) not in [e.split("/")[0] for e in exposed]:
        errors.append(f"EXPOSE {exposed}: the config listens on {port}")
    hc = " ".join(rt.get("HEALTHCHECK", []))
    if not re.search(rf"CMD .*http://(127\.0\.0\.1|localhost):{port}/health\b(?!/)", hc):
        errors.append(f"HEALTHCHECK {hc!r}: expected a GET of http://127.0.0.1:{port}/health")
    elif "curl" in hc and "curl" not in runtime_pkgs:
        errors.append("HEALTHCHECK uses curl, which the runtime stage does not install")
    return errors


if __name__ == "__main__":
    raise SystemExit(main())
