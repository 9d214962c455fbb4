"""Structural checks of ops/ for .ci/ops-check; writes into WORK the files
the tools then check (Prometheus configurations with their rule paths
pointed at the repository's files, the dashboard's queries as recording
rules). Exits 1 on the first kind of problem, naming every instance."""

import fnmatch
import json
import os
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
OPS = ROOT / "ops"
WORK = Path(sys.argv[1])
problems = []


def fail(message):
    problems.append(message)


def finish(what):
    if problems:
        for p in problems:
            print(f"FAILED: {p}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {what}")


class ComposeLoader(yaml.SafeLoader):
    """Compose's YAML: `!reset` and `!override` tags are allowed."""


for tag in ("!reset", "!override"):
    ComposeLoader.add_constructor(tag, lambda loader, node: None)

# 1. Everything parses.
documents = {}
for path in sorted(OPS.rglob("*")):
    if path.suffix in (".yml", ".yaml"):
        try:
            documents[path] = list(yaml.load_all(path.read_text(), Loader=ComposeLoader))
        except yaml.YAMLError as e:
            fail(f"{path.relative_to(ROOT)}: {e}")
    elif path.suffix == ".json":
        try:
            documents[path] = [json.loads(path.read_text())]
        except json.JSONDecodeError as e:
            fail(f"{path.relative_to(ROOT)}: {e}")
finish(f"{len(documents)} YAML and JSON files parse")

# 2. The compose file's references.
compose = documents[OPS / "compose.yaml"][0]
services = compose["services"]
volumes = set((compose.get("volumes") or {}).keys())
for name, service in services.items():
    for dep in service.get("depends_on") or {}:
        if dep not in services:
            fail(f"compose: {name} depends on unknown service {dep}")
    for volume in service.get("volumes") or []:
        source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source")
        if source.startswith((".", "/")):
            if not (OPS / source).exists():
                fail(f"compose: {name} mounts {source}, which does not exist under ops/")
        elif source not in volumes:
            fail(f"compose: {name} uses volume {source}, not declared")
    build = service.get("build")
    if build:
        context = (OPS / build["context"]).resolve()
        if not (context / build["dockerfile"]).exists():
            fail(f"compose: {name} builds {build['dockerfile']}, not found in {context}")
text = (OPS / "compose.yaml").read_text()
required = set(re.findall(r"\$\{([A-Z_]+):\?", text))
example = dict(
    line.split("=", 1)
    for line in (OPS / "env.example").read_text().splitlines()
    if line and not line.startswith("#")
)
for var in sorted(required - set(example)):
    fail(f"compose: ${{{var}}} is required but missing from ops/env.example")
finish(f"compose: {len(services)} services, their dependencies, volumes and mounted files")

# 3. Prometheus configurations, pointed at the repository's rule files.
rules = OPS / "prometheus" / "alerts.yml"
compose_prom = documents[OPS / "prometheus" / "prometheus.yml"][0]
compose_prom["rule_files"] = [str(rules)]
(WORK / "prometheus-compose.yml").write_text(yaml.safe_dump(compose_prom))
jobs = {j["job_name"] for j in compose_prom["scrape_configs"]}
configmap = documents[OPS / "k8s" / "60-prometheus.yaml"][0]
if configmap["data"]["alerts.yml"] != rules.read_text():
    fail("ops/k8s/60-prometheus.yaml: alerts.yml differs from ops/prometheus/alerts.yml")
k8s_prom = yaml.safe_load(configmap["data"]["prometheus.yml"])
k8s_prom["rule_files"] = [str(rules)]
# Debian's promtool is built without Kubernetes service discovery: check
# that block here and give promtool the rest (relabelling included) with
# a static target in its place.
SD_KEYS = {"role", "namespaces", "selectors", "api_server", "kubeconfig_file", "attach_metadata"}
for job in k8s_prom["scrape_configs"]:
    for sd in job.pop("kubernetes_sd_configs", []):
        if set(sd) - SD_KEYS:
            fail(f"k8s scrape job {job['job_name']}: unknown kubernetes_sd_configs keys {set(sd) - SD_KEYS}")
        if sd.get("role") not in ("node", "service", "pod", "endpoints", "endpointslice", "ingress"):
            fail(f"k8s scrape job {job['job_name']}: role {sd.get('role')!r}")
        names = sd.get("namespaces", {}).get("names", [])
        if names != ["chronicle"]:
            fail(f"k8s scrape job {job['job_name']}: namespaces {names}, expected [chronicle]")
        job.setdefault("static_configs", []).append({"targets": ["pod.chronicle.svc:9464"]})
(WORK / "prometheus-k8s.yml").write_text(yaml.safe_dump(k8s_prom))
k8s_jobs = {j["job_name"] for j in k8s_prom["scrape_configs"]}
for job in ("chronicle-api", "chronicle-projector"):
    if job not in jobs or job not in k8s_jobs:
        fail(f"scrape job {job} missing (compose: {sorted(jobs)}, k8s: {sorted(k8s_jobs)})")
finish("Prometheus configurations written for promtool; the ConfigMap's rules are ops/prometheus/alerts.yml")

# 4. Each alert: a unit test where it fires, a runbook section, and only
# the scrape jobs that exist.
alerts = [r for g in documents[rules][0]["groups"] for r in g["rules"] if "alert" in r]
tests = documents[OPS / "prometheus" / "alerts.test.yml"][0]["tests"]
fired = {
    case["alertname"]
    for t in tests
    for case in t.get("alert_rule_test", [])
    if case.get("exp_alerts")
}
runbook = (ROOT / "docs" / "runbook.md").read_text()
anchors = {
    re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
    for h in re.findall(r"^#+ (.*)$", runbook, flags=re.M)
}
for alert in alerts:
    name = alert["alert"]
    if name not in fired:
        fail(f"alert {name}: no test in alerts.test.yml expects it to fire")
    anchor = alert["annotations"].get("runbook", "").split("#")[-1]
    if anchor not in anchors or anchor != name.lower():
        fail(f"alert {name}: runbook annotation {alert['annotations'].get('runbook')!r} names no section of docs/runbook.md")
    for job in re.findall(r'job="([^"]+)"', alert["expr"]):
        if job not in jobs:
            fail(f"alert {name}: job {job} is not scraped")
    for key in ("summary", "description"):
        if not alert["annotations"].get(key):
            fail(f"alert {name}: no {key}")
    if alert.get("labels", {}).get("severity") not in ("critical", "warning"):
        fail(f"alert {name}: severity must be critical or warning")
finish(f"{len(alerts)} alerts, each tested, with a runbook section")

# 5. The dashboard: the provisioned datasource, unique ids, PromQL for
# promtool (as recording rules, Grafana's variables given values).
datasources = documents[OPS / "grafana" / "provisioning" / "datasources" / "prometheus.yml"][0]
uids = {d["uid"] for d in datasources["datasources"]}
records = []
for path in sorted((OPS / "grafana" / "dashboards").glob("*.json")):
    dashboard = documents[path][0]
    ids = []

    def walk(panels):
        for panel in panels:
            ids.append(panel.get("id"))
            if panel.get("type") != "row":
                if panel.get("datasource", {}).get("uid") not in uids:
                    fail(f"{path.name}: panel {panel.get('title')!r} uses datasource {panel.get('datasource')}")
                if not panel.get("targets"):
                    fail(f"{path.name}: panel {panel.get('title')!r} has no query")
            for target in panel.get("targets", []):
                expr = target.get("expr", "")
                if target.get("datasource", {}).get("uid") not in uids:
                    fail(f"{path.name}: a query of {panel.get('title')!r} uses another datasource")
                expr = (
                    expr.replace("$__rate_interval", "1m")
                    .replace("$__interval", "1m")
                    .replace("$__range", "1h")
                )
                if "$" in expr:
                    fail(f"{path.name}: {panel.get('title')!r} uses an undefined variable: {expr}")
                records.append({"record": f"dashboard:query:{len(records)}", "expr": expr})
            walk(panel.get("panels", []))

    walk(dashboard["panels"])
    if len(ids) != len(set(ids)):
        fail(f"{path.name}: panel ids repeat")
    if not dashboard.get("uid") or not dashboard.get("title"):
        fail(f"{path.name}: no uid or title")
(WORK / "dashboard-queries.yml").write_text(
    yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]})
)
finish(f"dashboard: {len(records)} queries on the provisioned datasource, written for promtool")

# 6. What the Dockerfile copies is in the build context.
ignore = [
    line.strip()
    for line in (ROOT / ".dockerignore").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]


def ignored(path):
    """Docker's rule: the last matching pattern decides; a pattern matches a
    path or one of its parents."""
    verdict = False
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in ignore:
        negate = pattern.startswith("!")
        p = pattern.lstrip("!").rstrip("/")
        if any(fnmatch.fnmatchcase(prefix, p) for prefix in prefixes):
            verdict = not negate
    return verdict


dockerfile = (OPS / "Dockerfile").read_text()
copied = []
for line in dockerfile.splitlines():
    words = line.split()
    if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
        copied.extend(w for w in words[1:-1] if not w.startswith("--"))
for source in copied:
    if not (ROOT / source).exists():
        fail(f"Dockerfile copies {source}, which does not exist")
    elif ignored(source):
        fail(f"Dockerfile copies {source}, which .dockerignore leaves out")
# Everything the release build reads at compile time is inside what is copied.
for needed in ["Cargo.toml", "Cargo.lock", "migrations/20261122000001_event_store.sql",
               "crates/api/assets/swagger-ui/swagger-ui-bundle.js", "crates/store/build.rs"]:
    if ignored(needed) or not any(needed == c or needed.startswith(c.rstrip("/") + "/") for c in copied):
        fail(f"the image build needs {needed}, which does not reach it")
for heavy in ["target/debug/chronicle", ".chronicle/postgres", ".git/HEAD"]:
    if not ignored(heavy):
        fail(f".dockerignore lets {heavy} into the build context")
finish(f"Dockerfile copies {', '.join(copied)}; .dockerignore keeps target/, .git/ and .chronicle/ out")
