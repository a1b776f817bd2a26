-- PostgreSQL reflection: pg_catalog, one query per kind of object for the whole schema (foreign keys ask about
-- each referenced table).
local reflect = require("luamig.reflect")
local schema = require("luamig.schema")
local types = require("luamig.types")

local ipairs, tonumber, assert, type = ipairs, tonumber, assert, type
local owned, type_of = reflect.owned, reflect.type_of

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

return { tables = pg_tables }
