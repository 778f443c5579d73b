"""Prometheus' configuration and the Grafana dashboard: what promtool accepts, and
queries that use only the metrics of the contract (deploy/observability/metric_names.py)
with the labels those metrics carry."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.topology import SERVICES
from deploy.docker.generate import PROMETHEUS_CONFIG, prometheus_jobs
from deploy.observability import dashboard
from deploy.observability.metric_names import METRICS, by_series, labels_of
from deploy.observability.prometheus import render_config
from tests.deploy.conftest import REPO

GRAFANA = Path(dashboard.__file__).resolve().parent / "grafana"
AGGREGATIONS = re.compile(r"\b(sum|min|max|avg|count|topk|bottomk|quantile)\b")
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool"}
KEYWORDS |= {"and", "or", "unless", "offset", "inf", "nan"}


def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        pytest.fail("promtool is missing: deploy/bin/bootstrap installs Debian's prometheus")
    return found


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=60)


def names_and_labels(expr: str) -> tuple[set[str], set[str], set[str]]:
    """(metric names, every label name, grouping label names) a PromQL expression uses."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    labels: set[str] = set()
    grouping: set[str] = set()

    def matchers(m: re.Match[str]) -> str:
        labels.update(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", m.group(1)))
        return " "

    def groups(m: re.Match[str]) -> str:
        found = {x.strip() for x in m.group(2).split(",") if x.strip()}
        grouping.update(found)
        labels.update(found)
        return " "

    text = re.sub(r"\{([^}]*)\}", matchers, text)
    text = GROUPING.sub(groups, text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][\w:]*", text):
        if text[m.end() :].lstrip().startswith("(") or m.group(0).lower() in KEYWORDS:
            continue  # a function, an aggregation, a keyword
        names.add(m.group(0))
    return names, labels, grouping


def panel_targets(model: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(p, t) for p in model["panels"] for t in p.get("targets", [])]


@pytest.fixture(scope="module")
def model() -> dict[str, Any]:
    loaded = json.loads(dashboard.DASHBOARD_FILE.read_text())
    assert isinstance(loaded, dict)
    return loaded


# --- Prometheus' configuration ------------------------------------------------------------


def test_the_configuration_has_one_job_per_service_and_traefik() -> None:
    config = yaml.safe_load(render_config(prometheus_jobs()))
    assert config["global"]["scrape_interval"] == "5s"
    assert config["global"]["evaluation_interval"] == "5s"
    jobs = {c["job_name"]: c for c in config["scrape_configs"]}
    assert set(jobs) == {*SERVICES, "traefik"}
    for name, job in jobs.items():
        assert job["metrics_path"] == "/metrics"
        (static,) = job["static_configs"]
        assert static["labels"] == {"service": name}
        assert static["targets"]
    for svc in SERVICES.values():
        assert jobs[svc.name]["static_configs"][0]["targets"] == [
            f"{svc.name}-http:{svc.http_port}"
        ]


def test_the_scrape_interval_is_a_parameter() -> None:
    config = yaml.safe_load(render_config({"a": ["127.0.0.1:1"]}, scrape_interval="15s"))
    assert config["global"] == {"scrape_interval": "15s", "evaluation_interval": "15s"}


@pytest.mark.parametrize("jobs", [{}, {"account": []}])
def test_nothing_to_scrape_is_refused(jobs: dict[str, list[str]]) -> None:
    with pytest.raises(ValueError):
        render_config(jobs)


def test_promtool_accepts_the_committed_docker_configuration() -> None:
    result = run_promtool("check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert yaml.safe_load(PROMETHEUS_CONFIG.read_text()) == yaml.safe_load(
        render_config(prometheus_jobs())
    )


def test_promtool_accepts_a_local_platform_configuration(tmp_path: Path) -> None:
    jobs = {s.name: [f"127.0.0.1:{s.http_port}"] for s in SERVICES.values()}
    jobs["traefik"] = ["127.0.0.1:8080"]
    path = tmp_path / "prometheus.yml"
    path.write_text(render_config(jobs))
    result = run_promtool("check", "config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_does_reject_a_broken_configuration(tmp_path: Path) -> None:
    # The checks above are only worth something if promtool does validate.
    path = tmp_path / "prometheus.yml"
    path.write_text(render_config({"a": ["127.0.0.1:1"]}, scrape_interval="5 parsecs"))
    assert run_promtool("check", "config", str(path)).returncode != 0


# --- The dashboard ----------------------------------------------------------------------


def test_the_committed_dashboard_is_what_the_generator_writes() -> None:
    assert dashboard.DASHBOARD_FILE.read_text() == dashboard.render_dashboard()


def test_the_dashboard_is_a_grafana_dashboard(model: dict[str, Any]) -> None:
    assert model["uid"] == "saga-platform"
    assert model["title"] == "Saga purchase platform"
    assert 36 <= model["schemaVersion"] <= 41
    ids = [p["id"] for p in model["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    assert {p["type"] for p in model["panels"]} <= {"row", "timeseries", "stat"}
    for panel in model["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"] == dashboard.DATASOURCE, panel["title"]
            refs = [t["refId"] for t in panel["targets"]]
            assert refs and len(refs) == len(set(refs)), panel["title"]


def test_the_panels_fit_the_grid_and_do_not_overlap(model: dict[str, Any]) -> None:
    taken: set[tuple[int, int]] = set()
    for panel in model["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


def test_the_service_variable_lists_the_scrape_jobs(model: dict[str, Any]) -> None:
    (variable,) = model["templating"]["list"]
    assert variable["name"] == "service"
    assert variable["query"]["query"] == "label_values(up, job)"
    assert variable["includeAll"] and variable["multi"]
    uses = [t["expr"] for _, t in panel_targets(model) if "$service" in t["expr"]]
    assert uses and all('job=~"$service"' in e for e in uses)


def test_the_rows_cover_what_the_platform_does(model: dict[str, Any]) -> None:
    rows = [p["title"] for p in model["panels"] if p["type"] == "row"]
    assert rows == ["Sagas (orchestrator)", "HTTP", "gRPC", "Outbox and Kafka", "Cache"] + [
        "Scrape targets"
    ]


def test_queries_use_only_contract_metrics_with_their_labels(model: dict[str, Any]) -> None:
    known = by_series()
    for panel, target in panel_targets(model):
        names, labels, grouping = names_and_labels(target["expr"])
        where = f"{panel['title']}: {target['expr']}"
        assert names, where
        assert names <= set(known), f"{where}: unknown {names - set(known)}"
        carried = set().union(*(labels_of(n) for n in names))
        assert labels <= carried, f"{where}: no label {labels - carried}"
        legend = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", target["legendFormat"]))
        shown = grouping if AGGREGATIONS.search(target["expr"]) else carried
        assert legend <= shown, f"{where}: the legend names {legend - shown}"


def test_every_metric_of_the_contract_is_on_the_dashboard(model: dict[str, Any]) -> None:
    used = set().union(*(names_and_labels(t["expr"])[0] for _, t in panel_targets(model)))
    missing = [m.name for m in METRICS if not set(m.series) & used]
    assert not missing, missing
    assert "up" in used


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (job) (rate(http_requests_totl{job=~"a"}[1m]))', {"http_requests_totl"}),
        ("histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m]))) / y", {"x_bucket", "y"}),
        ('up{job="saga_started_total"} or vector(0)', {"up"}),
    ],
)
def test_the_name_parser_finds_metric_names_and_nothing_else(expr: str, names: set[str]) -> None:
    assert names_and_labels(expr)[0] == names


def test_promtool_accepts_every_query(model: dict[str, Any], tmp_path: Path) -> None:
    rules = []
    for panel, target in panel_targets(model):
        expr = target["expr"].replace("$service", ".+")
        assert "$" not in expr, f"{panel['title']}: an unknown Grafana variable in {expr}"
        rules.append({"record": f"dashboard:panel{panel['id']}:{target['refId']}", "expr": expr})
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run_promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_promtool_does_reject_a_broken_query(tmp_path: Path) -> None:
    path = tmp_path / "rules.yml"
    rule = {"record": "dashboard:broken", "expr": "sum by (job (rate(up[1m]))"}
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": [rule]}]}))
    assert run_promtool("check", "rules", str(path)).returncode != 0


def declared_metrics() -> dict[str, tuple[str, tuple[str, ...] | None]]:
    """Exposed name -> (kind, labels) of every metric the services' code declares with
    common.observability.metrics' counter(), histogram() or gauge() and a literal name."""
    roots = [REPO / "common" / "src", *(REPO / s.package for s in SERVICES.values())]
    found: dict[str, tuple[str, tuple[str, ...] | None]] = {}
    for path in (p for root in roots for p in root.rglob("*.py")):
        if {"tests", "migrations"} & set(path.relative_to(REPO).parts):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            if node.func.id not in ("counter", "histogram", "gauge") or not node.args:
                continue
            if not isinstance(node.args[0], ast.Constant):
                continue
            labels_node = node.args[2] if len(node.args) > 2 else None
            labels_node = next(
                (k.value for k in node.keywords if k.arg == "labelnames"), labels_node
            )
            try:  # None when not written out (a variable): not checked then
                labels = tuple(ast.literal_eval(labels_node)) if labels_node else None
            except ValueError:
                labels = None
            name = str(node.args[0].value)
            found[name + ("_total" if node.func.id == "counter" else "")] = (node.func.id, labels)
    return found


def test_the_code_declares_the_contracts_metrics_with_their_labels() -> None:
    declared = declared_metrics()
    contract = {m.name: m for m in METRICS}
    assert set(declared) <= set(contract), set(declared) - set(contract)
    for name, (kind, labels) in declared.items():
        assert kind == contract[name].kind.value, name
        assert labels is None or labels == contract[name].labels, name
    # The outbox gauges are computed at scrape time by a collector, not declared.
    collected = {m.name for m in METRICS} - set(declared)
    outbox = (REPO / "common" / "src" / "common" / "outbox" / "metrics.py").read_text()
    assert collected == {n for n in collected if f'"{n}"' in outbox}, collected


# --- Grafana's provisioning -------------------------------------------------------------


def test_the_datasource_is_the_compose_prometheus_with_the_dashboards_uid(
    compose: dict[str, Any],
) -> None:
    path = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
    config = yaml.safe_load(path.read_text())
    (source,) = config["datasources"]
    assert source["type"] == "prometheus"
    assert source["uid"] == dashboard.DATASOURCE["uid"]
    host, _, port = source["url"].removeprefix("http://").partition(":")
    assert host in compose["services"]
    published = compose["services"][host]["ports"]
    assert any(p.endswith(f":{port}") for p in published), published


def test_grafana_loads_the_dashboards_from_where_compose_mounts_them(
    compose: dict[str, Any],
) -> None:
    path = GRAFANA / "provisioning" / "dashboards" / "provider.yml"
    config = yaml.safe_load(path.read_text())
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    grafana = compose["services"]["grafana"]
    mounts = {m.split(":")[1]: REPO / m.split(":")[0] for m in grafana["volumes"]}
    mounted = mounts[provider["options"]["path"]] / dashboard.DASHBOARD_FILE.name
    assert mounted.samefile(dashboard.DASHBOARD_FILE)
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/{dashboard.DASHBOARD_FILE.name}"
    for kind in ("datasources", "dashboards"):
        assert mounts[f"/etc/grafana/provisioning/{kind}"].samefile(GRAFANA / "provisioning" / kind)
