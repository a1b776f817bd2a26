-- Autogenerate: compare the model registry with the reflected database and write what differs as `op` calls.
--
-- Each difference is a list of op values (luamig.ops), the same values model.create_ops makes for the kit helpers,
-- so a generated file and a helper run the same ops. A drop carries what it drops (o.reverse, from the models or
-- the reflected database); the downgrade of every difference is ops.reverse of its ops, last first, and the
-- downgrade of the whole is the differences' downgrades in reverse order. luamig.render writes the calls.
-- Types and defaults are compared as each dialect writes them, normalised, so that spellings of one thing
-- (VARCHAR/TEXT on SQLite, int4/integer and '[]'::jsonb on PostgreSQL) are not reported as changes.
local model = require("luamig.model")
local schema = require("luamig.schema")
local ops = require("luamig.ops")
local reflect = require("luamig.reflect")
local render_op = require("luamig.render").op

local format, concat, ipairs, type, tostring, sort, upper = string.format, table.concat, ipairs, type,
  tostring, table.sort, string.upper
local next, pcall, pairs = next, pcall, pairs

-- Normalisation ----------------------------------------------------------------------------------------------

-- type_key(d, ty) -> how the dialect sees a type (luamig.dialect.*: type_key)
local function type_key(d, ty)
  return d:type_key((upper(d:type_sql(ty)):gsub("%s+", " ")))
end

-- outside quotes: lower-case, no spaces, no casts
local function norm_sql(s)
  local out = {}
  local i = 1
  while i <= #s do
    local q = s:find("'", i, true)
    local chunk = s:sub(i, q and q - 1 or #s)
    chunk = chunk:lower():gsub("::[%a_][%w_ ]*", ""):gsub("%s+", "")
    out[#out + 1] = chunk
    if not q then break end
    local e = q + 1
    while true do
      local n = s:find("'", e, true)
      if not n then e = #s break end
      if s:sub(n + 1, n + 1) == "'" then e = n + 2 else e = n break end
    end
    out[#out + 1] = s:sub(q, e)
    i = e + 1
  end
  local r = concat(out)
  -- parentheses around one name or literal: (0), ('x'), (price)
  local n
  r = " " .. r
  repeat r, n = r:gsub("([^%w_])%(([%w_%.]+)%)", "%1%2") until n == 0
  repeat r, n = r:gsub("([^%w_])%(('[^']*')%)", "%1%2") until n == 0
  r = r:sub(2)
  -- redundant outer parentheses: ((CURRENT_TIMESTAMP) = 1)
  while r:sub(1, 1) == "(" and r:sub(-1) == ")" do
    local depth, balanced = 0, true
    for k = 1, #r - 1 do
      local c = r:sub(k, k)
      if c == "(" then depth = depth + 1 elseif c == ")" then depth = depth - 1 end
      if depth == 0 then balanced = false break end
    end
    if not balanced then break end
    r = r:sub(2, -2)
  end
  return r
end

local function default_key(d, v)
  if v == nil then return nil end
  return norm_sql(d:default_sql(v))
end

local function cols_key(list) return concat(list, ",") end

-- Op values ------------------------------------------------------------------------------------------------

local function col_spec(c)
  return { c.name, c.type, nullable = c.nullable, server_default = c.server_default, comment = c.comment,
    autoincrement = c.autoincrement }
end

local function index_op(ix, tname)
  local opts = {}
  if ix.unique then opts.unique = true end
  if ix.where then opts.where = schema.is_text(ix.where) and ix.where or schema.text(tostring(ix.where)) end
  return ops.create_index(schema.f(ix.name), tname, ix.columns, opts)
end

-- (constraint op values are made here rather than by their constructors: a constraint the database named has no
-- name on this side)
local function fk_op(fk, tname)
  return { op = "create_foreign_key", name = fk.name, table = tname, reftable = fk.reftable, columns = fk.columns,
    refcolumns = fk.refcolumns, ondelete = fk.ondelete, onupdate = fk.onupdate, deferrable = fk.deferrable or nil }
end

-- dropping(o) -> the op that undoes o, carrying o (what a drop needs to be reversed)
local function dropping(o) return ops.reverse(o) end

-- Compare ----------------------------------------------------------------------------------------------------

-- Orders tables so that a table comes after the tables it references (cycles keep their name order).
local function dependency_order(defs)
  local by_name, out, state = {}, {}, {}
  for _, d in ipairs(defs) do by_name[d.name] = d end
  local names = {}
  for _, d in ipairs(defs) do names[#names + 1] = d.name end
  sort(names)
  local function visit(n)
    if state[n] then return end
    state[n] = "visiting"
    local d = by_name[n]
    local refs = {}
    for _, fk in ipairs(d.foreign_keys) do refs[#refs + 1] = fk.reftable end
    sort(refs)
    for _, r in ipairs(refs) do
      if by_name[r] and r ~= n and state[r] ~= "visiting" then visit(r) end
    end
    state[n] = "done"
    out[#out + 1] = d
  end
  for _, n in ipairs(names) do visit(n) end
  return out
end

local function by_key(list, key)
  local m = {}
  for _, x in ipairs(list) do m[key(x)] = x end
  return m
end

-- Constraints without a name are matched by what they are.
local function uq_key(u) return u.name or ("(" .. cols_key(u.columns) .. ")") end
local function fk_key(f) return f.name or ("(" .. cols_key(f.columns) .. ")->" .. f.reftable .. "(" .. cols_key(f.refcolumns) .. ")") end
local function ck_key(c) return c.name or ("(" .. norm_sql(c.expr) .. ")") end

local function same_fk(a, b)
  return cols_key(a.columns) == cols_key(b.columns) and a.reftable == b.reftable and cols_key(a.refcolumns) == cols_key(b.refcolumns)
    and upper(a.ondelete or "NO ACTION") == upper(b.ondelete or "NO ACTION")
    and upper(a.onupdate or "NO ACTION") == upper(b.onupdate or "NO ACTION")
end

-- The constraints compared one kind at a time: how each is matched (key), compared (same), described and created.
local CONSTRAINTS = {
  foreignkey = { what = "foreign key", list = "foreign_keys", key = fk_key, same = same_fk,
    on = function(x, t) return format("%s(%s)", t, cols_key(x.columns)) end,
    to = function(x) return " -> " .. x.reftable end,
    create = fk_op },
  unique = { what = "unique constraint", list = "uniques", key = uq_key,
    same = function(a, b) return cols_key(a.columns) == cols_key(b.columns) end,
    on = function(x, t) return format("%s(%s)", t, cols_key(x.columns)) end,
    create = function(x, t) return { op = "create_unique_constraint", name = x.name, table = t, columns = x.columns } end },
  check = { what = "check constraint", list = "checks", key = ck_key,
    same = function(a, b) return norm_sql(a.expr) == norm_sql(b.expr) end,
    on = function(_, t) return t end,
    create = function(x, t) return { op = "create_check_constraint", name = x.name, table = t, expr = x.expr } end },
}

-- constraint_diffs(kind, from, to, t, drop, add): a difference for each constraint of `from` that `to` lacks (or
-- has otherwise): dropped from the database when drop, else created from the models
local function constraint_diffs(kind, from, to, t, drop, add)
  local c = CONSTRAINTS[kind]
  local other = by_key(to[c.list], c.key)
  -- a constraint without a name (left to the database) matches one of the same make whatever its name
  local function shape(x)
    local copy = {}
    for k, v in pairs(x) do copy[k] = v end
    copy.name = nil
    return c.key(copy)
  end
  local other_shape, other_unnamed = {}, {}
  for _, y in ipairs(to[c.list]) do
    other_shape[shape(y)] = y
    if not y.name then other_unnamed[shape(y)] = y end
  end
  for _, x in ipairs(from[c.list]) do
    local y = other[c.key(x)]
    if not y then y = x.name and other_unnamed[shape(x)] or (not x.name and other_shape[shape(x)]) or nil end
    if not y or not c.same(y, x) then
      local name = x.name or "(unnamed)"
      if drop then
        add({ text = format("- %s %s on %s", c.what, name, c.on(x, t)), up = { dropping(c.create(x, t)) },
          unnamed = not x.name })
      else
        add({ text = format("+ %s %s on %s%s", c.what, name, c.on(x, t), c.to and c.to(x) or ""),
          up = { c.create(x, t) } })
      end
    end
  end
end

-- changed_column(d, m, r, same_default) -> what differs between a model column and its reflected one. Defaults are
-- the same when their normalised SQL is, or when same_default(model default SQL, type SQL, reflected default SQL)
-- says so: the database's own reading of the model's default (PostgreSQL stores '1' for an integer as 1).
local function changed_column(d, m, r, same_default)
  local ch = {}
  if type_key(d, m.type) ~= type_key(d, r.type) then ch.type = true end
  if m.nullable ~= r.nullable then ch.nullable = true end
  local mk, rk = default_key(d, m.server_default), default_key(d, r.server_default)
  if mk ~= rk and not (mk and rk and same_default
    and same_default(d:default_sql(m.server_default), d:type_sql(m.type), d:default_sql(r.server_default))) then
    ch.default = true
  end
  return next(ch) and ch or nil
end

-- The kinds include_object is asked about, with how each list is keyed (Alembic's words for the kinds).
local INCLUDE_KINDS = {
  { list = "columns", kind = "column", key = function(x) return x.name end },
  { list = "indexes", kind = "index", key = function(x) return x.name end },
  { list = "uniques", kind = "unique_constraint", key = uq_key },
  { list = "foreign_keys", kind = "foreign_key_constraint", key = fk_key },
  { list = "checks", kind = "check_constraint", key = ck_key },
}

-- included(list, include, kind, key, reflected, others) -> the objects of list that include(name, kind, reflected,
-- compare_to) keeps; compare_to is the object of the other side with the same key, or nil
local function included(list, include, kind, key, reflected, others)
  local out = {}
  for _, x in ipairs(list) do
    if include(x.name, kind, reflected, others[key(x)]) ~= false then out[#out + 1] = x end
  end
  return out
end

-- filter_table(m, r, include) -> copies of a table's two sides without the columns, indexes and constraints
-- include_object leaves out
local function filter_table(m, r, include)
  local fm, fr = {}, {}
  for k, v in pairs(m) do fm[k] = v end
  for k, v in pairs(r) do fr[k] = v end
  for _, ik in ipairs(INCLUDE_KINDS) do
    local mk, rk = by_key(m[ik.list] or {}, ik.key), by_key(r[ik.list] or {}, ik.key)
    fm[ik.list] = included(m[ik.list] or {}, include, ik.kind, ik.key, false, rk)
    fr[ik.list] = included(r[ik.list] or {}, include, ik.kind, ik.key, true, mk)
  end
  return fm, fr
end

-- compare_table(d, m, r) -> list of differences of one table present on both sides
local function compare_table(d, m, r, out, same_default)
  local t = m.name
  if d.type_check_name then
    -- the CHECKs the models' types write (a non-native enum's) belong to the column, not to the table's list
    local owned = {}
    for _, c in ipairs(m.columns) do
      local name = d:column_type_constraint(c) and d:type_check_name(t, c.name)
      if name then owned[name] = true end
    end
    if next(owned) then
      local rest = {}
      for _, ck in ipairs(r.checks) do if not owned[ck.name] then rest[#rest + 1] = ck end end
      local copy = {}
      for k, v in pairs(r) do copy[k] = v end
      copy.checks, r = rest, copy
    end
  end
  local rcols = by_key(r.columns, function(c) return c.name end)
  local mcols = by_key(m.columns, function(c) return c.name end)
  local drops_last = {}
  local function add(diff) out[#out + 1] = diff end
  -- removed constraints and indexes first: they may hold columns that go
  local mix, rix = by_key(m.indexes, function(x) return x.name end), by_key(r.indexes, function(x) return x.name end)
  local function same_index(a, b)
    return cols_key(a.columns) == cols_key(b.columns) and (a.unique or false) == (b.unique or false)
      and norm_sql(a.where and tostring(a.where) or "") == norm_sql(b.where and tostring(b.where) or "")
  end
  for _, kind in ipairs({ "foreignkey", "unique", "check" }) do constraint_diffs(kind, r, m, t, true, add) end
  for _, ix in ipairs(r.indexes) do
    if not mix[ix.name] or not same_index(mix[ix.name], ix) then
      add({ text = format("- index %s on %s(%s)", ix.name, t, cols_key(ix.columns)), up = { dropping(index_op(ix, t)) } })
    end
  end
  -- columns
  for _, c in ipairs(m.columns) do
    local rc = rcols[c.name]
    if not rc then
      local hint
      for _, old in ipairs(r.columns) do
        if not mcols[old.name] and type_key(d, old.type) == type_key(d, c.type) then hint = old.name end
      end
      add({ text = format("+ column %s.%s", t, c.name), rename_from = hint, up = { ops.add_column(t, col_spec(c)) } })
    else
      local ch = changed_column(d, c, rc, same_default)
      if ch then
        local up = {}
        if ch.type then up.type, up.existing_type = c.type, rc.type end
        if ch.nullable then up.nullable = c.nullable else up.existing_nullable = c.nullable end
        if ch.default then
          up.server_default = c.server_default == nil and schema.NULL or c.server_default
          up.existing_server_default = rc.server_default
        end
        local what = {}
        if ch.type then what[#what + 1] = format("type %s -> %s", d:type_sql(rc.type), d:type_sql(c.type)) end
        if ch.nullable then what[#what + 1] = c.nullable and "NOT NULL -> NULL" or "NULL -> NOT NULL" end
        if ch.default then
          what[#what + 1] = format("default %s -> %s", rc.server_default and d:default_sql(rc.server_default) or "none",
            c.server_default and d:default_sql(c.server_default) or "none")
        end
        add({ text = format("~ column %s.%s: %s", t, c.name, concat(what, ", ")), up = { ops.alter_column(t, c.name, up) } })
      end
    end
  end
  for _, c in ipairs(r.columns) do
    if not mcols[c.name] then
      drops_last[#drops_last + 1] = { text = format("- column %s.%s", t, c.name),
        up = { dropping(ops.add_column(t, col_spec(c))) } }
    end
  end
  -- new constraints and indexes
  for _, ix in ipairs(m.indexes) do
    if not rix[ix.name] or not same_index(rix[ix.name], ix) then
      add({ text = format("+ index %s on %s(%s)", ix.name, t, cols_key(ix.columns)), up = { index_op(ix, t) } })
    end
  end
  for _, kind in ipairs({ "unique", "check", "foreignkey" }) do constraint_diffs(kind, m, r, t, false, add) end
  for _, diff in ipairs(drops_last) do add(diff) end
  -- an Entity's updated_at trigger
  if (m.updated_at_trigger or false) ~= (r.updated_at_trigger or false) then
    local make = model.trigger_ops(t, d.name)
    if m.updated_at_trigger then
      add({ text = format("+ trigger %s", model.trigger_name(t)), up = make })
    else
      add({ text = format("- trigger %s", model.trigger_name(t)), up = model.reversed(make) })
    end
  end
end

-- compare(metadata, reflected, d [, same_default [, include]]) -> list of differences { text, up = op values, down
-- = op values }. include(name, kind, reflected, compare_to) (env.lua's include_object) is asked about every table,
-- column, index and constraint of both sides; false leaves it out.
local function compare(metadata, reflected, d, same_default, include)
  local diffs = {}
  local mtables = metadata.tables
  if include then
    local r0 = by_key(reflected, function(x) return x.name end)
    local m0 = by_key(mtables, function(x) return x.name end)
    local keep_m, keep_r = {}, {}
    for _, m in ipairs(mtables) do
      if include(m.name, "table", false, r0[m.name]) ~= false then keep_m[#keep_m + 1] = m end
    end
    for _, r in ipairs(reflected) do
      if include(r.name, "table", true, m0[r.name]) ~= false then keep_r[#keep_r + 1] = r end
    end
    mtables, reflected = keep_m, keep_r
  end
  local rby = by_key(reflected, function(x) return x.name end)
  local mby = by_key(mtables, function(x) return x.name end)
  local new_tables = {}
  for _, m in ipairs(mtables) do if not rby[m.name] then new_tables[#new_tables + 1] = m end end
  for _, m in ipairs(dependency_order(new_tables)) do
    diffs[#diffs + 1] = { text = "+ table " .. m.name, up = model.create_ops(m, d.name) }
  end
  local both = {}
  for _, m in ipairs(mtables) do if rby[m.name] then both[#both + 1] = m end end
  sort(both, function(a, b) return a.name < b.name end)
  for _, m in ipairs(both) do
    local mt, rt = m, rby[m.name]
    if include then mt, rt = filter_table(mt, rt, include) end
    compare_table(d, mt, rt, diffs, same_default)
  end
  local gone = {}
  for _, r in ipairs(reflected) do if not mby[r.name] then gone[#gone + 1] = r end end
  local ordered = dependency_order(gone)
  for i = #ordered, 1, -1 do
    local r = ordered[i]
    diffs[#diffs + 1] = { text = "- table " .. r.name, up = model.drop_ops(r, d.name) }
  end
  -- every downgrade: what undoes the upgrade's ops
  for _, diff in ipairs(diffs) do diff.down = model.reversed(diff.up) end
  return diffs
end

-- Render -----------------------------------------------------------------------------------------------------

local lua_string = require("luamig.render").lua_string

-- render(diffs) -> upgrade body, downgrade body (indented Lua lines)
local function render(diffs)
  local up, down = {}, {}
  for _, diff in ipairs(diffs) do
    if diff.rename_from then
      local o = diff.up[1]
      local tbl, new = o.table, o.column.name
      up[#up + 1] = format("  -- a rename? if %s.%s was renamed to %s, use op.alter_column(%s, %s, { new_column_name = %s })"
        .. " instead of dropping %s and adding %s", tbl, diff.rename_from, new, lua_string(tbl),
        lua_string(diff.rename_from), lua_string(new), diff.rename_from, new)
    end
    if diff.unnamed then up[#up + 1] = "  -- the database has no name for this constraint: name it here before running" end
    for _, o in ipairs(diff.up) do up[#up + 1] = render_op(o, "  ") end
  end
  for i = #diffs, 1, -1 do
    for _, o in ipairs(diffs[i].down) do down[#down + 1] = render_op(o, "  ") end
  end
  return concat(up, "\n"), concat(down, "\n")
end

-- reflect_and_compare(conn, d, metadata, opts) -> diffs, or nil, message. opts: version_table, include
local function reflect_and_compare(conn, d, metadata, opts)
  local include = opts.include
  local ok, reflected = pcall(reflect.tables, conn, d, { version_table = opts.version_table })
  if not ok then return nil, "cannot read the database's schema: " .. tostring(reflected) end
  local probe, finish
  if d.default_prober then probe, finish = d:default_prober(conn) end
  local same_default = probe and function(model_sql, ty, reflected_sql)
    local s = probe(model_sql, ty)
    return s ~= nil and norm_sql(s) == norm_sql(reflected_sql)
  end
  local cok, diffs = pcall(compare, metadata, reflected, d, same_default, include)
  local fok, ferr = true, nil
  if finish then fok, ferr = finish() end
  if not cok then error(diffs, 0) end
  if not fok then return nil, ferr end
  return diffs
end

return { compare = compare, render = render, reflect_and_compare = reflect_and_compare, norm_sql = norm_sql,
  type_key = type_key }
