-- The fuzz targets (tests/fuzz/fuzz.c runs one per build): each takes the input bytes, feeds them to a parser, and
-- checks what must hold for every input. Bad input comes back as nil, message; any error raised here is a bug.
local ini = require("luamig.ini")
local url = require("luamig.url")
local target = require("luamig.target")
local sql_text = require("luamig.sql_text")
local sql_classify = require("luamig.sql_classify")
local lock_plan = require("luamig.lock_plan")
local reflect = require("luamig.reflect")
local script_dir = require("luamig.script_dir")
local core = require("luamig.core")

local function is_message(v) return type(v) == "string" and v ~= "" end

local T = {}

-- luamig.ini / alembic.ini text: parse, then read every key back (interpolation included)
function T.ini(s)
  local r, err = ini.parse(s, "fuzz.ini")
  if not r then
    assert(is_message(err) and err:find("^fuzz%.ini:"), "a parse failure without a message naming the file")
    return
  end
  for _, sec in ipairs(r.order) do
    for _, k in ipairs(r:keys(sec)) do
      local v, verr = r:value(sec, k)
      assert(v == nil and is_message(verr) or type(v) == "string", "a value that is neither text nor a message")
    end
  end
end

-- database URLs: parse, mask, and for PostgreSQL the libpq conninfo
function T.url(s)
  local u, err = url.parse(s)
  local shown = url.mask(s)
  assert(type(shown) == "string")
  if not u then
    assert(is_message(err), "a parse failure without a message")
    return
  end
  assert(u.dialect == "sqlite" or u.dialect == "postgresql", "an unknown dialect")
  if u.dialect == "postgresql" then
    assert(type(url.conninfo(u)) == "string")
    for _, pw in ipairs({ u.password or false, u.params and u.params.password or false }) do
      -- (a password with *** in it can reappear by coincidence, made of the user name and the mask's own ***:
      -- "u:C...er:***@h" with user "uC...er" shows "C...er:***"; url_spec checks such passwords by hand)
      if type(pw) == "string" and #pw >= 8 and not pw:find("***", 1, true) then
        local _, times = s:gsub(pw:gsub("%p", "%%%0"), "")
        if times == 1 then
          -- a password written out once, literally, never survives masking
          assert(not shown:find(pw, 1, true), "the masked URL shows the password")
        end
      end
    end
  end
end

-- revision targets and ranges (upgrade/downgrade arguments, --sql FROM:TO)
function T.target(s)
  local t, err = target.parse(s)
  assert(t or is_message(err), "a target failure without a message")
  local r, rerr = target.parse_range(s)
  assert(r or is_message(rerr), "a range failure without a message")
end

-- SQL text: the statement splitter and the placeholder rewriting
function T.sql(s)
  local parts = sql_text.split(s)
  for _, p in ipairs(parts) do assert(type(p) == "string" and p ~= "" and p:match("^%S") and p:match("%S$")) end
  local params = { 1, "x'y", n = 2, name = "v" }
  local text, err = sql_text.inline(s, params, function(v) return type(v) == "string" and "'" .. v:gsub("'", "''") .. "'" or tostring(v) end)
  assert(text or is_message(err))
  local num, values = sql_text.numbered(s, params)
  assert(num or is_message(values))
end

-- Raw SQL as lint reads it (op.execute): each statement classified, or not; every action has a known kind and
-- gives locks on named tables
local KINDS = {}
for k in ("add_column drop_column alter_type set_not_null drop_not_null set_default drop_default add_constraint "
  .. "validate_constraint drop_constraint rename_column rename_table rename_constraint alter_other create_table "
  .. "drop_table create_index drop_index vacuum_full vacuum cluster reindex lock dml"):gmatch("%S+") do KINDS[k] = true end

function T.lint_sql(s)
  for _, st in ipairs(sql_text.split(s)) do
    local actions = sql_classify.classify(st)
    assert(actions == nil or (type(actions) == "table" and #actions > 0), "an empty classification")
    for _, a in ipairs(actions or {}) do
      assert(KINDS[a.kind], "an action of no known kind")
      for _, l in ipairs(lock_plan.action_locks(a)) do
        assert(type(l.table) == "string" and lock_plan.RANK[l.mode], "a lock without a table or a known mode")
      end
    end
  end
end

-- SQLite CREATE TABLE text, as reflection reads it from sqlite_master
function T.create_table(s)
  local t = reflect.parse_create_table(s)
  assert(type(t) == "table" and type(t.columns) == "table")
  reflect.index_where(s)
end

-- A migration file: the literal scan (C), then the file compiled and run in a closed environment (with the
-- harness's instruction budget), its shape checked; where both succeed, they must agree on the revision fields.
local SAFE = {
  assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs, pcall = pcall, select = select,
  tonumber = tonumber, tostring = tostring, type = type, rawequal = rawequal, rawget = rawget, rawlen = rawlen,
  rawset = rawset, setmetatable = setmetatable, getmetatable = getmetatable, math = math, table = table,
  utf8 = utf8, string = string,
  require = function(name)
    if name == "luamig.types" then return require("luamig.types") end
    error("require is limited to luamig.types here", 2)
  end,
}
SAFE._G = SAFE
local SAFE_MT = { __index = SAFE }

local function same(a, b)
  if type(a) == "string" then a = { a } end
  if type(b) == "string" then b = { b } end
  a, b = a or {}, b or {}
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

function T.migration(s)
  local scanned = core.scan_revision(s)
  assert(scanned == nil or type(scanned) == "table")
  local fn = load(s, "@versions/fuzz.lua", "t", setmetatable({}, SAFE_MT))
  if not fn then return end
  -- (tests/fuzz/fuzz.c ends a run that spends its instruction budget: inside the file's own code, an error here)
  local rec, err = script_dir.record_from("/fuzz/versions/fuzz.lua", "versions/fuzz.lua", "@versions/fuzz.lua", fn,
    script_dir.checksum(s), "")
  assert(rec or is_message(err), "a shape failure without a message")
  if rec and scanned and scanned.revision ~= nil then
    assert(scanned.revision == rec.revision, "the scan read another revision id than the file returns")
    assert(same(scanned.down_revision, rec.down_revisions), "the scan read other down_revisions than the file returns")
  end
end

return T
