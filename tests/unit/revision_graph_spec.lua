local rg = require("luamig.revision_graph")
local runtime = require("luamig.runtime")

-- rev("b", "a") / rev("m", {"x","y"}) build records from literals
local function rev(id, down, extra)
  local r = { revision = id, shown = id .. ".lua", down_revisions = type(down) == "table" and down or (down and { down } or {}) }
  for k, v in pairs(extra or {}) do r[k] = v end
  return r
end

local function linear()
  return assert(rg.new({ rev("a"), rev("b", "a"), rev("c", "b"), rev("d", "c"), rev("e", "d") }))
end

-- A runner without a database resolves targets against a given current set.
local function resolve(g, spec, current, direction)
  local r = runtime.new({ graph = g, cfg = {} })
  return r:resolve(spec, current, direction or "upgrade")
end

describe("#unit revision graph", function()
  it("knows heads, bases and a topological order", function()
    local g = linear()
    assert.same({ "e" }, g:heads())
    assert.same({ "a" }, g:bases())
    assert.same({ "a", "b", "c", "d", "e" }, g.order)
  end)

  it("plans linear upgrades and downgrades", function()
    local g = linear()
    assert.same({ "a", "b", "c", "d", "e" }, g:plan_upgrade({}, { "e" }))
    assert.same({ "c", "d" }, g:plan_upgrade({ "b" }, { "d" }))
    assert.same({}, g:plan_upgrade({ "d" }, { "b" }))
    assert.same({ "e", "d", "c" }, g:plan_downgrade({ "e" }, { "b" }))
    assert.same({ "b", "a" }, g:plan_downgrade({ "b" }, {}))
  end)

  it("resolves relative targets as Alembic does (from a: +2 -> c; b+2 -> d; d-2 -> b; from b +5 fails)", function()
    local g = linear()
    assert.same({ "c" }, resolve(g, "+2", { "a" }))
    assert.same({ "b", "c" }, g:plan_upgrade({ "a" }, resolve(g, "+2", { "a" })))
    assert.same({ "d" }, resolve(g, "b+2", { "a" }))
    assert.same({ "b", "c", "d" }, g:plan_upgrade({ "a" }, resolve(g, "b+2", { "a" })))
    assert.same({ "b" }, resolve(g, "d-2", {}))
    local t, err = resolve(g, "+5", { "b" })
    assert.is_nil(t)
    assert.equal("Relative revision +5 didn't produce 5 migrations", err)
  end)

  it("resolves head, base, prefixes and steps past the base", function()
    local g = assert(rg.new({ rev("a1b2c3"), rev("a1b2ff", "a1b2c3"), rev("c9d8e7", "a1b2ff") }))
    assert.same({ "c9d8e7" }, resolve(g, "head", {}))
    assert.same({}, resolve(g, "base", {}))
    assert.same({ "c9d8e7" }, resolve(g, "c9d8", {}))
    assert.same({ "a1b2ff" }, resolve(g, "head-1", {}))
    assert.same({ "a1b2c3" }, resolve(g, "base+1", {}))
    assert.same({}, resolve(g, "-1", { "a1b2c3" }, "downgrade"))
    local _, e1 = resolve(g, "a1b2", {})
    assert.equal("Multiple revisions start with 'a1b2': a1b2c3, a1b2ff", e1)
    local _, e2 = resolve(g, "a1b", {})
    assert.equal("No such revision or branch 'a1b'; a partial revision id needs at least four characters", e2)
    local _, e3 = resolve(g, "ffff", {})
    assert.equal("No such revision or branch 'ffff'", e3)
    local _, e4 = resolve(g, "-2", { "a1b2c3" }, "downgrade")
    assert.equal("Relative revision -2 didn't produce 2 migrations", e4)
  end)

  it("refuses head with several heads, naming them", function()
    local g = assert(rg.new({ rev("a"), rev("b1", "a"), rev("b2", "a") }))
    assert.same({ "b1", "b2" }, g:heads())
    local _, err = resolve(g, "head", {})
    assert.matches("^Multiple heads are present %(b1, b2%); merge them", err)
    assert.same({ "b1", "b2" }, resolve(g, "heads", {}))
    local _, amb = resolve(g, "+1", { "b1", "b2" })
    assert.equal("Ambiguous upgrade from multiple current revisions (b1, b2); name a revision", amb)
  end)

  it("computes version rows after each step (linear, branch, merge)", function()
    local g = assert(rg.new({ rev("a"), rev("b1", "a"), rev("b2", "a"), rev("m", { "b1", "b2" }) }))
    assert.same({ "a" }, g:heads_after({}, "a", "upgrade"))
    assert.same({ "b1" }, g:heads_after({ "a" }, "b1", "upgrade"))
    assert.same({ "b1", "b2" }, g:heads_after({ "b1" }, "b2", "upgrade"))
    assert.same({ "m" }, g:heads_after({ "b1", "b2" }, "m", "upgrade"))
    assert.same({ "b1", "b2" }, g:heads_after({ "m" }, "m", "downgrade"))
    assert.same({ "b1" }, g:heads_after({ "b1", "b2" }, "b2", "downgrade"))
    assert.same({}, g:heads_after({ "a" }, "a", "downgrade"))
  end)

  it("rejects invalid graphs naming the files", function()
    local cases = {
      { { rev("a"), rev("a") }, "revision a is defined twice: in a.lua and in a.lua" },
      { { rev("a", "a") }, "a.lua: revision a names itself as its down_revision" },
      { { rev("a"), rev("b", "zz") }, "b.lua: down_revision 'zz' of revision b is not a known revision" },
      { { rev("a", "c"), rev("b", "a"), rev("c", "b") }, "the revisions a, b, c form a cycle (files: a.lua, b.lua, c.lua)" },
      { { rev("a"), rev("b", "a", { depends_on = { "q" } }) }, "b.lua: depends_on 'q' of revision b is not a known revision or branch label" },
      { { rev("a", nil, { branch_labels = { "x" } }), rev("b", "a", { branch_labels = { "x" } }) }, "branch label 'x' is used by both a.lua and b.lua" },
      { { rev("a"), rev("b", "a", { depends_on = { "c" } }), rev("c", "b") }, "the revisions b, c form a cycle (files: b.lua, c.lua)" },
    }
    for _, c in ipairs(cases) do
      local g, err = rg.new(c[1])
      assert.is_nil(g)
      assert.equal(c[2], err)
    end
  end)

  it("orders depends_on targets before their dependents", function()
    local g = assert(rg.new({ rev("x"), rev("a"), rev("b", "a", { depends_on = { "x" } }) }))
    local plan = g:plan_upgrade({}, { "b" })
    assert.same({ "x", "a", "b" }, plan)
  end)
end)
