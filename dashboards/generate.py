#!/usr/bin/env python3
"""Writes dbpulse's Grafana dashboards (dashboards/*.json) from the panel lists below.

    python3 dashboards/generate.py            # rewrite the JSON files next to this script
    python3 dashboards/generate.py --check    # exit 1 if a JSON file differs from this script

The JSON files are what Grafana loads (file provisioning: provisioning/dashboards.yml);
this script only keeps the three dashboards consistent (one datasource variable, one
instance variable, same panel conventions). tests/packaging checks that every query is
valid PromQL and uses only metric names dbpulse exports, and that the JSON matches this
script. Edit here, run it, commit both.

Conventions:
* Data source: the dashboard variable `datasource` (type prometheus), so file-provisioned
  dashboards work with any Prometheus data source name.
* `instance`: the scrape target label of dbpulse (label_values(dbpulse_leader, instance)).
  With several sidecars on one database only the leader exports the database-wide series
  (statements, cache, tables, locks, replication); every agent exports pg_up and the
  connection counts. Queries over database-wide series therefore aggregate with max by
  (...) across instances instead of summing per-agent copies.
"""
import json
import os
import sys

SCHEMA_VERSION = 39  # Grafana 10.4 / 11.x
DS = {"type": "prometheus", "uid": "${datasource}"}
I = 'instance=~"$instance"'


def datasource_var():
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "refresh": 1,
        "options": [],
        "regex": "",
        "skipUrlSync": False,
    }


def query_var(name, label, query, multi=True, include_all=True):
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "definition": query,
        "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "current": {},
        "hide": 0,
        "includeAll": include_all,
        "allValue": ".*" if include_all else None,
        "multi": multi,
        "refresh": 2,
        "regex": "",
        "sort": 1,
        "options": [],
        "skipUrlSync": False,
    }


class Board:
    """Lays panels out left to right in rows of 24 grid units."""

    def __init__(self):
        self.panels = []
        self.x = 0
        self.y = 0
        self.row_height = 0
        self.next_id = 1

    def _place(self, w, h):
        if self.x + w > 24:
            self.x = 0
            self.y += self.row_height
            self.row_height = 0
        pos = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.x += w
        self.row_height = max(self.row_height, h)
        return pos

    def row(self, title):
        if self.x != 0:
            self.x = 0
            self.y += self.row_height
            self.row_height = 0
        self.panels.append({
            "id": self.next_id, "type": "row", "title": title, "collapsed": False,
            "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1}, "panels": [],
        })
        self.next_id += 1
        self.y += 1

    def panel(self, kind, title, description, targets, w=8, h=8, unit="short", min_=None,
              max_=None, thresholds=None, mappings=None, options=None, transformations=None):
        steps = [{"color": "green", "value": None}]
        for value, color in thresholds or []:
            steps.append({"color": color, "value": value})
        defaults = {
            "unit": unit,
            "color": {"mode": "thresholds" if kind in ("stat", "gauge") else "palette-classic"},
            "thresholds": {"mode": "absolute", "steps": steps},
            "mappings": mappings or [],
        }
        if min_ is not None:
            defaults["min"] = min_
        if max_ is not None:
            defaults["max"] = max_
        if kind == "timeseries":
            defaults["custom"] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10,
                                  "showPoints": "never", "spanNulls": False}
        refs = "ABCDEFGH"
        built = []
        for i, t in enumerate(targets):
            expr, legend = t[0], t[1]
            target = {"refId": refs[i], "datasource": DS, "expr": expr, "legendFormat": legend,
                      "range": kind != "table", "instant": kind == "table"}
            if kind == "table":
                target["format"] = "table"
            built.append(target)
        p = {
            "id": self.next_id,
            "type": kind,
            "title": title,
            "description": description,
            "datasource": DS,
            "gridPos": self._place(w, h),
            "targets": built,
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": options or {},
        }
        if transformations:
            p["transformations"] = transformations
        if kind == "timeseries" and not options:
            p["options"] = {"legend": {"displayMode": "list", "placement": "bottom",
                                       "showLegend": True},
                            "tooltip": {"mode": "multi", "sort": "desc"}}
        if kind == "stat" and not options:
            p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "",
                                              "values": False},
                            "colorMode": "background", "graphMode": "none",
                            "textMode": "auto", "justifyMode": "auto",
                            "orientation": "auto"}
        self.next_id += 1
        self.panels.append(p)


UP_MAPPING = [{"type": "value", "options": {
    "0": {"text": "DOWN", "color": "red", "index": 0},
    "1": {"text": "UP", "color": "green", "index": 1}}}]


def dashboard(uid, title, description, board, variables):
    return {
        "__requires": [
            {"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.4.0"},
            {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
        ],
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts", "type": "dashboard"}]},
        "description": description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [{"title": "dbpulse", "type": "dashboards", "tags": ["dbpulse"],
                   "asDropdown": True, "includeVars": True, "keepTime": True}],
        "panels": board.panels,
        "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION,
        "tags": ["dbpulse"],
        "templating": {"list": variables},
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "title": title,
        "uid": uid,
        "version": 1,
        "weekStart": "",
    }


def postgres():
    b = Board()
    D = I + ', datname=~"$datname"'
    b.row("Overview")
    b.panel("stat", "PostgreSQL up", "pg_up per agent: 1 when its last connection attempt "
            "succeeded (the connections collector runs on every agent).",
            [(f"pg_up{{{I}}}", "{{instance}}")], w=6, h=4, mappings=UP_MAPPING,
            thresholds=[(0, "red"), (1, "green")])
    b.panel("stat", "Connections used", "Client connections / usable slots (max_connections "
            "minus reserved). The PostgresConnectionsNearLimit alert fires above 90 %.",
            [(f"max(dbpulse_pg_connections_utilization_ratio{{{I}}})", "")], w=6, h=4,
            unit="percentunit", thresholds=[(0.8, "orange"), (0.9, "red")])
    b.panel("stat", "Longest transaction", "Age of the oldest open transaction.",
            [(f"max(dbpulse_pg_longest_transaction_seconds{{{I}}})", "")], w=6, h=4, unit="s",
            thresholds=[(60, "orange"), (300, "red")])
    b.panel("stat", "Blocked sessions", "Sessions waiting for a lock another session holds.",
            [(f"max(dbpulse_pg_blocked_sessions{{{I}}})", "")], w=6, h=4,
            thresholds=[(1, "orange")])

    b.row("Connections")
    b.panel("timeseries", "Connection utilization", "Client connections / usable slots.",
            [(f"max(dbpulse_pg_connections_utilization_ratio{{{I}}})", "utilization")],
            unit="percentunit", min_=0, max_=1)
    b.panel("timeseries", "Connections by state", "pg_stat_activity by state (all agents see "
            "the same server: the maximum over agents, summed over databases).",
            [(f"sum by (state) (max by (datname, state) (pg_stat_activity_count{{{D}}}))",
              "{{state}}")])
    b.panel("timeseries", "Clients vs max_connections", "Client backends and the server's "
            "max_connections.",
            [(f"max(dbpulse_pg_client_connections{{{I}}})", "clients"),
             (f"max(pg_settings_max_connections{{{I}}})", "max_connections")])
    b.panel("timeseries", "Idle in transaction", "Sessions idle inside an open transaction "
            "(they hold locks and snapshots).",
            [(f"max(dbpulse_pg_idle_in_transaction_sessions{{{I}}})", "idle in transaction"),
             (f"max(dbpulse_pg_waiting_sessions{{{I}}})", "waiting")])
    b.panel("timeseries", "Longest transaction", "Age of the oldest open transaction.",
            [(f"max(dbpulse_pg_longest_transaction_seconds{{{I}}})", "oldest transaction")],
            unit="s")
    b.panel("timeseries", "Connections by application", "Top 10 application_name values.",
            [(f"topk(10, max by (datname, application_name) "
              f"(dbpulse_pg_connections_by_application{{{D}}}))",
              "{{datname}} {{application_name}}")])

    b.row("Cache")
    b.panel("timeseries", "Cache hit ratio per database", "Buffer cache hits / (hits + reads) "
            "between two runs of the cache collector. The PostgresCacheHitRatioLow alert "
            "fires below 80 %.",
            [(f"max by (datname) (dbpulse_pg_cache_hit_ratio{{{D}}})", "{{datname}}")],
            unit="percentunit", min_=0, max_=1, w=12)
    b.panel("timeseries", "Blocks read from disk and hit per second", "pg_stat_database "
            "blks_read / blks_hit rates.",
            [(f"max by (datname) (rate(pg_stat_database_blks_read{{{D}}}[$__rate_interval]))",
              "{{datname}} read"),
             (f"max by (datname) (rate(pg_stat_database_blks_hit{{{D}}}[$__rate_interval]))",
              "{{datname}} hit")], unit="ops", w=12)

    b.row("Statements (pg_stat_statements)")
    b.panel("table", "Top statements by time since the previous run", "Execution time of "
            "each top-N statement between the last two runs of the statements collector. "
            "Statement text: GET /admin/database/metrics.",
            [(f"topk(15, max by (queryid, datname, user) "
              f"(dbpulse_pg_statement_recent_seconds{{{D}}}))", "")],
            unit="s", w=12, h=9,
            transformations=[{"id": "organize", "options": {
                "excludeByName": {"Time": True},
                "renameByName": {"Value": "seconds in the last interval"}}}],
            options={"showHeader": True, "sortBy": [{"displayName": "seconds in the last interval",
                                                     "desc": True}]})
    b.panel("timeseries", "Statement time per second (top 10)", "Rate of "
            "pg_stat_statements total execution time per statement.",
            [(f"topk(10, max by (queryid, datname) "
              f"(rate(pg_stat_statements_seconds_total{{{D}}}[$__rate_interval])))",
              "{{datname}} {{queryid}}")], unit="s", w=12, h=9)
    b.panel("timeseries", "Mean time per call (top 10)", "Mean execution time per call.",
            [(f"topk(10, max by (queryid, datname) (dbpulse_pg_statement_mean_seconds{{{D}}}))",
              "{{datname}} {{queryid}}")], unit="s")
    b.panel("timeseries", "Calls per second", "All statements (pg_stat_statements) and the "
            "top-N statements' calls.",
            [(f"sum(rate(dbpulse_pg_statements_calls_total{{{I}}}[$__rate_interval]))", "all"),
             (f"topk(5, max by (queryid, datname) "
              f"(rate(pg_stat_statements_calls_total{{{D}}}[$__rate_interval])))",
              "{{datname}} {{queryid}}")], unit="reqps")
    b.panel("timeseries", "Long-running statements", "Statements running longer than the "
            "statements collector's threshold, and the longest one.",
            [(f"max(dbpulse_pg_long_running_statements{{{I}}})", "running > threshold"),
             (f"max(dbpulse_pg_longest_running_statement_seconds{{{I}}})", "longest (s)")])

    b.row("Vacuum and wraparound")
    b.panel("timeseries", "Dead tuples", "Estimated dead rows in all user tables of each "
            "database.",
            [(f"max by (datname) (dbpulse_pg_tables_dead_tuples{{{D}}})", "{{datname}}")])
    b.panel("timeseries", "Tables with most dead tuples", "Top 10 tables by n_dead_tup.",
            [(f"topk(10, max by (datname, schemaname, relname) "
              f"(pg_stat_user_tables_n_dead_tup{{{D}}}))", "{{schemaname}}.{{relname}}")])
    b.panel("timeseries", "Transaction ID age (wraparound)", "age(datfrozenxid) per database "
            "and autovacuum_freeze_max_age; the PostgresXidWraparound alert fires above 1e9, "
            "PostgreSQL stops writes near 2^31.",
            [(f"max by (datname) (dbpulse_pg_database_xid_age{{{D}}})", "{{datname}}"),
             (f"max(pg_settings_autovacuum_freeze_max_age{{{I}}})",
              "autovacuum_freeze_max_age")], thresholds=[(1e9, "red")])
    b.panel("timeseries", "Dead tuple ratio", "Dead rows / (live + dead) over all user tables.",
            [(f"max by (datname) (dbpulse_pg_tables_dead_tuple_ratio{{{D}}})", "{{datname}}")],
            unit="percentunit", min_=0)
    b.panel("timeseries", "Tables never vacuumed / analyzed", "User tables with no (auto)vacuum "
            "or (auto)analyze recorded.",
            [(f"max by (datname) (dbpulse_pg_tables_never_vacuumed{{{D}}})",
              "{{datname}} never vacuumed"),
             (f"max by (datname) (dbpulse_pg_tables_never_analyzed{{{D}}})",
              "{{datname}} never analyzed")])
    b.panel("timeseries", "Multixact ID age", "mxid_age(datminmxid) per database.",
            [(f"max by (datname) (dbpulse_pg_database_mxid_age{{{D}}})", "{{datname}}")])

    b.row("Maintenance and index advisor")
    b.panel("timeseries", "Maintenance runs per hour", "VACUUM/ANALYZE runs of dbpulse's "
            "maintenance (leader only, inside [maintenance] window) by operation and result "
            "(ok, skipped_locked, skipped_privilege, failed). Details: GET /admin/maintenance.",
            [(f"sum by (operation, result) "
              f"(increase(dbpulse_maintenance_runs_total{{{I}}}[1h]))",
              "{{operation}} {{result}}")])
    b.panel("timeseries", "Maintenance running, time since last run", "1 while a maintenance "
            "run is in progress; seconds since the last run ended.",
            [(f"max(dbpulse_maintenance_running{{{I}}})", "running"),
             (f"time() - max(dbpulse_maintenance_last_run_timestamp_seconds{{{I}}})",
              "since last run (s)")])
    b.panel("timeseries", "Index suggestions", "Indexes the advisor suggests to create or "
            "drop (last run). The statements: GET /admin/database/index-suggestions.",
            [(f"max by (kind) (dbpulse_index_suggestions{{{I}}})", "{{kind}}")])

    b.row("Locks")
    b.panel("timeseries", "Locks by mode", "pg_locks by mode.",
            [(f"sum by (mode) (max by (datname, mode) (pg_locks_count{{{D}}}))", "{{mode}}")])
    b.panel("timeseries", "Blocked and blocking sessions", "Lock waits: blocked sessions, "
            "the sessions blocking them and the root blockers of each chain.",
            [(f"max(dbpulse_pg_lock_blocked_sessions{{{I}}})", "blocked"),
             (f"max(dbpulse_pg_lock_blocking_sessions{{{I}}})", "blocking"),
             (f"max(dbpulse_pg_lock_root_blockers{{{I}}})", "root blockers")])
    b.panel("timeseries", "Longest lock wait and deadlocks", "Longest current lock wait "
            "(seconds) and deadlocks detected per interval.",
            [(f"max(dbpulse_pg_lock_longest_wait_seconds{{{I}}})", "longest wait (s)"),
             (f"sum by (datname) (max by (datname) "
              f"(increase(pg_stat_database_deadlocks{{{D}}}[$__rate_interval])))",
              "{{datname}} deadlocks")])

    b.row("Replication")
    b.panel("timeseries", "Replica replay lag (primary's view)", "replay_lag per replica; the "
            "PostgresReplicationLag alert fires above 30 s.",
            [(f"max by (application_name, client_addr) "
              f"(dbpulse_pg_replication_replay_lag_seconds{{{I}}})",
              "{{application_name}} {{client_addr}}"),
             (f"max(dbpulse_pg_replication_standby_replay_lag_seconds{{{I}}})",
              "this server (standby)")], unit="s", thresholds=[(30, "red")])
    b.panel("timeseries", "Replica lag in bytes", "WAL bytes between the primary and each "
            "replica's replay position.",
            [(f"max by (application_name, client_addr) "
              f"(dbpulse_pg_replication_replay_lag_bytes{{{I}}})",
              "{{application_name}} {{client_addr}}")], unit="bytes")
    b.panel("timeseries", "WAL retained by replication slots", "Bytes each slot keeps on disk; "
            "an inactive slot grows until the disk is full.",
            [(f"max by (slot_name) (dbpulse_pg_replication_slot_retained_bytes{{{I}}})",
              "{{slot_name}}")], unit="bytes")

    b.row("PgBouncer")
    b.panel("timeseries", "Clients waiting for a server connection", "cl_waiting per pool; "
            "the PgbouncerClientsWaiting alert fires while it stays above 0.",
            [(f"sum by (instance, database) "
              f"(pgbouncer_pools_client_waiting_connections{{{I}}})",
              "{{instance}} {{database}}")], thresholds=[(1, "orange")])
    b.panel("timeseries", "Longest client wait", "maxwait per pool.",
            [(f"max by (instance, database) (pgbouncer_pools_client_maxwait_seconds{{{I}}})",
              "{{instance}} {{database}}")], unit="s")
    b.panel("timeseries", "Server connections", "Active and idle server connections per pool; "
            "pgbouncer_up per agent.",
            [(f"sum by (instance) (pgbouncer_pools_server_active_connections{{{I}}})",
              "{{instance}} active"),
             (f"sum by (instance) (pgbouncer_pools_server_idle_connections{{{I}}})",
              "{{instance}} idle"),
             (f"pgbouncer_up{{{I}}}", "{{instance}} up")])

    variables = [datasource_var(),
                 query_var("instance", "dbpulse instance", "label_values(dbpulse_leader, instance)"),
                 query_var("datname", "Database",
                           f"label_values(pg_stat_activity_count{{{I}}}, datname)")]
    return dashboard("dbpulse-postgres", "dbpulse / PostgreSQL",
                     "PostgreSQL health as seen by dbpulse: connections, cache, statements, "
                     "vacuum, locks, replication, pgbouncer.", b, variables)


def redis_chat():
    b = Board()
    b.row("Overview")
    b.panel("stat", "Redis up", "redis_up per agent.", [(f"redis_up{{{I}}}", "{{instance}}")],
            w=6, h=4, mappings=UP_MAPPING, thresholds=[(0, "red"), (1, "green")])
    b.panel("stat", "Redis hit ratio", "Keyspace hits / lookups between two runs of the redis "
            "collector (no value without lookups).",
            [(f"min(dbpulse_redis_cache_hit_ratio{{{I}}})", "")], w=6, h=4,
            unit="percentunit", thresholds=[(0, "red"), (0.8, "green")])
    b.panel("stat", "Chat server up", "dbpulse_companion_up: the chat server's health endpoint "
            "answered 2xx.", [(f"dbpulse_companion_up{{{I}}}", "{{instance}}")], w=6, h=4,
            mappings=UP_MAPPING, thresholds=[(0, "red"), (1, "green")])
    b.panel("stat", "Chat server process found", "dbpulse_process_up{process=\"companion\"}: "
            "the process collector found the chat server (pid_file or process_name).",
            [(f'dbpulse_process_up{{{I}, process="companion"}}', "{{instance}}")], w=6, h=4,
            mappings=UP_MAPPING, thresholds=[(0, "red"), (1, "green")])

    b.row("Redis")
    b.panel("timeseries", "Hit ratio", "Keyspace hits / lookups; the RedisCacheHitRatioLow "
            "alert fires below 80 %.",
            [(f"min(dbpulse_redis_cache_hit_ratio{{{I}}})", "hit ratio")],
            unit="percentunit", min_=0, max_=1)
    b.panel("timeseries", "Memory used vs maxmemory", "used_memory, RSS and maxmemory (0 = "
            "no limit); the RedisMemoryNearLimit alert fires above 90 % of maxmemory.",
            [(f"max(redis_memory_used_bytes{{{I}}})", "used"),
             (f"max(redis_memory_used_rss_bytes{{{I}}})", "rss"),
             (f"max(redis_memory_max_bytes{{{I}}} > 0)", "maxmemory")], unit="bytes")
    b.panel("timeseries", "Evicted and expired keys", "Keys evicted by maxmemory and keys "
            "expired by TTL, per second.",
            [(f"max(rate(redis_evicted_keys_total{{{I}}}[$__rate_interval]))", "evicted"),
             (f"max(rate(redis_expired_keys_total{{{I}}}[$__rate_interval]))", "expired")],
            unit="ops")
    b.panel("timeseries", "Commands and lookups per second", "Commands processed, keyspace "
            "hits and misses.",
            [(f"max(rate(redis_commands_processed_total{{{I}}}[$__rate_interval]))", "commands"),
             (f"max(rate(redis_keyspace_hits_total{{{I}}}[$__rate_interval]))", "hits"),
             (f"max(rate(redis_keyspace_misses_total{{{I}}}[$__rate_interval]))", "misses")],
            unit="ops")
    b.panel("timeseries", "Clients", "Connected and blocked clients, rejected connections per "
            "second (maxclients reached).",
            [(f"max(redis_connected_clients{{{I}}})", "connected"),
             (f"max(redis_blocked_clients{{{I}}})", "blocked"),
             (f"max(rate(redis_rejected_connections_total{{{I}}}[$__rate_interval]))",
              "rejected/s")])
    b.panel("timeseries", "PING latency", "Round trip of dbpulse's PING per agent.",
            [(f"dbpulse_redis_ping_seconds{{{I}}}", "{{instance}}")], unit="s")

    b.row("Processes: dbpulse and the chat server")
    b.panel("timeseries", "Resident memory", "RSS of dbpulse and of the chat server "
            "(process=\"companion\") per pod or host.",
            [(f"dbpulse_process_resident_memory_bytes{{{I}}}", "{{instance}} {{process}}")],
            unit="bytes", w=12)
    b.panel("timeseries", "CPU", "CPU time per second (1 = one core). The ProcessCpuHigh "
            "alert fires when the chat server stays above 0.9 (Node runs JavaScript on one "
            "thread).",
            [(f"rate(dbpulse_process_cpu_seconds_total{{{I}}}[$__rate_interval])",
              "{{instance}} {{process}}")], unit="percentunit", w=12)
    b.panel("timeseries", "cgroup memory vs limit", "The container's (cgroup v2) memory usage "
            "and limit; ProcessMemoryNearCgroupLimit fires above 85 %.",
            [(f"dbpulse_cgroup_memory_usage_bytes{{{I}}}", "{{instance}} usage"),
             (f"dbpulse_cgroup_memory_limit_bytes{{{I}}}", "{{instance}} limit")], unit="bytes")
    b.panel("timeseries", "Open file descriptors and threads", "Per process.",
            [(f"dbpulse_process_open_fds{{{I}}}", "{{instance}} {{process}} fds"),
             (f"dbpulse_process_threads{{{I}}}", "{{instance}} {{process}} threads")])
    b.panel("timeseries", "Chat server health endpoint", "Latency of the health check and "
            "the time to scrape its metrics endpoint.",
            [(f"dbpulse_companion_health_latency_seconds{{{I}}}", "{{instance}} health"),
             (f"dbpulse_companion_scrape_duration_seconds{{{I}}}", "{{instance}} metrics scrape")],
            unit="s")

    variables = [datasource_var(),
                 query_var("instance", "dbpulse instance", "label_values(dbpulse_leader, instance)")]
    return dashboard("dbpulse-redis-chat", "dbpulse / Redis and chat server",
                     "Redis and the chat server's process as seen by the dbpulse sidecars.",
                     b, variables)


def agent():
    b = Board()
    b.row("Overview")
    b.panel("stat", "Leaders", "Agents holding the leader lock (sum of dbpulse_leader). "
            "Exactly 1 per database is right; agents with leader_election = false count 1 "
            "each.", [(f"sum(dbpulse_leader{{{I}}})", "")], w=6, h=4,
            thresholds=[(0, "red"), (1, "green"), (2, "red")])
    b.panel("stat", "Firing alerts", "dbpulse_alerts{state=\"firing\"} over the agents.",
            [(f'sum(dbpulse_alerts{{{I}, state="firing"}})', "")], w=6, h=4,
            thresholds=[(1, "red")])
    b.panel("stat", "Failing collectors", "Collectors whose last run failed.",
            [(f"count(dbpulse_collector_success{{{I}}} == 0) or vector(0)", "")], w=6, h=4,
            thresholds=[(1, "orange")])
    b.panel("stat", "Alertmanager outbox", "Notifications waiting for an Alertmanager.",
            [(f"sum(dbpulse_alertmanager_outbox_size{{{I}}}) or vector(0)", "")], w=6, h=4,
            thresholds=[(1, "orange"), (100, "red")])

    b.row("Collectors")
    b.panel("timeseries", "Collector success", "1 when the collector's last run succeeded.",
            [(f"min by (collector) (dbpulse_collector_success{{{I}}})", "{{collector}}")],
            min_=0, max_=1)
    b.panel("timeseries", "Collector duration", "Duration of each collector's last run "
            "(slowest agent).",
            [(f"max by (collector) (dbpulse_collector_duration_seconds{{{I}}})",
              "{{collector}}")], unit="s")
    b.panel("timeseries", "Collector errors and timeouts", "Per second, all agents.",
            [(f"sum by (collector) (rate(dbpulse_collector_errors_total{{{I}}}[$__rate_interval]))",
              "{{collector}} errors"),
             (f"sum by (collector) "
              f"(rate(dbpulse_collector_timeouts_total{{{I}}}[$__rate_interval]))",
              "{{collector}} timeouts")], unit="ops")
    b.panel("table", "Collectors switched off", "A missing prerequisite (extension, "
            "privilege, configuration) switched these off; the reason names the fix.",
            [(f"dbpulse_collector_enabled{{{I}}} == 0", "")], w=12,
            transformations=[{"id": "organize", "options": {
                "excludeByName": {"Time": True, "Value": True, "__name__": True}}}])
    b.panel("timeseries", "Time since last run", "Seconds since each collector last ran "
            "(a stuck scheduler shows as a rising line).",
            [(f"max by (collector) (time() - dbpulse_collector_last_run_timestamp_seconds{{{I}}})",
              "{{collector}}")], unit="s", w=12)

    b.row("Alerts")
    b.panel("timeseries", "Alerts by state", "dbpulse_alerts: pending and firing alerts of "
            "dbpulse's own rule evaluation.",
            [(f"sum by (state) (dbpulse_alerts{{{I}}})", "{{state}}")])
    b.panel("table", "Active alerts", "ALERTS as exported by dbpulse (one row per alert).",
            [(f"max by (alertname, alertstate, severity, component) (ALERTS{{{I}}})", "")],
            w=16,
            transformations=[{"id": "organize", "options": {
                "excludeByName": {"Time": True, "Value": True}}}])
    b.panel("timeseries", "Rule evaluation", "Failed rule evaluations per second and the "
            "slowest group's last evaluation time.",
            [(f"sum by (rule_group) "
              f"(rate(dbpulse_rule_evaluation_failures_total{{{I}}}[$__rate_interval]))",
              "{{rule_group}} failures/s"),
             (f"max(dbpulse_rule_group_last_duration_seconds{{{I}}})", "slowest group (s)")])

    b.row("Alertmanager")
    b.panel("timeseries", "Notifications by result", "Notifications to Alertmanager per "
            "second, by result.",
            [(f"sum by (result) "
              f"(rate(dbpulse_alertmanager_notifications_total{{{I}}}[$__rate_interval]))",
              "{{result}}")], unit="ops")
    b.panel("timeseries", "Outbox size per Alertmanager", "Notifications waiting per URL "
            "(kept on disk across restarts).",
            [(f"max by (instance, url) (dbpulse_alertmanager_outbox_size{{{I}}})",
              "{{instance}} {{url}}")])
    b.panel("timeseries", "Alertmanager reachable", "dbpulse_alertmanager_up per URL; "
            "dropped notifications per second.",
            [(f"min by (url) (dbpulse_alertmanager_up{{{I}}})", "{{url}} up"),
             (f"sum by (reason) "
              f"(rate(dbpulse_alertmanager_dropped_total{{{I}}}[$__rate_interval]))",
              "dropped ({{reason}})")])

    b.row("Leader election")
    b.panel("timeseries", "Leader per agent", "dbpulse_leader: 1 on the agent that runs the "
            "database-wide collectors.",
            [(f"dbpulse_leader{{{I}}}", "{{instance}}")], min_=0, max_=1, w=12)
    b.panel("timeseries", "Leader changes", "Leadership gained or lost per agent in the "
            "interval.",
            [(f"increase(dbpulse_leader_changes_total{{{I}}}[$__rate_interval])",
              "{{instance}}")], w=12)

    variables = [datasource_var(),
                 query_var("instance", "dbpulse instance", "label_values(dbpulse_leader, instance)")]
    return dashboard("dbpulse-agent", "dbpulse / agent",
                     "dbpulse itself: collectors, rule evaluation, alerts, Alertmanager "
                     "notifications and leader election.", b, variables)


DASHBOARDS = {
    "dbpulse-postgres.json": postgres,
    "dbpulse-redis-chat.json": redis_chat,
    "dbpulse-agent.json": agent,
}


def render(build):
    return json.dumps(build(), indent=2, sort_keys=False) + "\n"


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    check = "--check" in argv
    stale = []
    for name, build in DASHBOARDS.items():
        path = os.path.join(here, name)
        text = render(build)
        if check:
            try:
                with open(path, encoding="utf-8") as f:
                    current = f.read()
            except OSError:
                current = None
            if current != text:
                stale.append(name)
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
    if stale:
        print("dashboards differ from dashboards/generate.py: " + ", ".join(stale) +
              " (run: python3 dashboards/generate.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
