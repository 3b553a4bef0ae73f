#!/usr/bin/env python3
"""Static checks of Quipu's deployment files (no Docker, cluster or cargo needed).

    python3 deploy/check_manifests.py

- every *.yaml / *.yml under deploy/ parses (all documents of a multi-document
  file);
- every Kubernetes document under deploy/k8s/ has apiVersion, kind and
  metadata.name; kustomization.yaml's resources exist and list every manifest;
  Deployments' selectors match their pod labels, pods carry
  app.kubernetes.io/part-of: quipu (the NetworkPolicy relies on it), and each
  Service selects some Deployment's pods;
- docker-compose.yml has a scheduler and executors, every Quipu service uses
  image quipu:latest, and the Dockerfile it builds from exists;
- the systemd units have [Unit], [Service] and [Install] (a oneshot service
  that a timer starts needs no [Install]), and ExecStart runs
  /usr/local/bin/quipu; every .timer has [Unit], [Timer] with an OnCalendar
  (checked by `systemd-analyze calendar` where systemd is installed) and
  [Install] WantedBy=timers.target, and starts a service unit of this folder
  (a template's instance counts); report services and CronJobs run
  `quipu ... report daily|weekly|monthly --out DIR`;
- CronJobs have a five-field schedule, concurrencyPolicy Forbid, and pods
  like the Deployments' (part-of label, quipu image, resources);
- deploy/config/*.toml and the TOML files embedded in ConfigMaps parse with
  tomllib and use only the keys their process accepts.

Exits 1 listing every problem; prints "ok: N files" otherwise. Needs PyYAML.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

try:
    import yaml
except ImportError:  # pragma: no cover - depends on the environment
    sys.exit("error: PyYAML is missing: pip install pyyaml (or run with a venv that has it)")

DEPLOY = Path(__file__).resolve().parent
IMAGE = "quipu:latest"
BINARY = "/usr/local/bin/quipu"
PART_OF = ("app.kubernetes.io/part-of", "quipu")

# The keys each process accepts in its --config file (flat, no sections):
# SCHEDULER_KEYS / EXECUTOR_KEYS of cli/src/server_cmd.rs.
SCHEDULER_KEYS = {
    "data_dir",
    "bind",
    "port",
    "http_port",
    "external_host",
    "token_file",
    "executor_timeout",
    "slots",
    "pg_listen",
    "pg_tls_cert",
    "pg_tls_key",
    "pg_allow_plaintext",
    "pg_max_connections",
    "pg_max_startup_connections",
    "pg_startup_timeout",
    "flight_listen",
    "flight_tls_cert",
    "flight_tls_key",
    "flight_allow_plaintext",
    "flight_max_sessions_per_user",
    "flight_session_idle_timeout",
    "flight_first_call_timeout",
    "flight_max_connection_age",
    "task_scheduling",
}
REPORT_PERIODS = {"daily", "weekly", "monthly"}
EXECUTOR_KEYS = {
    "scheduler",
    "catalog_url",
    "bind",
    "external_host",
    "port",
    "grpc_port",
    "http_port",
    "slots",
    "work_dir",
    "heartbeat",
    "token_file",
    "task_scheduling",
}

errors: list[str] = []


def fail(path: Path | str, message: str) -> None:
    errors.append(f"{rel(path)}: {message}")


def rel(path: Path | str) -> str:
    path = Path(path)
    try:
        return str(path.relative_to(DEPLOY.parent))
    except ValueError:
        return str(path)


# ---------------------------------------------------------------- YAML

def load_yaml(path: Path) -> list:
    try:
        with path.open(encoding="utf-8") as f:
            return [d for d in yaml.safe_load_all(f) if d is not None]
    except yaml.YAMLError as e:
        fail(path, f"not valid YAML: {e}")
        return []


def check_k8s(docs_by_file: dict[Path, list]) -> None:
    k8s = DEPLOY / "k8s"
    kustomization = k8s / "kustomization.yaml"
    manifests = {p: d for p, d in docs_by_file.items() if p.parent == k8s and p != kustomization}
    all_docs = []
    for path, docs in manifests.items():
        if not docs:
            fail(path, "holds no Kubernetes document")
        for i, doc in enumerate(docs):
            where = f"document {i + 1}"
            if not isinstance(doc, dict):
                fail(path, f"{where} is not a mapping")
                continue
            for key in ("apiVersion", "kind"):
                if not isinstance(doc.get(key), str) or not doc[key]:
                    fail(path, f"{where} has no {key}")
            meta = doc.get("metadata")
            if not isinstance(meta, dict) or not meta.get("name"):
                fail(path, f"{where} ({doc.get('kind', '?')}) has no metadata.name")
            all_docs.append((path, doc))

    if not kustomization.exists():
        fail(kustomization, "missing")
    else:
        docs = docs_by_file.get(kustomization) or [{}]
        resources = docs[0].get("resources") if isinstance(docs[0], dict) else None
        if not isinstance(resources, list) or not resources:
            fail(kustomization, "has no resources list")
            resources = []
        for res in resources:
            if not (k8s / str(res)).exists():
                fail(kustomization, f"resource {res} does not exist")
        listed = {(k8s / str(r)).resolve() for r in resources}
        for path in manifests:
            if path.resolve() not in listed:
                fail(kustomization, f"does not list {path.name}")

    pod_labels = []
    PVCS.update(
        (doc.get("metadata") or {}).get("name")
        for _, doc in all_docs
        if doc.get("kind") == "PersistentVolumeClaim"
    )
    for path, doc in all_docs:
        kind = doc.get("kind")
        name = (doc.get("metadata") or {}).get("name", "?")
        if kind in ("Deployment", "StatefulSet", "DaemonSet"):
            spec = doc.get("spec") or {}
            selector = (spec.get("selector") or {}).get("matchLabels") or {}
            template = spec.get("template") or {}
            labels = (template.get("metadata") or {}).get("labels") or {}
            pod_labels.append(labels)
            if not selector:
                fail(path, f"{kind} {name} has no spec.selector.matchLabels")
            for k, v in selector.items():
                if labels.get(k) != v:
                    fail(path, f"{kind} {name}: selector {k}={v} does not match the pod labels")
            if labels.get(PART_OF[0]) != PART_OF[1]:
                fail(path, f"{kind} {name}: pods lack the label {PART_OF[0]}: {PART_OF[1]}")
            containers = (template.get("spec") or {}).get("containers") or []
            if not containers:
                fail(path, f"{kind} {name} has no containers")
            for c in containers:
                if not str(c.get("image", "")).startswith("quipu"):
                    fail(path, f"{kind} {name}: container {c.get('name')} does not run the quipu image")
                if "resources" not in c:
                    fail(path, f"{kind} {name}: container {c.get('name')} has no resources")
        if kind == "CronJob":
            check_cronjob(path, name, doc.get("spec") or {}, pod_labels)
        if kind == "ConfigMap":
            for key, text in (doc.get("data") or {}).items():
                if key.endswith(".toml"):
                    check_toml_text(path, f"{name}/{key}", str(text), allowed_keys(key))
    for path, doc in all_docs:
        if doc.get("kind") == "Service":
            selector = (doc.get("spec") or {}).get("selector") or {}
            if selector and not any(all(l.get(k) == v for k, v in selector.items()) for l in pod_labels):
                fail(path, f"Service {doc['metadata'].get('name')} selects no pods of these manifests")


def check_report_args(path: Path, where: str, args: list[str]) -> None:
    """`quipu [global flags] report PERIOD ... --out DIR`."""
    if "report" not in args:
        fail(path, f"{where} does not run `quipu report`: {args}")
        return
    rest = args[args.index("report") + 1:]
    if not rest or rest[0] not in REPORT_PERIODS and rest[0] != "%i":
        fail(path, f"{where}: `report` needs a period ({', '.join(sorted(REPORT_PERIODS))}), got {rest[:1]}")
    if "--out" not in rest or rest.index("--out") + 1 >= len(rest):
        fail(path, f"{where}: `report` needs --out DIR")


def check_cronjob(path: Path, name: str, spec: dict, pod_labels: list) -> None:
    schedule = str(spec.get("schedule", ""))
    if len(schedule.split()) != 5:
        fail(path, f"CronJob {name}: schedule {schedule!r} is not five cron fields")
    if spec.get("concurrencyPolicy") != "Forbid":
        fail(path, f"CronJob {name}: concurrencyPolicy should be Forbid (two runs would race for the same report)")
    pod = (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template")) or {}
    labels = (pod.get("metadata") or {}).get("labels") or {}
    if labels.get(PART_OF[0]) != PART_OF[1]:
        fail(path, f"CronJob {name}: pods lack the label {PART_OF[0]}: {PART_OF[1]} (the NetworkPolicy lets only those reach the scheduler)")
    pod_labels.append(labels)
    pod_spec = pod.get("spec") or {}
    if pod_spec.get("restartPolicy") not in ("Never", "OnFailure"):
        fail(path, f"CronJob {name}: restartPolicy must be Never or OnFailure")
    containers = pod_spec.get("containers") or []
    if not containers:
        fail(path, f"CronJob {name} has no containers")
    claims = {((v.get("persistentVolumeClaim") or {}).get("claimName")) for v in pod_spec.get("volumes") or []}
    for c in containers:
        if not str(c.get("image", "")).startswith("quipu"):
            fail(path, f"CronJob {name}: container {c.get('name')} does not run the quipu image")
        if "resources" not in c:
            fail(path, f"CronJob {name}: container {c.get('name')} has no resources")
        args = [str(a) for a in c.get("args") or []]
        check_report_args(path, f"CronJob {name}", args)
        if "--out" in args and args.index("--out") + 1 < len(args):
            out = args[args.index("--out") + 1]
            mounts = [m.get("mountPath") for m in c.get("volumeMounts") or []]
            if out not in mounts:
                fail(path, f"CronJob {name}: --out {out} is not a mounted volume")
    for claim in claims - {None}:
        if claim not in PVCS:
            fail(path, f"CronJob {name}: claim {claim} is not defined in deploy/k8s")


PVCS: set[str] = set()


def check_compose(path: Path, docs: list) -> None:
    if len(docs) != 1 or not isinstance(docs[0], dict):
        fail(path, "expected one compose document")
        return
    services = docs[0].get("services") or {}
    if "scheduler" not in services:
        fail(path, "no scheduler service")
    if not any(name.startswith("executor") for name in services):
        fail(path, "no executor service")
    for name, svc in services.items():
        image = str((svc or {}).get("image", ""))
        is_quipu = name == "scheduler" or name.startswith("executor") or image.startswith("quipu")
        if not is_quipu:
            continue
        if image != IMAGE:
            fail(path, f"service {name} uses image {image or '(none)'}, expected {IMAGE}")
        build = svc.get("build")
        if isinstance(build, dict):
            context = (path.parent / str(build.get("context", "."))).resolve()
            dockerfile = context / str(build.get("dockerfile", "Dockerfile"))
            if not dockerfile.exists():
                fail(path, f"service {name} builds from {dockerfile}, which does not exist")


# ---------------------------------------------------------------- systemd

def parse_unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            sections.setdefault(current, [])
        elif "=" in line and current is not None:
            key, value = line.split("=", 1)
            sections[current].append((key.strip(), value.strip()))
        else:
            fail(path, f"line {n} is neither a section nor key=value: {raw!r}")
    return sections


def values(sections: dict, section: str, key: str) -> list[str]:
    return [v for k, v in sections.get(section, []) if k == key]


def check_unit(path: Path, timed: set[str]) -> None:
    sections = parse_unit(path)
    oneshot = values(sections, "Service", "Type") == ["oneshot"]
    needed = ["Unit", "Service"]
    if not (oneshot and path.name in timed):
        needed.append("Install")
    for section in needed:
        if section not in sections:
            fail(path, f"no [{section}] section")
    starts = values(sections, "Service", "ExecStart")
    if len(starts) != 1:
        fail(path, f"expected one ExecStart, found {len(starts)}")
    for value in starts:
        if not value.split(maxsplit=1)[0:1] == [BINARY]:
            fail(path, f"ExecStart does not start with {BINARY}: {value}")
        if " report " in value:
            check_report_args(path, "ExecStart", value.split()[1:])


def timer_target(path: Path, sections: dict) -> str:
    """The service a timer starts, as a file name (template for instances)."""
    unit = (values(sections, "Timer", "Unit") or [path.stem + ".service"])[0]
    name, _, suffix = unit.rpartition(".")
    if "@" in name:
        prefix, _, instance = name.partition("@")
        if instance and prefix.startswith("quipu-report") and instance not in REPORT_PERIODS:
            fail(path, f"starts {unit}: {instance} is not a report period")
        name = prefix + "@"
    return f"{name}.{suffix}"


def check_timer(path: Path) -> str:
    sections = parse_unit(path)
    for section in ("Unit", "Timer", "Install"):
        if section not in sections:
            fail(path, f"no [{section}] section")
    calendars = values(sections, "Timer", "OnCalendar")
    if not calendars:
        fail(path, "no OnCalendar")
    analyze = shutil.which("systemd-analyze")
    for cal in calendars:
        if analyze:
            run = subprocess.run([analyze, "calendar", cal], capture_output=True, text=True)
            if run.returncode != 0:
                fail(path, f"OnCalendar={cal} is not a calendar event: {run.stderr.strip()}")
    if "timers.target" not in " ".join(values(sections, "Install", "WantedBy")):
        fail(path, "[Install] has no WantedBy=timers.target")
    target = timer_target(path, sections)
    if not (path.parent / target).exists():
        fail(path, f"starts {target}, which is not in {rel(path.parent)}")
    return target


# ---------------------------------------------------------------- TOML

def allowed_keys(filename: str) -> set[str] | None:
    if filename.startswith("scheduler"):
        return SCHEDULER_KEYS
    if filename.startswith("executor"):
        return EXECUTOR_KEYS
    return None


def check_toml_text(path: Path, label: str, text: str, allowed: set[str] | None) -> None:
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        fail(path, f"{label} is not valid TOML: {e}")
        return
    if allowed is None:
        fail(path, f"{label}: cannot tell whether it configures a scheduler or an executor")
        return
    for key, value in table.items():
        if key not in allowed:
            fail(path, f"{label}: unknown key '{key}' (allowed: {', '.join(sorted(allowed))})")
        elif isinstance(value, dict):
            fail(path, f"{label}: '{key}' is a table; the file is flat")


# ---------------------------------------------------------------- main

def main() -> int:
    checked = 0
    yaml_files = sorted(p for ext in ("*.yaml", "*.yml") for p in DEPLOY.rglob(ext))
    docs_by_file = {}
    for path in yaml_files:
        docs_by_file[path] = load_yaml(path)
        checked += 1
    if (DEPLOY / "k8s").is_dir():
        check_k8s(docs_by_file)
    else:
        fail(DEPLOY / "k8s", "missing")
    compose = [p for p in yaml_files if p.parent == DEPLOY and p.stem in ("docker-compose", "compose")]
    if not compose:
        fail(DEPLOY / "docker-compose.yml", "missing")
    for path in compose:
        check_compose(path, docs_by_file[path])

    timed = set()
    for path in sorted((DEPLOY / "systemd").glob("*.timer")):
        timed.add(check_timer(path))
        checked += 1
    units = sorted((DEPLOY / "systemd").glob("*.service"))
    if not units:
        fail(DEPLOY / "systemd", "no .service units")
    for path in units:
        check_unit(path, timed)
        checked += 1

    tomls = sorted((DEPLOY / "config").glob("*.toml"))
    if not tomls:
        fail(DEPLOY / "config", "no .toml files")
    for path in tomls:
        check_toml_text(path, path.name, path.read_text(encoding="utf-8"), allowed_keys(path.name))
        checked += 1

    if errors:
        for e in errors:
            print(f"error: {e}", file=sys.stderr)
        print(f"check_manifests: {len(errors)} problem(s) in deploy/", file=sys.stderr)
        return 1
    print(f"ok: {checked} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
