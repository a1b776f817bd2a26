local target = require("luamig.target")

describe("#unit target grammar", function()
  local function p(s) return assert(target.parse(s)) end

  it("reads keywords, ids and relative steps", function()
    assert.same({ anchor = "head" }, p("head"))
    assert.same({ anchor = "heads" }, p("heads"))
    assert.same({ anchor = "base" }, p("base"))
    assert.same({ anchor = "current" }, p("current"))
    assert.same({ delta = -1 }, p("-1"))
    assert.same({ delta = 2 }, p("+2"))
    assert.same({ anchor = "head", delta = -1 }, p("head-1"))
    assert.same({ anchor = "base", delta = 2 }, p("base+2"))
    assert.same({ anchor = "rev", id = "ae10" }, p("ae10"))
    assert.same({ anchor = "rev", id = "ae1027a6acf", delta = 3 }, p("ae1027a6acf+3"))
    assert.same({ anchor = "rev", id = "headless" }, p("headless"))
  end)

  it("reads branch forms", function()
    assert.same({ label = "c2branch", anchor = "base", delta = 2 }, p("c2branch@base+2"))
    assert.same({ label = "c2branch", delta = 1 }, p("c2branch@+1"))
    assert.same({ label = "x", anchor = "heads" }, p("x@heads"))
    assert.same({ label = "x", anchor = "rev", id = "abcd" }, p("x@abcd"))
  end)

  it("reads ranges", function()
    local r = assert(target.parse_range("a1b2:head"))
    assert.same({ anchor = "rev", id = "a1b2" }, r.from)
    assert.same({ anchor = "head" }, r.to)
    assert.is_false(assert(target.parse_range(":head")).from)
    assert.is_false(assert(target.parse_range("base:")).to)
    assert.is_nil(target.parse_range(":"))
  end)

  it("rejects what is not a target", function()
    for _, s in ipairs({ "", "a b", "+", "head+", "@", "x@", "1-", "a:b" }) do
      local t, err = target.parse(s)
      assert.is_nil(t, s)
      assert.is_string(err)
    end
  end)
end)
