-- Migrations that run outside a transaction (transactional = false, op.autocommit_block): recorded as running
-- before their first statement, reported by `current` and refused by `upgrade` when they did not finish, until
-- `upgrade --resume` or `stamp`; a concurrent runner waits for a live one. Also `upgrade --backup`.
local S = require("support")

local function base(dir)
  S.migration(dir .. "/versions", { rev = "aaaa00000001", msg = "base", up = [[
  op.create_table("things", { { "id", t.integer, primary_key = true }, { "x", t.integer } })
  op.create_table("runs", { { "rev", t.text } })]], down_body = [[
  op.drop_table("runs")
  op.drop_table("things")]] })
end

-- statuses(db) -> "revision:status" of every luamig_history row, oldest first
local function statuses(query)
  return (query("SELECT revision || ':' || status FROM luamig_history ORDER BY id"):gsub("\n", " "))
end

describe("#cli transactional = false on SQLite", function()
  local dir, db
  before_each(function()
    dir = S.tmpdir()
    db = dir .. "/app.db"
    base(dir)
  end)
  after_each(function() S.rmrf(dir) end)
  local function run(args, env) return S.run(args, { cwd = dir, env = env }) end
  local function q(sql) return S.sql(db, sql) end

  it("a failure keeps what ran, is recorded as failed, blocks upgrade until --resume re-runs it", function()
    S.migration(dir .. "/versions", { rev = "bbbb00000002", down = "aaaa00000001", msg = "outside", transactional = false,
      up = [[
  op.execute("INSERT INTO runs (rev) VALUES ('b')")
  op.execute("CREATE INDEX IF NOT EXISTS ix_things_x ON things (x)")
  if os.getenv("BREAK_B") then op.execute("INSERT INTO no_such_table VALUES (1)") end]] })
    local r = run("upgrade head", { BREAK_B = "1" })
    assert.equal(1, r.code)
    assert.equal("luamig: upgrade aaaa00000001 -> bbbb00000002 failed at versions/bbbb00000002_outside.lua:10: "
      .. "no such table: no_such_table; statement: INSERT INTO no_such_table VALUES (1)", r.errline)
    assert.matches("bbbb00000002 ran outside a transaction %(transactional = false%)", r.err)
    -- what ran before the failure stays; the version did not move
    assert.equal("aaaa00000001", S.versions(db))
    assert.equal("b", q("SELECT group_concat(rev) FROM runs"))
    assert.same({ "ix_things_x" }, S.indexes(db, "things"))
    assert.equal("aaaa00000001:applied bbbb00000002:failed", statuses(q))
    -- current shows it; upgrade refuses and names it
    r = run("current")
    assert.equal(0, r.code)
    assert.equal("aaaa00000001", r.lines[1])
    assert.matches("^bbbb00000002 %(failed: upgrade started .* by pid %d+ on .+, outside a transaction; "
      .. "`luamig upgrade %-%-resume` runs it again, `luamig stamp` settles the version%)$", r.lines[2])
    local j = run("current --json")
    assert.matches('"unfinished":%[{', j.out)
    assert.matches('"state":"failed"', j.out)
    r = run("upgrade head")
    assert.equal(1, r.code)
    assert.equal("luamig: upgrade bbbb00000002 (versions/bbbb00000002_outside.lua) failed outside a transaction: "
      .. "it may be partly applied", r.errline)
    assert.equal("aaaa00000001", S.versions(db))
    assert.equal(1, run("downgrade base").code)
    assert.equal("b", q("SELECT group_concat(rev) FROM runs"))
    -- --resume runs it again (it is safe to re-run except for the row it counts) and goes on to head
    r = run("upgrade --resume")
    assert.equal(0, r.code, r.err)
    assert.matches("resuming upgrade bbbb00000002", r.err)
    assert.equal("bbbb00000002", S.versions(db))
    assert.equal("b,b", q("SELECT group_concat(rev) FROM runs"))
    assert.equal("aaaa00000001:applied bbbb00000002:interrupted bbbb00000002:applied", statuses(q))
    assert.equal(0, run("verify").code)
    r = run("current")
    assert.same({ "bbbb00000002 (head)" }, r.lines)
  end)

  it("autocommit_block: the work before it and in it commits, a later failure rolls back only what followed", function()
    S.migration(dir .. "/versions", { rev = "bbbb00000002", down = "aaaa00000001", msg = "block", up = [[
  op.execute("INSERT INTO runs (rev) VALUES ('before')")
  op.autocommit_block(function() op.execute("INSERT INTO runs (rev) VALUES ('inside')") end)
  op.execute("INSERT INTO runs (rev) VALUES ('after')")
  if os.getenv("BREAK_B") then op.execute("INSERT INTO no_such_table VALUES (1)") end]],
      down_body = [[  op.execute("DELETE FROM runs")]] })
    local r = run("upgrade head", { BREAK_B = "1" })
    assert.equal(1, r.code)
    assert.matches("no such table: no_such_table", r.errline)
    assert.matches("bbbb00000002 ran outside a transaction %(autocommit_block%)", r.err)
    assert.equal("before,inside", q("SELECT group_concat(rev) FROM runs"))
    assert.equal("aaaa00000001", S.versions(db))
    assert.equal("aaaa00000001:applied bbbb00000002:failed", statuses(q))
    -- stamp settles it by hand
    r = run("stamp bbbb00000002")
    assert.equal(0, r.code, r.err)
    assert.matches("settled failed: upgrade bbbb00000002 is no longer pending", r.err)
    assert.equal("aaaa00000001:applied bbbb00000002:interrupted bbbb00000002:stamped", statuses(q))
    assert.equal(0, run("upgrade head").code)
    -- without a failure, the whole migration is recorded once, as applied
    assert.equal(0, run("downgrade base").code)
    r = run("upgrade head")
    assert.equal(0, r.code, r.err)
    assert.equal("before,inside,after", q("SELECT group_concat(rev) FROM runs"))
    assert.equal("bbbb00000002:applied", q("SELECT revision || ':' || status FROM luamig_history ORDER BY id DESC LIMIT 1"))
  end)

  it("--single-transaction refuses a run that includes one, before changing anything", function()
    S.migration(dir .. "/versions", { rev = "bbbb00000002", down = "aaaa00000001", msg = "outside", transactional = false,
      up = [[  op.execute("INSERT INTO runs (rev) VALUES ('b')")]] })
    local r = run("upgrade head --single-transaction")
    assert.equal(1, r.code)
    assert.equal("luamig: bbbb00000002 (versions/bbbb00000002_outside.lua) is not transactional (transactional = false): "
      .. "it cannot run inside --single-transaction", r.errline)
    assert.is_false(S.exists(db) and #S.tables(db) > 0)
  end)

  it("a runner killed inside one leaves it interrupted; the next upgrade refuses until stamp", function()
    S.migration(dir .. "/versions", { rev = "bbbb00000002", down = "aaaa00000001", msg = "slow", transactional = false,
      up = [[
  op.execute("INSERT INTO runs (rev) VALUES ('b')")
  local t0 = os.clock()
  while os.clock() - t0 < 60 do end]] })
    S.migration(dir .. "/versions", { rev = "cccc00000003", down = "bbbb00000002", msg = "after",
      up = [[  op.execute("INSERT INTO runs (rev) VALUES ('c')")]] })
    assert.equal(0, run("upgrade aaaa00000001").code)
    assert(os.execute(S.clean(string.format("cd %s && (env -u DATABASE_URL %s upgrade head >/dev/null 2>&1 & pid=$!; "
      .. "until [ \"$(sqlite3 app.db 'SELECT count(*) FROM runs' 2>/dev/null)\" = 1 ]; do sleep 0.05; done; "
      .. "kill -9 $pid; wait $pid) 2>/dev/null; true", S.q(dir), S.q(S.bin)))))
    assert.equal("aaaa00000001:applied bbbb00000002:running", statuses(q))
    local r = run("current")
    assert.matches("^bbbb00000002 %(interrupted: upgrade started ", r.lines[2])
    r = run("upgrade head")
    assert.equal(1, r.code)
    assert.equal("luamig: upgrade bbbb00000002 (versions/bbbb00000002_slow.lua) was interrupted outside a transaction: "
      .. "it may be partly applied", r.errline)
    assert.equal("aaaa00000001", S.versions(db))
    -- the user checked: it did all it had to; settle it and go on
    assert.equal(0, run("stamp bbbb00000002").code)
    assert.equal(0, run("upgrade head").code)
    assert.equal("cccc00000003", S.versions(db))
    assert.equal("b,c", q("SELECT group_concat(rev) FROM runs"))
  end)

  it("a second runner waits for a live one and then finds the work done", function()
    S.migration(dir .. "/versions", { rev = "bbbb00000002", down = "aaaa00000001", msg = "slow", transactional = false,
      up = [[
  op.execute("INSERT INTO runs (rev) VALUES ('b')")
  local t0 = os.clock()
  while os.clock() - t0 < 1.5 do end]] })
    assert.equal(0, run("upgrade aaaa00000001").code)
    assert(os.execute(S.clean(string.format("cd %s && (env -u DATABASE_URL %s upgrade head >first.out 2>&1 & pid=$!; "
      .. "until [ \"$(sqlite3 app.db 'SELECT count(*) FROM runs' 2>/dev/null)\" = 1 ]; do sleep 0.05; done; "
      .. "env -u DATABASE_URL %s upgrade head >second.out 2>&1; echo $? >second.rc; wait $pid; echo $? >first.rc)",
      S.q(dir), S.q(S.bin), S.q(S.bin)))))
    assert.equal("0", (S.read(dir .. "/first.rc"):gsub("%s", "")), S.read(dir .. "/first.out"))
    assert.equal("0", (S.read(dir .. "/second.rc"):gsub("%s", "")), S.read(dir .. "/second.out"))
    assert.matches("waiting: upgrade bbbb00000002 is running outside a transaction %(pid %d+ on ", S.read(dir .. "/second.out"))
    assert.equal("b", q("SELECT group_concat(rev) FROM runs"))
    assert.equal("bbbb00000002", S.versions(db))
  end)

  it("--sql writes it without BEGIN/COMMIT, and an autocommit_block as COMMIT ... BEGIN; sqlite3 runs the output", function()
    S.migration(dir .. "/versions", { rev = "bbbb00000002", down = "aaaa00000001", msg = "outside", transactional = false,
      up = [[  op.execute("INSERT INTO runs (rev) VALUES ('b')")]] })
    S.migration(dir .. "/versions", { rev = "cccc00000003", down = "bbbb00000002", msg = "block", up = [[
  op.execute("INSERT INTO runs (rev) VALUES ('c1')")
  op.autocommit_block(function() op.execute("VACUUM") end)
  op.execute("INSERT INTO runs (rev) VALUES ('c2')")]] })
    local r = run("upgrade --sql aaaa00000001:head")
    assert.equal(0, r.code, r.err)
    assert.matches("%-%- upgrade aaaa00000001 %-> bbbb00000002, outside\n\nINSERT INTO runs %(rev%) VALUES %('b'%);\nUPDATE", r.out)
    assert.matches("INSERT INTO runs %(rev%) VALUES %('c1'%);\nCOMMIT;\n\nVACUUM;\nBEGIN;\n\nINSERT INTO runs %(rev%) VALUES %('c2'%);", r.out)
    assert.equal(0, run("upgrade aaaa00000001").code)
    S.write(dir .. "/up.sql", r.out)
    local code, out = S.sh("sqlite3 -bail " .. S.q(db) .. " < " .. S.q(dir .. "/up.sql"))
    assert.equal(0, code, out)
    assert.equal("cccc00000003", S.versions(db))
    assert.equal("b,c1,c2", q("SELECT group_concat(rev) FROM runs"))
  end)
end)

describe("#cli upgrade --backup", function()
  local dir, db
  before_each(function()
    dir = S.tmpdir()
    db = dir .. "/app.db"
    base(dir)
  end)
  after_each(function() S.rmrf(dir) end)
  local function run(args) return S.run(args, { cwd = dir }) end
  local function backups()
    local code, out = S.sh("cd " .. S.q(dir) .. " && ls app.db.*.bak 2>/dev/null")
    local list = {}
    if code == 0 then for l in out:gmatch("[^\n]+") do list[#list + 1] = l end end
    return list
  end

  it("copies the database before changing it, to app.db.<UTC timestamp>.bak, and only when there is work", function()
    assert.equal(0, run("upgrade head").code)
    S.sql(db, "INSERT INTO things (id, x) VALUES (1, 42)")
    local before = S.dump(db)
    S.migration(dir .. "/versions", { rev = "bbbb00000002", down = "aaaa00000001", msg = "drop things",
      up = [[  op.drop_table("things")]] })
    local r = run("upgrade head --backup")
    assert.equal(0, r.code, r.err)
    local list = backups()
    assert.equal(1, #list)
    assert.matches("^app%.db%.%d%d%d%d%d%d%d%dT%d%d%d%d%d%dZ%.bak$", list[1])
    assert.matches("backup: " .. list[1]:gsub("%p", "%%%0"), r.err)
    assert.equal(before, S.dump(dir .. "/" .. list[1]))
    assert.equal("42", S.sql(dir .. "/" .. list[1], "SELECT x FROM things"))
    assert.same({ "luamig_history", "luamig_version", "runs" }, S.tables(db))
    -- at head already: nothing to do, no copy
    r = run("upgrade head --backup")
    assert.equal(0, r.code)
    assert.equal(1, #backups())
  end)

  it("is a usage error with --sql and on PostgreSQL, before anything happens", function()
    local r = run("upgrade head --backup --sql")
    assert.equal(2, r.code)
    assert.equal("luamig: --sql never connects: it cannot take --backup", r.errline)
    r = run("--url postgresql:///nowhere?host=/nonexistent upgrade head --backup")
    assert.equal(2, r.code)
    assert.equal("luamig: --backup copies SQLite databases; back PostgreSQL up with pg_dump", r.errline)
    assert.is_false(S.exists(db))
  end)
end)

describe("#postgres outside a transaction", function()
  local name, url, dir
  before_each(function()
    name, url = S.pg_database()
    dir = S.tmpdir()
    base(dir)
  end)
  after_each(function()
    S.rmrf(dir)
    S.pg_drop(name)
  end)
  local function run(args) return S.run(S.q("--url=" .. url) .. " " .. args, { cwd = dir }) end
  local function q(sql) return S.psql(name, sql) end

  it("CREATE INDEX CONCURRENTLY in a transactional = false migration and in an autocommit_block, 6 runners at once", function()
    S.migration(dir .. "/versions", { rev = "bbbb00000002", down = "aaaa00000001", msg = "cic", transactional = false,
      up = [[
  local rows = {} for i = 1, 2000 do rows[i] = { id = i, x = i % 17 } end
  op.bulk_insert("things", rows)
  op.create_index("ix_things_x", "things", { "x" }, { concurrently = true })
  op.execute("INSERT INTO runs (rev) VALUES ('b')")]] })
    S.migration(dir .. "/versions", { rev = "cccc00000003", down = "bbbb00000002", msg = "block", up = [[
  op.execute("INSERT INTO runs (rev) VALUES ('c')")
  op.autocommit_block(function()
    op.create_index("ix_things_id_x", "things", { "id", "x" }, { concurrently = true, unique = true })
  end)]] })
    local cmd = {}
    for p = 1, 6 do
      cmd[#cmd + 1] = string.format("(%s %s -q upgrade head > out.%d 2>&1; echo $? > rc.%d) &", S.q(S.bin),
        S.q("--url=" .. url), p, p)
    end
    cmd[#cmd + 1] = "wait"
    assert(os.execute(S.clean("cd " .. S.q(dir) .. " && env -u DATABASE_URL sh -c " .. S.q(table.concat(cmd, " ")))))
    for p = 1, 6 do
      assert.equal("0", (S.read(dir .. "/rc." .. p):gsub("%s", "")), S.read(dir .. "/out." .. p))
    end
    assert.equal("b,c", q("SELECT string_agg(rev, ',' ORDER BY rev) FROM runs"))
    assert.equal("ix_things_id_x|t\nix_things_x|t\npk_things|t", q("SELECT indexrelid::regclass, indisvalid FROM pg_index "
      .. "WHERE indrelid = 'things'::regclass ORDER BY indexrelid::regclass::text"))
    assert.equal("cccc00000003", S.pg_versions(name))
    assert.equal("aaaa00000001:applied bbbb00000002:applied cccc00000003:applied", statuses(q))
  end)

  it("a killed runner leaves it interrupted: current says so, upgrade exits 1 naming it, --resume finishes it", function()
    S.migration(dir .. "/versions", { rev = "bbbb00000002", down = "aaaa00000001", msg = "slow", transactional = false,
      up = [[
  op.execute("INSERT INTO runs (rev) VALUES ('b')")
  op.execute("SELECT pg_sleep(1)")
  op.execute("CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_things_x ON things (x)")]] })
    assert.equal(0, run("upgrade aaaa00000001").code)
    local host = os.getenv("LUAMIG_TEST_PG_URL"):match("host=([^&]+)")
    local count = string.format("psql -X -h %s -U postgres -d %s -Atc 'SELECT count(*) FROM runs'", S.q(host), S.q(name))
    assert(os.execute(S.clean(string.format("cd %s && (env -u DATABASE_URL %s %s upgrade head >/dev/null 2>&1 & pid=$!; "
      .. "until [ \"$(%s 2>/dev/null)\" = 1 ]; do sleep 0.05; done; kill -9 $pid; wait $pid) 2>/dev/null; true",
      S.q(dir), S.q(S.bin), S.q("--url=" .. url), count))))
    -- the server ends the dead runner's session (and its lock) once its statement returns
    local r = run("upgrade head")
    assert.equal(1, r.code)
    assert.equal("luamig: upgrade bbbb00000002 (versions/bbbb00000002_slow.lua) was interrupted outside a transaction: "
      .. "it may be partly applied", r.errline)
    r = run("current")
    assert.matches("^bbbb00000002 %(interrupted: upgrade started ", r.lines[2])
    assert.equal("aaaa00000001", S.pg_versions(name))
    r = run("upgrade --resume")
    assert.equal(0, r.code, r.err)
    assert.equal("bbbb00000002", S.pg_versions(name))
    assert.equal("b,b", q("SELECT string_agg(rev, ',') FROM runs"))
    assert.equal("aaaa00000001:applied bbbb00000002:interrupted bbbb00000002:applied", statuses(q))
  end)
end)

describe("#postgres password", function()
  it("logs in with the URL's password, and no output ever shows it, errors included", function()
    local secret = "Pw-9f2c7e1d-secret"
    local host = os.getenv("LUAMIG_TEST_PG_URL"):match("host=([^&]+)")
    local name = "luamig_pw_" .. require("luamig.core").getpid()
    S.psql("postgres", "DROP DATABASE IF EXISTS " .. name)
    S.psql("postgres", "DROP ROLE IF EXISTS luamig_pw")
    S.psql("postgres", "CREATE ROLE luamig_pw LOGIN PASSWORD '" .. secret .. "'")
    S.psql("postgres", "CREATE DATABASE " .. name .. " OWNER luamig_pw")
    local dir = S.tmpdir()
    base(dir)
    local good = string.format("postgresql://luamig_pw:%s@/%s?host=%s", secret, name, host)
    local bad = string.format("postgresql://luamig_pw:%s-wrong@/%s?host=%s", secret, name, host)
    local outputs = {}
    local function run(u, args)
      local r = S.run(S.q("--url=" .. u) .. " " .. args, { cwd = dir })
      outputs[#outputs + 1] = r.out .. r.err
      return r
    end
    assert.equal(0, run(good, "upgrade head").code)
    assert.equal("aaaa00000001", S.pg_versions(name))
    assert.equal("luamig_pw", S.psql(name, "SELECT tableowner FROM pg_tables WHERE tablename = 'things'"))
    for _, args in ipairs({ "current -v", "history -v", "--json current", "verify", "upgrade head --sql", "downgrade base",
      "upgrade head -v" }) do
      assert.equal(0, run(good, args).code, outputs[#outputs])
    end
    local r = run(bad, "upgrade head")
    assert.equal(1, r.code)
    assert.matches("^luamig: cannot connect to postgresql://luamig_pw:%*%*%*@/", r.errline)
    assert.matches("password authentication failed", r.err)
    assert.equal(1, run(bad, "current").code)
    for i, text in ipairs(outputs) do
      assert.is_nil(text:find(secret, 1, true), "output " .. i .. " shows the password: " .. text)
    end
    S.rmrf(dir)
    S.psql("postgres", "DROP DATABASE " .. name .. " WITH (FORCE)")
    S.psql("postgres", "DROP ROLE luamig_pw")
  end)
end)
