"""A hand-written history against Alembic: five migrations written here for Alembic and as their luamig
translation, using the constructs real histories use (batch_alter_table with several ops, sqlite_autoincrement,
an enum's type change and a rename, constraints named by the database and dropped by those names, a batch
naming_convention for unnamed constraints on SQLite, enum types of their own, non-native enums, alter_column's
autoincrement, a type per dialect, data), applied one step at a time by both tools on SQLite and PostgreSQL and
reverted one step at a time; the two databases' schemas and rows are compared after every step with
alembic_autogen.py's normaliser.

    /usr/bin/python3 tests/diff/alembic_history.py --luamig BIN --work DIR [--pg URL]
"""
import argparse
import io
import logging
import os
import re
import sys

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import alembic_autogen as ag  # noqa: E402  (the normaliser and the comparison)

ENV_PY = """
from alembic import context
config = context.config
context.configure(connection=config.attributes["connection"], target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
"""

PY_HEAD = "from alembic import op\nimport sqlalchemy as sa\nfrom sqlalchemy.dialects import postgresql\n"

# Each step: (Alembic upgrade, Alembic downgrade, luamig upgrade, luamig downgrade), bodies per dialect where they
# differ ({"sqlite": ..., "postgresql": ...}).
STEPS = [
    (  # h1: two tables, constraints named by the database, AUTOINCREMENT, an enum, rows
        """
    op.create_table("users",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("email", sa.String(50), nullable=False),
        sa.Column("kind", sa.Enum("a", "b", "c", name="kind", create_constraint=True), nullable=True),
        sa.PrimaryKeyConstraint("id"))
    op.create_table("orders",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.Integer, nullable=True),
        sa.Column("note", sa.String(20), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.UniqueConstraint("note"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True)
    op.execute("INSERT INTO users (id, email, kind) VALUES (1, 'a@example.org', 'b')")
    op.execute("INSERT INTO orders (user_id, note) VALUES (1, 'n1')")
    op.execute("INSERT INTO orders (user_id, note) VALUES (1, 'n2')")
    op.execute("DELETE FROM orders WHERE note = 'n2'")
""",
        """
    op.drop_table("orders")
    op.drop_table("users")
""",
        """
  op.create_table("users", {
    { "id", t.integer, nullable = false },
    { "email", t.string(50), nullable = false },
    { "kind", t.enum{ "a", "b", "c", name = "kind" }, nullable = true },
    op.primary_key { "id", name = false },
  })
  op.create_table("orders", {
    { "id", t.integer, nullable = false },
    { "user_id", t.integer, nullable = true },
    { "note", t.string(20), nullable = true },
    op.foreign_key({ "user_id" }, "users", { "id" }, { name = false }),
    op.unique { "note", name = false },
    op.primary_key { "id", name = false },
  }, { sqlite_autoincrement = true })
  op.execute("INSERT INTO users (id, email, kind) VALUES (1, 'a@example.org', 'b')")
  op.execute("INSERT INTO orders (user_id, note) VALUES (1, 'n1')")
  op.execute("INSERT INTO orders (user_id, note) VALUES (1, 'n2')")
  op.execute("DELETE FROM orders WHERE note = 'n2'")
""",
        """
  op.drop_table("orders")
  op.drop_table("users")
""",
    ),
    (  # h2: one batch of three ops: a length, a new column, the enum to a string (its CHECK goes with it)
        {"sqlite": """
    with op.batch_alter_table("users") as batch:
        batch.alter_column("email", type_=sa.String(100), existing_type=sa.String(50), existing_nullable=False)
        batch.add_column(sa.Column("score", sa.Integer, nullable=True))
        batch.alter_column("kind", type_=sa.String(9),
                           existing_type=sa.Enum("a", "b", "c", name="kind", create_constraint=True))
""", "postgresql": """
    with op.batch_alter_table("users") as batch:
        batch.alter_column("email", type_=sa.String(100), existing_type=sa.String(50), existing_nullable=False)
        batch.add_column(sa.Column("score", sa.Integer, nullable=True))
        batch.alter_column("kind", type_=sa.String(9), existing_type=sa.Enum("a", "b", "c", name="kind"))
"""},
        {"sqlite": """
    with op.batch_alter_table("users") as batch:
        batch.alter_column("kind", type_=sa.Enum("a", "b", "c", name="kind", create_constraint=True),
                           existing_type=sa.String(9))
        batch.drop_column("score")
        batch.alter_column("email", type_=sa.String(50), existing_type=sa.String(100), existing_nullable=False)
""", "postgresql": """
    with op.batch_alter_table("users") as batch:
        batch.alter_column("kind", type_=sa.Enum("a", "b", "c", name="kind"), existing_type=sa.String(9),
                           postgresql_using="kind::kind")
        batch.drop_column("score")
        batch.alter_column("email", type_=sa.String(50), existing_type=sa.String(100), existing_nullable=False)
"""},
        """
  op.batch_alter_table("users", function(batch)
    batch.alter_column("email", { type = t.string(100), existing_type = t.string(50), existing_nullable = false })
    batch.add_column({ "score", t.integer, nullable = true })
    batch.alter_column("kind", { type = t.string(9), existing_type = t.enum{ "a", "b", "c", name = "kind" } })
  end)
""",
        {"sqlite": """
  op.batch_alter_table("users", function(batch)
    batch.alter_column("kind", { type = t.enum{ "a", "b", "c", name = "kind" }, existing_type = t.string(9) })
    batch.drop_column("score")
    batch.alter_column("email", { type = t.string(50), existing_type = t.string(100), existing_nullable = false })
  end)
""", "postgresql": """
  op.batch_alter_table("users", function(batch)
    batch.alter_column("kind", { type = t.enum{ "a", "b", "c", name = "kind" }, existing_type = t.string(9),
      using = "kind::kind" })
    batch.drop_column("score")
    batch.alter_column("email", { type = t.string(50), existing_type = t.string(100), existing_nullable = false })
  end)
"""},
    ),
    (  # h3: a rename with a nullability change
        {"sqlite": """
    with op.batch_alter_table("users") as batch:
        batch.alter_column("kind", new_column_name="category", nullable=False, existing_type=sa.String(9))
""", "postgresql": """
    op.alter_column("users", "kind", new_column_name="category", nullable=False, existing_type=sa.String(9))
"""},
        {"sqlite": """
    with op.batch_alter_table("users") as batch:
        batch.alter_column("category", new_column_name="kind", nullable=True, existing_type=sa.String(9))
""", "postgresql": """
    op.alter_column("users", "category", new_column_name="kind", nullable=True, existing_type=sa.String(9))
"""},
        """
  op.alter_column("users", "kind", { new_column_name = "category", nullable = false, existing_type = t.string(9) })
""",
        """
  op.alter_column("users", "category", { new_column_name = "kind", nullable = true, existing_type = t.string(9) })
""",
    ),
    (  # h4: the unnamed foreign key and unique dropped by the names the database gave them (SQLite: a batch
       # naming convention names them)
        {"sqlite": """
    with op.batch_alter_table("orders", table_kwargs={"sqlite_autoincrement": True}, naming_convention={
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s"}) as batch:
        batch.drop_constraint("fk_orders_user_id_users", type_="foreignkey")
        batch.drop_constraint("uq_orders_note", type_="unique")
""", "postgresql": """
    op.drop_constraint("orders_user_id_fkey", "orders", type_="foreignkey")
    op.drop_constraint("orders_note_key", "orders", type_="unique")
"""},
        {"sqlite": """
    with op.batch_alter_table("orders", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.create_foreign_key("fk_orders_user_id_users", "users", ["user_id"], ["id"])
        batch.create_unique_constraint("uq_orders_note", ["note"])
""", "postgresql": """
    op.create_foreign_key("fk_orders_user_id_users", "orders", "users", ["user_id"], ["id"])
    op.create_unique_constraint("uq_orders_note", "orders", ["note"])
"""},
        {"sqlite": """
  op.batch_alter_table("orders", function(batch)
    batch.drop_constraint("fk_orders_user_id_users", { type = "foreignkey" })
    batch.drop_constraint("uq_orders_note", { type = "unique" })
  end, { naming_convention = { fk = "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    uq = "uq_%(table_name)s_%(column_0_name)s" } })
""", "postgresql": """
  op.drop_constraint("orders_user_id_fkey", "orders", { type = "foreignkey" })
  op.drop_constraint("orders_note_key", "orders", { type = "unique" })
"""},
        """
  op.batch_alter_table("orders", function(batch)
    batch.create_foreign_key("fk_orders_user_id_users", "users", { "user_id" }, { "id" })
    batch.create_unique_constraint("uq_orders_note", { "note" })
  end)
""",
    ),
    (  # h5: an enum type of its own (checkfirst), a non-native enum, a type per dialect, alter_column autoincrement
        {"sqlite": """
    op.add_column("users", sa.Column("lvl", sa.Enum("lo", "hi", name="lvl", native_enum=False,
                                                    create_constraint=False), nullable=True))
    op.add_column("users", sa.Column("addr", sa.Text(), nullable=True))
    op.alter_column("orders", "id", existing_type=sa.Integer, autoincrement=True)
""", "postgresql": """
    sa.Enum("x", "y", name="mood").create(op.get_bind(), checkfirst=True)
    sa.Enum("x", "y", name="mood").create(op.get_bind(), checkfirst=True)
    op.add_column("users", sa.Column("mood", postgresql.ENUM("x", "y", name="mood", create_type=False), nullable=True))
    op.add_column("users", sa.Column("lvl", sa.Enum("lo", "hi", name="lvl", native_enum=False,
                                                    create_constraint=False), nullable=True))
    op.add_column("users", sa.Column("addr", postgresql.INET(), nullable=True))
    op.alter_column("orders", "id", existing_type=sa.Integer, autoincrement=True)
"""},
        {"sqlite": """
    with op.batch_alter_table("users") as batch:
        batch.drop_column("addr")
        batch.drop_column("lvl")
""", "postgresql": """
    op.drop_column("users", "addr")
    op.drop_column("users", "lvl")
    op.drop_column("users", "mood")
    sa.Enum("x", "y", name="mood").drop(op.get_bind(), checkfirst=True)
"""},
        {"sqlite": """
  op.add_column("users", { "lvl", t.enum{ "lo", "hi", name = "lvl", native_enum = false, create_constraint = false },
    nullable = true })
  op.add_column("users", { "addr", t.raw{ sqlite = "TEXT", postgresql = "INET" }, nullable = true })
  op.alter_column("orders", "id", { existing_type = t.integer, autoincrement = true })
""", "postgresql": """
  op.create_enum("mood", { "x", "y" }, { if_not_exists = true })
  op.create_enum("mood", { "x", "y" }, { if_not_exists = true })
  op.add_column("users", { "mood", t.enum{ "x", "y", name = "mood" }, nullable = true })
  op.add_column("users", { "lvl", t.enum{ "lo", "hi", name = "lvl", native_enum = false, create_constraint = false },
    nullable = true })
  op.add_column("users", { "addr", t.raw{ sqlite = "TEXT", postgresql = "INET" }, nullable = true })
  op.alter_column("orders", "id", { existing_type = t.integer, autoincrement = true })
"""},
        {"sqlite": """
  op.drop_column("users", "addr")
  op.drop_column("users", "lvl")
""", "postgresql": """
  op.drop_column("users", "addr")
  op.drop_column("users", "lvl")
  op.drop_column("users", "mood")
  op.drop_enum("mood", { if_exists = true })
"""},
    ),
]


def body(v, dialect):
    return v[dialect] if isinstance(v, dict) else v


def write_histories(dialect, a_root, l_root):
    os.makedirs(os.path.join(a_root, "versions"), exist_ok=True)
    os.makedirs(os.path.join(l_root, "versions"), exist_ok=True)
    with open(os.path.join(a_root, "env.py"), "w") as f:
        f.write(ENV_PY)
    for i, (a_up, a_down, l_up, l_down) in enumerate(STEPS, 1):
        rev, down = "h%d" % i, ("h%d" % (i - 1) if i > 1 else None)
        with open(os.path.join(a_root, "versions", rev + ".py"), "w") as f:
            f.write(PY_HEAD + "revision = %r\ndown_revision = %r\nbranch_labels = None\ndepends_on = None\n\n"
                    "def upgrade():%s\n\ndef downgrade():%s\n" % (rev, down, body(a_up, dialect), body(a_down, dialect)))
        with open(os.path.join(l_root, "versions", rev + ".lua"), "w") as f:
            f.write('local t = require("luamig.types")\nlocal M = { revision = "%s", down_revision = %s }\n'
                    "function M.upgrade(op)%send\nfunction M.downgrade(op)%send\nreturn M\n"
                    % (rev, ('"%s"' % down) if down else "nil", body(l_up, dialect), body(l_down, dialect)))


SEQUENCE = re.compile(r"^sequence (\S+) (\d+)$")


def compare(label, a, b, report):
    """ag.compare, with README's deliberate difference of rebuilds: luamig keeps the highest id AUTOINCREMENT gave
    (sqlite_sequence) through a rebuild; Alembic's batch copies the rows and the sequence falls to the highest id
    left."""
    only_a = [x for x in a if x not in b]
    only_b = [x for x in b if x not in a]
    seq_a = {m.group(1): int(m.group(2)) for m in map(SEQUENCE.match, only_a) if m}
    seq_b = {m.group(1): int(m.group(2)) for m in map(SEQUENCE.match, only_b) if m}
    if only_a and len(seq_a) == len(only_a) and len(seq_b) == len(only_b) and seq_a.keys() == seq_b.keys() \
            and all(seq_b[t] > seq_a[t] for t in seq_a):
        report.append((label, None, "sequence"))
        return
    ag.compare(label, a, b, report)


def run_dialect(dialect, work, binary, pg_url, report):
    work = os.path.join(work, dialect)
    a_root, l_root = os.path.join(work, "alembic"), os.path.join(work, "luamig")
    write_histories(dialect, a_root, l_root)
    pg = None
    if dialect == "sqlite":
        a_db, l_db = os.path.join(work, "alembic.db"), os.path.join(work, "luamig.db")
        a_url, l_url = "sqlite:///" + a_db, "sqlite:///" + l_db
        dump_a, dump_l = (lambda: ag.dump_sqlite(a_db)), (lambda: ag.dump_sqlite(l_db))
    else:
        pg = ag.PgPair(pg_url, "hist")
        a_url, l_url = pg.alembic_url, pg.luamig_url
        dump_a, dump_l = (lambda: ag.dump_pg(pg.a)), (lambda: ag.dump_pg(pg.l))
    engine = sa.create_engine(a_url)
    conn = engine.connect()
    cfg = Config(stdout=io.StringIO())
    cfg.set_main_option("script_location", a_root)
    cfg.attributes["connection"] = conn

    def luamig(*args):
        ag.run_luamig(binary, l_url, l_root, *args)

    try:
        for i in range(1, len(STEPS) + 1):
            command.upgrade(cfg, "+1")
            luamig("upgrade", "+1")
            compare("%s history upgrade to h%d" % (dialect, i), dump_a(), dump_l(), report)
        for i in range(len(STEPS) - 1, -1, -1):
            command.downgrade(cfg, "-1")
            luamig("downgrade", "-1")
            compare("%s history downgrade to %s" % (dialect, "h%d" % i if i else "base"), dump_a(), dump_l(), report)
    finally:
        conn.close()
        engine.dispose()
        if pg:
            pg.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--luamig", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--pg")
    args = ap.parse_args()
    logging.disable(logging.CRITICAL)
    import warnings
    warnings.simplefilter("ignore")  # Alembic warns that autoincrement means something on MySQL only
    report = []
    for dialect in ["sqlite"] + (["postgresql"] if args.pg else []):
        try:
            run_dialect(dialect, args.work, args.luamig, args.pg, report)
        except Exception as e:
            report.append(ag.failure("%s history run" % dialect, e))
    bad = ag.print_report(report, {"sequence": "the sqlite_sequence luamig keeps through a rebuild (README)"})
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
