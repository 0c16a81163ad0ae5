#!/usr/bin/env python3
"""packaging/kubernetes/*.yaml: parse, and agree with the config they carry.

    check_kubernetes.py --source-dir SRC --build-dir BUILD --dbpulse BUILD/dbpulse

Every document parses (python3-yaml) and has apiVersion, kind and metadata.name. In the
Deployment: shareProcessNamespace is on; the dbpulse container's port, liveness (/health)
and readiness (/health/ready) probes, the prometheus.io annotations, the Service and the
PodMonitor all use the port dbpulse.toml listens on; the ConfigMap is mounted where the
image's ENTRYPOINT reads its config; every *_file of the config is a key of the mounted
Secret; state_dir is a writable volume; the companion URLs reach the chat-server
container's port; resources fit the measured footprint; it runs as non-root. Then
`dbpulse check-config` runs on the ConfigMap's dbpulse.toml inside a scratch tree that
mirrors the pod: the staged install (image files: rule pack), the Secret's keys as files
at the mount path and the DBPULSE_* environment of the container.
"""
import argparse
import glob
import json
import os
import re
import shutil
import tempfile

import yaml

from packaging_util import check_config, fail, listen_port, parse_toml, rooted, stage_install


def mebibytes(q):
    m = re.fullmatch(r"(\d+)(Mi|Gi|M|G)?", str(q))
    if not m:
        return None
    n = int(m.group(1))
    return {"Mi": n, "Gi": n * 1024, "M": n * 1e6 / 2**20, "G": n * 1e9 / 2**20}.get(m.group(2), n / 2**20)


def port_number(container, port):
    if isinstance(port, int):
        return port
    for p in container.get("ports", []):
        if p.get("name") == port:
            return p["containerPort"]
    return None


def entrypoint_config(src):
    with open(os.path.join(src, "packaging/docker/Dockerfile"), encoding="utf-8") as f:
        m = re.findall(r"^ENTRYPOINT\s+(\[.*\])\s*$", f.read(), re.M)
    entry = json.loads(m[-1]) if m else []
    return entry[entry.index("--config") + 1] if "--config" in entry else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--dbpulse", required=True)
    args = ap.parse_args()
    errors = []
    docs = []
    for path in sorted(glob.glob(os.path.join(args.source_dir, "packaging/kubernetes/*.yaml"))):
        try:
            with open(path, encoding="utf-8") as f:
                for d in yaml.safe_load_all(f):
                    if d is None:
                        continue
                    for key in ("apiVersion", "kind"):
                        if key not in d:
                            errors.append(f"{os.path.basename(path)}: a document without {key}")
                    if not d.get("metadata", {}).get("name"):
                        errors.append(f"{os.path.basename(path)}: {d.get('kind')} without metadata.name")
                    docs.append(d)
        except yaml.YAMLError as e:
            errors.append(f"{os.path.basename(path)}: does not parse: {e}")
    if errors:
        return fail(errors, "kubernetes")
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    deployments = by_kind.get("Deployment", [])
    if len(deployments) != 1:
        return fail([f"expected one Deployment, found {len(deployments)}"], "kubernetes")
    dep = deployments[0]
    pod = dep["spec"]["template"]
    spec = pod["spec"]
    if spec.get("shareProcessNamespace") is not True:
        errors.append("shareProcessNamespace must be true (the process collector needs the chat server's /proc)")
    containers = spec.get("containers", [])
    sidecars = [c for c in containers if "dbpulse" in c.get("image", "")]
    others = [c for c in containers if c not in sidecars]
    if len(sidecars) != 1 or not others:
        return fail(errors + ["expected the chat server and one dbpulse container"], "kubernetes")
    dbp, chat = sidecars[0], others[0]
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    mounts = {m["mountPath"].rstrip("/"): m for m in dbp.get("volumeMounts", [])}

    # The config: from the ConfigMap mounted where the ENTRYPOINT reads it.
    config_path = entrypoint_config(args.source_dir)
    if dbp.get("args") and "--config" in dbp["args"]:
        config_path = dbp["args"][dbp["args"].index("--config") + 1]
    config_dir, config_file = os.path.split(config_path or "/?/?")
    mount = mounts.get(config_dir)
    cm_volume = volumes.get(mount["name"]) if mount else None
    if not cm_volume or "configMap" not in cm_volume:
        return fail(errors + [f"no ConfigMap volume mounted at {config_dir} (the image reads {config_path})"],
                    "kubernetes")
    items = {i["path"]: i["key"] for i in cm_volume["configMap"].get("items", [])}
    key = items.get(config_file, config_file if not items else None)
    cms = [c for c in by_kind.get("ConfigMap", [])
           if c["metadata"]["name"] == cm_volume["configMap"]["name"]]
    if not cms or key not in cms[0].get("data", {}):
        return fail(errors + [f"ConfigMap {cm_volume['configMap']['name']} has no key for {config_file}"],
                    "kubernetes")
    toml_text = cms[0]["data"][key]
    cfg = parse_toml(toml_text)
    port = listen_port(cfg)

    # Ports, probes, annotations, Service, PodMonitor.
    ports = {p.get("name"): p["containerPort"] for p in dbp.get("ports", [])}
    port_names = [n for n, v in ports.items() if v == port]
    if not port_names:
        errors.append(f"the dbpulse container does not declare containerPort {port} (config listen)")
    for probe, path in (("livenessProbe", "/health"), ("readinessProbe", "/health/ready")):
        get = dbp.get(probe, {}).get("httpGet", {})
        if get.get("path") != path:
            errors.append(f"dbpulse {probe}: path {get.get('path')!r}, expected {path}")
        if port_number(dbp, get.get("port")) != port:
            errors.append(f"dbpulse {probe}: port {get.get('port')!r} is not {port}")
    ann = pod.get("metadata", {}).get("annotations", {})
    if ann.get("prometheus.io/scrape") != "true" or ann.get("prometheus.io/port") != str(port) \
            or ann.get("prometheus.io/path", "/metrics") != "/metrics":
        errors.append(f"pod annotations {ann} do not scrape :{port}/metrics")
    for svc in by_kind.get("Service", []):
        sel = svc["spec"].get("selector", {})
        labels = pod.get("metadata", {}).get("labels", {})
        if any(labels.get(k) != v for k, v in sel.items()):
            errors.append(f"Service {svc['metadata']['name']} does not select the pods")
        for p in svc["spec"].get("ports", []):
            tp = p.get("targetPort", p.get("port"))
            if port_number(dbp, tp) is None and port_number(chat, tp) is None:
                errors.append(f"Service {svc['metadata']['name']}: targetPort {tp} is no container port")
    for pm in by_kind.get("PodMonitor", []):
        for ep in pm["spec"].get("podMetricsEndpoints", []):
            if ep.get("port") not in port_names:
                errors.append(f"PodMonitor {pm['metadata']['name']}: port {ep.get('port')!r} "
                              f"is not dbpulse's port {port_names}")
            if ep.get("path", "/metrics") != "/metrics":
                errors.append(f"PodMonitor: path {ep.get('path')} is not /metrics")
        sel = pm["spec"].get("selector", {}).get("matchLabels", {})
        if any(pod["metadata"].get("labels", {}).get(k) != v for k, v in sel.items()):
            errors.append(f"PodMonitor {pm['metadata']['name']} does not select the pods")

    # Secrets: every *_file is a key of a Secret mounted at its directory.
    secret_files = {}
    for section, keys in cfg.items():
        if not isinstance(keys, dict):
            continue
        for k, v in keys.items():
            if k.endswith("_file") and v and k != "pid_file":
                d, name = os.path.split(v)
                m = mounts.get(d)
                vol = volumes.get(m["name"]) if m else None
                if not vol or "secret" not in vol:
                    errors.append(f"[{section}] {k} = {v!r}: no Secret volume mounted at {d}")
                    continue
                items = {i["path"]: i["key"] for i in vol["secret"].get("items", [])}
                skey = items.get(name, name if not items else None)
                secrets = [s for s in by_kind.get("Secret", [])
                           if s["metadata"]["name"] == vol["secret"]["secretName"]]
                data = {}
                if secrets:
                    data.update(secrets[0].get("stringData", {}))
                    data.update(secrets[0].get("data", {}))
                if skey not in data:
                    errors.append(f"[{section}] {k} = {v!r}: Secret {vol['secret']['secretName']} "
                                  f"has no key {skey!r}")
                    continue
                secret_files[v] = str(data[skey])
    if "password_file" not in cfg.get("postgres", {}) or "admin_token_file" not in cfg.get("agent", {}):
        errors.append("the config should take the PostgreSQL password and admin token from *_file keys")

    state_dir = cfg.get("agent", {}).get("state_dir", "")
    m = mounts.get(state_dir.rstrip("/"))
    if not m or m.get("readOnly") or not any(t in volumes.get(m["name"], {}) for t in
                                             ("emptyDir", "persistentVolumeClaim")):
        errors.append(f"state_dir {state_dir!r} is not a writable emptyDir/PVC mount")

    chat_ports = [p["containerPort"] for p in chat.get("ports", [])]
    for k in ("health_url", "metrics_url"):
        url = cfg.get("companion", {}).get(k, "")
        mm = re.fullmatch(r"http://(127\.0\.0\.1|localhost):(\d+)/\S*", url)
        if not mm or int(mm.group(2)) not in chat_ports:
            errors.append(f"[companion] {k} = {url!r} does not reach the chat-server container "
                          f"(ports {chat_ports}) over localhost")

    res = dbp.get("resources", {})
    limit = mebibytes(res.get("limits", {}).get("memory"))
    request = mebibytes(res.get("requests", {}).get("memory"))
    if limit is None or request is None or not (16 <= request <= limit <= 128):
        errors.append(f"dbpulse memory request/limit {res} should be 16Mi..128Mi "
                      "(measured RSS ~15 MiB idle)")
    sc = dbp.get("securityContext", {})
    if not sc.get("runAsNonRoot") or sc.get("allowPrivilegeEscalation") is not False:
        errors.append("dbpulse securityContext: runAsNonRoot and allowPrivilegeEscalation: false expected")

    # check-config in a scratch tree that mirrors the pod's filesystem.
    root = stage_install(args.build_dir)
    try:
        for path, value in secret_files.items():
            os.makedirs(os.path.dirname(root + path), exist_ok=True)
            with open(root + path, "w", encoding="utf-8") as f:
                f.write(value)
        for pattern in cfg.get("rules", {}).get("files", []):
            if not glob.glob(root + pattern):
                errors.append(f"[rules] files {pattern!r}: no such files in the image")
        target = root + config_path
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w", encoding="utf-8") as f:
            f.write(rooted(toml_text, root))
        env = {}
        for e in dbp.get("env", []):
            if e["name"].startswith("DBPULSE_"):
                env[e["name"]] = str(e.get("value", "chat-server-0"))
        code, out = check_config(args.dbpulse, target, env)
        if code != 0:
            errors.append(f"dbpulse check-config rejected the ConfigMap's dbpulse.toml (exit {code}):\n{out}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return fail(errors, "kubernetes")


if __name__ == "__main__":
    raise SystemExit(main())
