-- Reflection: the tables of a live database as table definitions of the same shape schema.table_def makes
-- (columns, primary_key, uniques, foreign_keys, checks, indexes), for autogenerate's compare and SQLite's table
-- rebuild. luamig's own tables (the version table, luamig_*) are left out, and so is whatever include(name, kind)
-- rejects.
--
-- What each database is asked lives with its dialect (luamig.dialect.sqlite.reflect, .postgresql.reflect); here are
-- the parts they share: the SQL DDL tokens and the CREATE TABLE parser, the declared-type reader.
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

-- owned(name, vt) -> whether a table is luamig's own (the version table, luamig_*)
local function owned(name, vt)
  return name == vt or name:sub(1, 7) == "luamig_"
end

-- tables(conn, dialect, opts) -> list of table definitions, by name. dialect: the dialect or its name. opts:
-- version_table, include(name, kind), only (one table's name)
local function tables(conn, dialect, opts)
  opts = opts or {}
  if type(dialect) == "string" then dialect = assert(require("luamig.dialect").get(dialect)) end
  return dialect:reflect_tables(conn, opts.version_table or "luamig_version", opts.include, opts.only)
end

return { tables = tables, owned = owned, type_of = type_of, parse_create_table = parse_create_table,
  index_where = index_where }
