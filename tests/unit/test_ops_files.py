"""The Grafana dashboard and the alert rules in etc/ use only metrics that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry

from aaad.daemon.metrics import Metrics

ETC = Path(__file__).resolve().parents[2] / "etc"
NAME = re.compile(r"\baaad_[a-z_]+")


def defined() -> set[str]:
    registry = CollectorRegistry()
    Metrics(registry)
    # Labelled families have no samples until used: derive the series names.
    suffixes = {"counter": ("_total",), "gauge": ("",),
                "histogram": ("_bucket", "_sum", "_count")}
    return {f.name + sfx for f in registry.collect() for sfx in suffixes[f.type]}


def used(expressions: list[str]) -> set[str]:
    return {m for e in expressions for m in NAME.findall(e)}


def test_dashboard_is_json_and_uses_only_existing_metrics() -> None:
    dash = json.loads((ETC / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    names = used(exprs)
    assert len(dash["panels"]) >= 10 and names
    assert names <= defined(), names - defined()


def test_alert_rules_load_and_use_only_existing_metrics() -> None:
    rules = yaml.safe_load((ETC / "prometheus-alerts.yaml").read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"]]
    assert all({"alert", "expr", "labels", "annotations"} <= r.keys() for r in alerts)
    names = used([r["expr"] for r in alerts])
    assert names and names <= defined(), names - defined()
