-- Lock queues on PostgreSQL: one session holds a transaction that read table t; a second process reads t in a loop;
-- `luamig upgrade` adds a column to t. With ddl_lock_timeout the ALTER never stands in t's lock queue for longer
-- than that, so the reader never waits longer either; luamig retries with back-off, waits for a long holder instead
-- of queueing, and gives up naming the blocker, the database as before. Without it the reader waits as long as the
-- blocker lives. Every wait here is for an event (a line in luamig's output, a row in pg_stat_activity), with a
-- generous deadline only so that a broken run cannot hang the suite.
local S = require("support")
local core = require("luamig.core")

local DEADLINE = 180 -- seconds, for an event that should come within a few

-- until_true(what, fn): polls fn() until it returns a true value, which is returned
local function until_true(what, fn)
  local t0 = core.clock()
  while true do
    local v = fn()
    if v then return v end
    assert(core.clock() - t0 < DEADLINE, "timed out waiting for " .. what)
    core.sleep(0.05)
  end
end

-- The reader: a Lua process on luamig.core's libpq driver, reading t in a loop until its stop file appears, then
-- writing the longest time one read took (seconds) and the number of reads.
local READER = [[
local core = require("luamig.core")
local conninfo, stop, out = ...
local conn = assert(core.pg_connect(conninfo))
local longest, n = 0, 0
while not io.open(stop, "r") do
  local t0 = core.clock()
  assert(conn:query("SELECT count(*) AS n FROM t"))
  local dt = core.clock() - t0
  if dt > longest then longest = dt end
  n = n + 1
  core.sleep(0.02)
end
conn:close()
local f = assert(io.open(out .. ".tmp", "w"))
f:write(string.format("%.3f %d\n", longest, n))
f:close()
os.rename(out .. ".tmp", out)
]]

describe("#postgresql lock queues", function()
  local dir, db, url, host, blocker_in, reader
  local function psql(sql) return S.psql(db, sql) end

  before_each(function()
    db, url = S.pg_database()
    host = url:match("host=([^&]+)")
    dir = S.tmpdir()
    S.write(dir .. "/reader.lua", READER)
    S.chain(dir, {
      [[  op.create_table("t", { { "id", t.integer, primary_key = true } })
  op.bulk_insert("t", { { id = 1 }, { id = 2 } })]],
      [[  op.add_column("t", { "c", t.integer })]],
    })
    assert.equal(0, S.run(S.q("--url=" .. url) .. " upgrade +1", { cwd = dir }).code)
  end)

  after_each(function()
    if blocker_in then blocker_in:close() end
    blocker_in = nil
    if reader then S.write(reader.stop, "stop") end
    reader = nil
    S.pg_drop(db)
    -- the blocker's psql has ended with its input; if a failed test left it, it ends here
    local pid = S.read(dir .. "/blocker.pid")
    if pid and pid:match("^%d+") then S.sh("kill " .. pid:match("^%d+") .. " 2>/dev/null") end
    S.rmrf(dir)
  end)

  local function ini(timeout, retries)
    S.write(dir .. "/luamig.ini", string.format("[luamig]\nscript_location = .\nfile_template = %%%%(rev)s\n"
      .. "ddl_lock_timeout = %s\nddl_lock_retries = %s\n", timeout, retries))
  end

  -- blocker(): a psql session that opens a transaction and reads t, then stays; returns its server pid
  local function start_blocker()
    local fifo = dir .. "/blocker.in"
    assert(os.execute("mkfifo " .. S.q(fifo)))
    -- (S.clean: without the sanitizer runtime a --sanitize run preloads into the busted process)
    assert(os.execute(S.clean(string.format("PGAPPNAME=lq_blocker psql -X -q -h %s -U postgres -d %s < %s > %s 2>&1 & "
      .. "echo $! > %s", S.q(host), S.q(db), S.q(fifo), S.q(dir .. "/blocker.log"), S.q(dir .. "/blocker.pid")))))
    blocker_in = assert(io.open(fifo, "w"))
    blocker_in:write("BEGIN;\nSELECT count(*) FROM t;\n")
    blocker_in:flush()
    return until_true("the blocker's transaction", function()
      local pid = psql("SELECT pid FROM pg_stat_activity WHERE application_name = 'lq_blocker' "
        .. "AND state = 'idle in transaction'")
      return pid ~= "" and pid
    end)
  end

  local function end_blocker()
    blocker_in:write("COMMIT;\n")
    blocker_in:close()
    blocker_in = nil
  end

  local function start_reader()
    reader = { stop = dir .. "/reader.stop", out = dir .. "/reader.out" }
    -- (it loads luamig.core as the busted process does: under --sanitize with the preload it needs)
    assert(os.execute(string.format("LUA_CPATH=%s lua5.4 %s %s %s %s > %s 2>&1 &",
      S.q((os.getenv("LUAMIG_BUILD_DIR") or (S.root .. "/build")) .. "/lib/?.so;;"), S.q(dir .. "/reader.lua"),
      S.q(string.format("host=%s dbname=%s user=postgres application_name=lq_reader", host, db)), S.q(reader.stop),
      S.q(reader.out), S.q(dir .. "/reader.log"))))
    until_true("the reader's first reads", function()
      return psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'lq_reader'") == "1"
    end)
  end

  -- stop_reader() -> the longest read (seconds), the number of reads
  local function stop_reader()
    S.write(reader.stop, "stop")
    local text = until_true("the reader's result", function() return S.read(reader.out) end)
    reader = nil
    local longest, n = text:match("^(%S+) (%d+)")
    return tonumber(longest), tonumber(n)
  end

  -- upgrade in the background: returns a function that says the run's result once it has ended (or nil)
  local function upgrade_in_background()
    local rc = dir .. "/upgrade.rc"
    assert(os.execute(S.clean(string.format("cd %s && (%s %s upgrade head > upgrade.out 2> upgrade.err; echo $? > %s) "
      .. "</dev/null &", S.q(dir), S.q(S.bin), S.q("--url=" .. url), S.q(rc)))))
    return function()
      local code = S.read(rc)
      if not code then return nil end
      return { code = tonumber(code), err = S.read(dir .. "/upgrade.err") or "" }
    end
  end

  local function columns() return psql("SELECT string_agg(column_name, ',' ORDER BY column_name) FROM "
    .. "information_schema.columns WHERE table_name = 't'") end

  it("gives up after its retries, naming the blocker; readers never wait longer than ddl_lock_timeout", function()
    ini(1, 2)
    local pid = start_blocker()
    start_reader()
    local r = S.run(S.q("--url=" .. url) .. " upgrade head", { cwd = dir })
    local longest, reads = stop_reader()
    end_blocker()
    assert.equal(1, r.code, r.err)
    -- (the retry lines come before it, as warnings)
    local errline = r.err:match("\n(luamig: upgrade [^\n]*)")
    assert.truthy(errline:find("^luamig: upgrade aaab00000001 %-> aaac00000002 failed: lock timeout on t after %d "
      .. "attempt%(s%) %(ddl_lock_timeout = 1 s, ddl_lock_retries = 2%); blocked by pid " .. pid
      .. " %(idle in transaction, %d+ s in a transaction, application_name 'lq_blocker', on t%): SELECT count%(%*%) FROM t;$"),
      errline)
    assert.truthy(r.err:find("Rolled back: the database is as it was before aaac00000002.", 1, true), r.err)
    -- two retries, each one line naming the table, the attempt and the blocker
    local retries = 0
    for l in r.err:gmatch("[^\n]+") do
      if l:find("retry %d of 2") then
        retries = retries + 1
        assert.truthy(l:find("pid " .. pid, 1, true), l)
      end
    end
    assert.equal(2, retries)
    assert.equal("aaab00000001", S.pg_versions(db))
    assert.equal("id", columns())
    assert.is_true(reads > 10, reads)
    assert.is_true(longest < 1.5, "the reader waited " .. longest .. " s")
    print(string.format("\n  [lock queue] gave up: longest reader wait %.3f s over %d reads, %d retries", longest, reads,
      retries))
  end)

  it("without ddl_lock_timeout the reader waits behind the ALTER for as long as the blocker lives", function()
    ini(0, 5)
    start_blocker()
    start_reader()
    local result = upgrade_in_background()
    -- the reader's read has been queued behind the ALTER for 3 s: then the blocker ends
    until_true("the reader queued for 3 s", function()
      return psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'lq_reader' "
        .. "AND wait_event_type = 'Lock' AND now() - query_start > interval '3 seconds'") == "1"
    end)
    end_blocker()
    local r = until_true("the upgrade", result)
    local longest = stop_reader()
    assert.equal(0, r.code, r.err)
    assert.is_true(longest >= 3, "the reader waited " .. longest .. " s")
    assert.equal("c,id", columns())
    print(string.format("\n  [lock queue] no timeout: longest reader wait %.3f s", longest))
  end)

  it("when the blocker ends during the retries, the next attempt applies the migration once", function()
    ini(1, 5)
    start_blocker()
    start_reader()
    local result = upgrade_in_background()
    -- the first retry line: the blocker then commits
    until_true("luamig's first retry", function()
      local err = S.read(dir .. "/upgrade.err") or ""
      return err:find("retry 1 of 5", 1, true)
    end)
    end_blocker()
    local r = until_true("the upgrade", result)
    local longest, reads = stop_reader()
    assert.equal(0, r.code, r.err)
    assert.equal("aaac00000002", S.pg_versions(db))
    assert.equal("c,id", columns())
    assert.equal("1", psql("SELECT count(*) FROM luamig_history WHERE revision = 'aaac00000002' AND status = 'applied'"))
    assert.is_true(longest < 1.5, "the reader waited " .. longest .. " s")
    local attempts = 1
    for _ in r.err:gmatch("retry %d of 5") do attempts = attempts + 1 end
    print(string.format("\n  [lock queue] blocker ended: longest reader wait %.3f s over %d reads, %d attempt(s)", longest,
      reads, attempts))
  end)

  it("outside a transaction, the statement that timed out is tried again on its own (an index built CONCURRENTLY too)", function()
    ini(1, 5)
    -- the second migration runs outside a transaction: an index built first, then the column
    S.write(dir .. "/versions/aaac00000002_step_2.lua", S.read(dir .. "/versions/aaac00000002_step_2.lua")
      :gsub('down_revision = "aaab00000001",', 'down_revision = "aaab00000001", transactional = false,')
      :gsub('  op.add_column', '  op.create_index("ix_t_id", "t", { "id" }, { concurrently = true })\n  op.add_column'))
    start_blocker()
    -- a writer's open transaction: CREATE INDEX CONCURRENTLY waits for it to end
    blocker_in:write("INSERT INTO t (id) VALUES (3);\n")
    blocker_in:flush()
    local result = upgrade_in_background()
    until_true("luamig's first retry", function()
      local err = S.read(dir .. "/upgrade.err") or ""
      return err:find("retry 1 of 5 of the statement", 1, true)
    end)
    end_blocker()
    local r = until_true("the upgrade", result)
    assert.equal(0, r.code, r.err)
    -- the index build timed out (leaving an invalid index, which luamig dropped) and was tried again
    assert.truthy(r.err:find("upgrade aaac00000002: lock timeout on t (create_index('t', 'ix_t_id')); retry 1 of 5 of the "
      .. "statement in", 1, true), r.err)
    assert.equal("t", psql("SELECT bool_and(indisvalid) FROM pg_index WHERE indexrelid = 'ix_t_id'::regclass"))
    assert.equal("aaac00000002", S.pg_versions(db))
    assert.equal("c,id", columns())
    assert.equal("1", psql("SELECT count(*) FROM pg_indexes WHERE indexname = 'ix_t_id'"))
  end)
end)
