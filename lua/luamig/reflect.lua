-- Reflection: the tables of a live database as table definitions of the same shape schema.table_def makes
-- (columns, primary_key, uniques, foreign_keys, checks, indexes), for autogenerate's compare and SQLite's table
-- rebuild. luamig's own tables (the version table, luamig_*) are left out, and so is whatever include(name, kind)
-- rejects.
--
-- SQLite: PRAGMA table_info / index_list / index_info / foreign_key_list, and the stored CREATE TABLE text (parsed
-- with lpeg) for what the pragmas do not say: constraint names and CHECK constraints.
-- PostgreSQL: pg_catalog, a handful of queries for the whole schema whatever the number of tables.
local lpeg = require("lpeg")
local schema = require("luamig.schema")
local types = require("luamig.types")

local P, R, S, C, Ct, Cc = lpeg.P, lpeg.R, lpeg.S, lpeg.C, lpeg.Ct, lpeg.Cc
local concat, ipairs, upper, tonumber, sort, assert = table.concat, ipairs, string.upper, tonumber, table.sort, assert
local type = type

-- Tokens of SQL DDL text -------------------------------------------------------------------------------------

local ws = (S(" \t\r\n") + P("--") * (1 - P("\n")) ^ 0 + P("/*") * (1 - P("*/")) ^ 0 * P("*/") ^ -1) ^ 0
local function tok(kind, patt) return Ct(Cc(kind) * C(patt)) / function(t) return { kind = t[1], text = t[2] } end end
local str = P("'") * (P("''") + (1 - P("'"))) ^ 0 * P("'")
local qident = P('"') * (P('""') + (1 - P('"'))) ^ 0 * P('"') + P("`") * (1 - P("`")) ^ 0 * P("`")
  + P("[") * (1 - P("]")) ^ 0 * P("]")
local group = P({ "(" * (str + qident + (1 - S("()'\"`[")) + lpeg.V(1)) ^ 0 * ")" })
local word = (R("az", "AZ", "09") + S("_.+-")) ^ 1
local token = tok("group", group) + tok("string", str) + tok("ident", qident) + tok("word", word)
  + tok("punct", 1 - S(" \t\r\n"))
local tokens_of = Ct((ws * token) ^ 0 * ws)
-- Top-level comma-separated elements of a parenthesised body.
local element = C((str + qident + group + (1 - S(",()'\"`["))) ^ 0)
local elements_of = Ct(element * ("," * element) ^ 0)

local function unquote(t)
  if t.kind == "ident" then
    local q = t.text:sub(1, 1)
    local inner = t.text:sub(2, -2)
    if q == '"' then inner = inner:gsub('""', '"') end
    return inner
  end
  return t.text
end

local function kw(t, w) return t and t.kind == "word" and upper(t.text) == w end

-- names inside a group: "(a, "b")" -> { "a", "b" }
local function group_names(text)
  local out = {}
  for _, e in ipairs(elements_of:match(text:sub(2, -2))) do
    local ts = tokens_of:match(e)
    if ts[1] then out[#out + 1] = unquote(ts[1]) end
  end
  return out
end

local function join_text(ts, from, to)
  local parts = {}
  for i = from, to do parts[#parts + 1] = ts[i].text end
  return concat(parts, " ")
end

-- parse_create_table(sql) -> { columns = { [name] = { checks = { {name, expr} }, fk_name, unique_name, pk_name,
-- autoincrement } }, pk_name, uniques = { {name, columns} }, fks = { {name, columns} }, checks = { {name, expr} } }
local function parse_create_table(sql)
  local out = { columns = {}, uniques = {}, fks = {}, checks = {} }
  local open = sql:find("(", 1, true)
  if not open then return out end
  local body = sql:sub(open)
  local g = group:match(body)
  if not g then return out end
  for _, e in ipairs(elements_of:match(body:sub(2, g - 2))) do
    local ts = tokens_of:match(e)
    local i, name = 1, nil
    if kw(ts[1], "CONSTRAINT") and ts[2] then
      name, i = unquote(ts[2]), 3
    end
    local t1 = ts[i]
    if kw(t1, "PRIMARY") then
      out.pk_name = name
    elseif kw(t1, "UNIQUE") and ts[i + 1] and ts[i + 1].kind == "group" then
      out.uniques[#out.uniques + 1] = { name = name, columns = group_names(ts[i + 1].text) }
    elseif kw(t1, "CHECK") and ts[i + 1] then
      out.checks[#out.checks + 1] = { name = name, expr = ts[i + 1].text:sub(2, -2) }
    elseif kw(t1, "FOREIGN") and ts[i + 2] then
      out.fks[#out.fks + 1] = { name = name, columns = group_names(ts[i + 2].text) }
    elseif t1 then
      -- a column: its name, its type, then column constraints
      local col = { checks = {} }
      out.columns[unquote(t1)] = col
      local cname
      local k = i + 1
      while k <= #ts do
        local t = ts[k]
        if kw(t, "CONSTRAINT") and ts[k + 1] then
          cname = unquote(ts[k + 1])
          k = k + 2
        else
          if kw(t, "CHECK") and ts[k + 1] then
            col.checks[#col.checks + 1] = { name = cname, expr = ts[k + 1].text:sub(2, -2) }
            k = k + 1
          elseif kw(t, "REFERENCES") then
            col.fk_name = cname
          elseif kw(t, "UNIQUE") then
            col.unique_name = cname
          elseif kw(t, "PRIMARY") then
            col.pk_name = cname
          elseif kw(t, "AUTOINCREMENT") then
            col.autoincrement = true
          end
          if kw(t, "CHECK") or kw(t, "REFERENCES") or kw(t, "UNIQUE") or kw(t, "PRIMARY") or kw(t, "NOT")
            or kw(t, "DEFAULT") or kw(t, "COLLATE") then
            cname = nil
          end
          k = k + 1
        end
      end
    end
  end
  return out
end

-- index_where(sql) -> the WHERE clause of a CREATE INDEX, or nil
local function index_where(sql)
  if not sql then return nil end
  local ts = tokens_of:match(sql)
  for k, t in ipairs(ts) do
    if kw(t, "WHERE") then return join_text(ts, k + 1, #ts) end
  end
  return nil
end

-- Types ------------------------------------------------------------------------------------------------------

-- type_of(declared) -> a luamig type for a declared SQL type (SQLite's text or PostgreSQL's format_type), or a raw
-- type that renders the text as given
local NAMED = {
  INTEGER = types.integer, INT = types.integer, INT4 = types.integer, SERIAL = types.integer,
  BIGINT = types.biginteger, INT8 = types.biginteger, BIGSERIAL = types.biginteger,
  SMALLINT = types.smallinteger, INT2 = types.smallinteger, SMALLSERIAL = types.smallinteger,
  FLOAT = types.float, REAL = types.float, DOUBLE = types.float, ["DOUBLE PRECISION"] = types.float, FLOAT8 = types.float,
  TEXT = types.text, BOOLEAN = types.boolean, BOOL = types.boolean, DATE = types.date,
  TIME = types.time, ["TIME WITHOUT TIME ZONE"] = types.time, DATETIME = types.datetime, TIMESTAMP = types.datetime,
  ["TIMESTAMP WITHOUT TIME ZONE"] = types.datetime, JSON = types.json, JSONB = types.json, BLOB = types.blob,
  BYTEA = types.blob, UUID = types.uuid, VARCHAR = types.string, ["CHARACTER VARYING"] = types.string,
}

local function type_of(declared)
  local d = upper(declared):gsub("%s+", " "):gsub("^ ", ""):gsub(" $", "")
  local t = NAMED[d]
  if t then return t end
  if d == "TIMESTAMP WITH TIME ZONE" or d == "TIMESTAMPTZ" then return types.datetime({ timezone = true }) end
  if d == "TIME WITH TIME ZONE" or d == "TIMETZ" then return types.time({ timezone = true }) end
  if d == "CHAR(32)" then return types.uuid end
  local base, args = d:match("^([%a ]-) ?%(([%d, ]+)%)$")
  if base == "VARCHAR" or base == "CHARACTER VARYING" then
    local n = tonumber(args)
    if n == 26 then return types.ulid end
    return types.string(n)
  end
  if base == "NUMERIC" or base == "DECIMAL" then
    local p, s = args:match("^(%d+) ?,? ?(%d*)$")
    return types.numeric(tonumber(p), tonumber(s))
  end
  if d == "NUMERIC" or d == "DECIMAL" then return types.numeric end
  return types.raw(declared)
end

-- SQLite -----------------------------------------------------------------------------------------------------

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

local function owned(name, vt)
  return name == vt or name:sub(1, 7) == "luamig_"
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

-- PostgreSQL -------------------------------------------------------------------------------------------------

local function pg_array(v)
  -- int2vector / name[] come back as text: "1 2" or "{a,b}"
  local out = {}
  if type(v) ~= "string" then return out end
  for x in v:gmatch("[^%s{},]+") do out[#out + 1] = x end
  return out
end

local PG_ACTIONS = { a = nil, r = "RESTRICT", c = "CASCADE", n = "SET NULL", d = "SET DEFAULT" }

local function pg_tables(conn, vt, include, only)
  local by_oid, out = {}, {}
  local rels = assert(conn:query("SELECT c.oid::bigint AS oid, c.relname FROM pg_catalog.pg_class c "
    .. "WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') ORDER BY c.relname"))
  for _, r in ipairs(rels) do
    if not owned(r.relname, vt) and (not only or only == r.relname) and (not include or include(r.relname, "table")) then
      local def = { name = r.relname, columns = {}, uniques = {}, foreign_keys = {}, checks = {}, indexes = {}, attnames = {} }
      by_oid[r.oid] = def
      out[#out + 1] = def
    end
  end
  if #out == 0 then return out end
  local cols = assert(conn:query("SELECT a.attrelid::bigint AS oid, a.attnum, a.attname, "
    .. "pg_catalog.format_type(a.atttypid, a.atttypmod) AS typ, t.typtype, a.attnotnull, "
    .. "pg_catalog.pg_get_expr(d.adbin, d.adrelid) AS dflt, a.attidentity FROM pg_catalog.pg_attribute a "
    .. "JOIN pg_catalog.pg_class c ON c.oid = a.attrelid JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
    .. "LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
    .. "WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') AND a.attnum > 0 "
    .. "AND NOT a.attisdropped ORDER BY a.attrelid, a.attnum"))
  local enums = {}
  for _, r in ipairs(assert(conn:query("SELECT t.typname, e.enumlabel FROM pg_catalog.pg_enum e JOIN pg_catalog.pg_type t "
    .. "ON t.oid = e.enumtypid ORDER BY t.typname, e.enumsortorder"))) do
    enums[r.typname] = enums[r.typname] or {}
    local l = enums[r.typname]
    l[#l + 1] = r.enumlabel
  end
  for _, r in ipairs(cols) do
    local def = by_oid[r.oid]
    if def then
      local ty
      if r.typtype == "e" and enums[r.typ] then
        local spec = { name = r.typ }
        for i, v in ipairs(enums[r.typ]) do spec[i] = v end
        ty = types.enum(spec)
      else
        ty = type_of(r.typ)
      end
      local dflt = r.dflt
      local serial = dflt and dflt:match("^nextval%(") ~= nil
      local col = { name = r.attname, type = ty, declared = r.typ, nullable = not r.attnotnull,
        server_default = (dflt and not serial) and schema.text(dflt) or nil, primary_key = false, serial = serial }
      def.columns[#def.columns + 1] = col
      def.attnames[r.attnum] = r.attname
    end
  end
  local cons = assert(conn:query("SELECT con.conrelid::bigint AS oid, con.conname, con.contype, con.conkey::text AS conkey, "
    .. "con.confkey::text AS confkey, f.relname AS reftable, con.confupdtype, con.confdeltype, con.condeferrable, "
    .. "con.confrelid::bigint AS refoid, pg_catalog.pg_get_constraintdef(con.oid) AS def FROM pg_catalog.pg_constraint con "
    .. "JOIN pg_catalog.pg_class c ON c.oid = con.conrelid LEFT JOIN pg_catalog.pg_class f ON f.oid = con.confrelid "
    .. "WHERE c.relnamespace = current_schema()::regnamespace ORDER BY con.conname"))
  local refnames = {}
  for _, r in ipairs(cons) do
    if r.contype == "f" and not refnames[r.refoid] then
      refnames[r.refoid] = {}
      for _, a in ipairs(assert(conn:query("SELECT attnum, attname FROM pg_catalog.pg_attribute WHERE attrelid = ? "
        .. "AND attnum > 0", { r.refoid }))) do
        refnames[r.refoid][a.attnum] = a.attname
      end
    end
  end
  for _, r in ipairs(cons) do
    local def = by_oid[r.oid]
    if def then
      local names = {}
      for i, n in ipairs(pg_array(r.conkey)) do names[i] = def.attnames[tonumber(n)] end
      if r.contype == "p" then
        def.primary_key = { name = r.conname, columns = names }
        for _, c in ipairs(def.columns) do
          for _, n in ipairs(names) do if c.name == n then c.primary_key = true end end
        end
      elseif r.contype == "u" then
        def.uniques[#def.uniques + 1] = { name = r.conname, columns = names }
      elseif r.contype == "f" then
        local refs = {}
        for i, n in ipairs(pg_array(r.confkey)) do refs[i] = refnames[r.refoid][tonumber(n)] end
        def.foreign_keys[#def.foreign_keys + 1] = { name = r.conname, columns = names, reftable = r.reftable,
          refcolumns = refs, ondelete = PG_ACTIONS[r.confdeltype], onupdate = PG_ACTIONS[r.confupdtype],
          deferrable = r.condeferrable or nil }
      elseif r.contype == "c" then
        local expr = r.def:match("^CHECK %((.*)%)$") or r.def
        def.checks[#def.checks + 1] = { name = r.conname, expr = expr }
      end
    end
  end
  local ixs = assert(conn:query("SELECT i.indrelid::bigint AS oid, ic.relname AS name, i.indisunique, i.indkey::text AS indkey, "
    .. "pg_catalog.pg_get_expr(i.indpred, i.indrelid) AS pred FROM pg_catalog.pg_index i "
    .. "JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid JOIN pg_catalog.pg_class c ON c.oid = i.indrelid "
    .. "WHERE c.relnamespace = current_schema()::regnamespace AND NOT i.indisprimary AND NOT EXISTS "
    .. "(SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conindid = i.indexrelid AND k.contype IN ('u', 'p', 'x')) "
    .. "ORDER BY ic.relname"))
  for _, r in ipairs(ixs) do
    local def = by_oid[r.oid]
    if def then
      local names = {}
      for i, n in ipairs(pg_array(r.indkey)) do names[i] = def.attnames[tonumber(n)] or "?" end
      local pred = r.pred
      if pred and pred:sub(1, 1) == "(" and pred:sub(-1) == ")" then pred = pred:sub(2, -2) end
      def.indexes[#def.indexes + 1] = { name = r.name, columns = names, unique = r.indisunique, where = pred }
    end
  end
  for _, r in ipairs(assert(conn:query("SELECT t.tgrelid::bigint AS oid, t.tgname FROM pg_catalog.pg_trigger t "
    .. "WHERE NOT t.tgisinternal AND t.tgname LIKE 'trg\\_%\\_updated\\_at'"))) do
    local def = by_oid[r.oid]
    if def and r.tgname == "trg_" .. def.name .. "_updated_at" then def.updated_at_trigger = true end
  end
  for _, def in ipairs(out) do def.attnames = nil end
  return out
end

-- tables(conn, dialect_name, opts) -> list of table definitions, by name. opts: version_table, include(name, kind),
-- only (one table's name)
local function tables(conn, dialect_name, opts)
  opts = opts or {}
  local vt = opts.version_table or "luamig_version"
  if dialect_name == "sqlite" then return sqlite_tables(conn, vt, opts.include, opts.only) end
  return pg_tables(conn, vt, opts.include, opts.only)
end

return { tables = tables, type_of = type_of, parse_create_table = parse_create_table, index_where = index_where,
  enum_check = enum_check }
