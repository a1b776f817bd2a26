-- The revision graph from literals, against Alembic's own answers (each expected list below is what Alembic 1.8's
-- RevisionMap returns for the same graph, built in the same order).
local rg = require("luamig.revision_graph")
local runtime = require("luamig.runtime")
local vt = require("luamig.version_table")
local sqlite = require("luamig.dialect.sqlite")
local revision_plan = require("luamig.revision_plan")

local function rev(id, down, extra)
  local r = { revision = id, shown = id .. ".lua", down_revisions = type(down) == "table" and down or (down and { down } or {}) }
  for k, v in pairs(extra or {}) do r[k] = v end
  return r
end

local function graph(list) return assert(rg.new(list)) end

-- plan(g, direction, spec, current) -> the step ids, or nil, message (a runner with no database resolves the target)
local function plan(g, direction, spec, current)
  local r = runtime.new({ graph = g, cfg = {} })
  return r:plan(direction, spec, current)
end

local function steps(g, direction, spec, current) return assert(plan(g, direction, spec, current)) end

local function err_of(g, direction, spec, current)
  local s, err = plan(g, direction, spec, current)
  assert.is_nil(s)
  return err
end

-- rows_after(g, heads, id, direction) -> the version rows after one step, as the runner computes them
local function rows_after(g, heads, id, direction)
  return revision_plan.planner(g):rows_after(heads, id, direction) or g:heads_after(heads, id, direction)
end

-- Applies a step list to a set of heads, as the runner does, and returns the final heads.
local function run(g, direction, list, heads)
  for _, id in ipairs(list) do heads = rows_after(g, heads, id, direction) end
  return heads
end

-- stamp(g, heads, specs) -> the version rows after `luamig stamp specs...`
local function stamp(g, heads, specs) return assert(revision_plan.planner(g):stamp_rows(heads, specs)) end

local function linear()
  return graph({ rev("a"), rev("b", "a"), rev("c", "b"), rev("d", "c"), rev("e", "d") })
end

local function branched()
  return graph({ rev("a"), rev("b", "a"), rev("c1", "b", { branch_labels = { "c1branch" } }), rev("d1", "c1"),
    rev("c2", "b", { branch_labels = { "c2branch" } }), rev("d2", "c2") })
end

describe("#unit revision graph", function()
  describe("linear a..e", function()
    it("knows heads, bases and the order", function()
      local g = linear()
      assert.same({ "e" }, g:heads())
      assert.same({ "a" }, g:bases())
      assert.same({ "a", "b", "c", "d", "e" }, g:plan_upgrade({}, { "e" }))
    end)

    it("upgrades relatively: from a +2 -> b, c; b+2 -> b, c, d; d-2 -> a, b; from b +5 fails", function()
      local g = linear()
      assert.same({ "b", "c" }, steps(g, "upgrade", "+2", { "a" }))
      assert.same({ "b", "c", "d" }, steps(g, "upgrade", "b+2", { "a" }))
      assert.same({ "a", "b" }, steps(g, "upgrade", "d-2", {}))
      assert.equal("Relative revision +5 didn't produce 5 migrations", err_of(g, "upgrade", "+5", { "b" }))
    end)

    it("downgrades relatively: from c -1 -> c; from d to a+2 -> d; from nothing to b fails", function()
      local g = linear()
      assert.same({ "c" }, steps(g, "downgrade", "-1", { "c" }))
      assert.same({ "d" }, steps(g, "downgrade", "a+2", { "d" }))
      assert.equal("Destination b is not a valid downgrade target from the current revision(s) <base>",
        err_of(g, "downgrade", "b", {}))
      assert.same({ "e", "d", "c", "b", "a" }, steps(g, "downgrade", "base", { "e" }))
      assert.same({}, steps(g, "downgrade", "e", { "e" }))
    end)
  end)

  describe("branched a -> b -> {c1 (c1branch) -> d1, c2 (c2branch) -> d2}", function()
    it("has two heads, one branch point and labels spread along each branch", function()
      local g = branched()
      assert.same({ "d1", "d2" }, g:heads())
      assert.is_true(g:is_branch_point("b"))
      assert.same({ "c1branch" }, g:get("d1").all_labels)
      assert.same({ "c2branch" }, g:get("c2").all_labels)
      assert.same({}, g:get("b").all_labels)
    end)

    it("upgrades from a to heads: b, c2, d2, c1, d1; and back to a: d1, c1, d2, c2, b", function()
      local g = branched()
      local up = steps(g, "upgrade", "heads", { "a" })
      assert.same({ "b", "c2", "d2", "c1", "d1" }, up)
      assert.same({ "d1", "d2" }, run(g, "upgrade", up, { "a" }))
      local down = steps(g, "downgrade", "a", { "d1", "d2" })
      assert.same({ "d1", "c1", "d2", "c2", "b" }, down)
      assert.same({ "a" }, run(g, "downgrade", down, { "d1", "d2" }))
    end)

    it("downgrades one branch: to c1 -> d1; to b -> d1, c1, d2, c2; c1branch@-1 -> d1", function()
      local g = branched()
      assert.same({ "d1" }, steps(g, "downgrade", "c1", { "d1", "d2" }))
      assert.same({ "c1", "d2" }, run(g, "downgrade", { "d1" }, { "d1", "d2" }))
      assert.same({ "d1", "c1", "d2", "c2" }, steps(g, "downgrade", "b", { "d1", "d2" }))
      assert.same({ "d1" }, steps(g, "downgrade", "c1branch@-1", { "d1", "d2" }))
    end)

    it("follows labels: c2branch@base+2 from {d2, d1} -> d2, c2; c2branch@+1 from {c1, c2} -> d2", function()
      local g = branched()
      local down = steps(g, "downgrade", "c2branch@base+2", { "d1", "d2" })
      assert.same({ "d2", "c2" }, down)
      assert.same({ "d1" }, run(g, "downgrade", down, { "d1", "d2" }))
      assert.same({ "d2" }, steps(g, "upgrade", "c2branch@+1", { "c1", "c2" }))
      assert.same({ "d1" }, steps(g, "upgrade", "c1branch@head", { "c1", "c2" }))
      assert.same({ "c2", "d2", "d1" }, steps(g, "upgrade", "heads", { "c1" }))
    end)

    it("refuses ambiguity and names what is wrong", function()
      local g = branched()
      assert.equal("Ambiguous upgrade from multiple current revisions (c1, c2); name a revision or a branch (label@+1)",
        err_of(g, "upgrade", "+1", { "c1", "c2" }))
      assert.matches("^Multiple heads are present %(d1, d2%); merge them with `luamig merge heads`", err_of(g, "upgrade", "head", {}))
      assert.equal("Ambiguous downgrade from multiple current revisions (d1, d2); name one, e.g. `luamig downgrade d1@-1`",
        err_of(g, "downgrade", "-1", { "d1", "d2" }))
      assert.equal("Relative revision +1 is ambiguous: b has 2 next revisions (c1, c2); name one, or a branch (label@+1)",
        err_of(g, "upgrade", "+1", { "b" }))
      assert.equal("Revision d2 is not a member of branch 'c1branch'", err_of(g, "upgrade", "c1branch@d2", {}))
      assert.equal("No such branch: 'xbranch'", err_of(g, "upgrade", "xbranch@head", {}))
      assert.equal("No such branch: 'c9branch'", err_of(g, "downgrade", "c9branch@base", { "d1", "d2" }))
      assert.equal("No such revision or branch 'd'; a partial revision id needs at least four characters",
        err_of(g, "upgrade", "d", {}))
    end)

    it("stamps b from {d1, c2}: delete d1, update c2 -> b", function()
      local g = branched()
      local new = stamp(g, { "c2", "d1" }, { "b" })
      assert.same({ "b" }, new)
      local sql = vt.change_sql(sqlite, "luamig_version", { "c2", "d1" }, new)
      assert.same({ { sql = "UPDATE luamig_version SET version_num = ? WHERE version_num = ?", params = { "b", "c2" }, expect = 1 },
        { sql = "DELETE FROM luamig_version WHERE version_num = ?", params = { "d1" }, expect = 1 } }, sql)
      -- a stamp on one line leaves the other
      assert.same({ "c1", "d2" }, stamp(g, { "d1", "d2" }, { "c1" }))
      assert.same({}, stamp(g, { "d1", "d2" }, { "base" }))
      -- the rows of other lines stay (Alembic's `stamp heads` from {c2, d1} would leave d2 alone)
      assert.same({ "d1", "d2" }, stamp(g, { "c2", "d1" }, { "heads" }))
    end)
  end)

  describe("three-way twin merges a -> {b1, b2, b3} -> {c1, c2} -> d1, d2", function()
    local function twin()
      return graph({ rev("a"), rev("b1", "a"), rev("b2", "a"), rev("b3", "a"), rev("c1", { "b1", "b2", "b3" }),
        rev("c2", { "b1", "b2", "b3" }), rev("d1", "c1"), rev("d2", "c2") })
    end

    it("upgrades and downgrades in Alembic's order with the right version rows", function()
      local g = twin()
      local up = steps(g, "upgrade", "heads", {})
      assert.same({ "a", "b3", "b2", "b1", "c2", "d2", "c1", "d1" }, up)
      assert.same({ "d1", "d2" }, run(g, "upgrade", up, {}))
      assert.same({ "a", "b3", "b2", "b1", "c1", "d1" }, steps(g, "upgrade", "d1", {}))
      assert.same({ "c2", "d2" }, steps(g, "upgrade", "d2", { "d1" }))
      local down = steps(g, "downgrade", "base", { "d1", "d2" })
      assert.same({ "d1", "c1", "d2", "c2", "b1", "b2", "b3", "a" }, down)
      assert.same({}, run(g, "downgrade", down, { "d1", "d2" }))
      assert.same({ "d1", "c1", "d2", "c2" }, steps(g, "downgrade", "b1", { "d1", "d2" }))
    end)

    it("merging deletes the other rows and updates one; unmerging inserts them back", function()
      local g = twin()
      assert.same({ "b1", "b2", "b3" }, run(g, "upgrade", { "a", "b3", "b2", "b1" }, {}))
      assert.same({ "c1" }, rows_after(g, { "b1", "b2", "b3" }, "c1", "upgrade"))
      local sql = vt.change_sql(sqlite, "v", { "b1", "b2", "b3" }, { "c1" })
      assert.equal(3, #sql)
      assert.matches("^UPDATE", sql[1].sql)
      assert.matches("^DELETE", sql[2].sql)
      assert.same({ "b1", "b2", "b3" }, rows_after(g, { "c1" }, "c1", "downgrade"))
      assert.same({ "c1", "c2" }, rows_after(g, { "c1" }, "c2", "upgrade"))
    end)
  end)

  it("walks a diamond a -> {b1, b2} -> c -> d in Alembic's order", function()
    local g = graph({ rev("a"), rev("b1", "a"), rev("b2", "a"), rev("c", { "b1", "b2" }), rev("d", "c") })
    assert.same({ "d", "c", "b1", "b2", "a" }, g:range(nil, { "d" }))
    assert.same({ "a", "b2", "b1", "c", "d" }, steps(g, "upgrade", "d", {}))
    assert.same({ "d", "c", "b1", "b2", "a" }, steps(g, "downgrade", "base", { "d" }))
  end)

  it("reverts a merge with -1 (where Alembic refuses an ambiguous walk) but not a longer walk through it", function()
    local g = graph({ rev("a"), rev("b1", "a"), rev("b2", "a"), rev("c", { "b1", "b2" }), rev("d", "c") })
    local down = steps(g, "downgrade", "-1", { "c" })
    assert.same({ "c" }, down)
    assert.same({ "b1", "b2" }, run(g, "downgrade", down, { "c" }))
    assert.same({ "d" }, steps(g, "downgrade", "-1", { "d" }))
    assert.equal("Relative revision -2 is ambiguous: c is a merge of b1, b2", err_of(g, "downgrade", "-2", { "d" }))
  end)

  describe("depends_on across two bases: a1..f1 and a2 -> b2 -> c2 (depends on c1)", function()
    local function dep()
      return graph({ rev("a1"), rev("b1", "a1"), rev("c1", "b1"), rev("d1", "c1"), rev("e1", "d1"), rev("f1", "e1"),
        rev("a2"), rev("b2", "a2"), rev("c2", "b2", { depends_on = { "c1" } }) })
    end

    it("orders the dependency first and drops the depended-on row", function()
      local g = dep()
      assert.same({ "f1", "c2" }, g:heads())
      local up = steps(g, "upgrade", "c2", {})
      assert.same({ "a1", "b1", "c1", "a2", "b2", "c2" }, up)
      assert.same({ "c2" }, run(g, "upgrade", up, {}))
      assert.same({ "a1", "b1", "c1", "a2", "b2", "c2", "d1", "e1", "f1" }, steps(g, "upgrade", "heads", {}))
      assert.same({ "c2", "f1" }, g:effective_heads())
    end)

    it("downgrades d1 from {c2, d1} to {c2}", function()
      local g = dep()
      local down = steps(g, "downgrade", "c1", { "c2", "d1" })
      assert.same({ "d1" }, down)
      assert.same({ "c2" }, run(g, "downgrade", down, { "c2", "d1" }))
      assert.same({ "f1", "e1", "d1", "c2", "b2", "a2", "c1", "b1", "a1" }, steps(g, "downgrade", "base", { "c2", "f1" }))
    end)
  end)

  it("rejects invalid graphs naming the files", function()
    local cases = {
      { { rev("a"), rev("a") }, "revision a is defined twice: in a.lua and in a.lua" },
      { { rev("a", "a") }, "a.lua: revision a names itself as its down_revision" },
      { { rev("a"), rev("b", "zz") }, "b.lua: down_revision 'zz' of revision b is not a known revision" },
      { { rev("a", "c"), rev("b", "a"), rev("c", "b") }, "the revisions a, b, c form a cycle (files: a.lua, b.lua, c.lua)" },
      { { rev("a"), rev("b", "a", { depends_on = { "q" } }) }, "b.lua: depends_on 'q' of revision b is not a known revision or branch label" },
      { { rev("a", nil, { branch_labels = { "x" } }), rev("b", "a", { branch_labels = { "x" } }) }, "branch label 'x' is used by both a.lua and b.lua" },
      { { rev("a"), rev("b", "a", { depends_on = { "c" } }), rev("c", "b") }, "the revisions b, c form a dependency cycle (files: b.lua, c.lua)" },
      { { rev("a", nil, { depends_on = { "a" } }) }, "a.lua: revision a depends on itself" },
      { { rev("a", nil, { branch_labels = { "b" } }), rev("b", "a") }, "a.lua: branch label 'b' is also a revision id" },
    }
    for _, c in ipairs(cases) do
      local g, err = rg.new(c[1])
      assert.is_nil(g)
      assert.equal(c[2], err)
    end
  end)

  it("resolves prefixes and reports ambiguous ones", function()
    local g = graph({ rev("a1b2c3"), rev("a1b2ff", "a1b2c3"), rev("c9d8e7", "a1b2ff") })
    assert.same({ "a1b2c3", "a1b2ff", "c9d8e7" }, steps(g, "upgrade", "c9d8", {}))
    assert.equal("Multiple revisions start with 'a1b2': a1b2c3, a1b2ff", err_of(g, "upgrade", "a1b2", {}))
    assert.same({ "c9d8e7" }, steps(g, "downgrade", "head-1", { "c9d8e7" }))
    assert.same({ "a1b2c3" }, steps(g, "upgrade", "base+1", {}))
    assert.same({ "a1b2c3" }, steps(g, "downgrade", "-1", { "a1b2c3" }))
    assert.equal("Relative revision -2 didn't produce 2 migrations", err_of(g, "downgrade", "-2", { "a1b2c3" }))
  end)

  describe("depends_on across branches (expected results from Alembic 1.8.1, files in this order)", function()
    -- a -> b -> h (labels blue, plum; depends on d); x -> d
    local function a1()
      return graph({ rev("aaaa"), rev("bbbb", "aaaa"), rev("hhhh", "bbbb", { branch_labels = { "blue", "plum" },
        depends_on = { "dddd" } }), rev("xxxx"), rev("dddd", "xxxx") })
    end

    it("label@head is the branch's head; the dependency is applied first, not made a member", function()
      local g = a1()
      assert.same({ "xxxx", "dddd", "aaaa", "bbbb", "hhhh" }, steps(g, "upgrade", "plum@head", {}))
      assert.same({ "hhhh" }, run(g, "upgrade", steps(g, "upgrade", "plum@head", {}), {}))
      assert.equal("Revision dddd is not a member of branch 'plum'", err_of(g, "upgrade", "plum@dddd", {}))
    end)

    it("label@base of a base with a dependency reverts only that branch", function()
      local g = graph({ rev("aaaa"), rev("bbbb", "aaaa"), rev("cccc", "bbbb"),
        rev("dddd", nil, { branch_labels = { "navy" }, depends_on = { "aaaa" } }), rev("eeee", "dddd") })
      assert.same({ "eeee", "dddd" }, steps(g, "downgrade", "navy@base", { "cccc", "eeee" }))
      assert.same({ "cccc" }, run(g, "downgrade", { "eeee", "dddd" }, { "cccc", "eeee" }))
    end)

    it("downgrading to a depended-upon revision keeps what depends on it", function()
      local g = graph({ rev("aaaa"), rev("bbbb", "aaaa"), rev("cccc", "bbbb"),
        rev("dddd", nil, { branch_labels = { "red" }, depends_on = { "bbbb" } }) })
      assert.same({ "cccc" }, steps(g, "downgrade", "bbbb", { "cccc", "dddd" }))
      assert.same({ "dddd" }, run(g, "downgrade", { "cccc" }, { "cccc", "dddd" }))
    end)

    it("a head another head depends on gets no version row", function()
      local g = graph({ rev("aaaa"), rev("bbbb", "aaaa"), rev("cccc", nil, { depends_on = { "bbbb" } }) })
      assert.same({ "cccc" }, stamp(g, {}, { "heads" }))
      assert.same({ "cccc" }, run(g, "upgrade", steps(g, "upgrade", "heads", {}), {}))
    end)
  end)
end)
