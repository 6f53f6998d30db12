"""The graph of a compiled pipeline, as a Kubeflow user's runs see it: its parameters,
its tasks (which component, which inputs from where, which dependencies, caching and
retries), each component's interface and image, and the Kubernetes platform spec;
without component source code and descriptions (which change with any refactoring).

``python tests/pipeline_graphs.py OUT.json YAML...`` writes the graphs of compiled
pipelines (how tests/data/graphs-before-issue-17.json was made, from the compiled YAML at
commit 0251310, before the second shape pass)."""

from __future__ import annotations

import json
import os
import sys

import yaml


def _without_descriptions(o):
    if isinstance(o, dict):
        return {k: _without_descriptions(v) for k, v in o.items() if k != "description"}
    if isinstance(o, list):
        return [_without_descriptions(v) for v in o]
    return o


def graph(path: str) -> dict:
    with open(path) as f:
        docs = list(yaml.safe_load_all(f))
    spec, platform = docs[0], (docs[1] if len(docs) > 1 else {})
    components = {name: _without_descriptions({"in": c.get("inputDefinitions"),
                                               "out": c.get("outputDefinitions"),
                                               "dag": c.get("dag")})
                  for name, c in spec["components"].items()}
    executors = {name: ({"image": e["container"]["image"],
                         "resources": e["container"].get("resources")}
                        if "container" in e else _without_descriptions(e))
                 for name, e in spec["deploymentSpec"]["executors"].items()}
    return json.loads(json.dumps({"root": _without_descriptions(spec["root"]),
                                  "components": components, "executors": executors,
                                  "platform": platform}))


if __name__ == "__main__":
    out = {os.path.basename(p): graph(p) for p in sys.argv[2:]}
    with open(sys.argv[1], "w") as f:
        json.dump(out, f, sort_keys=True, separators=(",", ":"))
        f.write("\n")
