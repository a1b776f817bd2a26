-- depends_on across branches: a dependency is ordered before a revision and never made a member of its branch.
-- Each expected result (migrations run, in order, and the version rows) is what Alembic 1.8.1 does with the same
-- history (written in tests/diff/alembic_graphs.py's script directory format, files loaded sorted by name).
local support = require("support")
local q = support.q

local function list(t)
  local parts = {}
  for i, v in ipairs(t) do parts[i] = string.format("%q", v) end
  return "{ " .. table.concat(parts, ", ") .. " }"
end

-- project(revs) -> dir holding versions/ for revs = { { id, down = {...}, deps = {...}, labels = {...} } }
local function project(revs)
  local dir = support.tmpdir()
  for _, r in ipairs(revs) do
    local down = r.down or {}
    support.write(dir .. "/versions/" .. r[1] .. ".lua", table.concat({
      "local M = {",
      string.format("  revision = %q,", r[1]),
      "  down_revision = " .. (#down == 0 and "nil" or list(down)) .. ",",
      "  branch_labels = " .. (r.labels and list(r.labels) or "nil") .. ",",
      "  depends_on = " .. (r.deps and list(r.deps) or "nil") .. ",",
      "}",
      "function M.upgrade(op) op.execute(\"INSERT INTO ran (what) VALUES ('up ' || ?)\", { M.revision }) end",
      "function M.downgrade(op) op.execute(\"INSERT INTO ran (what) VALUES ('down ' || ?)\", { M.revision }) end",
      "return M", "",
    }, "\n"))
  end
  support.sql(dir .. "/app.db", "CREATE TABLE ran (n INTEGER PRIMARY KEY, what TEXT)")
  return dir
end

-- step(dir, args) -> exit code, the migrations run (joined by ", "), the version rows after
local function step(dir, args)
  local r = support.run(args, { cwd = dir })
  local db = dir .. "/app.db"
  local ran = support.sql(db, "SELECT group_concat(what, ', ') FROM (SELECT what FROM ran ORDER BY n)")
  support.sql(db, "DELETE FROM ran")
  return r.code, ran, support.versions(db), r
end

describe("#cli depends_on across branches", function()
  it("label@head is the head of the branch; a dependency on another branch is applied first, not a member", function()
    local dir = project({
      { "aaaa00000001" }, { "bbbb00000002", down = { "aaaa00000001" } },
      { "cccc00000003", down = { "bbbb00000002" }, deps = { "dddd00000005" }, labels = { "blue", "plum" } },
      { "eeee00000004" }, { "dddd00000005", down = { "eeee00000004" } },
    })
    local code, ran, versions, r = step(dir, "upgrade plum@head")
    assert.are.equal(0, code, r.err)
    assert.are.equal("up eeee00000004, up dddd00000005, up aaaa00000001, up bbbb00000002, up cccc00000003", ran)
    assert.are.equal("cccc00000003", versions)
    support.rmrf(dir)
  end)

  it("label@base removes only the branch (and what depends on it), not the branch it depends on", function()
    local dir = project({
      { "aaaa00000001" }, { "bbbb00000002", down = { "aaaa00000001" } }, { "cccc00000003", down = { "bbbb00000002" } },
      { "dddd00000004", deps = { "aaaa00000001" }, labels = { "navy" } }, { "eeee00000005", down = { "dddd00000004" } },
    })
    local code, ran, versions = step(dir, "upgrade heads")
    assert.are.equal(0, code)
    assert.are.equal("up aaaa00000001, up dddd00000004, up eeee00000005, up bbbb00000002, up cccc00000003", ran)
    assert.are.equal("cccc00000003,eeee00000005", versions)
    code, ran, versions = step(dir, "downgrade navy@base")
    assert.are.equal(0, code)
    assert.are.equal("down eeee00000005, down dddd00000004", ran)
    assert.are.equal("cccc00000003", versions)
    support.rmrf(dir)
  end)

  it("downgrading to a depended-upon revision keeps what depends on it", function()
    local dir = project({
      { "aaaa00000001" }, { "bbbb00000002", down = { "aaaa00000001" } }, { "cccc00000003", down = { "bbbb00000002" } },
      { "dddd00000004", deps = { "bbbb00000002" }, labels = { "red" } },
    })
    local code, ran, versions = step(dir, "upgrade heads")
    assert.are.equal(0, code)
    assert.are.equal("up aaaa00000001, up bbbb00000002, up dddd00000004, up cccc00000003", ran)
    assert.are.equal("cccc00000003,dddd00000004", versions)
    code, ran, versions = step(dir, "downgrade bbbb00000002")
    assert.are.equal(0, code)
    assert.are.equal("down cccc00000003", ran)
    -- bbbb00000002 stays applied, implied by the row of dddd00000004 that depends on it
    assert.are.equal("dddd00000004", versions)
    support.rmrf(dir)
  end)

  it("a head another head depends on is no version row, after stamp and after upgrade", function()
    local dir = project({
      { "aaaa00000001" }, { "bbbb00000002", down = { "aaaa00000001" } }, { "cccc00000003", deps = { "bbbb00000002" } },
    })
    local code, ran, versions = step(dir, "stamp heads")
    assert.are.equal(0, code)
    assert.are.equal("", ran)
    assert.are.equal("cccc00000003", versions)
    code, _, versions = step(dir, "stamp base")
    assert.are.equal(0, code)
    assert.are.equal("", versions)
    code, ran, versions = step(dir, "upgrade heads")
    assert.are.equal(0, code)
    assert.are.equal("up aaaa00000001, up bbbb00000002, up cccc00000003", ran)
    assert.are.equal("cccc00000003", versions)
    local r = support.run("current --check-heads", { cwd = dir })
    assert.are.equal(0, r.code, r.err)
    support.rmrf(dir)
  end)
end)
