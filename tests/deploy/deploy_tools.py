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
  deploy_tools.py container-env MANIFESTS NAME    # the literal env of the DaemonSet's container NAME, KEY=VALUE lines
  deploy_tools.py socket-wiring MANIFESTS SOCKET ALLOWLIST
                                                  # the agent's runtime socket SOCKET is wired as docs/deploy.md says

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


def daemonset_pod(manifests):
    for doc in documents(manifests):
        if doc.get("kind") == "DaemonSet":
            return doc["spec"]["template"]["spec"]
    fail(f"{manifests}: no DaemonSet")


def container_env(manifests, name):
    """The env entries with a literal value of the DaemonSet's container NAME."""
    for container in daemonset_pod(manifests).get("containers", []):
        if container["name"] == name:
            for entry in container.get("env", []):
                if "value" in entry:
                    print(f"{entry['name']}={entry['value']}")
            return
    fail(f"{manifests}: the DaemonSet has no container {name}")


def mount_holding(container, path):
    """The volumeMount of CONTAINER under which PATH lies (the deepest), or None."""
    best = None
    for mount in container.get("volumeMounts", []):
        root = mount["mountPath"].rstrip("/") + "/"
        if path.startswith(root) and (best is None or len(root) > len(best["mountPath"])):
            best = mount
    return best


def socket_wiring(manifests, socket, allowlist):
    """The agent's runtime socket SOCKET (a path in the agent's container) is
    reachable as deployed, and on containerd only through the allowlist.

    Without a cri-allowlist container, SOCKET lies in a hostPath directory
    mounted read-only into the agent. With one: SOCKET is the allowlist's
    ENVPARITY_CRI_LISTEN, in a volume that is no hostPath and that both
    containers mount at the same path; the allowlist's ENVPARITY_CRI_SOCKET
    lies in a hostPath it mounts read-only; the agent mounts no hostPath
    directory but the node's os-release and its journal; the allowlist's
    configuration (a ConfigMap's haproxy.cfg) is exactly the file ALLOWLIST;
    and the pod shares no process namespace (the agent would reach the
    allowlist's mounts through /proc)."""
    pod = daemonset_pod(manifests)
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    containers = {c["name"]: c for c in pod.get("containers", [])}
    agent = containers.get("agent") or fail(f"{manifests}: no agent container")
    proxy = containers.get("cri-allowlist")
    problems = []
    mount = mount_holding(agent, socket)
    if mount is None:
        fail(f"{manifests}: the agent's socket {socket} is in no volume mounted into the agent container")
    volume = volumes.get(mount["name"], {})
    if proxy is None:
        if "hostPath" not in volume:
            problems.append(f"{socket} is in volume {mount['name']}, not a hostPath of the node")
        if not mount.get("readOnly"):
            problems.append(f"the node's directory {mount['mountPath']} is mounted writable into the agent")
    else:
        env = {e["name"]: e.get("value") for e in proxy.get("env", [])}
        if env.get("ENVPARITY_CRI_LISTEN") != socket:
            problems.append(f"the agent reads {socket}, the allowlist listens on {env.get('ENVPARITY_CRI_LISTEN')}")
        if "hostPath" in volume:
            problems.append(f"the agent's socket {socket} is in hostPath volume {mount['name']}")
        shared = mount_holding(proxy, socket)
        if shared is None or shared["name"] != mount["name"] or shared["mountPath"] != mount["mountPath"]:
            problems.append(f"the allowlist does not mount volume {mount['name']} at {mount['mountPath']}")
        cri = env.get("ENVPARITY_CRI_SOCKET") or ""
        cri_mount = mount_holding(proxy, cri)
        if cri_mount is None or "hostPath" not in volumes.get(cri_mount["name"], {}):
            problems.append(f"the allowlist's runtime socket {cri!r} is in no hostPath it mounts")
        elif not cri_mount.get("readOnly"):
            problems.append(f"the allowlist mounts the node's {cri_mount['mountPath']} writable")
        allowed = {"/etc/os-release", "/var/lib/envparity-agent"}
        for m in agent.get("volumeMounts", []):
            host = volumes.get(m["name"], {}).get("hostPath")
            if host and host["path"] not in allowed and not m["mountPath"].startswith("/var/lib/envparity"):
                problems.append(f"the agent container mounts the node's {host['path']} (volume {m['name']})")
        if pod.get("shareProcessNamespace"):
            problems.append("shareProcessNamespace: the agent would see the allowlist's mounts through /proc")
        expected = Path(allowlist).read_text()
        config = mount_holding(proxy, next((a for a in proxy.get("command", []) + proxy.get("args", [])
                                            if a.endswith(".cfg")), ""))
        cm_name = volumes.get(config["name"], {}).get("configMap", {}).get("name") if config else None
        found = [d for d in documents(manifests)
                 if d.get("kind") == "ConfigMap" and d["metadata"]["name"] == cm_name]
        if not found:
            problems.append(f"the allowlist's configuration is no ConfigMap of these manifests ({cm_name})")
        elif found[0].get("data", {}).get("haproxy.cfg") != expected:
            problems.append(f"ConfigMap {cm_name}'s haproxy.cfg is not {allowlist}")
    if problems:
        fail(f"{manifests}:\n  " + "\n  ".join(problems))
    print(f"{manifests}: the agent's {socket} is wired as documented")


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
    elif command == "container-env" and len(args) == 2:
        container_env(*args)
    elif command == "socket-wiring" and len(args) == 3:
        socket_wiring(*args)
    elif command == "split-kinds" and len(args) >= 2:
        split_kinds(args[0], args[1], set(args[2:]))
    else:
        fail(__doc__)


if __name__ == "__main__":
    main(sys.argv)
