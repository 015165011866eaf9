"""Helpers of tests/deploy/check.sh, run with the deploy venv's python.

  deploy_tools.py dockerfile FILE                 # FROM lines pinned by digest, cargo build --locked
  deploy_tools.py helm-render CHART VALUES NAME NS [KEY=FILE ...]
                                                  # `helm template` through Helm's Go SDK: YAML on stdout
  deploy_tools.py helm-lint CHART                 # `helm lint`: fails on errors
  deploy_tools.py configmap-file MANIFESTS NAME KEY   # one ConfigMap entry of a multi-document YAML file
  deploy_tools.py split-kinds MANIFESTS OUT_DIR KIND...   # writes the documents whose kind is not listed
  deploy_tools.py init-script MANIFESTS NAME      # the shell script of the DaemonSet's init container NAME
  deploy_tools.py compose-script COMPOSE SERVICE  # the shell script of a Compose service's entrypoint
  deploy_tools.py parse FILE...                   # every file is YAML (all its documents)

Each exits 1 with a message naming the file and the problem.
"""

import re
import sys
from pathlib import Path

DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def fail(message):
    print(f"deploy_tools: {message}", file=sys.stderr)
    sys.exit(1)


def logical_lines(text):
    """Dockerfile instructions: comments dropped, continuation lines joined."""
    lines, current = [], ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    if current:
        lines.append(current)
    return lines


def check_dockerfile(path):
    """Every FROM names an earlier stage or an image pinned by @sha256 digest;
    every cargo build is --locked and there is one; the base.digest label's
    build arg equals the digest of the stage it describes (the runtime)."""
    problems, stages, froms, builds, args = [], set(), [], 0, {}
    for line in logical_lines(Path(path).read_text()):
        words = line.split()
        keyword = words[0].upper()
        if keyword == "FROM":
            operands = [w for w in words[1:] if not w.startswith("--")]
            if not operands:
                problems.append(f"FROM without an image: {line}")
                continue
            image = operands[0]
            if image not in stages and not DIGEST.search(image):
                problems.append(f"FROM {image} is not pinned by @sha256 digest")
            if len(operands) >= 3 and operands[1].upper() == "AS":
                stages.add(operands[2])
            froms.append(image)
        elif keyword == "ARG" and len(words) > 1 and "=" in words[1]:
            name, value = words[1].split("=", 1)
            args[name] = value
        elif keyword == "RUN" and re.search(r"\bcargo\s+build\b", line):
            builds += 1
            for command in re.findall(r"cargo\s+build[^&;|]*", line):
                if "--locked" not in command.split():
                    problems.append(f"`{command.strip()}` does not use --locked")
    if builds == 0:
        problems.append("no RUN cargo build: the binaries must be built inside the image")
    base = args.get("BASE_DIGEST")
    pinned = [f.split("@", 1)[1] for f in froms if "@" in f]
    if base is not None and base not in pinned[1:]:
        problems.append(f"ARG BASE_DIGEST={base} is not the digest of a runtime FROM line")
    if problems:
        fail(f"{path}:\n  " + "\n  ".join(problems))
    print(f"{path}: {len(froms)} FROM line(s), each pinned by digest or an earlier stage; {builds} cargo build(s), all --locked")


def helm_render(chart, values_file, name, namespace, files):
    import yaml
    import helm_python as helm

    values = yaml.safe_load(Path(values_file).read_text()) or {}
    for item in files:
        key, _, file = item.partition("=")
        values[key] = Path(file).read_text()
    with helm.Chart.load(chart) as loaded:
        rendered = loaded.render(values, name=name, namespace=namespace)
    out = []
    for template in sorted(rendered):
        if template.endswith("NOTES.txt"):
            continue
        for document in re.split(r"^---\s*$", rendered[template], flags=re.M):
            if document.strip():
                out.append(f"# Source: {template}\n{document.strip()}\n")
    sys.stdout.write("---\n" + "---\n".join(out))


def helm_lint(chart):
    import helm_python as helm

    result = helm.lint(chart)
    for message in result.get("messages", []):
        print(f"helm lint: {message.get('path')}: {message.get('error')}")
    if result.get("errors"):
        fail(f"helm lint {chart}: {result['errors']}")


def documents(path):
    import yaml

    return [d for d in yaml.safe_load_all(Path(path).read_text()) if d]


def configmap_file(manifests, name, key):
    for doc in documents(manifests):
        if doc.get("kind") == "ConfigMap" and doc["metadata"]["name"].startswith(name):
            if key in doc.get("data", {}):
                sys.stdout.write(doc["data"][key])
                return
    fail(f"{manifests}: no ConfigMap {name} with key {key}")


def init_script(manifests, name):
    """The script of a DaemonSet's init container run as `/bin/sh -c SCRIPT`."""
    for doc in documents(manifests):
        if doc.get("kind") != "DaemonSet":
            continue
        for container in doc["spec"]["template"]["spec"].get("initContainers", []):
            if container["name"] != name:
                continue
            command = container.get("command", [])
            if command[:2] != ["/bin/sh", "-c"] or len(command) != 3:
                fail(f"{manifests}: init container {name} is not `/bin/sh -c SCRIPT`: {command}")
            sys.stdout.write(command[2])
            return
    fail(f"{manifests}: no DaemonSet with an init container {name}")


def compose_script(compose, service):
    """The script of a Compose service whose entrypoint is `/bin/sh -c SCRIPT`."""
    services = documents(compose)[0].get("services", {})
    entrypoint = services.get(service, {}).get("entrypoint", [])
    if entrypoint[:2] != ["/bin/sh", "-c"] or len(entrypoint) != 3:
        fail(f"{compose}: service {service}'s entrypoint is not `/bin/sh -c SCRIPT`: {entrypoint}")
    sys.stdout.write(entrypoint[2])


def split_kinds(manifests, out_dir, skip):
    import yaml

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    kept = 0
    for i, doc in enumerate(documents(manifests)):
        if doc.get("kind") in skip:
            continue
        kept += 1
        (out / f"{i:03d}-{doc['kind']}.yaml").write_text(yaml.safe_dump(doc))
    print(f"{manifests}: {kept} resource(s) to validate")


def parse(files):
    import yaml

    bad = []
    for file in files:
        try:
            list(yaml.safe_load_all(Path(file).read_text()))
        except yaml.YAMLError as e:
            bad.append(f"{file}: {e}")
    if bad:
        fail("\n".join(bad))
    print(f"{len(files)} YAML file(s) parse")


def main(argv):
    if len(argv) < 2:
        fail(__doc__)
    command, args = argv[1], argv[2:]
    if command == "dockerfile" and len(args) == 1:
        check_dockerfile(args[0])
    elif command == "helm-render" and len(args) >= 4:
        helm_render(args[0], args[1], args[2], args[3], args[4:])
    elif command == "helm-lint" and len(args) == 1:
        helm_lint(args[0])
    elif command == "configmap-file" and len(args) == 3:
        configmap_file(*args)
    elif command == "parse" and args:
        parse(args)
    elif command == "init-script" and len(args) == 2:
        init_script(*args)
    elif command == "compose-script" and len(args) == 2:
        compose_script(*args)
    elif command == "split-kinds" and len(args) >= 2:
        split_kinds(args[0], args[1], set(args[2:]))
    else:
        fail(__doc__)


if __name__ == "__main__":
    main(sys.argv)
