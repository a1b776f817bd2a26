-- luamig lint: each rule on its fixture migration (tests/fixtures/lint/unsafe: a trailing "-- lint: pg=RULE/SEVERITY"
-- comment on the line of each op call says what must be found there, per dialect, and nothing else may be), the
-- safe recipes (tests/fixtures/lint/safe) not flagged, the output formats, silencing, the models and the database.
local S = require("support")

local FIXTURES = S.root .. "/tests/fixtures/lint"

-- copy_of(src, versions) -> a temp copy of a project, without the caches in its versions folder (lint compiles
-- the files, which writes caches beside them); project(name): of a fixture project
local function copy_of(src, versions)
  local dir = S.tmpdir()
  assert(os.execute(string.format("cp -r %s/. %s/", S.q(src), S.q(dir))))
  local v = dir .. "/" .. (versions or "versions")
  assert(os.execute("rm -rf " .. S.q(v .. "/.luamig-cache") .. " " .. S.q(v .. "/.luamig-code")))
  return dir
end

local function project(name) return copy_of(FIXTURES .. "/" .. name) end

-- expected(dir, dialect) -> sorted "file:line rule severity" lines the fixture's comments ask for
local function expected(dir, dialect)
  local tag = dialect == "postgresql" and "pg" or dialect
  local out = {}
  local code, list = S.sh("cd " .. S.q(dir) .. " && ls versions/*.lua")
  assert(code == 0, list)
  for f in list:gmatch("[^\n]+") do
    local n = 0
    for line in (S.read(dir .. "/" .. f) .. "\n"):gmatch("([^\n]*)\n") do
      n = n + 1
      local marks = line:match("%-%- lint: (.*)$")
      for d, rule, sev in (marks or ""):gmatch("(%a+)=([%w%-]+)/(%a+)") do
        if d == tag then out[#out + 1] = string.format("%s:%d %s %s", f, n, rule, sev) end
      end
    end
  end
  table.sort(out)
  return out
end

local function found(doc)
  local out = {}
  for _, f in ipairs(doc.findings) do out[#out + 1] = string.format("%s:%d %s %s", f.file, f.line, f.rule, f.severity) end
  table.sort(out)
  return out
end

local function lint(dir, args, env)
  local r = S.run("lint " .. args, { cwd = dir, env = env })
  return r, (r.out:sub(1, 1) == "{") and S.json(r.out) or nil
end

describe("#sqlite lint", function()
  local dir
  after_each(function() if dir then S.rmrf(dir) end end)

  for _, d in ipairs({ "postgresql", "sqlite" }) do
    it("flags every fixture migration with its rule, severity, file and line, and nothing else (" .. d .. ")", function()
      dir = project("unsafe")
      local r, doc = lint(dir, "--dialect " .. d .. " --format json")
      assert.equal(3, r.code, r.err)
      assert.equal("luamig: lint: " .. doc.errors .. " error(s), " .. doc.warnings .. " warning(s)", r.errline)
      local want = expected(dir, d)
      assert.is_true(#want >= (d == "postgresql" and 36 or 19), #want)
      assert.same(want, found(doc))
      local rules = {}
      for _, f in ipairs(doc.findings) do
        assert.truthy(f.safe and #f.safe > 10, f.rule)
        assert.truthy(f.message and #f.message > 10, f.rule)
        assert.truthy(f.revision:match("^f1a%d+$"), f.revision)
        rules[f.rule] = true
      end
      local n = 0
      for _ in pairs(rules) do n = n + 1 end
      -- every rule of the dialect: PostgreSQL all but sqlite-rebuild; SQLite its six
      assert.equal(d == "postgresql" and 18 or 8, n)
      assert.equal(23, doc.migrations)
    end)
  end

  it("writes each finding as FILE:LINE: RULE (severity): message, then its safe recipe", function()
    dir = project("unsafe")
    local r = lint(dir, "--dialect postgresql")
    assert.equal(3, r.code)
    local text = r.out
    assert.truthy(text:find("versions/f1a00002_drop_table.lua:6: drop-table (error): drops table audit while the models "
      .. "still define it: its rows are lost and running code that uses it fails\n  safe: remove the model", 1, true), text)
    assert.truthy(text:find("versions/f1a00014_concurrently_in_tx.lua:7: concurrently-in-transaction (error): CREATE INDEX "
      .. "CONCURRENTLY inside the migration's transaction", 1, true), text)
    assert.truthy(text:find("versions/f1a00023_raw_sql.lua:6: raw-sql (info): a statement luamig cannot classify "
      .. "(CREATE EXTENSION IF NOT EXISTS pgcrypto)", 1, true), text)
    -- every finding line is followed by its recipe
    local lines = r.lines
    local findings = 0
    for i, l in ipairs(lines) do
      if l:match("^versions/[^:]+:%d+: [%w%-]+ %((%a+)%): ") then
        findings = findings + 1
        assert.truthy(lines[i + 1]:match("^  safe: ."), lines[i + 1])
      end
    end
    assert.equal(#expected(dir, "postgresql"), findings)
    assert.truthy(r.err:find("23 migration(s) linted for postgresql: 12 error(s), 23 warning(s), 1 info", 1, true), r.err)
  end)

  it("--format github writes workflow annotations: ::error, ::warning and ::notice with file, line and title", function()
    dir = project("unsafe")
    local r = lint(dir, "--dialect postgresql --format github")
    assert.equal(3, r.code)
    assert.equal("::error file=versions/f1a00002_drop_table.lua,line=6,title=drop-table::drops table audit while the "
      .. "models still define it", r.lines[1]:sub(1, 121))
    assert.truthy(r.out:find("::warning file=versions/f1a00012_create_index.lua,line=6,title=create-index-blocking::", 1, true))
    assert.truthy(r.out:find("::notice file=versions/f1a00023_raw_sql.lua,line=6,title=raw-sql::", 1, true))
    local n = 0
    for _, l in ipairs(r.lines) do
      assert.truthy(l:match("^::%a+ file=[^,]+,line=%d+,title=[%w%-]+::.+%. Safe: .+$"), l)
      n = n + 1
    end
    assert.equal(#expected(dir, "postgresql"), n)
  end)

  it("does not flag the safe recipes (PostgreSQL: no finding at all; SQLite: no error)", function()
    dir = project("safe")
    local r, doc = lint(dir, "--dialect postgresql --json")
    assert.equal(0, r.code, r.err)
    assert.equal(20, doc.migrations)
    assert.same({}, found(doc))
    r, doc = lint(dir, "--dialect sqlite --json")
    assert.equal(0, r.code, r.err)
    assert.equal(0, doc.errors)
    assert.is_true(doc.warnings > 0) -- SQLite rebuilds a table for any type change
    -- --strict: a warning is enough to fail; --plan does not change the exit code
    assert.equal(3, lint(dir, "--dialect sqlite --strict").code)
    assert.equal(0, lint(dir, "--dialect sqlite --plan").code)
    assert.equal(3, lint(project("unsafe"), "--dialect sqlite --plan").code)
  end)

  it("is model-aware: a column the models still define is an error to drop; once removed from them, a warning", function()
    dir = project("unsafe")
    local _, doc = lint(dir, "--dialect postgresql --json")
    local function severity_of(d, rule, col)
      for _, f in ipairs(d.findings) do
        if f.rule == rule and f.column == col then return f.severity end
      end
    end
    assert.equal("error", severity_of(doc, "drop-column", "legacy"))
    assert.equal("warning", severity_of(doc, "drop-column", "nickname"))
    local models = S.read(dir .. "/myapp/models.lua")
    S.write(dir .. "/myapp/models.lua", (models:gsub('\n  { "legacy", t.text, nullable = true },', "")))
    _, doc = lint(dir, "--dialect postgresql --json")
    assert.equal("warning", severity_of(doc, "drop-column", "legacy"))
    assert.equal("error", severity_of(doc, "drop-table", nil))
  end)

  it("is silenced by M.lint.ignore in the file and lint_disable in luamig.ini; lint_postgres_version sets the rules' server", function()
    dir = project("unsafe")
    local ini = S.read(dir .. "/luamig.ini")
    S.write(dir .. "/luamig.ini", ini .. "lint_disable = drop-table, raw-sql\n")
    local _, doc = lint(dir, "--dialect postgresql --json")
    for _, f in ipairs(doc.findings) do
      assert.is_not.equal("drop-table", f.rule)
      assert.is_not.equal("raw-sql", f.rule)
    end
    assert.equal(#expected(dir, "postgresql") - 3, #doc.findings)
    -- before PostgreSQL 11 any default on ADD COLUMN rewrites the table
    S.write(dir .. "/luamig.ini", ini .. "lint_postgres_version = 10\n")
    local safe = project("safe")
    S.write(safe .. "/luamig.ini", S.read(safe .. "/luamig.ini") .. "lint_postgres_version = 10\n")
    _, doc = lint(safe, "--dialect postgresql --json")
    local hits = {}
    for _, f in ipairs(doc.findings) do hits[#hits + 1] = f.rule .. " " .. f.column end
    table.sort(hits)
    -- and SET NOT NULL does not use the validated check before 12
    assert.same({ "add-column-volatile-default placed_at", "add-column-volatile-default state", "set-not-null note" }, hits)
    S.rmrf(safe)
    -- a bad ignore list and an unknown rule id are one-line errors naming the file / the key
    local f = dir .. "/versions/f1a00023_raw_sql.lua"
    S.write(f, (S.read(f):gsub('down_revision = "f1a00022"', 'down_revision = "f1a00022", lint = { ignore = { "no-such-rule" } }')))
    local r = lint(dir, "--dialect postgresql")
    assert.equal(1, r.code)
    assert.equal("luamig: versions/f1a00023_raw_sql.lua: lint.ignore[1] is not a rule id (no-such-rule)", r.errline)
    S.write(dir .. "/luamig.ini", ini .. "lint_disable = drop-tables\n")
    r = lint(dir, "--dialect sqlite")
    assert.equal(1, r.code)
    assert.equal("luamig: lint_disable: 'drop-tables' is not a rule id", r.errline)
  end)

  it("the demo history, examples/custom_migrations and a kit project lint clean on both databases", function()
    local demo = S.tmpdir()
    S.copy_versions(S.root .. "/versions", demo .. "/versions")
    S.write(demo .. "/luamig.ini", "[luamig]\nscript_location = .\n")
    local example = copy_of(S.root .. "/examples/custom_migrations", "migrations/versions")
    -- a project of its own on the kit: its models, one migration creating the four tables with the kit helpers
    local kit = S.tmpdir()
    S.write(kit .. "/luamig.ini", "[luamig]\nscript_location = .\nmodels = luamig.kit.models\n")
    S.migration(kit .. "/versions", { rev = "k1", msg = "the kit tables", up = [[
  local kit = require("luamig.kit.helpers")
  kit.create_configs_table(op)
  kit.create_artifacts_table(op)
  kit.create_config_artifacts_table(op)
  kit.create_tasks_table(op)]], down_body = [[
  local kit = require("luamig.kit.helpers")
  kit.drop_tasks_table(op)
  kit.drop_config_artifacts_table(op)
  kit.drop_artifacts_table(op)
  kit.drop_configs_table(op)]] })
    for _, p in ipairs({ demo, example, kit }) do
      for _, d in ipairs({ "postgresql", "sqlite" }) do
        local r, doc = lint(p, "--dialect " .. d .. " --downgrade --json")
        assert.equal(0, doc.errors, r.out)
        assert.is_true(doc.migrations >= 1)
        local r2 = lint(p, "--dialect " .. d)
        assert.equal(0, r2.code, r2.err)
      end
    end
    S.rmrf(demo)
    S.rmrf(example)
    S.rmrf(kit)
  end)

  it("connected, lints only what the database has not applied (--all: every file), and counts a rebuild's rows", function()
    dir = project("unsafe")
    assert.equal(0, S.run("upgrade f1a00003", { cwd = dir }).code)
    local r, doc = lint(dir, "--json")
    assert.equal(3, r.code)
    assert.equal(20, doc.migrations)
    assert.equal("sqlite", doc.dialect)
    for _, f in ipairs(doc.findings) do assert.is_not.equal("drop-table", f.rule) end
    _, doc = lint(dir, "--all --json")
    assert.equal(23, doc.migrations)
    -- a range as for history
    _, doc = lint(dir, "f1a00004:f1a00005 --json")
    assert.equal(2, doc.migrations)
    S.sql(dir .. "/app.db", "INSERT INTO orders (id) VALUES (1), (2), (3)")
    _, doc = lint(dir, "--json")
    local rebuild
    for _, f in ipairs(doc.findings) do if f.rule == "sqlite-rebuild" and f.table == "orders" then rebuild = f end end
    assert.truthy(rebuild.message:find("(3 rows now)", 1, true), rebuild.message)
    -- the database is as it was
    assert.equal("f1a00003", S.versions(dir .. "/app.db"))
  end)

  it("refuses bad usage (exit 2) and a database at a revision no file defines (exit 1), one line each", function()
    dir = project("safe")
    local r = lint(dir, "--format xml")
    assert.equal(2, r.code)
    assert.equal("luamig: --format xml: use text, json or github", r.errline)
    r = lint(dir, "a: b:")
    assert.equal(2, r.code)
    assert.equal("luamig: lint: expected at most one RANGE, got 2 argument(s)", r.errline)
    r = lint(dir, "nosuch:")
    assert.equal(1, r.code)
    assert.equal("luamig: No such revision or branch 'nosuch'", r.errline)
    assert.equal(0, S.run("upgrade f2b00002", { cwd = dir }).code)
    S.sql(dir .. "/app.db", "UPDATE luamig_version SET version_num = 'zzzz'")
    r = lint(dir, "")
    assert.equal(1, r.code)
    assert.equal("luamig: the database is at revision zzzz, which no migration file defines", r.errline)
  end)

  it("with no database reachable lints every file offline, saying so", function()
    dir = project("safe")
    local r, doc = lint(dir, "--url postgresql:///nodb?host=/nonexistent --json")
    assert.equal(0, r.code, r.err)
    assert.equal(20, doc.migrations)
    assert.equal("postgresql", doc.dialect)
    assert.truthy(r.err:find("linting every file offline for postgresql", 1, true), r.err)
  end)
end)

describe("#postgresql lint", function()
  local dir, db
  after_each(function()
    if dir then S.rmrf(dir) end
    if db then S.pg_drop(db) end
  end)

  it("reads a raw type change's old type from the database: varchar(100) to varchar(200) is no rewrite", function()
    local url
    db, url = S.pg_database()
    dir = S.tmpdir()
    S.write(dir .. "/luamig.ini", "[luamig]\nscript_location = .\nfile_template = %%(rev)s\n")
    S.chain(dir, {
      [[  op.create_table("t", { { "id", t.integer, primary_key = true }, { "note", t.string(100) } })]],
      [[  op.execute("ALTER TABLE t ALTER COLUMN note TYPE varchar(200)")]],
      [[  op.execute("ALTER TABLE t ALTER COLUMN note TYPE varchar(50)")]],
    })
    local u = S.q("--url=" .. url)
    assert.equal(0, S.run(u .. " upgrade +1", { cwd = dir }).code)
    local r, doc = lint(dir, u .. " --json")
    assert.equal(3, r.code, r.err)
    assert.same({ "versions/aaad00000003_step_3.lua:8 change-column-type error" }, found(doc))
    -- offline, a raw type change counts as a rewrite
    _, doc = lint(dir, "--dialect postgresql --json")
    assert.same({ "versions/aaac00000002_step_2.lua:8 change-column-type error",
      "versions/aaad00000003_step_3.lua:8 change-column-type error" }, found(doc))
  end)
end)
