"""Check that every metric a dashboard or rules file queries is one /metrics serves.

usage: promql_names.py METRICS_TEXT FILE...

METRICS_TEXT is a scrape of /metrics (families are read from its "# TYPE"
lines, so a family with no sample yet still counts). Each FILE is a Grafana
dashboard (.json: every "expr", and label_values() in template queries) or
a Prometheus rules file (.yaml: every "expr:"). Prints one line per problem
and exits 1: a metric the scrape lacks, a name that is not CephaloProxy's
(cephaloproxy_*), or a file with no expression at all.
"""

from __future__ import annotations

import json
import re
import sys

PREFIX = "cephaloproxy_"
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
            "group_left", "group_right", "inf", "nan"}
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NAME = re.compile(r"(?<![\w.$])[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_VALUES = re.compile(r"label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: what is left once strings,
    label matchers, ranges, grouping clauses, functions and keywords are taken out."""
    text = _STRINGS.sub(" ", expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for found in _NAME.finditer(text):
        rest = text[found.end():].lstrip()
        if rest.startswith("(") or found.group().lower() in KEYWORDS:
            continue  # a function or an aggregation, or an operator word
        names.add(found.group())
    return names


def dashboard_exprs(document) -> list[str]:
    found = []
    if isinstance(document, dict):
        for key, value in document.items():
            if key == "expr" and isinstance(value, str):
                found.append(value)
            elif key == "query" and isinstance(value, str) and "label_values(" in value:
                found.extend(_LABEL_VALUES.findall(value))
            else:
                found.extend(dashboard_exprs(value))
    elif isinstance(document, list):
        for item in document:
            found.extend(dashboard_exprs(item))
    return found


def rules_exprs(text: str) -> list[str]:
    """``expr:`` values of a rules file: on the line, or a block (>-, |) below it."""
    found = []
    lines = text.splitlines()
    for index, line in enumerate(lines):
        key, sep, value = line.strip().partition("expr:")
        if not sep or key:
            continue
        value = value.strip()
        if value in (">-", ">", "|", "|-"):
            indent = len(line) - len(line.lstrip())
            block = []
            for following in lines[index + 1:]:
                if following.strip() and len(following) - len(following.lstrip()) <= indent:
                    break
                block.append(following.strip())
            value = " ".join(block)
        found.append(value)
    return found


def served_families(metrics_text: str) -> set[str]:
    return {line.split()[2] for line in metrics_text.splitlines() if line.startswith("# TYPE ")}


def problems(metrics_text: str, path: str) -> list[str]:
    with open(path, encoding="utf-8") as file:
        text = file.read()
    exprs = dashboard_exprs(json.loads(text)) if path.endswith(".json") else rules_exprs(text)
    if not exprs:
        return [f"{path}: no expression found"]
    served = served_families(metrics_text)
    found = []
    for expr in exprs:
        for name in sorted(metric_names(expr)):
            if not name.startswith(PREFIX):
                found.append(f"{path}: {name} is not a CephaloProxy metric, in: {expr}")
            elif name not in served:
                found.append(f"{path}: {name} is not served by /metrics, in: {expr}")
    return found


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as file:
        metrics_text = file.read()
    found = [problem for path in argv[1:] for problem in problems(metrics_text, path)]
    for problem in found:
        print(problem)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
