-- Rendering op values as the Lua source of `op` calls (what `revision --autogenerate` writes): one function per op
-- kind, each writing the call that builds that value again. Names the values carry are final: they render as
-- op.f("name") so that the project's naming convention leaves them alone.
local schema = require("luamig.schema")
local types = require("luamig.types")
local core = require("luamig.core")

local format, concat, ipairs, type, tostring = string.format, table.concat, ipairs, type, tostring

local render_value

local function lua_string(s) return (format("%q", s):gsub("\\\n", "\\n")) end

local OPTION_KEYS = { "type", "existing_type", "nullable", "existing_nullable", "server_default",
  "existing_server_default", "new_column_name", "using", "unique", "where", "ondelete", "onupdate", "deferrable",
  "name", "concurrently", "if_not_exists", "if_exists", "comment", "sqlite_autoincrement", "not_valid", "using_index" }

local function render_list(list)
  local parts = {}
  for i, v in ipairs(list) do parts[i] = render_value(v) end
  return "{ " .. concat(parts, ", ") .. " }"
end

local function render_keys(v, keys, parts)
  for _, k in ipairs(keys) do
    if v[k] ~= nil then parts[#parts + 1] = k .. " = " .. render_value(v[k]) end
  end
  return parts
end

-- render_value(v) -> Lua source of a value an op call takes: strings, numbers, booleans, op.NULL, types, op.text,
-- op.f, lists and option tables
function render_value(v)
  local tv = type(v)
  if tv == "string" then return lua_string(v) end
  if tv == "number" or tv == "boolean" or tv == "nil" then return tostring(v) end
  if v == schema.NULL or v == core.NULL then return "op.NULL" end
  if types.is_type(v) then return tostring(v) end
  if schema.is_text(v) then return "op.text(" .. lua_string(v.sql) .. ")" end
  local n, final = schema.name_of(v)
  if final then return "op.f(" .. lua_string(n) .. ")" end
  if #v > 0 then return render_list(v) end
  local parts = render_keys(v, OPTION_KEYS, {})
  if #parts == 0 then return "{}" end
  return "{ " .. concat(parts, ", ") .. " }"
end

local function final(name) return name and ("op.f(" .. lua_string(name) .. ")") or "nil" end

-- column(c) -> a column spec: { "name", t.type, nullable = ..., server_default = ..., comment = ..., autoincrement = ... }
local function column(c)
  local parts = { lua_string(c.name), tostring(c.type) }
  return "{ " .. concat(render_keys(c, { "nullable", "server_default", "comment", "autoincrement" }, parts), ", ") .. " }"
end

-- items(def) -> the create_table items of a table definition: columns, then its primary key, foreign keys, unique
-- constraints and CHECKs
local function items(def)
  local out = {}
  for _, c in ipairs(def.columns) do out[#out + 1] = column(c) end
  local pk = def.primary_key
  if pk then
    local parts = {}
    for i, c in ipairs(pk.columns) do parts[i] = lua_string(c) end
    if pk.name then parts[#parts + 1] = "name = " .. final(pk.name) end
    out[#out + 1] = "op.primary_key { " .. concat(parts, ", ") .. " }"
  end
  for _, fk in ipairs(def.foreign_keys) do
    local opts = render_keys(fk, { "ondelete", "onupdate", "deferrable" }, fk.name and { "name = " .. final(fk.name) } or {})
    out[#out + 1] = format("op.foreign_key(%s, %s, %s%s)", render_list(fk.columns), lua_string(fk.reftable),
      render_list(fk.refcolumns), #opts > 0 and (", { " .. concat(opts, ", ") .. " }") or "")
  end
  for _, u in ipairs(def.uniques) do
    local parts = {}
    for i, c in ipairs(u.columns) do parts[i] = lua_string(c) end
    if u.name then parts[#parts + 1] = "name = " .. final(u.name) end
    out[#out + 1] = "op.unique { " .. concat(parts, ", ") .. " }"
  end
  for _, ck in ipairs(def.checks) do
    out[#out + 1] = format("op.check(%s%s)", lua_string(ck.expr), ck.name and (", { name = " .. final(ck.name) .. " }") or "")
  end
  return out
end

-- call(name, ...) -> "op.name(a, b, ...)" of rendered arguments, trailing nils left out
local function call(name, ...)
  local args = table.pack(...)
  local last = 0
  for i = 1, args.n do if args[i] ~= nil then last = i end end
  local parts = {}
  for i = 1, last do parts[i] = args[i] or "nil" end
  return "op." .. name .. "(" .. concat(parts, ", ") .. ")"
end

local function opts_of(o, keys)
  local parts = {}
  for _, k in ipairs(keys) do
    if o[k] then parts[#parts + 1] = k .. " = " .. render_value(o[k]) end
  end
  return #parts > 0 and ("{ " .. concat(parts, ", ") .. " }") or nil
end

-- One renderer per op kind: (o, indent) -> the source of the call, without the indent of its first line.
local RENDER = {}

function RENDER.create_table(o, indent)
  local def = o.table
  local lines = { format("op.create_table(%s, {", lua_string(def.name)) }
  for _, item in ipairs(items(def)) do lines[#lines + 1] = indent .. "  " .. item .. "," end
  lines[#lines + 1] = indent .. (def.sqlite_autoincrement and "}, { sqlite_autoincrement = true })" or "})")
  return concat(lines, "\n")
end

function RENDER.drop_table(o) return call("drop_table", lua_string(o.name)) end
function RENDER.add_column(o) return call("add_column", lua_string(o.table), column(o.column)) end
function RENDER.drop_column(o) return call("drop_column", lua_string(o.table), lua_string(o.column)) end

function RENDER.alter_column(o)
  return call("alter_column", lua_string(o.table), lua_string(o.column), render_value(o.changes))
end

function RENDER.create_index(o)
  return call("create_index", final(o.name), lua_string(o.table), render_list(o.columns),
    opts_of(o, { "unique", "where" }))
end

function RENDER.drop_index(o) return call("drop_index", final(o.name), o.table and lua_string(o.table)) end

function RENDER.create_unique_constraint(o)
  return call("create_unique_constraint", final(o.name), lua_string(o.table), render_list(o.columns),
    opts_of(o, { "using_index" }))
end

function RENDER.create_primary_key(o)
  return call("create_primary_key", final(o.name), lua_string(o.table), render_list(o.columns),
    opts_of(o, { "using_index" }))
end

function RENDER.create_check_constraint(o)
  return call("create_check_constraint", final(o.name), lua_string(o.table), lua_string(o.expr),
    opts_of(o, { "not_valid" }))
end

function RENDER.create_foreign_key(o)
  return call("create_foreign_key", final(o.name), lua_string(o.table), lua_string(o.reftable), render_list(o.columns),
    render_list(o.refcolumns), opts_of(o, { "ondelete", "onupdate", "deferrable", "not_valid" }))
end

function RENDER.validate_constraint(o)
  return call("validate_constraint", lua_string(o.name), lua_string(o.table))
end

-- (a constraint the database named and luamig cannot know the name of is written as "?", for the user to fill in)
function RENDER.drop_constraint(o)
  return call("drop_constraint", o.name and final(o.name) or lua_string("?"), lua_string(o.table),
    o.type and format("{ type = %s }", lua_string(o.type)))
end

function RENDER.execute(o) return call("execute", lua_string(o.sql)) end

-- op(o, indent) -> Lua source of the op call that builds o, indented
local function op(o, indent)
  local r = RENDER[o.op]
  if not r then error(format("autogenerate cannot write an op.%s call", tostring(o.op)), 0) end
  return indent .. r(o, indent)
end

return { op = op, value = render_value, lua_string = lua_string, RENDER = RENDER }
