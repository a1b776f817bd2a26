-- check as a CI gate: models with every type of SPEC 4.1 and every kind of server_default, migrated from an empty
-- database, make `luamig check` exit 0 on SQLite and PostgreSQL (defaults are compared as the database stores
-- them); a string length change and a numeric precision change are detected, generated and applied on both.
local S = require("support")


local HEAD = [[
local model = require("luamig.model")
local t = require("luamig.types")
]]

-- every type, each with the kinds of server_default that make sense for it: a string, a number, a boolean,
-- op.text (model.text) and none
local ALL_DEFAULTS = HEAD .. [[
model.Table("everything", {
  { "id", t.integer, nullable = false },
  { "i_none", t.integer, nullable = true },
  { "i_str", t.integer, server_default = "1" },
  { "i_num", t.integer, server_default = 5 },
  { "i_neg", t.integer, server_default = -5 },
  { "i_text", t.integer, server_default = model.text("(1 + 2)") },
  { "bi_num", t.biginteger, server_default = 7 },
  { "si_str", t.smallinteger, server_default = "3" },
  { "f_str", t.float, server_default = "3.25" },
  { "f_num", t.float, server_default = 3.25 },
  { "n_str", t.numeric(10, 2), server_default = "1.50" },
  { "n_num", t.numeric(10, 2), server_default = 2 },
  { "s_str", t.string, server_default = "pending" },
  { "s_len", t.string(32), server_default = "it's" },
  { "tx_str", t.text, server_default = "long text" },
  { "b_true", t.boolean, server_default = true },
  { "b_false", t.boolean, server_default = false },
  { "b_str", t.boolean, server_default = "1" },
  { "d_str", t.date, server_default = "2020-01-02" },
  { "tm_str", t.time, server_default = "12:30:00" },
  { "dt_str", t.datetime, server_default = "2020-01-02 03:04:05" },
  { "dtz_str", t.datetime{ timezone = true }, server_default = "2020-01-02 03:04:05+00:00" },
  { "dt_text", t.datetime, server_default = model.text("CURRENT_TIMESTAMP") },
  { "j_str", t.json, server_default = "[]" },
  { "j_obj", t.json, server_default = '{"a": 1}' },
  { "bl_str", t.blob, server_default = "abc" },
  { "u_str", t.uuid, nullable = true },
  { "ul_str", t.ulid, server_default = "01ARZ3NDEKTSV4RRFFQ69G5FAV" },
  { "e_str", t.enum{ "a", "b", name = "letter" }, server_default = "a" },
  model.primary_key { "id" },
})
]]

local project = S.models_project

local SIZES_1 = HEAD .. [[
model.Table("sized", {
  { "id", t.integer, nullable = false },
  { "code", t.string(32), nullable = true },
  { "price", t.numeric(8, 2), nullable = true },
  model.primary_key { "id" },
})
]]

for _, T in ipairs(S.targets()) do
  describe("#" .. T.name .. " check after a migration", function()
    it("exits 0 for every type and every kind of server_default", function()
      local dir = project(ALL_DEFAULTS)
      local url, db = T.fresh(dir)
      local function run(args) return S.run(T.url_arg(url) .. args, { cwd = dir }) end
      local r = run("revision --autogenerate -m all --rev-id m1")
      assert.equal(0, r.code, r.err)
      r = run("upgrade head")
      assert.equal(0, r.code, r.err)
      r = run("check")
      assert.equal(0, r.code, r.out .. r.err)
      assert.same({}, r.lines)
      -- the database really has the defaults
      T.query(db, "INSERT INTO everything (id) VALUES (1)")
      assert.equal("1|5|-5|3|pending|it's", T.query(db, "SELECT i_str, i_num, i_neg, i_text, s_str, s_len FROM everything"))
      S.rmrf(dir)
      T.drop(db)
    end)

    it("detects, generates and applies a string length and a numeric precision change", function()
      local dir = project(SIZES_1)
      local url, db = T.fresh(dir)
      local function run(args) return S.run(T.url_arg(url) .. args, { cwd = dir }) end
      assert.equal(0, run("revision --autogenerate -m one --rev-id m1").code)
      assert.equal(0, run("upgrade head").code)
      T.query(db, "INSERT INTO sized (id, code, price) VALUES (1, 'abc', 12.5)")
      S.write(dir .. "/myapp/models.lua", (SIZES_1:gsub("t%.string%(32%)", "t.string(64)"):gsub("t%.numeric%(8, 2%)",
        "t.numeric(12, 3)")))
      local r = run("check")
      assert.equal(3, r.code, r.out .. r.err)
      assert.same({ "~ column sized.code: type VARCHAR(32) -> VARCHAR(64)",
        "~ column sized.price: type NUMERIC(8, 2) -> NUMERIC(12, 3)" }, r.lines)
      r = run("revision --autogenerate -m two --rev-id m2")
      assert.equal(0, r.code, r.err)
      local text = S.read(dir .. "/versions/m2.lua")
      assert.truthy(text:find('op.alter_column("sized", "code", {', 1, true), text)
      assert.truthy(text:find("type = t.string(64)", 1, true), text)
      assert.truthy(text:find("type = t.numeric(12, 3)", 1, true), text)
      r = run("upgrade head")
      assert.equal(0, r.code, r.err)
      assert.equal(0, run("check").code)
      assert.equal("1|abc", T.query(db, "SELECT id, code FROM sized"))
      r = run("downgrade -1")
      assert.equal(0, r.code, r.err)
      -- back at m1 with m1's models (m2 set aside: check wants the database at head)
      os.remove(dir .. "/versions/m2.lua")
      S.write(dir .. "/myapp/models.lua", SIZES_1)
      r = run("check")
      assert.equal(0, r.code, r.out .. r.err)
      S.rmrf(dir)
      T.drop(db)
    end)
  end)
end

describe("#sqlite include_object", function()
  it("is asked about every table, column, index and constraint of both sides, and leaves out what it rejects", function()
    local dir = project(HEAD .. [[
model.Table("kept", {
  { "id", t.integer, nullable = false },
  { "code", t.string(10), unique = true },
  { "other_id", t.integer, references = "other.id" },
  { "n", t.integer, nullable = true, index = true },
  model.check("n > 0", { name = "n_positive" }),
  model.primary_key { "id" },
})
model.Table("other", { { "id", t.integer, nullable = false }, model.primary_key { "id" } })
]])
    local r = S.run("revision --autogenerate -m one --rev-id m1", { cwd = dir })
    assert.equal(0, r.code, r.err)
    assert.equal(0, S.run("upgrade head", { cwd = dir }).code)
    -- the database gains what the models do not have; include_object hides part of it
    S.sql(dir .. "/app.db", "ALTER TABLE kept ADD COLUMN legacy INTEGER; CREATE INDEX ix_kept_legacy ON kept (legacy); "
      .. "CREATE TABLE audit_log (id INTEGER)")
    S.write(dir .. "/env.lua", [[
local seen = {}
return {
  include_object = function(name, kind, reflected, compare_to)
    local line = string.format("%s %s %s %s", kind, tostring(name), reflected and "db" or "model",
      compare_to and "pair" or "alone")
    if not seen[line] then
      seen[line] = true
      io.stderr:write("asked: ", line, "\n")
    end
    return not (tostring(name):match("legacy") or name == "audit_log")
  end,
}
]])
    r = S.run("check", { cwd = dir })
    assert.equal(0, r.code, r.out .. r.err)
    for _, want in ipairs({ "table kept db pair", "table kept model pair", "table audit_log db alone",
      "column code model pair", "column legacy db alone", "index ix_kept_n model pair", "index ix_kept_legacy db alone",
      "unique_constraint uq_kept_code db pair", "foreign_key_constraint fk_kept_other_id_other model pair",
      "check_constraint ck_kept_n_positive db pair" }) do
      assert.truthy(r.err:find("asked: " .. want, 1, true), want .. " in:\n" .. r.err)
    end
    -- without include_object the extra objects are differences
    os.remove(dir .. "/env.lua")
    r = S.run("check", { cwd = dir })
    assert.equal(3, r.code)
    assert.same({ "- index ix_kept_legacy on kept(legacy)", "- column kept.legacy", "- table audit_log" }, r.lines)
    S.rmrf(dir)
  end)
end)
