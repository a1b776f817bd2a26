local revision = require("luamig.cmd.revision")
local templates = require("luamig.templates")
local json = require("luamig.json")

describe("#unit revision files", function()
  it("slugs messages as Alembic does", function()
    assert.equal("add_user_table", revision.slug("Add user table!", 40))
    assert.equal("add_a_very_long_", revision.slug("add a very long message here", 18))
    assert.equal("", revision.slug("", 40))
  end)

  it("renders file_template with Python %-formatting", function()
    local name = revision.render_file_template("%(year)d%(month).2d%(day).2d_%(hour).2d%(minute).2d_%(rev)s_%(slug)s",
      { year = 2025, month = 3, day = 4, hour = 5, minute = 6, rev = "a1b2c3d4e5f6", slug = "add_user" })
    assert.equal("20250304_0506_a1b2c3d4e5f6_add_user", name)
    local bad, err = revision.render_file_template("%(nope)s", {})
    assert.is_nil(bad)
    assert.matches("unknown field %%%(nope%)s", err)
  end)

  it("writes a migration that loads and has the header of SPEC 4", function()
    local text = templates.migration({ message = "add user table", revision = "a1b2c3d4e5f6", down_revision = "0f1e2d3c4b5a",
      create_date = "2025-10-24 14:30:00+00:00" })
    assert.matches("^%-%-%- add user table\n%-%- Revision ID: a1b2c3d4e5f6\n%-%- Revises: 0f1e2d3c4b5a\n", text)
    local m = assert(load(text, "=m", "t", setmetatable({}, { __index = _G })))()
    assert.equal("a1b2c3d4e5f6", m.revision)
    assert.equal("0f1e2d3c4b5a", m.down_revision)
    assert.is_function(m.upgrade)
    assert.is_function(m.downgrade)
  end)
end)

describe("#unit json", function()
  it("encodes objects with sorted keys, arrays, escapes and null", function()
    assert.equal('{"a":[1,2.5,"x\\n\\"y\\""],"b":null,"c":true,"e":[]}',
      json.encode({ c = true, a = { 1, 2.5, 'x\n"y"' }, b = json.null, e = json.array({}) }))
    assert.equal('"\\u0001"', json.encode("\1"))
  end)
end)
