-- Column types. A type is a value (t.string) and a constructor (t.string(50), t.numeric(10, 2),
-- t.datetime{ timezone = true }, t.enum{ "a", "b", name = "e" }). Types are plain data; dialects render them.
local setmetatable, rawget, type, select, format, concat = setmetatable, rawget, type, select, string.format, table.concat
local tostring, pairs, ipairs, getmetatable, error = tostring, pairs, ipairs, getmetatable, error

local TypeMT = {}
TypeMT.__index = TypeMT

local function make(kind, fields)
  fields = fields or {}
  fields.kind = kind
  return setmetatable(fields, TypeMT)
end

local function is_type(v)
  return type(v) == "table" and getmetatable(v) == TypeMT
end

-- Per kind: how a call's arguments become fields.
local CONSTRUCT = {
  string = function(n) return { length = n } end,
  numeric = function(p, s) return { precision = p, scale = s } end,
  datetime = function(opts) return { timezone = type(opts) == "table" and opts.timezone or nil } end,
  time = function(opts) return { timezone = type(opts) == "table" and opts.timezone or nil } end,
  enum = function(opts)
    if type(opts) ~= "table" then error("t.enum takes a table: t.enum{ \"a\", \"b\", name = \"e\" }", 0) end
    local values = {}
    for i, v in ipairs(opts) do values[i] = tostring(v) end
    -- create_constraint = false: no CHECK where the enum is a VARCHAR; native_enum = false: a VARCHAR on
    -- PostgreSQL too (SQLAlchemy's Enum options)
    return { values = values, name = opts.name, create_constraint = opts.create_constraint ~= false,
      native_enum = opts.native_enum ~= false }
  end,
}

function TypeMT.__call(self, ...)
  local ctor = CONSTRUCT[self.kind]
  if not ctor then
    if select("#", ...) == 0 then return self end
    error(format("t.%s takes no arguments", self.kind), 0)
  end
  return make(self.kind, ctor(...))
end

local function quote_lua(s)
  return format("%q", s)
end

local function sorted_keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

-- Lua source that builds the same type, for rendered migrations: t.string(50), t.datetime{ timezone = true }.
function TypeMT.__tostring(self)
  local k = self.kind
  if k == "string" and self.length then return format("t.string(%d)", self.length) end
  if k == "numeric" and self.precision then
    if self.scale then return format("t.numeric(%d, %d)", self.precision, self.scale) end
    return format("t.numeric(%d)", self.precision)
  end
  if (k == "datetime" or k == "time") and self.timezone then return format("t.%s{ timezone = true }", k) end
  if k == "raw" then
    if not self.per then return "t.raw(" .. quote_lua(self.sql) .. ")" end
    local parts = {}
    for _, d in ipairs(sorted_keys(self.per)) do parts[#parts + 1] = format("%s = %s", d, quote_lua(self.per[d])) end
    return "t.raw{ " .. concat(parts, ", ") .. " }"
  end
  if k == "enum" then
    local parts = {}
    for i, v in ipairs(self.values) do parts[i] = quote_lua(v) end
    if self.name then parts[#parts + 1] = "name = " .. quote_lua(self.name) end
    if self.create_constraint == false then parts[#parts + 1] = "create_constraint = false" end
    if self.native_enum == false then parts[#parts + 1] = "native_enum = false" end
    return "t.enum{ " .. concat(parts, ", ") .. " }"
  end
  return "t." .. k
end

function TypeMT.__eq(a, b)
  if a.kind ~= b.kind or a.length ~= b.length or a.precision ~= b.precision or a.scale ~= b.scale
    or (a.timezone or false) ~= (b.timezone or false) or a.name ~= b.name or a.sql ~= b.sql
    or (a.create_constraint == false) ~= (b.create_constraint == false) or (a.native_enum == false) ~= (b.native_enum == false)
    or (a.per == nil) ~= (b.per == nil) then
    return false
  end
  if a.per then
    for k, v in pairs(a.per) do if b.per[k] ~= v then return false end end
    for k, v in pairs(b.per) do if a.per[k] ~= v then return false end end
  end
  if a.values or b.values then
    if not (a.values and b.values) or #a.values ~= #b.values then return false end
    for i = 1, #a.values do if a.values[i] ~= b.values[i] then return false end end
  end
  return true
end

local KINDS = { "integer", "biginteger", "smallinteger", "float", "numeric", "string", "text", "boolean", "date",
  "time", "datetime", "json", "blob", "uuid", "ulid", "enum" }

local M = { is_type = is_type }
for _, k in ipairs(KINDS) do M[k] = make(k) end
-- t.raw("CIDR"): a type written as given, for what reflection finds and luamig has no name for; per dialect,
-- t.raw{ sqlite = "TEXT", postgresql = "CITEXT" }. Rendered and compared by its text.
M.raw = function(sql)
  if type(sql) == "table" then
    local per, any = {}, false
    for k, v in pairs(sql) do
      if not require("luamig.dialect").known(k) or type(v) ~= "string" or v == "" then
        error("t.raw{ sqlite = \"...\", postgresql = \"...\" } takes the SQL type of each dialect as a string", 0)
      end
      per[k], any = v, true
    end
    if not any then error("t.raw{} needs the SQL type of at least one dialect", 0) end
    return make("raw", { per = per })
  end
  if type(sql) ~= "string" or sql == "" then error("t.raw takes the SQL type as a string", 0) end
  return make("raw", { sql = sql })
end

return setmetatable(M, {
  __index = function(_, k)
    if rawget(M, k) == nil and type(k) == "string" then
      error(format("luamig.types has no type '%s' (known: %s)", k, concat(KINDS, ", ")), 0)
    end
  end,
})
