"""Generates random revision graphs and command sequences, runs them with Alembic, and writes what Alembic did.

    /usr/bin/python3 tests/diff/alembic_graphs.py --graphs N --seed S --workdir DIR --out cases.json

Each graph gets several bases, merges, branch labels and depends_on edges (onto heads, across labelled branches,
onto bases). Each case starts from an empty SQLite database and runs one to three commands (upgrade, downgrade,
stamp) with targets of every form. For every command the output records whether Alembic accepted it, the
migrations it ran in order, and the version rows after it. tests/diff/graph_spec.lua runs the same cases with
luamig and compares. Test-only: needs Debian's python3-alembic.
"""
import argparse
import io
import logging
import os
import random
import sys
import types
import warnings

from alembic import command
from alembic.config import Config
from alembic.script import Script, ScriptDirectory
from sqlalchemy import create_engine, text

LABELS = ["red", "blue", "plum", "navy", "teal", "gold", "jade", "rust"]

ENV_PY = """
from alembic import context
config = context.config
connection = config.attributes["connection"]
context.configure(connection=connection, target_metadata=None, version_table="alembic_version")
with context.begin_transaction():
    context.run_migrations()
"""

SCRIPT_MAKO = "${up}\n"


def hexid(rng):
    return "".join(rng.choice("0123456789abcdef") for _ in range(12))


def down_ancestors(g, rid):
    seen, stack = set(), [rid]
    while stack:
        r = stack.pop()
        if r in seen:
            continue
        seen.add(r)
        stack.extend(g[r]["down"])
    return seen


def gen_graph(rng):
    n = rng.randint(4, 10)
    order, g = [], {}
    used = set()
    labels = list(LABELS)
    rng.shuffle(labels)
    nbases = 0
    for i in range(n):
        rid = hexid(rng)
        if order and rng.random() < 0.15:
            # a twin prefix, so that a 4-character prefix can be ambiguous
            rid = rng.choice(order)[:4] + hexid(rng)[4:]
        while rid in used:
            rid = hexid(rng)
        used.add(rid)
        heads = [r for r in order if not any(r in g[o]["down"] for o in order)]
        down = []
        if i == 0 or (nbases < 3 and rng.random() < 0.2):
            nbases += 1
        elif len(heads) >= 2 and rng.random() < 0.2:
            down = rng.sample(heads, 2)
        elif rng.random() < 0.7:
            down = [rng.choice(heads)]
        else:
            down = [rng.choice(order)]
        deps = []
        if order and rng.random() < 0.35:
            mine = set()
            for d in down:
                mine |= down_ancestors(g, d)
            cands = [r for r in order if r not in mine]
            if cands:
                kind = rng.random()
                bases = [r for r in cands if not g[r]["down"]]
                hs = [r for r in cands if r in heads]
                labelled = [r for r in cands if g[r]["labels"]]
                pool = (hs if kind < 0.4 else bases if kind < 0.6 else labelled if kind < 0.8 else cands) or cands
                dep = rng.choice(pool)
                # now and then by its branch label, which depends_on may name instead of an id
                deps = [g[dep]["labels"][0] if g[dep]["labels"] and rng.random() < 0.3 else dep]
        lab = []
        if labels and rng.random() < 0.3:
            lab = [labels.pop()]
            if labels and rng.random() < 0.2:
                lab.append(labels.pop())
        g[rid] = {"id": rid, "down": down, "deps": deps, "labels": lab}
        order.append(rid)
    return [g[r] for r in order]


def pick_target(rng, graph, direction):
    ids = [r["id"] for r in graph]
    labels = [l for r in graph for l in r["labels"]]
    forms = ["heads", "head", "id", "prefix", "+N", "id+N"]
    if direction == "downgrade":
        forms = ["base", "id", "prefix", "-N", "id-N", "head-1"]
    if direction == "stamp":
        forms = ["heads", "head", "base", "id", "prefix", "two"]
    if labels:
        if direction == "upgrade":
            forms += ["label@head", "label@id", "label@+N", "label@heads"] * 2
        elif direction == "downgrade":
            forms += ["label@base", "label@id", "label@-N"] * 2
        else:
            forms += ["label@head", "label@base"]
    f = rng.choice(forms)
    n = rng.randint(1, 3)
    rid = rng.choice(ids)
    label = rng.choice(labels) if labels else None
    if f == "id":
        return [rid]
    if f == "prefix":
        return [rid[: rng.randint(4, 6)]]
    if f == "+N":
        return ["+%d" % n]
    if f == "-N":
        return ["-%d" % n]
    if f == "id+N":
        return ["%s+%d" % (rid, n)]
    if f == "id-N":
        return ["%s-%d" % (rid, n)]
    if f == "label@id":
        return ["%s@%s" % (label, rid)]
    if f == "label@+N":
        return ["%s@+%d" % (label, n)]
    if f == "label@-N":
        return ["%s@-%d" % (label, n)]
    if f == "two":
        return rng.sample(ids, 2)
    if f.startswith("label@"):
        return ["%s@%s" % (label, f[6:])]
    return [f]


def write_script_dir(root, graph):
    os.makedirs(os.path.join(root, "versions"), exist_ok=True)
    with open(os.path.join(root, "env.py"), "w") as f:
        f.write(ENV_PY)
    with open(os.path.join(root, "script.py.mako"), "w") as f:
        f.write(SCRIPT_MAKO)
    for r in graph:
        down = None if not r["down"] else (r["down"][0] if len(r["down"]) == 1 else tuple(r["down"]))
        body = [
            "import difflog",
            "revision = %r" % r["id"],
            "down_revision = %r" % (down,),
            "branch_labels = %r" % (tuple(r["labels"]) if r["labels"] else None,),
            "depends_on = %r" % (tuple(r["deps"]) if r["deps"] else None,),
            "def upgrade():",
            "    difflog.ran.append(['up', revision])",
            "def downgrade():",
            "    difflog.ran.append(['down', revision])",
            "",
        ]
        with open(os.path.join(root, "versions", r["id"] + ".py"), "w") as f:
            f.write("\n".join(body))


def versions(conn):
    try:
        rows = conn.execute(text("SELECT version_num FROM alembic_version")).fetchall()
    except Exception:
        return []
    return sorted(r[0] for r in rows)


def deliberate(graph, direction, target, before):
    """The cases README names as deliberate differences: downgrade -N from several current heads (Alembic warns
    and picks one; luamig refuses) and one step back from a merge (Alembic calls it ambiguous; luamig reverts the
    merge)."""
    if direction != "downgrade" or len(target) != 1:
        return False
    t = target[0]
    if t.startswith("-"):
        if len(before) > 1:
            return True
        if before:
            by_id = {r["id"]: r for r in graph}
            if len(by_id[before[0]]["down"]) > 1:
                return True
    return False


def stamp_moves_other_lines(cfg, target, before):
    """Whether Alembic's stamp would move version rows of lines other than a target's own into it (README's
    deliberate difference: from rows {c2, d1} of a -> b -> {c1 -> d1, c2 -> d2}, `stamp heads` leaves only d2)."""
    rm = ScriptDirectory.from_config(cfg).revision_map
    try:
        heads = rm.get_revisions(tuple(before))
        filtered = []
        for t in target:
            for h in rm.filter_for_lineage(heads, t, include_dependencies=True):
                if h not in filtered:
                    filtered.append(h)
        for dest in rm.get_revisions(target):
            if dest is None or dest in filtered:
                continue
            lineage = set(rm._get_descendant_nodes([dest])) | set(rm._get_ancestor_nodes([dest]))
            on = [h for h in filtered if h in lineage]
            if on and len(on) < len(filtered):
                return True
    except Exception:  # the command itself will say what is wrong
        return False
    return False


def run_case(cfg_root, graph, commands, difflog):
    engine = create_engine("sqlite://")  # in memory: the commands are what is compared, not the file
    out = []
    with engine.connect() as conn:
        cfg = Config(stdout=io.StringIO())
        cfg.set_main_option("script_location", cfg_root)
        cfg.attributes["connection"] = conn
        for direction, target in commands:
            before = versions(conn)
            if deliberate(graph, direction, target, before):
                break
            if direction == "stamp" and stamp_moves_other_lines(cfg, target, before):
                out.append({"command": direction, "target": target, "before": before, "skip": "deliberate"})
                break
            difflog.ran = []
            res = {"command": direction, "target": target, "before": before}
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error")
                    if direction == "upgrade":
                        command.upgrade(cfg, target[0])
                    elif direction == "downgrade":
                        command.downgrade(cfg, target[0])
                    else:
                        command.stamp(cfg, target)
                conn.commit() if hasattr(conn, "commit") else None
                res["ok"] = True
            except (AssertionError, KeyError) as e:
                # Alembic 1.8.1 failing inside itself (an assertion on some relative walks, a KeyError where a
                # version row it means to move is not there): no behaviour to compare
                res["ok"] = False
                res["skip"] = "alembic failed inside (%s)" % type(e).__name__
            except Warning as w:
                res["ok"] = False
                res["warning"] = str(w)
            except Exception as e:  # Alembic refuses the command: luamig must refuse it too
                res["ok"] = False
                res["error"] = "%s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else "")
                if direction == "downgrade" and target[0].endswith("-1") and "Ambiguous walk" in str(e):
                    # one step back from a merge: luamig reverts the merge (README's deliberate difference)
                    res["skip"] = "deliberate"
            res["ran"] = list(difflog.ran)
            res["versions"] = versions(conn)
            out.append(res)
            if not res["ok"]:
                break
    engine.dispose()
    return out


def lua(v):
    """v as a Lua literal (the spec loads the output with load())."""
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + "".join(c if c.isalnum() or c in " .,:;@+-_()'/=<>" else "\\%03d" % ord(c) for c in v) + '"'
    if isinstance(v, (list, tuple)):
        return "{" + ",".join(lua(x) for x in v) + "}"
    if isinstance(v, dict):
        return "{" + ",".join("[%s]=%s" % (lua(k), lua(x)) for k, x in v.items()) + "}"
    raise TypeError(type(v))


def install_patches():
    """What the harness changes around Alembic (not in it): one ScriptDirectory per graph, files loaded sorted."""
    # Each command asks for the ScriptDirectory again; one per graph keeps its parsed revision map (the commands
    # are the same, only the re-reading of the files is saved).
    cache = {}
    original = ScriptDirectory.from_config.__func__

    def from_config(cls, config):
        key = config.get_main_option("script_location")
        if key not in cache:
            cache[key] = original(cls, config)
        return cache[key]

    ScriptDirectory.from_config = classmethod(from_config)
    # Alembic loads a versions directory in os.listdir order, which is whatever the file system keeps; luamig loads
    # it sorted by name. Sorted here too, so that ties between independent branches break the same way.
    list_py_dir = Script._list_py_dir.__func__
    Script._list_py_dir = classmethod(lambda cls, sd, path: sorted(list_py_dir(cls, sd, path)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--graphs", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cases", type=int, default=8)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    logging.disable(logging.CRITICAL)
    difflog = types.ModuleType("difflog")
    difflog.ran = []
    sys.modules["difflog"] = difflog
    install_patches()
    rng = random.Random(args.seed)
    result = []
    for gi in range(args.graphs):
        graph = gen_graph(rng)
        root = os.path.join(args.workdir, "g%04d" % gi)
        write_script_dir(root, graph)
        entry = {"graph": graph, "cases": []}
        for _ in range(args.cases):
            cmds = []
            ncmd = rng.randint(1, 3)
            for k in range(ncmd):
                if k == 0:
                    direction = rng.choice(["upgrade", "upgrade", "upgrade", "stamp"])
                else:
                    direction = rng.choice(["upgrade", "downgrade", "downgrade", "stamp"])
                cmds.append((direction, pick_target(rng, graph, direction)))
            steps = run_case(root, graph, cmds, difflog)
            if steps:
                entry["cases"].append(steps)
        result.append(entry)
    with open(args.out, "w") as f:
        f.write("return " + lua({"seed": args.seed, "graphs": result}) + "\n")


if __name__ == "__main__":
    main()
