-- luamig against Alembic and against the database shells running the very SQL `luamig upgrade --sql` prints.
--   lua5.4 compare.lua LUAMIG_BINARY [WORKLOAD...]     workloads: startup sqlite postgres bulk rebuild autogen
-- PG_BENCH_URL names a PostgreSQL server database for the postgres workload (scripts/bench/run starts one).
-- Every figure is the median of several runs after a warm-up; the contenders of a workload run in turn, round by
-- round; each ratio is luamig's median over the other's, both measured in this run.
local lib = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/lib.lua")

local bin = assert(arg[1], "usage: compare.lua LUAMIG_BINARY [WORKLOAD...]")
local chosen = {}
for i = 2, #arg do chosen[arg[i]] = true end
local function wanted(name) return next(chosen) == nil or chosen[name] end
local q = lib.q
local pg = os.getenv("PG_BENCH_URL")
local tmp = (os.getenv("TMPDIR") or "/tmp") .. "/luamig-bench-compare"
local python = "/usr/bin/python3 -m alembic"
local N = 500

local function sh(cmd) assert(os.execute(cmd), "failed: " .. cmd) end
local write = lib.write

local rows = {}
local function report(workload, what, t, base, note)
  local ratio = base and string.format("%.2fx", t.wall / base.wall) or ""
  rows[#rows + 1] = string.format("| %s | %s | %s (%s) | %s | %.1f MB | %s | %s |", workload, what, lib.fmt_s(t.wall),
    lib.fmt_s(t.best), lib.fmt_s(t.cpu), t.rss / 1024, ratio, note or "")
  print(rows[#rows])
  io.stdout:flush()
end

-- A project of N small migrations (a table and an index each), for luamig and for Alembic.
local function project(dir, url)
  sh("rm -rf " .. q(dir) .. " && mkdir -p " .. q(dir .. "/versions") .. " " .. q(dir .. "/alembic/versions"))
  write(dir .. "/luamig.ini", "[luamig]\nscript_location = .\nurl = " .. url .. "\n")
  for i = 1, N do
    local rev = string.format("%012x", 0xa00000000000 + i)
    local down = i > 1 and string.format("%012x", 0xa00000000000 + i - 1) or nil
    write(string.format("%s/versions/%s_step_%d.lua", dir, rev, i), string.format([[
--- step %d
local t = require("luamig.types")
local M = { revision = %q, down_revision = %s }
function M.upgrade(op)
  op.create_table("t_%d", { { "id", t.integer, primary_key = true }, { "name", t.string(50) }, { "n", t.integer } })
  op.create_index("ix_t_%d_name", "t_%d", { "name" })
end
function M.downgrade(op)
  op.drop_index("ix_t_%d_name", "t_%d")
  op.drop_table("t_%d")
end
return M
]], i, rev, down and string.format("%q", down) or "nil", i, i, i, i, i, i))
    write(string.format("%s/alembic/versions/%s_step_%d.py", dir, rev, i), string.format([[
"""step %d"""
from alembic import op
import sqlalchemy as sa

revision = %q
down_revision = %s
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("t_%d", sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.String(50)),
                    sa.Column("n", sa.Integer))
    op.create_index("ix_t_%d_name", "t_%d", ["name"])


def downgrade():
    op.drop_index("ix_t_%d_name", "t_%d")
    op.drop_table("t_%d")
]], i, rev, down and string.format("%q", down) or "None", i, i, i, i, i, i))
  end
  local alembic_url = url:gsub("^postgresql://", "postgresql+psycopg2://")
  write(dir .. "/alembic.ini", "[alembic]\nscript_location = alembic\nsqlalchemy.url = " .. alembic_url .. "\n"
    .. "[loggers]\nkeys = root\n[handlers]\nkeys =\n[formatters]\nkeys =\n[logger_root]\nlevel = WARN\nhandlers =\n")
  write(dir .. "/alembic/env.py", [[
from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config
target_metadata = None
single = context.get_x_argument(as_dictionary=True).get("single") == "1"


def run_migrations_online():
    connectable = engine_from_config(config.get_section(config.config_ini_section), prefix="sqlalchemy.",
                                     poolclass=pool.NullPool)
    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          transaction_per_migration=not single)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
]])
  write(dir .. "/alembic/script.py.mako", "")
end

local function lm(dir, args) return "cd " .. q(dir) .. " && " .. q(bin) .. " -q " .. args end
local function alembic(dir, args) return "cd " .. q(dir) .. " && " .. python .. " " .. args end

print(string.format("machine: %s", io.popen("nproc"):read("l") .. " cores"))
print("| workload | contender | median (best) | CPU | peak RSS | luamig / it | |")
print("|---|---|---:|---:|---:|---:|---|")

-- (1) start-up: `current` on a 500-migration project at head
if wanted("startup") or wanted("sqlite") then
  local dir = tmp .. "/sqlite"
  project(dir, "sqlite:///./app.db")
  if wanted("startup") then
    sh(lm(dir, "upgrade head"))
    sh("cd " .. q(dir) .. " && sqlite3 app.db 'CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) "
      .. "NOT NULL PRIMARY KEY); DELETE FROM alembic_version; INSERT INTO alembic_version SELECT version_num FROM "
      .. "luamig_version'")
    local r = lib.time_set({ "cd " .. q(dir) .. " && sqlite3 app.db 'select version_num from luamig_version'",
      alembic(dir, "current"), lm(dir, "current") }, 11)
    local sqlite3, alem, cur = r[1], r[2], r[3]
    report("start-up: `current`, 500 migrations at head", "sqlite3 shell: SELECT version_num", sqlite3)
    report("", "alembic current", alem)
    report("", "luamig current", cur, sqlite3, string.format("%.2fx faster than Alembic", alem.wall / cur.wall))
  end
  -- (2) 500 migrations on an empty SQLite file
  if wanted("sqlite") then
    sh(lm(dir, "upgrade head --sql > up.sql"))
    sh(lm(dir, "upgrade head --sql --single-transaction > up1.sql"))
    local fresh = "cd " .. q(dir) .. " && rm -f app.db"
    local r = lib.time_set({ "cd " .. q(dir) .. " && sqlite3 app.db < up.sql", alembic(dir, "upgrade head"),
      lm(dir, "upgrade head") }, 5, fresh)
    local shell, alem, mine = r[1], r[2], r[3]
    report("500 migrations, SQLite, a transaction each", "sqlite3 shell < upgrade --sql", shell)
    report("", "alembic upgrade head (transaction_per_migration)", alem)
    report("", "luamig upgrade head", mine, shell, string.format("%.2fx faster than Alembic", alem.wall / mine.wall))
    r = lib.time_set({ "cd " .. q(dir) .. " && sqlite3 app.db < up1.sql", alembic(dir, "-x single=1 upgrade head"),
      lm(dir, "upgrade head --single-transaction") }, 5, fresh)
    local shell1, alem1, mine1 = r[1], r[2], r[3]
    report("500 migrations, SQLite, one transaction", "sqlite3 shell < upgrade --sql --single-transaction", shell1)
    report("", "alembic upgrade head (one transaction)", alem1)
    report("", "luamig upgrade head --single-transaction", mine1, shell1,
      string.format("%.2fx faster than Alembic", alem1.wall / mine1.wall))
  end
end

-- (3) the same on PostgreSQL
if wanted("postgres") and pg then
  local dir = tmp .. "/pg"
  project(dir, pg)
  local admin = pg:gsub("/bench_cmp%?", "/postgres?")
  local fresh = string.format("PGOPTIONS='-c client_min_messages=warning' psql -X -q %s -c 'DROP DATABASE IF EXISTS bench_cmp' "
    .. "-c 'CREATE DATABASE bench_cmp'", q(admin))
  sh(fresh)
  sh(lm(dir, "upgrade head --sql > up.sql"))
  sh(lm(dir, "upgrade head --sql --single-transaction > up1.sql"))
  local psql = string.format("cd %s && psql -X -q %s -v ON_ERROR_STOP=1 -f ", q(dir), q(pg))
  local r = lib.time_set({ psql .. "up.sql", alembic(dir, "upgrade head"), lm(dir, "upgrade head") }, 7, fresh)
  local shell, alem, mine = r[1], r[2], r[3]
  report("500 migrations, PostgreSQL, a transaction each", "psql -f upgrade --sql", shell)
  report("", "alembic upgrade head (transaction_per_migration)", alem)
  report("", "luamig upgrade head", mine, shell, string.format("%.2fx faster than Alembic", alem.wall / mine.wall))
  r = lib.time_set({ psql .. "up1.sql", alembic(dir, "-x single=1 upgrade head"),
    lm(dir, "upgrade head --single-transaction") }, 7, fresh)
  local shell1, alem1, mine1 = r[1], r[2], r[3]
  report("500 migrations, PostgreSQL, one transaction", "psql -f upgrade --sql --single-transaction", shell1)
  report("", "alembic upgrade head (one transaction)", alem1)
  report("", "luamig upgrade head --single-transaction", mine1, shell1,
    string.format("%.2fx faster than Alembic", alem1.wall / mine1.wall))
end

-- (4) bulk_insert of 1,000,000 rows, and (5) a rebuild of a 1,000,000-row table, on SQLite
if wanted("bulk") or wanted("rebuild") then
  local dir = tmp .. "/big"
  sh("rm -rf " .. q(dir) .. " && mkdir -p " .. q(dir .. "/versions"))
  write(dir .. "/versions/b1_big.lua", [[
--- a table
local t = require("luamig.types")
return { revision = "b1", down_revision = nil,
  upgrade = function(op)
    op.create_table("big", { { "id", t.integer, primary_key = true }, { "name", t.string(40) }, { "v", t.integer } })
  end,
  downgrade = function(op) op.drop_table("big") end }
]])
  write(dir .. "/versions/b2_rows.lua", [[
--- a million rows
return { revision = "b2", down_revision = "b1",
  upgrade = function(op)
    local rows = {}
    for i = 1, 1000000 do rows[i] = { id = i, name = "row " .. i, v = i * 2 } end
    op.bulk_insert("big", rows)
  end,
  downgrade = function(op) op.execute("DELETE FROM big") end }
]])
  write(dir .. "/versions/b3_rebuild.lua", [[
--- v becomes text: a table rebuild
local t = require("luamig.types")
return { revision = "b3", down_revision = "b2",
  upgrade = function(op) op.alter_column("big", "v", { type = t.text, existing_type = t.integer }) end,
  downgrade = function(op) op.alter_column("big", "v", { type = t.integer, existing_type = t.text }) end }
]])
  local cd = "cd " .. q(dir) .. " && "
  if wanted("bulk") then
    sh(cd .. q(bin) .. " -q upgrade b1 && cp app.db base1.db")
    sh(cd .. q(bin) .. " -q upgrade b1:b2 --sql > rows.sql")
    local fresh = cd .. "cp base1.db app.db"
    local r = lib.time_set({ cd .. "sqlite3 app.db < rows.sql", cd .. q(bin) .. " -q upgrade b2" }, 3, fresh)
    local shell, mine = r[1], r[2]
    report("bulk_insert of 1,000,000 rows, SQLite", "sqlite3 shell < upgrade --sql (1,000,000 INSERTs)", shell)
    report("", "luamig upgrade (the rows built in Lua, one prepared INSERT)", mine, shell)
  end
  if wanted("rebuild") then
    sh(cd .. "rm -f app.db && " .. q(bin) .. " -q upgrade b2 && sqlite3 app.db 'CREATE INDEX ix_big_name ON big (name)' "
      .. "&& cp app.db base2.db")
    -- what the rebuild runs, as SQL
    write(dir .. "/rebuild.sql", [[
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
CREATE TABLE _luamig_tmp_big (
	id INTEGER NOT NULL,
	name VARCHAR(40),
	v TEXT,
	CONSTRAINT pk_big PRIMARY KEY (id)
);
INSERT INTO _luamig_tmp_big (id, name, v) SELECT id, name, v FROM big;
DROP TABLE big;
PRAGMA legacy_alter_table = ON;
ALTER TABLE _luamig_tmp_big RENAME TO big;
PRAGMA legacy_alter_table = OFF;
CREATE INDEX ix_big_name ON big (name);
PRAGMA foreign_key_check(big);
UPDATE luamig_version SET version_num = 'b3' WHERE version_num = 'b2';
COMMIT;
]])
    local fresh = cd .. "cp base2.db app.db"
    local r = lib.time_set({ cd .. "sqlite3 app.db < rebuild.sql", cd .. q(bin) .. " -q upgrade b3" }, 3, fresh)
    local shell, mine = r[1], r[2]
    report("rebuild of a 1,000,000-row table (type change), SQLite", "sqlite3 shell: the same statements", shell)
    report("", "luamig upgrade (alter_column)", mine, shell)
  end
end

-- (7) autogenerate and check on a 300-table model, against Alembic's autogenerate on the same SQLAlchemy model
if wanted("autogen") then
  local dir = tmp .. "/autogen"
  sh("rm -rf " .. q(dir) .. " && mkdir -p " .. q(dir .. "/versions") .. " " .. q(dir .. "/myapp") .. " "
    .. q(dir .. "/alembic/versions"))
  local py_models = { "import sqlalchemy as sa", "metadata = sa.MetaData()" }
  for i = 1, 300 do
    local pyfk = i > 1 and '    sa.Column("first_id", sa.Integer, sa.ForeignKey("t0001.id", ondelete="SET NULL"), nullable=True),\n' or ""
    py_models[#py_models + 1] = string.format([[
sa.Table("t%04d", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(80), nullable=False, index=True),
    sa.Column("code", sa.String(20), nullable=False, unique=True),
    sa.Column("amount", sa.Numeric(12, 2), nullable=False, server_default="0"),
    sa.Column("ratio", sa.Float, nullable=True),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("body", sa.Text, nullable=True),
%s    sa.CheckConstraint("amount >= 0", name="ck_t%04d_amount_positive"),
)]], i, pyfk, i)
  end
  write(dir .. "/myapp/models.lua", lib.lua_models(300))
  write(dir .. "/models.py", table.concat(py_models, "\n") .. "\n")
  write(dir .. "/luamig.ini", "[luamig]\nscript_location = .\nfile_template = %%(rev)s\nmodels = myapp.models\nurl = sqlite:///./app.db\n")
  write(dir .. "/alembic.ini", "[alembic]\nscript_location = alembic\nfile_template = %%(rev)s\nsqlalchemy.url = sqlite:///alembic.db\n"
    .. "[loggers]\nkeys = root\n[handlers]\nkeys =\n[formatters]\nkeys =\n[logger_root]\nlevel = WARN\nhandlers =\n")
  write(dir .. "/alembic/env.py", [[
import sys, os
sys.path.insert(0, os.getcwd())
from alembic import context
from sqlalchemy import engine_from_config, pool
import models

config = context.config
connectable = engine_from_config(config.get_section(config.config_ini_section), prefix="sqlalchemy.", poolclass=pool.NullPool)
with connectable.connect() as connection:
    context.configure(connection=connection, target_metadata=models.metadata)
    with context.begin_transaction():
        context.run_migrations()
]])
  write(dir .. "/alembic/script.py.mako", [[
"""${message}"""
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = None
depends_on = None
from alembic import op
import sqlalchemy as sa


def upgrade():
    ${upgrades if upgrades else "pass"}


def downgrade():
    ${downgrades if downgrades else "pass"}
]])
  local cd = "cd " .. q(dir) .. " && "
  local lgen = lib.time(cd .. "rm -f versions/*.lua && " .. q(bin) .. " -q revision --autogenerate -m all --rev-id m1", 3,
    cd .. "rm -f app.db")
  local agen = lib.time(cd .. "rm -f alembic/versions/*.py && " .. python .. " revision --autogenerate -m all --rev-id m1", 3,
    cd .. "rm -f alembic.db")
  report("autogenerate, 300 tables, empty SQLite database", "alembic revision --autogenerate", agen)
  report("", "luamig revision --autogenerate", lgen, agen)
  sh(cd .. "rm -f app.db && " .. q(bin) .. " -q upgrade head")
  sh(cd .. "rm -f alembic.db alembic/versions/*.py && " .. python .. " revision --autogenerate -m all --rev-id m1 >/dev/null 2>&1 && "
    .. python .. " upgrade head >/dev/null 2>&1")
  local lcheck = lib.time(cd .. q(bin) .. " -q check", 3)
  local acheck = lib.time(cd .. "rm -f alembic/versions/m2.py && " .. python .. " revision --autogenerate -m none --rev-id m2", 3)
  report("check, 300 tables, up to date", "alembic revision --autogenerate (what `alembic check` runs)", acheck)
  report("", "luamig check", lcheck, acheck)
end

sh("rm -rf " .. q(tmp))
