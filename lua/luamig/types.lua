-- Column types. A type is a value (t.string) and a constructor (t.string(50), t.numeric(10, 2),
-- t.datetime{ timezone = true }, t.enum{ "a", "b", name = "e" }). Types are plain data; dialects render them.
local setmetatable, rawget, type, select, format, concat = setmetatable, rawget, type, select, string.format, table.concat
local tostring = tostring

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
    return { values = values, name = opts.name }
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

-- Lua source that builds the same type, for rendered migrations: t.string(50), t.datetime{ timezone = true }.
function TypeMT.__tostring(self)
  local k = self.kind
  if k == "string" and self.length then return format("t.string(%d)", self.length) end
  if k == "numeric" and self.precision then
    if self.scale then return format("t.numeric(%d, %d)", self.precision, self.scale) end
    return format("t.numeric(%d)", self.precision)
  end
  if (k == "datetime" or k == "time") and self.timezone then return format("t.%s{ timezone = true }", k) end
  if k == "raw" then return "t.raw(" .. quote_lua(self.sql) .. ")" end
  if k == "enum" then
    local parts = {}
    for i, v in ipairs(self.values) do parts[i] = quote_lua(v) end
    if self.name then parts[#parts + 1] = "name = " .. quote_lua(self.name) end
    return "t.enum{ " .. concat(parts, ", ") .. " }"
  end
  return "t." .. k
end

function TypeMT.__eq(a, b)
  if a.kind ~= b.kind or a.length ~= b.length or a.precision ~= b.precision or a.scale ~= b.scale
    or (a.timezone or false) ~= (b.timezone or false) or a.name ~= b.name or a.sql ~= b.sql then
    return false
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
-- t.raw("CIDR"): a type written as given, for what reflection finds and luamig has no name for
M.raw = function(sql)
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
