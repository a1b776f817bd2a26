-- --sql: the SQL a run would execute, written to stdout without a connection; the sqlite3 shell running it must
-- produce the same schema and version rows as the online run.
local S = require("support")

local function schema_of(db)
  return S.sql(db, "SELECT type || ' ' || name || ' ' || tbl_name || ' ' || coalesce(sql, '') FROM sqlite_master "
    .. "WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name")
end

local function history_of(db)
  return S.sql(db, "SELECT revision || ' ' || direction || ' ' || status || ' ' || coalesce(checksum, '') FROM luamig_history ORDER BY id")
end

-- apply(sql_text, db) runs SQL through the sqlite3 shell, stopping at the first error
local function apply(text, db)
  local f = os.tmpname()
  S.write(f, text)
  local code, out = S.sh("sqlite3 -bail " .. S.q(db) .. " < " .. S.q(f))
  os.remove(f)
  assert.equal(0, code, out)
end

local function copy_versions(from, dir)
  assert(os.execute("cp -r " .. S.q(from) .. " " .. S.q(dir .. "/versions")))
end

describe("#cli offline --sql", function()
  local dir
  before_each(function() dir = S.tmpdir() end)
  after_each(function() S.rmrf(dir) end)

  local function run(args) return S.run(args, { cwd = dir }) end

  it("upgrade head --sql gives the online schema and version rows (the demo history)", function()
    copy_versions(S.root .. "/versions", dir)
    local off = run("upgrade head --sql")
    assert.equal(0, off.code, off.err)
    assert.is_false(S.exists(dir .. "/app.db"), "--sql must not open the database")
    assert.matches("^upgrade <base> %-> 4d869b5fb06e, initial schema\nupgrade 4d869b5fb06e %-> 7c2a0f93e1b4, add tasks table\n$", off.err)
    local _, begins = off.out:gsub("\nBEGIN;\n", "")
    local _, commits = off.out:gsub("\nCOMMIT;\n", "")
    assert.equal(2, begins)
    assert.equal(2, commits)
    apply(off.out, dir .. "/offline.db")
    local on = run("upgrade head")
    assert.equal(0, on.code, on.err)
    assert.equal(schema_of(dir .. "/app.db"), schema_of(dir .. "/offline.db"))
    assert.equal("7c2a0f93e1b4", S.versions(dir .. "/offline.db"))
    assert.equal(history_of(dir .. "/app.db"), history_of(dir .. "/offline.db"))
    -- and back down: FROM:TO
    local down = run("downgrade 7c2a0f93e1b4:base --sql")
    assert.equal(0, down.code, down.err)
    apply(down.out, dir .. "/offline.db")
    assert.equal(0, run("downgrade base").code)
    assert.equal(schema_of(dir .. "/app.db"), schema_of(dir .. "/offline.db"))
    assert.equal("", S.versions(dir .. "/offline.db"))
  end)

  it("upgrade heads --sql over branches, and a FROM:TO range continuing it", function()
    copy_versions(S.root .. "/tests/fixtures/branched/versions", dir)
    local part = run("upgrade c1000001 --sql")
    assert.equal(0, part.code, part.err)
    apply(part.out, dir .. "/offline.db")
    assert.equal("c1000001", S.versions(dir .. "/offline.db"))
    local rest = run("upgrade c1000001:heads --sql")
    assert.equal(0, rest.code, rest.err)
    assert.is_nil(rest.out:find("CREATE TABLE IF NOT EXISTS luamig_version", 1, true))
    apply(rest.out, dir .. "/offline.db")
    assert.equal(0, run("upgrade heads").code)
    assert.equal(schema_of(dir .. "/app.db"), schema_of(dir .. "/offline.db"))
    assert.equal("d1000001,d2000001", S.versions(dir .. "/offline.db"))
    assert.equal(S.sql(dir .. "/app.db", "SELECT count(*) FROM t_d2000001"), S.sql(dir .. "/offline.db", "SELECT count(*) FROM t_d2000001"))
  end)

  it("--single-transaction wraps the whole run once; stamp --sql writes only version rows", function()
    copy_versions(S.root .. "/tests/fixtures/merge/versions", dir)
    local r = run("upgrade head --sql --single-transaction")
    assert.equal(0, r.code, r.err)
    local _, begins = r.out:gsub("BEGIN;", "")
    assert.equal(1, begins)
    apply(r.out, dir .. "/offline.db")
    assert.equal("n0000001", S.versions(dir .. "/offline.db"))
    local st = run("stamp m0000001 --sql")
    assert.equal(0, st.code, st.err)
    assert.matches("INSERT INTO luamig_version %(version_num%) VALUES %('m0000001'%)", st.out)
    assert.is_nil(st.out:find("t_m0000001", 1, true))
    local st2 = run("stamp n0000001:b1000001 --sql")
    assert.equal(0, st2.code, st2.err)
    assert.matches("UPDATE luamig_version SET version_num = 'b1000001' WHERE version_num = 'n0000001'", st2.out)
  end)

  it("writes bound parameters as literals and refuses get_bind()", function()
    S.migration(dir .. "/versions", { rev = "a1", msg = "data", up = [[
  op.create_table("kv", { { "k", t.text }, { "v", t.text } })
  op.execute("INSERT INTO kv (k, v) VALUES (?, :v)", { "it's", v = "x?y" })
  op.bulk_insert("kv", { { k = "n", v = nil }, { k = "m", v = "2" } })]] })
    local r = run("upgrade head --sql")
    assert.equal(0, r.code, r.err)
    assert.matches("INSERT INTO kv %(k, v%) VALUES %('it''s', 'x%?y'%);", r.out)
    assert.matches("INSERT INTO kv %(k, v%) VALUES %('n', NULL%);", r.out)
    apply(r.out, dir .. "/offline.db")
    assert.equal("it's|x?y\nm|2\nn|", S.sql(dir .. "/offline.db", "SELECT k, coalesce(v, '') FROM kv ORDER BY k"))
    S.migration(dir .. "/versions", { rev = "a2", down = "a1", msg = "reads", up = [[
  local rows = op.get_bind():query("SELECT 1")]] })
    local bad = run("upgrade head --sql")
    assert.equal(1, bad.code)
    assert.equal("luamig: upgrade a1 -> a2 failed at versions/a2_reads.lua:8: op.get_bind(): there is no connection in offline (--sql) mode",
      bad.errline)
  end)

  it("never connects: an unreachable database URL is fine; a downgrade without FROM is a usage error", function()
    copy_versions(S.root .. "/versions", dir)
    local r = run("--url sqlite:////nonexistent-dir/x.db upgrade head --sql")
    assert.equal(0, r.code, r.err)
    local d = run("downgrade base --sql")
    assert.equal(2, d.code)
    assert.equal("luamig: downgrade --sql needs FROM:TO (the revision the database is at, and the target)", d.first)
  end)
end)
