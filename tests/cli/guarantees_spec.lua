-- The guarantees of SPEC 7 under stress, on SQLite and PostgreSQL: many runners at once apply every migration
-- exactly once; a runner killed with SIGKILL at a random moment leaves the database at a revision boundary, and
-- the next run finishes the job with no manual step.
local S = require("support")

local N = 50 -- migrations in the history

-- A 50-migration history; migration i creates t_i, fills it a little, and counts itself into runs.
local function history()
  local dir = S.tmpdir()
  for i = 1, N do
    local up = {}
    if i == 1 then up[#up + 1] = '  op.create_table("runs", { { "rev", t.text } })' end
    up[#up + 1] = string.format('  op.create_table("t_%d", { { "id", t.integer }, { "v", t.text } })', i)
    up[#up + 1] = string.format('  local rows = {} for k = 1, 50 do rows[k] = { id = k, v = "row" .. k } end op.bulk_insert("t_%d", rows)', i)
    up[#up + 1] = string.format('  op.execute("INSERT INTO runs (rev) VALUES (?)", { "r%03d" })', i)
    S.migration(dir .. "/versions", { rev = string.format("r%03d", i), down = i > 1 and string.format("r%03d", i - 1) or nil,
      msg = "step " .. i, up = table.concat(up, "\n") })
  end
  return dir
end

-- The two databases, each able to make a fresh database and to read one back.
local targets = {
  sqlite = {
    fresh = function(dir, k)
      local path = string.format("%s/db%d.db", dir, k)
      return "sqlite:///" .. path, path
    end,
    drop = function() end,
    query = function(db, sql) return S.sql(db, sql) end,
    tables = "SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 't\\_%' ESCAPE '\\' ORDER BY CAST(substr(name, 3) AS INTEGER))",
    has_version_table = "SELECT count(*) FROM sqlite_master WHERE name = 'luamig_version'",
    has_runs = "SELECT count(*) FROM sqlite_master WHERE name = 'runs'",
  },
  postgresql = {
    fresh = function()
      local name, url = S.pg_database()
      return url, name
    end,
    drop = function(db) S.pg_drop(db) end,
    query = function(db, sql) return S.psql(db, sql) end,
    tables = "SELECT string_agg(tablename, ',' ORDER BY substr(tablename, 3)::int) FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 't\\_%'",
    has_version_table = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = 'luamig_version'",
    has_runs = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = 'runs'",
  },
}

local function expected_tables(k)
  local t = {}
  for i = 1, k do t[i] = "t_" .. i end
  return table.concat(t, ",")
end

-- The revision the database is at, checked to be a boundary: the version row, the tables and the runs agree.
local function boundary(target, db)
  local k = 0
  if target.query(db, target.has_version_table) == "1" then
    local v = target.query(db, "SELECT coalesce(max(version_num), '') FROM luamig_version")
    k = v == "" and 0 or tonumber(v:match("^r(%d+)$"))
    assert.equal("1", target.query(db, "SELECT count(*) FROM luamig_version") == "0" and "1" or target.query(db, "SELECT count(*) FROM luamig_version"))
  end
  assert.equal(expected_tables(k), target.query(db, target.tables) or "")
  if k > 0 then
    assert.equal(tostring(k), target.query(db, "SELECT count(*) FROM runs"))
    assert.equal("50", target.query(db, "SELECT count(*) FROM t_" .. k))
  else
    assert.equal("0", target.query(db, target.has_runs))
  end
  return k
end

for name, target in pairs(targets) do
  describe("#" .. name .. " guarantees", function()
    local dir
    setup(function() dir = history() end)
    teardown(function() S.rmrf(dir) end)

    it("16 runners at once, 20 rounds: all exit 0, every migration runs exactly once, the version table ends at head", function()
      for round = 1, 20 do
        local url, db = target.fresh(dir, 1000 + round)
        local cmd = {}
        for p = 1, 16 do
          cmd[#cmd + 1] = string.format("(%s %s -q upgrade head > %s/out.%d 2>&1; echo $? > %s/rc.%d) &", S.q(S.bin),
            S.q("--url=" .. url), S.q(dir), p, S.q(dir), p)
        end
        cmd[#cmd + 1] = "wait"
        assert(os.execute(S.clean("cd " .. S.q(dir) .. " && env -u DATABASE_URL sh -c " .. S.q(table.concat(cmd, " ")))))
        for p = 1, 16 do
          assert.equal("0", ((S.read(dir .. "/rc." .. p) or "?"):gsub("%s", "")), "round " .. round .. " runner " .. p
            .. ": " .. (S.read(dir .. "/out." .. p) or ""))
        end
        assert.equal(N .. "|" .. N, target.query(db, "SELECT count(*), count(DISTINCT rev) FROM runs"))
        assert.equal(string.format("r%03d", N), target.query(db, "SELECT version_num FROM luamig_version"))
        target.drop(db)
      end
    end)

    it("SIGKILL at a random moment, 50 times: a revision boundary each time, and the next run completes", function()
      math.randomseed(20261124)
      -- kill within the time an uninterrupted run takes on this database, measured first
      local url0, db0 = target.fresh(dir, 2000)
      local clock = require("luamig.core").clock
      local t0 = clock()
      assert.equal(0, S.run(S.q("--url=" .. url0) .. " -q upgrade head", { cwd = dir }).code)
      local span = clock() - t0
      target.drop(db0)
      local seen = {}
      for round = 1, 50 do
        local url, db = target.fresh(dir, 2000 + round)
        local delay = math.random() * span
        assert(os.execute(S.clean(string.format(
          "cd %s && (env -u DATABASE_URL %s %s -q upgrade head >/dev/null 2>&1 & pid=$!; sleep %.3f; kill -9 $pid 2>/dev/null; wait $pid) ; true",
          S.q(dir), S.q(S.bin), S.q("--url=" .. url), delay))))
        local k = boundary(target, db)
        seen[#seen + 1] = k
        local r = S.run(S.q("--url=" .. url) .. " -q upgrade head", { cwd = dir })
        assert.equal(0, r.code, r.err)
        assert.equal(N, boundary(target, db))
        target.drop(db)
      end
      -- the kills did land in the middle of runs, not only before or after them
      local mid = 0
      for _, k in ipairs(seen) do if k > 0 and k < N then mid = mid + 1 end end
      assert.is_true(mid >= 10, "only " .. mid .. " of 50 kills landed mid-run: " .. table.concat(seen, " "))
    end)
  end)
end
