-- The revision graph through the built binary, on the fixture trees of tests/fixtures, against real SQLite files and
-- PostgreSQL databases: after each command the version rows and the tables (each migration creates t_<revision>)
-- must agree.
local S = require("support")

local function fixture(name)
  local dir = S.tmpdir()
  S.copy_versions(S.root .. "/tests/fixtures/" .. name .. "/versions", dir .. "/versions")
  return dir
end

-- the t_<revision> tables present, joined by ","
local function applied(T, db)
  local out = {}
  for _, t in ipairs(T.tables(db)) do
    local id = t:match("^t_(.+)$")
    if id then out[#out + 1] = id end
  end
  return table.concat(out, ",")
end

for _, T in ipairs(S.targets()) do
  describe("#" .. T.name .. " revision graph: branched", function()
    local dir, db, url
    setup(function()
      dir = fixture("branched")
      url, db = T.fresh(dir)
    end)
    teardown(function()
      S.rmrf(dir)
      T.drop(db)
    end)
    local function run(args) return S.run(T.url_arg(url) .. args, { cwd = dir }) end
    local function ok(args)
      local r = run(args)
      assert.equal(0, r.code, args .. ": " .. r.err)
      return r
    end

    it("inspects the graph without a database: heads, branches, history, show", function()
      assert.same({ "d1000001 (c1branch) (head)", "d2000001 (c2branch) (head)" }, ok("heads").lines)
      assert.same({ "b0000001 (branchpoint)", "         -> c1000001 (c1branch)", "         -> c2000001 (c2branch)" },
        ok("branches").lines)
      assert.same({
        "c1000001 -> d1000001 (c1branch) (head), create t_d1000001",
        "b0000001 -> c1000001 (c1branch), create t_c1000001",
        "c2000001 -> d2000001 (c2branch) (head), create t_d2000001",
        "b0000001 -> c2000001 (c2branch), create t_c2000001",
        "a0000001 -> b0000001 (branchpoint), create t_b0000001",
        "<base> -> a0000001, create t_a0000001",
      }, ok("history").lines)
      assert.same({ "c2000001 -> d2000001 (c2branch) (head), create t_d2000001", "b0000001 -> c2000001 (c2branch), create t_c2000001" },
        ok("history -r c2000001:d2000001").lines)
      local show = ok("show c2branch@head")
      assert.same({ "Rev: d2000001 (head)", "Parent: c2000001", "Branch names: c2branch", "Path: versions/d2000001.lua", "    create t_d2000001" },
        show.lines)
      assert.is_false(T.exists(db))
    end)

    it("upgrade head refuses several heads; upgrade heads applies both branches in Alembic's order", function()
      local r = run("upgrade head")
      assert.equal(1, r.code)
      assert.equal("luamig: Multiple heads are present (d1000001, d2000001); merge them with `luamig merge heads`, or name one (or `heads` for all)", r.first)
      r = ok("upgrade heads")
      assert.equal(table.concat({
        "upgrade <base> -> a0000001", "upgrade a0000001 -> b0000001", "upgrade b0000001 -> c2000001",
        "upgrade c2000001 -> d2000001", "upgrade b0000001 -> c1000001", "upgrade c1000001 -> d1000001" }, "\n"),
        (r.err:gsub(", create t_%w+ %(%d+ ms%)", "")):gsub("\n$", ""))
      assert.equal("d1000001,d2000001", T.versions(db))
      assert.equal("a0000001,b0000001,c1000001,c2000001,d1000001,d2000001", applied(T, db))
      assert.same({ "d1000001 (head)", "d2000001 (head)" }, ok("current").lines)
      assert.equal(0, run("current --check-heads").code)
    end)

    it("downgrades one branch by revision and by label; current --check-heads then exits 3", function()
      ok("downgrade c1000001")
      assert.equal("c1000001,d2000001", T.versions(db))
      assert.equal("a0000001,b0000001,c1000001,c2000001,d2000001", applied(T, db))
      local chk = run("current --check-heads")
      assert.equal(3, chk.code)
      assert.equal("luamig: the database is at c1000001, d2000001, not at every head (d1000001, d2000001)", chk.errline)
      ok("downgrade c2branch@base+2")
      assert.equal("c1000001", T.versions(db))
      assert.equal("a0000001,b0000001,c1000001", applied(T, db))
      local amb = run("upgrade +1")
      assert.equal(0, amb.code, amb.err)
      assert.equal("d1000001", T.versions(db))
    end)

    it("upgrades one branch by label and refuses an ambiguous relative step", function()
      ok("upgrade c2branch@+1")
      assert.equal("c2000001,d1000001", T.versions(db))
      local r = run("downgrade -1")
      assert.equal(1, r.code)
      assert.equal("luamig: Ambiguous downgrade from multiple current revisions (c2000001, d1000001); name one, e.g. `luamig downgrade c2000001@-1`", r.first)
      ok("downgrade c2000001@-1")
      assert.equal("d1000001", T.versions(db))
      assert.equal("a0000001,b0000001,c1000001,d1000001", applied(T, db))
      local bad = run("upgrade c1branch@d2000001")
      assert.equal(1, bad.code)
      assert.equal("luamig: Revision d2000001 is not a member of branch 'c1branch'", bad.first)
      local nob = run("downgrade nobranch@base")
      assert.equal(1, nob.code)
      assert.equal("luamig: No such branch: 'nobranch'", nob.first)
      assert.equal("d1000001", T.versions(db))
    end)

    it("stamps without running migrations, on one line of descent, and --purge", function()
      ok("stamp b0000001")
      assert.equal("b0000001", T.versions(db))
      assert.equal("a0000001,b0000001,c1000001,d1000001", applied(T, db))
      ok("stamp c2000001")
      assert.equal("c2000001", T.versions(db))
      ok("stamp d1000001 c2000001")
      assert.equal("c2000001,d1000001", T.versions(db))
      ok("stamp heads")
      assert.equal("d1000001,d2000001", T.versions(db))
      T.query(db, "INSERT INTO luamig_version VALUES ('gone0000')")
      local r = run("stamp base")
      assert.equal(1, r.code)
      assert.matches("gone0000, which no migration file defines; use stamp %-%-purge", r.first)
      ok("stamp --purge d1000001")
      assert.equal("d1000001", T.versions(db))
      assert.equal("stamp|stamped", T.query(db, "SELECT direction, status FROM luamig_history ORDER BY id DESC LIMIT 1"))
      ok("stamp base")
      assert.equal("", T.versions(db))
      assert.equal("a0000001,b0000001,c1000001,d1000001", applied(T, db))
    end)

    it("merges the heads, applies the merge, and unmerges on downgrade", function()
      ok("stamp d1000001")
      ok("upgrade heads")
      assert.equal("d1000001,d2000001", T.versions(db))
      local m = ok("merge heads -m 'join branches' --rev-id e0000001")
      assert.equal("versions/e0000001_join_branches.lua", m.lines[1])
      assert.matches('down_revision = { "d1000001", "d2000001" }', S.read(dir .. "/versions/e0000001_join_branches.lua"))
      assert.same({ "e0000001 (c1branch, c2branch) (head)" }, ok("heads").lines)
      ok("upgrade head")
      assert.equal("e0000001", T.versions(db))
      assert.same({ "e0000001 (head) (mergepoint)" }, ok("current").lines)
      ok("downgrade -1")
      assert.equal("d1000001,d2000001", T.versions(db))
      local one = run("merge d1000001")
      assert.equal(1, one.code)
      assert.equal("luamig: merge needs at least two revisions; d1000001 is only d1000001", one.first)
      local anc = run("merge b0000001 d1000001")
      assert.equal(1, anc.code)
      assert.equal("luamig: revision b0000001 is an ancestor of d1000001: there is nothing to merge", anc.first)
    end)

    it("revision --head / --splice / --branch-label / --depends-on shape the graph", function()
      local r = run("revision -m 'off b' --head b0000001")
      assert.equal(1, r.code)
      assert.equal("luamig: Revision b0000001 is not a head revision; give --splice to start a new branch from it", r.first)
      local s = ok("revision -m 'third branch' --head b0000001 --splice --branch-label c3branch --rev-id c3000001 --depends-on c1branch")
      assert.equal("versions/c3000001_third_branch.lua", s.lines[1])
      local text = S.read(dir .. "/versions/c3000001_third_branch.lua")
      assert.matches('down_revision = "b0000001"', text)
      assert.matches('branch_labels = "c3branch"', text)
      assert.matches('depends_on = "c1branch"', text)
      assert.same({ "c3000001 (c3branch) (head)", "e0000001 (c1branch, c2branch) (head)" }, ok("heads").lines)
      local c = ok("revision -m 'on c3' --head c3branch@head --rev-id c3000002")
      assert.matches('down_revision = "c3000001"', S.read(dir .. "/" .. c.lines[1]))
      local multi = run("revision -m x")
      assert.equal(1, multi.code)
      assert.matches("^luamig: Multiple heads are present %(c3000002, e0000001%); give %-%-head HEAD", multi.first)
      local dup = run("revision -m x --head c3branch@head --branch-label c1branch")
      assert.equal(1, dup.code)
      assert.equal("luamig: Branch name 'c1branch' is already used by revision c1000001", dup.first)
      local nb = ok("revision -m 'new base' --head base --rev-id f0000001")
      assert.matches("down_revision = nil", S.read(dir .. "/" .. nb.lines[1]))
      assert.equal(3, #ok("heads").lines)
    end)
  end)

  describe("#" .. T.name .. " revision graph: merge and depends_on", function()
    it("applies a merge as one row and reverts it into two", function()
      local dir = fixture("merge")
      local url, db = T.fresh(dir)
      local function run(args) return S.run(T.url_arg(url) .. args, { cwd = dir }) end
      local r = run("upgrade m0000001")
      assert.equal(0, r.code, r.err)
      assert.equal("m0000001", T.versions(db))
      assert.equal("a0000001,b1000001,b2000001,m0000001", applied(T, db))
      assert.matches("b1000001, b2000001 %-> m0000001 %(current%) %(mergepoint%), merge b1 and b2",
        run("history -i").out)
      assert.equal(0, run("downgrade b1000001").code)
      assert.equal("b1000001,b2000001", T.versions(db))
      assert.equal(0, run("downgrade b2000001@-1").code)
      assert.equal("b1000001", T.versions(db))
      assert.equal("a0000001,b1000001", applied(T, db))
      assert.equal(0, run("upgrade head").code)
      assert.equal("n0000001", T.versions(db))
      assert.equal("a0000001,b1000001,b2000001,m0000001,n0000001", applied(T, db))
      S.rmrf(dir)
      T.drop(db)
    end)

    it("applies a dependency first and keeps no separate row for it", function()
      local dir = fixture("depends")
      local url, db = T.fresh(dir)
      local function run(args) return S.run(T.url_arg(url) .. args, { cwd = dir }) end
      local r = run("upgrade c2000001")
      assert.equal(0, r.code, r.err)
      assert.equal("c2000001", T.versions(db))
      assert.equal("a1000001,a2000001,b1000001,b2000001,c1000001,c2000001", applied(T, db))
      assert.equal(0, run("upgrade heads").code)
      assert.equal("c2000001,d1000001", T.versions(db))
      assert.equal(0, run("downgrade c1000001").code)
      assert.equal("c2000001", T.versions(db))
      assert.equal("a1000001,a2000001,b1000001,b2000001,c1000001,c2000001", applied(T, db))
      assert.same({ "b2000001 (c1000001) -> c2000001 (head), create t_c2000001", "a2000001 -> b2000001, create t_b2000001" },
        run("history -r b2000001:c2000001").lines)
      S.rmrf(dir)
      T.drop(db)
    end)
  end)
end
