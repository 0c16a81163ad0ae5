#!/usr/bin/env python3
"""Include boundaries of the source tree (ctest lint.include_boundaries).

    check_includes.py --root SRC      exit 1 and file:line of every include that crosses a
                                      boundary below; 0 when there is none
    check_includes.py --self-test     shows on a scratch tree that a crossing is caught

The layers, bottom up: the shared core (agent/core); the clients (collectors/clients:
PostgreSQL, Redis, HTTP), which see only the core; then collectors, rules and exporters,
which see the core and their own folder (collectors and exporters the clients too); then the
agent that composes them. No folder but the agent's own includes agent/ beyond agent/core.
Project includes are the quoted ones ("dir/file.h"); system and library headers (<...>) are
free.
"""
import argparse
import os
import re
import sys
import tempfile

# (folder, what its files may include besides files of that same folder). The first
# matching folder wins, so deeper folders come first.
RULES = [
    ("agent/core/", []),
    # The admin handlers see the agent through admin::AgentView, never the Agent itself.
    ("agent/admin/", ["agent/", "collectors/", "rules/", "exporters/",
                      "!agent/agent.h", "!agent/cli.h"]),
    ("agent/", ["agent/", "collectors/", "rules/", "exporters/"]),
    # The clients: each sees only the shared core and its own folder.
    ("collectors/clients/postgres/", ["agent/core/"]),
    ("collectors/clients/redis/", ["agent/core/"]),
    ("collectors/clients/http/", ["agent/core/"]),
    ("collectors/clients/", ["agent/core/"]),
    # One collector kind (postgres, redis, ...) sees the collector interface, the clients
    # and the core, not the catalogue above it nor another kind.
    ("collectors/postgres/", ["agent/core/", "collectors/collector.h", "collectors/clients/"]),
    ("collectors/redis/", ["agent/core/", "collectors/collector.h", "collectors/clients/"]),
    ("collectors/companion/", ["agent/core/", "collectors/collector.h", "collectors/clients/"]),
    ("collectors/process/", ["agent/core/", "collectors/collector.h", "collectors/clients/"]),
    ("collectors/", ["agent/core/", "collectors/"]),
    ("rules/", ["agent/core/"]),
    ("exporters/alertmanager/", ["agent/core/", "collectors/clients/"]),
    ("exporters/prometheus/", ["agent/core/", "collectors/clients/"]),
    ("exporters/", ["agent/core/", "exporters/", "collectors/clients/"]),
]
SOURCE_DIRS = ("agent", "collectors", "rules", "exporters")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def allowed(path, target):
    for folder, rules in RULES:
        if not path.startswith(folder):
            continue
        if target.startswith(folder):
            return True
        if ("!" + target) in rules:
            return False
        return any(target.startswith(r) for r in rules if not r.startswith("!"))
    return True  # a folder without rules (none today)


def check(root):
    bad = []
    for top in SOURCE_DIRS:
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            for name in sorted(files):
                if not name.endswith((".h", ".cpp")):
                    continue
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, root).replace(os.sep, "/")
                with open(full, encoding="utf-8", errors="replace") as f:
                    for n, line in enumerate(f, 1):
                        m = INCLUDE.match(line)
                        if m and "/" in m.group(1) and not allowed(rel, m.group(1)):
                            bad.append(f"{rel}:{n}: includes \"{m.group(1)}\", "
                                       "across a layer boundary")
    return bad


def self_test():
    cases = {
        "rules/x.cpp": ('#include "agent/config.h"\n', True),
        "collectors/redis/r.cpp": ('#include "collectors/postgres/pg_session.h"\n', True),
        "collectors/postgres/p.cpp": ('#include "collectors/catalog.h"\n', True),
        "agent/admin/a.cpp": ('#include "agent/agent.h"\n', True),
        "agent/core/c.cpp": ('#include "agent/config.h"\n', True),
        "exporters/prometheus/e.cpp": ('#include "collectors/collector.h"\n', True),
        "collectors/postgres/q.cpp": ('#include "agent/core/status.h"\n#include <vector>\n'
                                      '#include "collectors/collector.h"\n', False),
        "agent/admin/b.cpp": ('#include "agent/pipeline.h"\n', False),
        # The clients layer: below collectors, exporters and the agent, above the core.
        "collectors/clients/postgres/s.cpp": ('#include "collectors/collector.h"\n', True),
        "collectors/clients/redis/t.cpp": ('#include "agent/scheduler.h"\n', True),
        "collectors/clients/redis/t2.cpp": ('#include "collectors/clients/postgres/pg_rows.h"\n',
                                            True),
        "collectors/clients/http/u.cpp": ('#include "exporters/alertmanager/alert_transport.h"\n',
                                          True),
        "collectors/clients/postgres/v.cpp": ('#include "agent/core/status.h"\n'
                                              '#include "collectors/clients/postgres/pg_rows.h"\n',
                                              False),
        "collectors/postgres/w.cpp": ('#include "collectors/clients/postgres/pg_session.h"\n',
                                      False),
        "collectors/postgres/x.cpp": ('#include "agent/maintenance.h"\n', True),
        "exporters/alertmanager/y.cpp": ('#include "collectors/clients/http/http_client.h"\n',
                                         False),
        "exporters/alertmanager/z.cpp": ('#include "collectors/companion/text_parser.h"\n', True),
        "agent/m.cpp": ('#include "collectors/clients/postgres/pg_session.h"\n', False),
        "rules/r.cpp": ('#include "collectors/clients/http/http_client.h"\n', True),
    }
    failures = 0
    for path, (text, crossing) in cases.items():
        with tempfile.TemporaryDirectory() as root:
            os.makedirs(os.path.join(root, os.path.dirname(path)))
            with open(os.path.join(root, path), "w", encoding="utf-8") as f:
                f.write(text)
            found = check(root)
            if bool(found) != crossing:
                failures += 1
                print(f"self-test: {path} with {text.strip()!r}: "
                      f"{'missed' if crossing else 'wrongly flagged'} ({found})")
    print(f"self-test: {len(cases) - failures} of {len(cases)} cases right")
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root")
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args()
    if a.self_test:
        return self_test()
    bad = check(a.root)
    for b in bad:
        print(b)
    print(f"include boundaries: {len(bad)} crossing(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
