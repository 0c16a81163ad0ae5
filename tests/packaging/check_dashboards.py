#!/usr/bin/env python3
"""Checks dbpulse's Grafana dashboards.

    check_dashboards.py --source-dir DIR [--promtool PATH] DASHBOARD.json...

For every dashboard: the JSON parses; it has a `datasource` variable (type datasource,
prometheus) and an `instance` variable; every panel and query uses the `${datasource}`
variable; panel ids are unique and panels fit the 24-column grid; every query filters on
$instance. Every PromQL expression (panel targets and label_values() selectors of the
variables), with Grafana's variables replaced by sample values, must pass
`promtool check rules` as a recording rule; every metric name it selects must be one
dbpulse exports.

The exported names are derived from the sources, not from a list kept here: every string
literal in agent/, collectors/, exporters/ and rules/ (*.cpp, *.h) that is a metric name in
dbpulse's namespaces (dbpulse_*, and the peers' names it reuses: pg_*, pgbouncer_*,
redis_*; ALERTS, ALERTS_FOR_STATE), plus the `record:` names of the shipped rule pack.

promtool comes from Debian's `prometheus` package. Missing: exit 77 (CTest: skipped),
except with CI=true, where it is a failure.
"""
import argparse
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

EXPORTED_LITERAL = re.compile(r'"((?:dbpulse|pg|pgbouncer|redis)_[a-zA-Z0-9_:]+|ALERTS|ALERTS_FOR_STATE)"')
RECORD_LINE = re.compile(r'^\s*-?\s*record:\s*["\']?([a-zA-Z_:][a-zA-Z0-9_:]*)', re.M)

AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
                "count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio"}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
            "group_left", "group_right", "inf", "nan", "atan2", "start", "end"}
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}

# Sample values for Grafana's variables (built-ins and the dashboards' own).
BUILTIN_VALUES = {
    "__rate_interval": "1m", "__interval": "30s", "__range": "6h",
    "__interval_ms": "30000", "__range_s": "21600", "__range_ms": "21600000",
}
VARIABLE = re.compile(r"\$\{(\w+)(?::[\w]+)?\}|\$(\w+)|\[\[(\w+)\]\]")

TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<number>(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?:ms|[smhdwy])*)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^<>=(){}\[\],@])
""", re.X)


def known_metric_names(source_dir):
    names = set()
    for folder in ("agent", "collectors", "exporters", "rules"):
        for path in glob.glob(os.path.join(source_dir, folder, "**", "*.[ch]*"), recursive=True):
            if not path.endswith((".cpp", ".h", ".hpp", ".cc")):
                continue
            with open(path, encoding="utf-8", errors="replace") as f:
                names.update(EXPORTED_LITERAL.findall(f.read()))
    for path in glob.glob(os.path.join(source_dir, "rules", "default", "*.yml")):
        with open(path, encoding="utf-8") as f:
            names.update(RECORD_LINE.findall(f.read()))
    return names


def tokenize(expr):
    pos, out = 0, []
    while pos < len(expr):
        m = TOKEN.match(expr, pos)
        if not m:
            raise ValueError(f"cannot tokenize at column {pos + 1}: {expr[pos:pos + 20]!r}")
        pos = m.end()
        if m.lastgroup != "ws":
            out.append((m.lastgroup, m.group()))
    return out


def metric_names(expr):
    """Metric names selected by a PromQL expression (names outside {...}, [...] and
    grouping label lists that are not functions, aggregations or keywords), and the
    problems that make a name uncheckable (__name__ matchers)."""
    tokens = tokenize(expr)
    names, problems = [], []
    i, brace, bracket = 0, 0, 0
    while i < len(tokens):
        kind, text = tokens[i]
        nxt = tokens[i + 1][1] if i + 1 < len(tokens) else None
        if text == "{":
            brace += 1
        elif text == "}":
            brace -= 1
        elif text == "[":
            bracket += 1
        elif text == "]":
            bracket -= 1
        elif kind == "ident" and brace == 0 and bracket == 0:
            if text in GROUPING and nxt == "(":
                depth = 0
                while i < len(tokens):  # skip the label list
                    if tokens[i][1] == "(":
                        depth += 1
                    elif tokens[i][1] == ")":
                        depth -= 1
                        if depth == 0:
                            break
                    i += 1
            elif text in AGGREGATIONS or text.lower() in KEYWORDS or nxt == "(":
                pass  # aggregation, keyword or function call
            else:
                names.append(text)
        elif kind == "ident" and brace > 0 and text == "__name__":
            problems.append("selects by __name__ (cannot check the metric name)")
        i += 1
    return names, problems


def substitute(expr):
    def value(m):
        name = m.group(1) or m.group(2) or m.group(3)
        return BUILTIN_VALUES.get(name, f"sample-{name}")
    return VARIABLE.sub(value, expr)


def variable_selector(query):
    """The PromQL part of a Grafana Prometheus variable query."""
    m = re.fullmatch(r"\s*label_values\((.*),\s*([a-zA-Z_]\w*)\s*\)\s*", query, re.S)
    if m:
        return m.group(1)
    m = re.fullmatch(r"\s*label_values\(\s*([a-zA-Z_]\w*)\s*\)\s*", query)
    if m:
        return None  # label_values(label): no metric
    m = re.fullmatch(r"\s*query_result\((.*)\)\s*", query, re.S)
    if m:
        return m.group(1)
    m = re.fullmatch(r"\s*metrics\((.*)\)\s*", query, re.S)
    if m:
        return None
    return query


def walk_panels(panels):
    for p in panels:
        yield p
        yield from walk_panels(p.get("panels", []))


def check_dashboard(path, known, exprs, errors):
    where = os.path.basename(path)
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
    except (OSError, ValueError) as e:
        errors.append(f"{where}: does not parse as JSON: {e}")
        return None
    for key in ("uid", "title", "panels", "templating", "schemaVersion"):
        if key not in d:
            errors.append(f"{where}: missing top-level key '{key}'")
    if d.get("schemaVersion", 0) < 36:
        errors.append(f"{where}: schemaVersion {d.get('schemaVersion')} is older than Grafana 9")
    variables = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        errors.append(f"{where}: needs a 'datasource' variable of type datasource (prometheus)")
    if "instance" not in variables:
        errors.append(f"{where}: needs an 'instance' variable")

    def add_expr(label, expr):
        expr = expr.strip()
        if not expr:
            errors.append(f"{where}: {label}: empty query")
            return
        substituted = substitute(expr)
        if "$" in substituted:
            errors.append(f"{where}: {label}: unreplaced variable in {substituted!r}")
        try:
            names, problems = metric_names(substituted)
        except ValueError as e:
            errors.append(f"{where}: {label}: {e}")
            return
        for p in problems:
            errors.append(f"{where}: {label}: {p}")
        if not names:
            errors.append(f"{where}: {label}: selects no metric: {expr!r}")
        for n in names:
            if n not in known:
                errors.append(f"{where}: {label}: unknown metric name '{n}' "
                              "(not exported by dbpulse: no such string literal in agent/, "
                              "collectors/, exporters/, rules/ and no such recorded rule)")
        exprs.append((f"{where}: {label}", substituted))

    for name, v in variables.items():
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else (q or "")
        sel = variable_selector(q)
        if sel is not None:
            add_expr(f"variable '{name}'", sel)
        if v.get("datasource", {}).get("uid") != "${datasource}":
            errors.append(f"{where}: variable '{name}' does not use the ${{datasource}} variable")

    ids = set()
    for p in walk_panels(d.get("panels", [])):
        pid = p.get("id")
        title = p.get("title", "?")
        if pid in ids:
            errors.append(f"{where}: duplicate panel id {pid}")
        ids.add(pid)
        g = p.get("gridPos", {})
        if g.get("x", 0) + g.get("w", 0) > 24 or g.get("w", 0) <= 0 or g.get("h", 0) <= 0:
            errors.append(f"{where}: panel {pid} '{title}' does not fit the grid: {g}")
        if p.get("type") == "row":
            continue
        if p.get("datasource", {}).get("uid") != "${datasource}":
            errors.append(f"{where}: panel {pid} '{title}' does not use the ${{datasource}} variable")
        targets = p.get("targets", [])
        if not targets:
            errors.append(f"{where}: panel {pid} '{title}' has no query")
        for t in targets:
            label = f"panel {pid} '{title}' query {t.get('refId', '?')}"
            if t.get("datasource", {}).get("uid") != "${datasource}":
                errors.append(f"{where}: {label}: does not use the ${{datasource}} variable")
            expr = t.get("expr", "")
            if "$instance" not in expr and "${instance" not in expr:
                errors.append(f"{where}: {label}: does not filter on $instance")
            add_expr(label, expr)
    return d


def promtool_check(promtool, exprs, errors):
    def rules_file(items):
        rules = [{"record": f"dashboard:expr:{i}", "expr": e} for i, (_, e) in enumerate(items)]
        # JSON is YAML: promtool reads this as a rule file.
        f = tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False)
        json.dump({"groups": [{"name": "dashboards", "rules": rules}]}, f)
        f.close()
        return f.name

    def run(items):
        path = rules_file(items)
        try:
            r = subprocess.run([promtool, "check", "rules", path], capture_output=True,
                               text=True, timeout=120)
            return r.returncode == 0, (r.stdout + r.stderr).strip()
        finally:
            os.unlink(path)

    ok, output = run(exprs)
    if ok:
        return
    # Name the failing queries: check them one by one.
    found = False
    for label, e in exprs:
        one_ok, one_out = run([(label, e)])
        if not one_ok:
            found = True
            errors.append(f"{label}: promtool check rules: {e!r}: {one_out}")
    if not found:
        errors.append(f"promtool check rules failed: {output}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--promtool", default=os.environ.get("PROMTOOL", ""))
    ap.add_argument("--expect-error", action="append", default=[], metavar="REGEX",
                    help="self-test: succeed only if the check fails with a problem "
                         "matching each REGEX")
    ap.add_argument("dashboards", nargs="+")
    args = ap.parse_args()

    promtool = args.promtool or (subprocess.run(["sh", "-c", "command -v promtool"],
                                                capture_output=True, text=True).stdout.strip())
    if not promtool or not os.access(promtool, os.X_OK):
        print("check_dashboards: promtool not found (Debian package 'prometheus': "
              "packaging/deps.sh, or set PROMTOOL)", file=sys.stderr)
        if os.environ.get("CI") == "true":
            print("check_dashboards: CI=true, so this is a failure, not a skip", file=sys.stderr)
            return 1
        return 77

    known = known_metric_names(args.source_dir)
    if len(known) < 50 or "pg_up" not in known or "dbpulse_leader" not in known:
        print(f"check_dashboards: found only {len(known)} exported metric names under "
              f"{args.source_dir}: wrong --source-dir?", file=sys.stderr)
        return 1

    errors, exprs, used = [], [], set()
    for path in args.dashboards:
        check_dashboard(path, known, exprs, errors)
    for _, e in exprs:
        try:
            used.update(metric_names(e)[0])
        except ValueError:
            pass
    if exprs:
        promtool_check(promtool, exprs, errors)
    for e in errors:
        print(e, file=sys.stderr)
    print(f"check_dashboards: {len(args.dashboards)} dashboards, {len(exprs)} queries, "
          f"{len(used)} metric names used of {len(known)} exported, {len(errors)} problems")
    if args.expect_error:
        missed = [r for r in args.expect_error if not any(re.search(r, e, re.S) for e in errors)]
        for r in missed:
            print(f"check_dashboards: expected a problem matching {r!r}, none reported",
                  file=sys.stderr)
        return 1 if missed else 0
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
