-- SQLite reflection: PRAGMA table_info / index_list / index_info / foreign_key_list, and the stored CREATE TABLE
-- text (parsed with lpeg, luamig.reflect) for what the pragmas do not say: constraint names and CHECK constraints.
local reflect = require("luamig.reflect")
local schema = require("luamig.schema")
local types = require("luamig.types")

local concat, ipairs, sort, assert, type = table.concat, ipairs, table.sort, assert, type
local owned, type_of, parse_create_table, index_where = reflect.owned, reflect.type_of, reflect.parse_create_table,
  reflect.index_where

-- enum_check(expr, col) -> the labels when expr is the CHECK an enum type writes for column col on SQLite
-- (`col IN ('a', 'b')`), else nil
local function enum_check(expr, col)
  local name, list = expr:match('^%s*"(.-)"%s+[Ii][Nn]%s*(%b())%s*$')
  if name then name = name:gsub('""', '"') else name, list = expr:match("^%s*([%w_]+)%s+[Ii][Nn]%s*(%b())%s*$") end
  if name ~= col then return nil end
  local inner = list:sub(2, -2)
  if inner:gsub("'[^']*'", ""):gsub("[%s,]", "") ~= "" then return nil end
  -- the literals one by one ('' inside one is a quote)
  local labels, pos = {}, 1
  while true do
    local a = inner:find("'", pos, true)
    if not a then break end
    local b, buf = a + 1, {}
    while true do
      local q = inner:find("'", b, true)
      buf[#buf + 1] = inner:sub(b, q - 1)
      if inner:sub(q + 1, q + 1) == "'" then
        buf[#buf + 1] = "'"
        b = q + 2
      else
        b = q + 1
        break
      end
    end
    labels[#labels + 1] = concat(buf)
    pos = b
  end
  return labels, inner
end


local function quote_pragma_arg(name)
  return "'" .. name:gsub("'", "''") .. "'"
end

-- sqlite_table(conn, name, sql) -> the definition of one table
local function sqlite_table(conn, name, sql)
  local parsed = parse_create_table(sql or "")
  local q = quote_pragma_arg(name)
  local def = { name = name, columns = {}, uniques = {}, foreign_keys = {}, checks = {}, indexes = {}, sql = sql }
  local pk = {}
  for _, r in ipairs(assert(conn:query("SELECT * FROM pragma_table_info(" .. q .. ") ORDER BY cid"))) do
    local extra = parsed.columns[r.name] or { checks = {} }
    local col = { name = r.name, type = type_of(r.type or ""), declared = r.type or "", nullable = r.notnull == 0 and r.pk == 0,
      server_default = r.dflt_value ~= nil and schema.text(r.dflt_value) or nil, primary_key = r.pk > 0,
      checks = extra.checks, autoincrement = extra.autoincrement }
    -- a VARCHAR with the CHECK an enum type writes is that enum (the CHECK belongs to the type, kept in type_check
    -- for a rebuild to write again)
    if col.type.kind == "string" then
      for i, ck in ipairs(col.checks or {}) do
        local labels = not ck.name and enum_check(ck.expr, col.name)
        if labels and #labels > 0 then
          col.type = types.enum(labels)
          col.type_check = ck
          local rest = {}
          for j, other in ipairs(col.checks) do if j ~= i then rest[#rest + 1] = other end end
          col.checks = rest
          break
        end
      end
    end
    def.columns[#def.columns + 1] = col
    if extra.autoincrement then def.sqlite_autoincrement = true end
    if r.pk > 0 then pk[#pk + 1] = { r.pk, r.name } end
  end
  if #pk > 0 then
    sort(pk, function(a, b) return a[1] < b[1] end)
    local cols = {}
    for i, p in ipairs(pk) do cols[i] = p[2] end
    local pk_name = parsed.pk_name
    if not pk_name and #cols == 1 and parsed.columns[cols[1]] then pk_name = parsed.columns[cols[1]].pk_name end
    def.primary_key = { name = pk_name, columns = cols }
  end
  -- foreign keys: one id per constraint, a row per column
  local fks, order = {}, {}
  for _, r in ipairs(assert(conn:query("SELECT * FROM pragma_foreign_key_list(" .. q .. ") ORDER BY id, seq"))) do
    local fk = fks[r.id]
    if not fk then
      fk = { columns = {}, reftable = r.table, refcolumns = {},
        ondelete = r.on_delete ~= "NO ACTION" and r.on_delete or nil, onupdate = r.on_update ~= "NO ACTION" and r.on_update or nil }
      fks[r.id] = fk
      order[#order + 1] = r.id
    end
    fk.columns[#fk.columns + 1] = r.from
    fk.refcolumns[#fk.refcolumns + 1] = r.to
  end
  -- SQLite lists them last first
  for k = #order, 1, -1 do
    local fk = fks[order[k]]
    local key = concat(fk.columns, ",")
    for _, p in ipairs(parsed.fks) do
      if concat(p.columns, ",") == key then fk.name = p.name end
    end
    if not fk.name and #fk.columns == 1 and parsed.columns[fk.columns[1]] then
      fk.name = parsed.columns[fk.columns[1]].fk_name
    end
    def.foreign_keys[#def.foreign_keys + 1] = fk
  end
  for _, ck in ipairs(parsed.checks) do def.checks[#def.checks + 1] = { name = ck.name, expr = ck.expr } end
  -- indexes and unique constraints
  local ixs = assert(conn:query("SELECT l.name, l.\"unique\" AS is_unique, l.origin, m.sql FROM pragma_index_list(" .. q
    .. ") l LEFT JOIN sqlite_master m ON m.type = 'index' AND m.name = l.name ORDER BY l.seq DESC"))
  for _, r in ipairs(ixs) do
    if r.origin ~= "pk" then
      local cols = {}
      for _, c in ipairs(assert(conn:query("SELECT name FROM pragma_index_info(" .. quote_pragma_arg(r.name) .. ") ORDER BY seqno"))) do
        cols[#cols + 1] = c.name or "?"
      end
      if r.origin == "u" then
        local key, uname = concat(cols, ","), nil
        for _, p in ipairs(parsed.uniques) do
          if concat(p.columns, ",") == key then uname = p.name end
        end
        if not uname and #cols == 1 and parsed.columns[cols[1]] then uname = parsed.columns[cols[1]].unique_name end
        def.uniques[#def.uniques + 1] = { name = uname, columns = cols }
      else
        def.indexes[#def.indexes + 1] = { name = r.name, columns = cols, unique = r.is_unique == 1,
          where = index_where(r.sql), sql = r.sql }
      end
    end
  end
  sort(def.indexes, function(a, b) return a.name < b.name end)
  def.updated_at_trigger = #assert(conn:query("SELECT 1 AS x FROM sqlite_master WHERE type = 'trigger' AND name = ?",
    { "trg_" .. name .. "_updated_at" })) > 0
  return def
end

local function sqlite_tables(conn, vt, include, only)
  local rows = assert(conn:query("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%' "
    .. "ORDER BY name"))
  local out = {}
  for _, r in ipairs(rows) do
    if not owned(r.name, vt) and (not only or only == r.name) and (not include or include(r.name, "table")) then
      out[#out + 1] = sqlite_table(conn, r.name, r.sql)
    end
  end
  return out
end

return { tables = sqlite_tables, enum_check = enum_check }
