#!/usr/bin/env python3
"""Fails when the modules of a workspace crate import each other in a cycle.

Cargo already refuses cycles between crates; inside a crate nothing does. For each library of
the workspace (the members of Cargo.toml), every module the root declares (`mod x;`) is a node,
and a module that names another (`crate::x`, `use crate::{x, ..}`, or an item the root re-exports
from x with `pub use x::..`) is an edge to it. Comments, strings and inline test modules
(`#[cfg(test)] mod tests { .. }`) are not read. Prints every
cycle and exits 1; prints the module count and exits 0 when there is none.
"""
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def code(text: str) -> str:
    """The text without comments and string literals."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r'r#*"(?:.|\n)*?"#*', '""', text)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    return re.sub(r"//[^\n]*", "", text)


def without_test_modules(text: str) -> str:
    """The text without its inline `#[cfg(test)] mod x { .. }` blocks: what a test imports is
    not part of the module's dependencies."""
    out, start = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text):
        if m.start() < start:
            continue
        depth, i = 1, m.end()
        while depth and i < len(text):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        out.append(text[start:m.start()])
        start = i
    out.append(text[start:])
    return "".join(out)


def library(member: Path) -> Path | None:
    manifest = tomllib.loads((member / "Cargo.toml").read_text())
    path = manifest.get("lib", {}).get("path", "src/lib.rs")
    lib = member / path
    return lib if lib.exists() else None


def graph(lib: Path) -> dict[str, set[str]]:
    root = code(lib.read_text())
    modules = set(re.findall(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", root, re.M))
    # Items the root re-exports, by the module that defines them.
    owner: dict[str, str] = {}
    for module, names in re.findall(r"pub\s+use\s+(\w+)::\{?([\w\s,:]*)\}?\s*;", root):
        for name in re.findall(r"(\w+)\s*(?:,|$)", names):
            owner[name] = module
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for m in modules:
        f = lib.parent / f"{m}.rs"
        if not f.exists():
            continue
        text = without_test_modules(code(f.read_text()))
        names = re.findall(r"\bcrate::(\w+)", text)
        for group in re.findall(r"\bcrate::\{([^}]*)\}", text):
            names += re.findall(r"\b(\w+)\b", group)
        for name in names:
            target = name if name in modules else owner.get(name)
            if target and target != m:
                edges[m].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    found, state, path = [], {}, []

    def visit(n: str) -> None:
        state[n] = "open"
        path.append(n)
        for t in sorted(edges.get(n, ())):
            if state.get(t) == "open":
                found.append(path[path.index(t):] + [t])
            elif t not in state:
                visit(t)
        path.pop()
        state[n] = "done"

    for n in sorted(edges):
        if n not in state:
            visit(n)
    return found


def main() -> int:
    members = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["members"]
    bad, count = 0, 0
    for member in members:
        lib = library(ROOT / member)
        if lib is None:
            continue
        edges = graph(lib)
        count += len(edges)
        for c in cycles(edges):
            bad += 1
            print(f"module cycle in {member}: {' -> '.join(c)}")
    if bad:
        return 1
    print(f"no module cycles ({count} modules in {len(members)} crates)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
