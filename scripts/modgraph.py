#!/usr/bin/env python3
"""Module import graph of one crate, and its import circles.

usage: python3 scripts/modgraph.py [--dot] [--top] [--only MOD,...] CRATE_OR_SRC_DIR

Every .rs file under the crate's src/ is a node, named by its module path
(`lib.rs` is the crate root, `a/mod.rs` and `a.rs` are `a`, `a/b.rs` is
`a::b`). An edge a -> b is drawn for each `crate::…` path (in `use` lines,
nested `use` groups included, or inline) and each `super::…` path in a's
code that names b or an item inside b: a path is resolved to the longest
module prefix that is a file. Not read: comments (doc comments included),
a `#[cfg(test)] mod …` block and everything after it in a file, and edges
between a module and its own submodules or parents (`mod x;`, `super::`
inside a child). Strings are not parsed: a `crate::` inside a string
literal counts.

Options:
  --top          merge every module into its top-level module (a::b is a),
                 so a circle through submodules of two files shows as one
                 between those files
  --only M,...   keep only these modules (and their submodules) and the
                 edges among them; circles are looked for among them only
  --dot          print a Graphviz digraph instead of the edge list

Prints the edges and every circle found (one per strongly connected
component of more than one module, as a shortest closed walk). Exit status:
1 if there is a circle, 0 if not, 2 on bad usage.
"""

import os
import re
import sys

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
PATH_RE = re.compile(r"\b(crate|super)((?:::" + IDENT + r")+)")
USE_RE = re.compile(r"\buse\s+((?:crate|super)\b[^;]*);", re.S)
TEST_MOD_RE = re.compile(r"^\s*#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+", re.M)


def module_of(rel):
    """Module path (tuple) of a file relative to src/."""
    parts = rel[:-3].split(os.sep)
    if parts[-1] in ("lib", "main", "mod"):
        parts = parts[:-1]
    return tuple(parts)


def strip(text):
    """Drops comments and an in-file unit-test module."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    m = TEST_MOD_RE.search(text)
    return text[: m.start()] if m else text


def use_tree(tree, prefix):
    """Every full path of a `use` tree (`a::{b, c::{d, e}}`) as a list."""
    tree = tree.strip()
    depth, brace = 0, None
    for i, ch in enumerate(tree):
        if ch == "{":
            if depth == 0:
                brace = i
            depth += 1
        elif ch == "}":
            depth -= 1
    if brace is None:
        segs = [s for s in tree.split(" as ")[0].strip().split("::") if s]
        yield prefix + [s for s in segs if s != "self" and s != "*"]
        return
    head = [s for s in tree[:brace].split("::") if s.strip()]
    inner = tree[brace + 1 : tree.rindex("}")]
    base = prefix + [s.strip() for s in head]
    yield base
    depth, start = 0, 0
    for i, ch in enumerate(inner + ","):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            item = inner[start:i]
            start = i + 1
            if item.strip():
                yield from use_tree(item, base)


def paths_in(text):
    """(root, segments) of every crate::/super:: path, `use` groups expanded."""
    for m in USE_RE.finditer(text):
        for path in use_tree(m.group(1), []):
            if path:
                yield path[0], path[1:]
    for m in PATH_RE.finditer(text):
        yield m.group(1), [s for s in m.group(2).split("::") if s]


def resolve(base, segs, modules):
    """Longest prefix of base + segs that is a file module."""
    path = list(base) + list(segs)
    while path:
        if tuple(path) in modules:
            return tuple(path)
        path.pop()
    return ()


def related(a, b):
    """Is one of the two modules the other or an ancestor of it?"""
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def build(src):
    files = {}
    for dirpath, _, names in os.walk(src):
        for name in names:
            if name.endswith(".rs"):
                full = os.path.join(dirpath, name)
                files[module_of(os.path.relpath(full, src))] = full
    modules = set(files)
    edges = {m: set() for m in modules}
    for mod, full in files.items():
        with open(full, encoding="utf-8") as f:
            text = strip(f.read())
        for root, segs in paths_in(text):
            if root == "crate":
                base = ()
            else:
                # `super` in a::b (file a/b.rs) is a; every further one goes up.
                base = mod[:-1]
                while segs and segs[0] == "super":
                    segs = segs[1:]
                    base = base[:-1]
            target = resolve(base, segs, modules)
            if not related(mod, target):
                edges[mod].add(target)
    return edges


def merge_top(edges):
    """The graph with every module merged into its top-level module."""
    top = {}
    for a, outs in edges.items():
        ta = a[:1]
        top.setdefault(ta, set())
        for b in outs:
            if b[:1] != ta:
                top[ta].add(b[:1])
    return top


def keep_only(edges, names):
    """The subgraph of the named modules and their submodules."""
    wanted = [tuple(n.split("::")) for n in names]

    def kept(m):
        return any(m[: len(w)] == w for w in wanted)

    return {a: {b for b in outs if kept(b)} for a, outs in edges.items() if kept(a)}


def strong_components(edges):
    """Tarjan's strongly connected components of more than one node."""
    index, low, stack, on, comps = {}, {}, [], set(), []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(set(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            strong(v)
    return comps


def shortest_cycle(edges, comp):
    """A shortest closed walk through the component's least module (BFS)."""
    start = min(comp)
    prev, queue = {start: None}, [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(edges[v] & comp):
            if w == start:
                walk = [v]
                while prev[walk[-1]] is not None:
                    walk.append(prev[walk[-1]])
                return walk[::-1] + [start]
            if w not in prev:
                prev[w] = v
                queue.append(w)
    return [start]


def name(mod):
    return "::".join(mod) if mod else "crate"


def parse(argv):
    opts = {"dot": False, "top": False, "only": None}
    dirs = []
    args = iter(argv[1:])
    for a in args:
        if a == "--dot":
            opts["dot"] = True
        elif a == "--top":
            opts["top"] = True
        elif a == "--only":
            opts["only"] = [n for n in next(args, "").split(",") if n]
        elif a.startswith("--only="):
            opts["only"] = [n for n in a[len("--only=") :].split(",") if n]
        elif a.startswith("-"):
            return None
        else:
            dirs.append(a)
    if len(dirs) != 1 or not os.path.isdir(dirs[0]) or opts["only"] == []:
        return None
    src = dirs[0]
    if os.path.isdir(os.path.join(src, "src")):
        src = os.path.join(src, "src")
    opts["src"] = src
    return opts


def main(argv):
    opts = parse(argv)
    if opts is None:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    edges = build(opts["src"])
    if opts["top"]:
        edges = merge_top(edges)
    if opts["only"]:
        edges = keep_only(edges, opts["only"])
    if opts["dot"]:
        print("digraph modules {")
        for a in sorted(edges):
            for b in sorted(edges[a]):
                print(f'  "{name(a)}" -> "{name(b)}";')
        print("}")
    else:
        for a in sorted(edges):
            if edges[a]:
                print(f"{name(a)} -> {', '.join(sorted(name(b) for b in edges[a]))}")
    comps = strong_components(edges)
    for comp in comps:
        walk = shortest_cycle(edges, comp)
        print(f"circle among {len(comp)} modules: {' -> '.join(name(m) for m in walk)}")
        print(f"  component: {', '.join(name(m) for m in sorted(comp))}")
    if comps:
        return 1
    print("no circle")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
