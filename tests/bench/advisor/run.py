#!/usr/bin/env python3
"""Index advisor benchmark: schemas the advisor was not tuned on, with planted answers.

    python3 tests/bench/advisor/run.py [--dbpulse build/dbpulse] [--runs 3] [--seconds 20]
                                       [--check] [--keep]

For each schema in cases.py it starts from a throwaway PostgreSQL 15 (initdb on loopback,
pg_stat_statements preloaded with track = all, hypopg installed), loads the schema, runs a
pgbench workload of the planted statements and the traps (extended protocol, so the
statements are recorded with $n parameters), then runs `dbpulse suggest-indexes --format
json` RUNS times in a row. It prints, per schema, each planted create (was it suggested,
hypopg's estimate) with its real effect: the timing statement's execution time without and
with the index built for real (EXPLAIN ANALYZE, best of three, the index dropped again),
the traps, the expected drops, and at the end precision and recall over the planted creates
and whether every run gave the same answer. With --check it exits 1 unless precision is 1.0,
recall is at least 0.9, every expected drop is found and the runs agree.
"""

import argparse
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent.parent
PG_BIN = Path("/usr/lib/postgresql/15/bin")
sys.path.insert(0, str(HERE))
from cases import SCHEMAS  # noqa: E402


def log(msg):
    print(f"advisor-bench: {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    """A throwaway PostgreSQL 15 cluster on loopback, owned by the postgres OS user when
    running as root."""

    def __init__(self, work: Path):
        self.work = work
        self.port = free_port()
        self.data = work / "data"
        self.as_root = os.geteuid() == 0
        if self.as_root:
            pw = pwd.getpwnam("postgres")
            os.chown(work, pw.pw_uid, pw.pw_gid)

    def _run(self, args, **kw):
        if self.as_root:
            args = ["runuser", "-u", "postgres", "--"] + args
        return subprocess.run(args, check=True, **kw)

    def start(self):
        self._run([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                   "--locale=C.UTF-8", "-E", "UTF8"], stdout=subprocess.DEVNULL)
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write("\n".join([
                "listen_addresses = '127.0.0.1'", f"port = {self.port}",
                f"unix_socket_directories = '{self.work}'",
                "shared_preload_libraries = 'pg_stat_statements'",
                "pg_stat_statements.track = all", "pg_stat_statements.max = 5000",
                "shared_buffers = 256MB", "fsync = off", "synchronous_commit = off",
                "full_page_writes = off", "max_wal_size = 2GB", "jit = off",
                # The bench makes the statistics itself (VACUUM ANALYZE after the load): an
                # autovacuum during the load holds back the horizon VACUUM marks pages
                # all-visible by, and what an index-only scan costs depends on those marks.
                "autovacuum = off", ""]))
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-l", str(self.work / "log"),
                   "start"], stdout=subprocess.DEVNULL)

    def stop(self):
        try:
            self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except subprocess.CalledProcessError:
            pass

    def psql(self, db, sql, *, on_error_stop=True, capture=False):
        args = [str(PG_BIN / "psql"), "-X", "-q", "-h", "127.0.0.1", "-p", str(self.port), "-U",
                "postgres", "-d", db, "-v", f"ON_ERROR_STOP={1 if on_error_stop else 0}"]
        if capture:
            args += ["-At"]
        r = subprocess.run(args + ["-c", sql], check=on_error_stop, capture_output=True, text=True)
        return r.stdout.strip()

    def psql_file(self, db, path):
        subprocess.run([str(PG_BIN / "psql"), "-X", "-q", "-h", "127.0.0.1", "-p", str(self.port),
                        "-U", "postgres", "-d", db, "-v", "ON_ERROR_STOP=1", "-f", str(path)],
                       check=True, stdout=subprocess.DEVNULL)

    def pgbench(self, db, scripts, seconds, work):
        args = [str(PG_BIN / "pgbench"), "-n", "-h", "127.0.0.1", "-p", str(self.port), "-U",
                "postgres", "-M", "extended", "-c", "2", "-j", "2", "-T", str(seconds)]
        for i, script in enumerate(scripts):
            path = work / f"script-{db}-{i}.sql"
            path.write_text(script)
            args += ["-f", str(path)]
        r = subprocess.run(args + [db], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"pgbench on {db} failed:\n{r.stdout}\n{r.stderr}")
        m = re.search(r"number of transactions actually processed: (\d+)", r.stdout)
        return int(m.group(1)) if m else 0


def normalise(definition: str) -> str:
    """An index definition without case, spaces, quotes or parentheses."""
    return re.sub(r"[\s\"()]", "", definition.lower())


def parse_create(statement: str):
    """(table, column list) of CREATE INDEX ... ON [schema.]table [USING m] (list) [INCLUDE (l)]."""
    m = re.search(r"\bON\s+(?:ONLY\s+)?([\w\".]+)\s*(?:USING\s+\w+\s*)?\(", statement, re.I)
    if not m:
        return None, None
    table = m.group(1).replace('"', "").split(".")[-1]
    depth, start = 0, m.end() - 1
    for i in range(start, len(statement)):
        if statement[i] == "(":
            depth += 1
        elif statement[i] == ")":
            depth -= 1
            if depth == 0:
                # A covering index's INCLUDE list is part of the answer: "a) INCLUDE (b".
                include = re.match(r"\s*INCLUDE\s*\(([^)]*)\)", statement[i + 1:], re.I)
                columns = statement[start + 1:i]
                return table, columns + (f") INCLUDE ({include.group(1)}" if include else "")
    return table, None


def timed(pg, db, sql):
    """The best of three execution times (ms) of EXPLAIN ANALYZE."""
    best = None
    for _ in range(3):
        out = pg.psql(db, f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", capture=True)
        ms = json.loads(out)[0]["Execution Time"]
        best = ms if best is None else min(best, ms)
    return best


def real_effect(pg, db, case):
    """The timing statement's time without and with the planted index, built for real."""
    name = "bench_" + re.sub(r"\W", "_", case["id"])
    others = [f"{name}_with{i}" for i in range(len(case.get("with", [])))]
    for other, definition in zip(others, case.get("with", [])):
        pg.psql(db, f"CREATE INDEX {other} ON {definition}")
    pg.psql(db, "ANALYZE")
    before = timed(pg, db, case["timing"])
    pg.psql(db, f"CREATE INDEX {name} ON {case['table']} ({case['accept'][0]})")
    pg.psql(db, f"ANALYZE {case['table']}")
    after = timed(pg, db, case["timing"])
    for index in [name] + others:
        pg.psql(db, f"DROP INDEX {index}")
    return before, after


def suggest(dbpulse, work, pg, db):
    config = work / f"{db}.toml"
    config.write_text("\n".join([
        "[postgres]", f'dsn = "host=127.0.0.1 port={pg.port} dbname={db} user=postgres"',
        'statement_timeout = "30s"', "[advisor]", 'hypopg = "require"',
        "[collectors.indexes]", 'threshold = "1s"', ""]))
    r = subprocess.run([dbpulse, "suggest-indexes", "--config", str(config), "--format", "json"],
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"suggest-indexes on {db} failed ({r.returncode}):\n{r.stderr}")
    return json.loads(r.stdout)


def answer_key(answer):
    creates = sorted(normalise(c["statement"]) for c in answer.get("create", []))
    drops = sorted(d.get("index", "") for d in answer.get("drop", []))
    return creates, drops


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dbpulse", default=str(ROOT / "build" / "dbpulse"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=20, help="pgbench duration per schema")
    ap.add_argument("--check", action="store_true", help="exit 1 below the issue's bar")
    ap.add_argument("--strict", action="store_true",
                    help="exit 1 unless every planted create but --allow-miss ones is found, "
                         "no suggestion is wrong, every drop is found and the runs agree")
    ap.add_argument("--allow-miss", action="append", default=[], metavar="CASE",
                    help="a create case --strict tolerates missing (repeatable)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir and the server")
    ap.add_argument("--schema", action="append", help="only these schemas (repeatable)")
    args = ap.parse_args()
    if not os.access(args.dbpulse, os.X_OK):
        sys.exit(f"advisor-bench: {args.dbpulse} is not built (make build)")
    for tool in ("initdb", "pg_ctl", "psql", "pgbench"):
        if not (PG_BIN / tool).exists():
            sys.exit(f"advisor-bench: {PG_BIN / tool} missing (bash packaging/deps.sh)")

    work = Path(tempfile.mkdtemp(prefix="dbpulse-advisor-bench-"))
    os.chmod(work, 0o755)
    pg = Postgres(work)
    totals = {"right": 0, "wrong": 0, "planted": 0, "drops_expected": 0, "drops_found": 0}
    stable_all = True
    rows = []
    try:
        pg.start()
        log(f"PostgreSQL 15 on port {pg.port} in {work}")
        for schema in SCHEMAS:
            db = schema["name"]
            if args.schema and db not in args.schema:
                continue
            t0 = time.time()
            pg.psql("postgres", f"CREATE DATABASE {db}")
            pg.psql(db, "CREATE EXTENSION pg_stat_statements; CREATE EXTENSION hypopg")
            pg.psql_file(db, HERE / schema["sql"])
            for sql in schema["after_load"]:
                pg.psql(db, sql, on_error_stop=False)
            # With synchronous_commit = off the load's commits may not be flushed yet, and
            # VACUUM marks no page all-visible whose rows' commit is not on disk (as with hint
            # bits): flush first, or the covering case's index-only scans depend on timing.
            pg.psql(db, "CHECKPOINT")
            pg.psql(db, "VACUUM ANALYZE")
            # The load's own statements would fill the top 20 (track = all), and its rows
            # would count as the tables' write rate: a production database's statistics are
            # made by its workload, so both start after the load.
            pg.psql(db, "SELECT pg_stat_reset()")
            pg.psql(db, "SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database WHERE datname = current_database()), 0)")
            log(f"{db}: loaded in {time.time() - t0:.0f} s")
            scripts = [c["script"] for c in schema["creates"] + schema["traps"] if c.get("script")]
            txns = pg.pgbench(db, scripts, args.seconds, work)
            log(f"{db}: pgbench {args.seconds} s, {txns} transactions")

            answers = []
            for run in range(args.runs):
                t0 = time.time()
                answers.append(suggest(args.dbpulse, work, pg, db))
                log(f"{db}: suggest-indexes run {run + 1} in {time.time() - t0:.1f} s: "
                    f"{len(answers[-1].get('create', []))} create, {len(answers[-1].get('drop', []))} drop")
            stable = all(answer_key(a) == answer_key(answers[0]) for a in answers)
            stable_all &= stable
            answer = answers[0]

            suggested = []
            for c in answer.get("create", []):
                table, cols = parse_create(c["statement"])
                suggested.append({"table": table, "cols": normalise(cols or ""), "raw": c})
            matched = set()
            for case in schema["creates"]:
                accepted = {normalise(a) for a in case["accept"]}
                hit = next((s for s in suggested
                            if s["table"] == case["table"] and s["cols"] in accepted), None)
                if hit:
                    matched.add(id(hit))
                before, after = real_effect(pg, db, case)
                est = hit["raw"].get("estimated_improvement") if hit else None
                rows.append((db, case["id"], case["kind"], f"{case['table']} ({case['accept'][0]})",
                             "yes" if hit else "no",
                             f"{est * 100:.0f} %" if isinstance(est, (int, float)) else "",
                             f"{before:.1f} → {after:.2f} ms"))
                totals["planted"] += 1
                totals["right"] += 1 if hit else 0
                if not hit and case["id"] not in args.allow_miss:
                    totals.setdefault("missed", []).append(case["id"])
            neutral = [s for s in suggested if id(s) not in matched and any(
                s["table"] == a["table"] and s["cols"] in {normalise(x) for x in a["accept"]}
                for a in schema["acceptable"])]
            wrong = [s for s in suggested if id(s) not in matched and s not in neutral]
            totals["wrong"] += len(wrong)
            for s in wrong:
                rows.append((db, "(not planted)", "wrong suggestion", s["raw"]["statement"], "", "", ""))
            for trap in schema["traps"]:
                rows.append((db, trap["id"], "trap: " + trap["kind"], "no index", "", "", ""))
            found = {(d.get("index", "").split(".")[-1], d.get("reason")) for d in answer.get("drop", [])}
            for d in schema["drops"]:
                names = d["index"] if isinstance(d["index"], list) else [d["index"]]
                ok = any((n, d["reason"]) in found for n in names)
                totals["drops_expected"] += 1
                totals["drops_found"] += 1 if ok else 0
                rows.append((db, names[0], "drop: " + d["reason"], "DROP INDEX", "yes" if ok else "no",
                             "", ""))
            for d in answer.get("drop", []):
                log(f"{db}: drop {d.get('index')} ({d.get('reason')})")
            for note in answer.get("notes", []):
                log(f"{db}: note: {note}")
            log(f"{db}: {args.runs} runs {'agree' if stable else 'DIFFER'}")
    finally:
        if args.keep:
            log(f"kept {work} (server on port {pg.port})")
        else:
            pg.stop()
            shutil.rmtree(work, ignore_errors=True)

    print("| schema | case | kind | right answer | suggested | hypopg estimate | real (before → after) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    suggested_total = totals["right"] + totals["wrong"]
    precision = totals["right"] / suggested_total if suggested_total else 1.0
    recall = totals["right"] / totals["planted"] if totals["planted"] else 1.0
    print(f"\nprecision {precision:.2f} ({totals['right']} right of {suggested_total} suggested), "
          f"recall {recall:.2f} ({totals['right']} of {totals['planted']} planted creates), "
          f"drops {totals['drops_found']}/{totals['drops_expected']}, "
          f"{args.runs} consecutive runs {'agree' if stable_all else 'DIFFER'} (track = all)")
    drops_ok = totals["drops_found"] == totals["drops_expected"]
    if args.strict:
        missed = totals.get("missed", [])
        if missed:
            print(f"strict: missed {', '.join(missed)}")
        sys.exit(0 if not missed and totals["wrong"] == 0 and drops_ok and stable_all else 1)
    if args.check:
        ok = precision == 1.0 and recall >= 0.9 and stable_all and drops_ok
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
