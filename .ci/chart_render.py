#!/usr/bin/python3
"""Renders the Helm chart without a helm binary or a cluster, and checks the manifests.

../shared/tools/helm-lint only lints; it has no `helm template`. But lint renders every template, and in lint
mode Helm logs the message of a `fail` call instead of stopping. So this script lints a copy of the chart
holding one extra template that passes each real template (copied under files/) through `tpl` and hands the
result to `fail`; the log lines carry the rendered manifests. For the default values and each
helm/stancewatch/ci/*-values.yaml that is not a fail-* variant it then:

- parses every rendered manifest as YAML and checks the Deployment: probes on /healthz and /readyz, the
  container port equal to the port in config.toml's http.listen, runAsNonRoot and readOnlyRootFilesystem,
  terminationGracePeriodSeconds at least the shutdown drain plus the margin, the config checksum annotation;
- checks a replay Job, when one is rendered: `stancewatch replay` with the live configuration and environment,
  a consumer group other than the live one, pods the Service does not select;
- writes target/chart-render/<variant>/{manifests.yaml,config.toml,env.json}: tests/deploy.rs loads each
  config.toml with the environment of env.json through stancewatch's own configuration loader;
- and, where the variant renders a PrometheusRule, rules.yml: its groups as a plain Prometheus rule file, which
  .ci/promtool-rules checks and unit-tests with promtool.

Uses Debian's python3-yaml (a dependency of yamllint).
"""
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHART = os.path.join(ROOT, "helm", "stancewatch")
OUT = os.path.join(ROOT, "target", "chart-render")
LINT = os.environ.get("HELM_LINT", os.path.join(ROOT, "..", "shared", "tools", "helm-lint"))

RENDER_TEMPLATE = """{{- range $path, $_ := .Files.Glob "files/_render/*" }}
{{- $_ := fail (printf "RENDER %s\\n%s" (base $path) (tpl ($.Files.Get $path) $)) }}
{{- end }}
"""


class RuleDumper(yaml.SafeDumper):
    """Writes multi-line strings (the rules' expressions) as literal blocks, as they are written in the chart."""


RuleDumper.add_representer(
    str, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s, style="|" if "\n" in s else None))


def merge(base, over):
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            merge(base[k], v)
        else:
            base[k] = v
    return base


def render(values_file):
    """{template file name: rendered text} for the chart with values_file merged over values.yaml."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = os.path.join(tmp, "stancewatch")
        shutil.copytree(CHART, copy)
        if values_file:
            with open(os.path.join(copy, "values.yaml")) as f:
                values = yaml.safe_load(f)
            with open(values_file) as f:
                merge(values, yaml.safe_load(f) or {})
            with open(os.path.join(copy, "values.yaml"), "w") as f:
                yaml.safe_dump(values, f, sort_keys=False)
        render_dir = os.path.join(copy, "files", "_render")
        os.makedirs(render_dir)
        for name in sorted(os.listdir(os.path.join(copy, "templates"))):
            if not name.startswith("_"):
                shutil.copy(os.path.join(copy, "templates", name), render_dir)
        with open(os.path.join(copy, "templates", "zz-render.yaml"), "w") as f:
            f.write(RENDER_TEMPLATE)
        proc = subprocess.run([LINT, copy], capture_output=True, text=True)
    log = proc.stdout + proc.stderr
    if proc.returncode != 0:
        sys.exit(f"chart_render: helm lint failed:\n{log}")
    rendered, problems = {}, []
    for line in log.splitlines():
        m = re.search(r'funcMap fail message=("RENDER .*")$', line)
        if m:
            text = ast.literal_eval(m.group(1))
            name, _, body = text.partition("\n")
            rendered[name.removeprefix("RENDER ")] = body
        elif "funcMap fail" in line or "missing required value" in line:
            problems.append(line)
    if problems:
        sys.exit("chart_render: the chart rejected the values:\n" + "\n".join(sorted(set(problems))))
    return rendered


def check(variant, rendered):
    docs = []
    for name, body in sorted(rendered.items()):
        if name == "NOTES.txt":
            continue
        for doc in yaml.safe_load_all(body):
            if doc is not None:
                docs.append((name, doc))
    kinds = {}
    for name, doc in docs:
        assert "kind" in doc and "apiVersion" in doc, f"{variant}: {name} renders a document without kind"
        kinds.setdefault(doc["kind"], []).append(doc)
    deploy = kinds["Deployment"][0]
    config_maps = [c for c in kinds["ConfigMap"] if "config.toml" in c.get("data", {})]
    assert len(config_maps) == 1, f"{variant}: expected one ConfigMap with config.toml"
    config_text = config_maps[0]["data"]["config.toml"]
    config = tomllib.loads(config_text)
    pod = deploy["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    drain_s = -(-config["processing"]["shutdown_drain_timeout_ms"] // 1000)
    grace = pod["terminationGracePeriodSeconds"]
    assert grace > drain_s, f"{variant}: grace period {grace}s does not exceed the {drain_s}s drain"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", variant
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", variant
    port = int(config["http"]["listen"].rsplit(":", 1)[1])
    assert container["ports"][0]["containerPort"] == port, f"{variant}: containerPort is not http.listen's port"
    assert container["args"] == ["run", "--config", "/etc/stancewatch/config.toml"], variant
    assert pod["securityContext"]["runAsNonRoot"] is True, variant
    assert container["securityContext"]["readOnlyRootFilesystem"] is True, variant
    assert "checksum/config" in deploy["spec"]["template"]["metadata"]["annotations"], variant
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["config"] == "/etc/stancewatch", variant
    env = {}
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
        else:
            ref = e["valueFrom"]["secretKeyRef"]
            env[e["name"]] = f"from-secret-{ref['name']}-{ref['key']}"
    for kind in ("Service", "PodDisruptionBudget"):
        assert kind in kinds, f"{variant}: no {kind}"
    for job in kinds.get("Job", []):
        check_replay_job(variant, job, container, config, kinds["Service"][0])
    summary = ", ".join(f"{k} x{len(v)}" if len(v) > 1 else k for k, v in sorted(kinds.items()))
    print(f"{variant}: {summary}; terminationGracePeriodSeconds={grace} (drain {drain_s}s); "
          f"{len(env)} env vars")
    out = os.path.join(OUT, variant)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "manifests.yaml"), "w") as f:
        for name, body in sorted(rendered.items()):
            if name != "NOTES.txt" and body.strip():
                f.write(f"---\n# Source: stancewatch/templates/{name}\n{body.strip()}\n")
    with open(os.path.join(out, "NOTES.txt"), "w") as f:
        f.write(rendered.get("NOTES.txt", ""))
    with open(os.path.join(out, "config.toml"), "w") as f:
        f.write(config_text)
    with open(os.path.join(out, "env.json"), "w") as f:
        json.dump(env, f, indent=2)
    for rule in kinds.get("PrometheusRule", []):
        groups = rule["spec"]["groups"]
        assert groups and all(g["rules"] for g in groups), f"{variant}: an empty rule group"
        with open(os.path.join(out, "rules.yml"), "w") as f:
            f.write(f"# The groups of the PrometheusRule rendered for {variant}, as a Prometheus rule file.\n")
            yaml.dump({"groups": groups}, f, Dumper=RuleDumper, sort_keys=False, width=120)


def check_replay_job(variant, job, live, config, service):
    """The replay Job runs `stancewatch replay` with the live pods' configuration and credentials, in a group
    of its own, and its pods are not the Service's (their counters must not mix with the live ones)."""
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = container["args"]
    assert args[:3] == ["replay", "--config", "/etc/stancewatch/config.toml"], f"{variant}: replay args {args}"
    assert "--from" in args, f"{variant}: replay without --from"
    group = args[args.index("--group") + 1]
    assert group != config["kafka"]["group_id"], f"{variant}: the replay Job uses the live group"
    assert pod["restartPolicy"] == "Never", variant
    assert container.get("env") == live.get("env"), f"{variant}: the replay's environment differs from the live pods'"
    assert container["image"] == live["image"], variant
    labels = job["spec"]["template"]["metadata"]["labels"]
    selector = service["spec"]["selector"]
    assert any(labels.get(k) != v for k, v in selector.items()), f"{variant}: the Service selects the replay's pods"


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    variants = [("default", None)]
    ci = os.path.join(CHART, "ci")
    for name in sorted(os.listdir(ci)):
        if name.endswith("-values.yaml") and not name.startswith("fail-"):
            variants.append((name.removesuffix("-values.yaml"), os.path.join(ci, name)))
    for variant, values in variants:
        check(variant, render(values))
    print(f"chart_render: ok, rendered manifests in {os.path.relpath(OUT, ROOT)}/")


main()
