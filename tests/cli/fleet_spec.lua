-- Fleets: upgrade --targets over schemas of one database and over SQLite files, N at a time in one process; one
-- tenant that fails is named with its revision while the others reach head, and a rerun after the fix migrates only
-- it. (scripts/bench/fleet.lua runs the full 1,000 schemas x 20 migrations.)
local S = require("support")

local N = 100

local function schemas_file(dir, n, extra)
  local lines = { "# tenants" }
  for i = 1, n do lines[#lines + 1] = string.format("schema=t%04d", i) end
  for _, l in ipairs(extra or {}) do lines[#lines + 1] = l end
  S.write(dir .. "/targets.txt", table.concat(lines, "\n") .. "\n")
  return dir .. "/targets.txt"
end

local function json_lines(out)
  local list = {}
  for l in out:gmatch("[^\n]+") do list[#list + 1] = S.json(l) end
  return list
end

describe("#postgres fleets of schemas", function()
  local dir, db, url
  before_each(function()
    dir = S.tmpdir()
    S.write(dir .. "/luamig.ini", "[luamig]\nscript_location = .\n")
    db, url = S.pg_database()
    S.psql(db, string.format("DO $$ BEGIN FOR g IN 1..%d LOOP EXECUTE format('CREATE SCHEMA t%%s', lpad(g::text, 4, '0')); "
      .. "END LOOP; END $$", N))
  end)
  after_each(function()
    S.pg_drop(db)
    S.rmrf(dir)
  end)

  it("100 schemas x 5 migrations with --parallel 4; a failing tenant named with its revision; a rerun migrates only it", function()
    local revs = S.counted(dir, 5)
    -- tenant 42 already has the table the third migration creates
    S.psql(db, "CREATE TABLE t0042.t_3 (id integer)")
    local file = schemas_file(dir, N)
    local r = S.run("--json --url " .. S.q(url) .. " upgrade head --targets " .. S.q(file) .. " --parallel 4", { cwd = dir })
    assert.equal(1, r.code, r.err)
    local lines = json_lines(r.out)
    assert.equal(N + 1, #lines)
    assert.same({ applied = N - 1, at_head = 0, failed = 1, not_started = 0 }, lines[#lines].summary)
    local failed
    for i = 1, N do
      local l = lines[i]
      if l.status == "failed" then failed = l else
        assert.equal("applied", l.status)
        assert.equal(5, l.applied)
        assert.equal(revs[5], l.to)
        assert.equal(S.JSON_NULL, l.from) -- (a new schema has no revision yet)
      end
    end
    assert.equal("schema=t0042", failed.target)
    assert.equal(revs[3], failed.failed_revision)
    assert.equal(2, failed.applied)
    assert.equal(revs[2], failed.to)
    assert.truthy(failed.error:find('relation "t_3" already exists', 1, true), failed.error)
    assert.equal(tostring(N - 1), S.psql(db, "SELECT count(*) FROM pg_tables WHERE tablename = 't_5'"))
    assert.equal(revs[2], S.psql(db, "SELECT version_num FROM t0042.luamig_version"))
    assert.equal(revs[5], S.psql(db, "SELECT version_num FROM t0017.luamig_version"))
    -- the text form names it in the summary
    S.psql(db, "DROP TABLE t0042.t_3")
    local history_before = S.psql(db, "SELECT count(*) FROM t0017.luamig_history")
    local again = S.run("--url " .. S.q(url) .. " upgrade head --targets " .. S.q(file), { cwd = dir })
    assert.equal(0, again.code, again.err)
    assert.truthy(again.err:find("[42/100] schema=t0042: 3 applied, at " .. revs[5], 1, true), again.err)
    assert.truthy(again.err:find("100 target(s): 1 applied, 99 at head, 0 failed, 0 not started", 1, true), again.err)
    assert.equal(history_before, S.psql(db, "SELECT count(*) FROM t0017.luamig_history"))
    assert.equal("5", S.psql(db, "SELECT count(*) FROM t0042.applied"))
    -- current takes --targets too
    local cur = S.run("--url " .. S.q(url) .. " current --targets " .. S.q(file), { cwd = dir })
    assert.equal(0, cur.code, cur.err)
    assert.truthy(cur.out:find("schema=t0100: " .. revs[5] .. " (head)", 1, true), cur.out)
  end)

  it("check and verify take --targets: a finding in one tenant is named, exit 3", function()
    S.write(dir .. "/luamig.ini", "[luamig]\nscript_location = .\nmodels = myapp.models\n")
    assert(os.execute("mkdir -p " .. S.q(dir .. "/myapp")))
    S.write(dir .. "/myapp/models.lua", [[
local model = require("luamig.model")
local t = require("luamig.types")
model.Table("items", { { "id", t.integer, primary_key = true }, { "name", t.text, nullable = true } })
]])
    S.migration(dir .. "/versions", { rev = "f1", msg = "items",
      up = '  op.create_table("items", { { "id", t.integer, primary_key = true }, { "name", t.text } })',
      down_body = '  op.drop_table("items")' })
    local file = schemas_file(dir, 3)
    assert.equal(0, S.run("--url " .. S.q(url) .. " upgrade head --targets " .. S.q(file), { cwd = dir }).code)
    local function run(cmd) return S.run("--url " .. S.q(url) .. " " .. cmd .. " --targets " .. S.q(file), { cwd = dir }) end
    local c = run("check")
    assert.equal(0, c.code, c.out .. c.err)
    local v = run("verify")
    assert.equal(0, v.code, v.out .. v.err)
    -- tenant 2 drifts from the models, and its record of f1's checksum no longer matches the file
    S.psql(db, "ALTER TABLE t0002.items ADD COLUMN extra integer")
    S.psql(db, "UPDATE t0002.luamig_history SET checksum = repeat('0', 64) WHERE revision = 'f1'")
    c = run("check")
    assert.equal(3, c.code, c.out .. c.err)
    assert.same({ "schema=t0002: - column items.extra" }, c.lines)
    v = run("verify")
    assert.equal(3, v.code, v.out .. v.err)
    assert.equal(1, #v.lines, v.out)
    assert.truthy(v.lines[1]:find("^schema=t0002: f1: versions/f1[^ ]*%.lua changed since it was applied"), v.lines[1])
    assert.truthy(v.err:find("3 target(s), 1 with a finding or failure", 1, true), v.err)
  end)

  it("--on-error stop, --canary, --targets-sql, and a schema that does not exist", function()
    S.counted(dir, 2)
    S.psql(db, "CREATE TABLE t0003.t_1 (id integer)")
    local file = schemas_file(dir, 20, { "schema=missing_one" })
    local r = S.run("--json --url " .. S.q(url) .. " upgrade head --targets " .. S.q(file) .. " --parallel 1 --on-error stop",
      { cwd = dir })
    assert.equal(1, r.code)
    local lines = json_lines(r.out)
    local s = lines[#lines].summary
    assert.equal(2, s.applied)
    assert.equal(1, s.failed)
    assert.equal(18, s.not_started)
    -- canary: the first 2 alone; one of them fails, so the rest do not start
    local lines2 = {}
    for i = 10, 20 do lines2[#lines2 + 1] = string.format("schema=t%04d", i) end
    S.write(dir .. "/canary.txt", table.concat(lines2, "\n") .. "\n")
    S.psql(db, "CREATE TABLE t0011.t_1 (id integer)")
    local c = S.run("--json --url " .. S.q(url) .. " upgrade head --targets canary.txt --canary 2", { cwd = dir })
    assert.equal(1, c.code)
    local cl = json_lines(c.out)
    assert.same({ applied = 1, at_head = 0, failed = 1, not_started = 9 }, cl[#cl].summary)
    -- (one line per target as each ends: the order they end in)
    local status = {}
    for i = 1, #cl - 1 do status[cl[i].target] = cl[i].status end
    assert.equal("failed", status["schema=t0011"])
    assert.equal("applied", status["schema=t0010"])
    assert.equal("not_started", status["schema=t0020"])
    S.psql(db, "DROP TABLE t0011.t_1")
    S.psql(db, "DROP TABLE t0003.t_1")
    -- the rows of a query: schema names (the missing one is its own failure, named)
    local q = S.run("--json --url " .. S.q(url) .. " upgrade head --targets-sql "
      .. S.q("SELECT nspname FROM pg_namespace WHERE nspname LIKE 't00%' UNION ALL SELECT 'missing_one' ORDER BY 1"),
      { cwd = dir })
    assert.equal(1, q.code)
    local ql = json_lines(q.out)
    assert.same({ applied = 96, at_head = 3, failed = 1, not_started = 0 }, ql[#ql].summary)
    local miss
    for _, l in ipairs(ql) do if l.target == "schema=missing_one" then miss = l end end
    assert.equal("schema missing_one does not exist on postgresql:///" .. db .. "?host=" .. url:match("host=([^&]+)")
      .. "&user=postgres", miss.error)
    local one = S.run("--schema missing_one --url " .. S.q(url) .. " upgrade head", { cwd = dir })
    assert.equal(1, one.code)
    assert.truthy(one.first:find("schema missing_one does not exist", 1, true), one.first)
  end)
end)

describe("#postgres the Lua API's fleet", function()
  it("luamig.fleet returns the per-target results and the summary", function()
    local dir = S.tmpdir()
    local db, url = S.pg_database()
    S.psql(db, "CREATE SCHEMA a; CREATE SCHEMA b")
    local revs = S.counted(dir, 3)
    local seen = 0
    local results, summary = require("luamig").fleet({ url = url, script_location = dir,
      targets = { "schema=a", { schema = "b" }, "schema=c" }, parallel = 2, each = function() seen = seen + 1 end })
    assert.is_table(results, tostring(summary))
    assert.same({ applied = 2, at_head = 0, failed = 1, not_started = 0 }, summary)
    assert.equal(3, seen)
    assert.equal("schema=a", results[1].target)
    assert.equal("applied", results[1].status)
    assert.equal(3, results[1].applied)
    assert.equal(revs[3], results[2].to)
    assert.equal("failed", results[3].status)
    assert.equal(revs[3], S.psql(db, "SELECT version_num FROM b.luamig_version"))
    local none, err = require("luamig").fleet({ url = url, script_location = dir })
    assert.is_nil(none)
    assert.equal("luamig.fleet: give targets (a list) or targets_sql (a query)", err)
    S.pg_drop(db)
    S.rmrf(dir)
  end)
end)

describe("fleets of SQLite files", function()
  it("50 SQLite files as --targets: all at head, a rerun writes nothing", function()
    local dir = S.tmpdir()
    S.write(dir .. "/luamig.ini", "[luamig]\nscript_location = .\n")
    S.chain(dir, { '  op.create_table("a", { { "id", t.integer } })', '  op.add_column("a", { "b", t.text })' })
    local lines = {}
    for i = 1, 50 do lines[i] = string.format("sqlite:///%s/db%02d.db", dir, i) end
    S.write(dir .. "/targets.txt", table.concat(lines, "\n") .. "\n")
    local r = S.run("--json upgrade head --targets targets.txt", { cwd = dir })
    assert.equal(0, r.code, r.err)
    local out = json_lines(r.out)
    assert.same({ applied = 50, at_head = 0, failed = 0, not_started = 0 }, out[#out].summary)
    for i = 1, 50 do assert.equal("aaac00000002", S.versions(string.format("%s/db%02d.db", dir, i))) end
    local before = S.sql(dir .. "/db07.db", "SELECT count(*) FROM luamig_history")
    local again = S.run("--json upgrade head --targets targets.txt --parallel 8", { cwd = dir })
    assert.equal(0, again.code, again.err)
    local a = json_lines(again.out)
    assert.same({ applied = 0, at_head = 50, failed = 0, not_started = 0 }, a[#a].summary)
    assert.equal(before, S.sql(dir .. "/db07.db", "SELECT count(*) FROM luamig_history"))
    local bad = S.run("upgrade head --targets nope.txt", { cwd = dir })
    assert.equal(1, bad.code)
    assert.truthy(bad.first:find("--targets: cannot read nope.txt", 1, true), bad.first)
    S.rmrf(dir)
  end)
end)
