-- The locks an op value takes: per table, PostgreSQL's lock mode (as its documentation names them, "Explicit
-- Locking"), and whether the statement rewrites or scans the table while it holds the lock. SQLite has one lock
-- for the whole database; there the question is whether the op copies the table (a rebuild).
-- Raw SQL (op.execute) is read by luamig.sql_classify; a statement it does not know has no entry.
local sql_text = require("luamig.sql_text")

local ipairs, type, tostring = ipairs, type, tostring

local M = {}

-- the modes, weakest first; strong(mode): SHARE ROW EXCLUSIVE or more, which blocks every writer
M.MODES = { "ACCESS SHARE", "ROW SHARE", "ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE", "SHARE", "SHARE ROW EXCLUSIVE",
  "EXCLUSIVE", "ACCESS EXCLUSIVE" }
local RANK = {}
for i, m in ipairs(M.MODES) do RANK[m] = i end
M.RANK = RANK
function M.strong(mode) return (RANK[mode] or 0) >= RANK["SHARE ROW EXCLUSIVE"] end

local AE, SRE, SHARE, SUE, RE = "ACCESS EXCLUSIVE", "SHARE ROW EXCLUSIVE", "SHARE", "SHARE UPDATE EXCLUSIVE",
  "ROW EXCLUSIVE"

local function lock(t, mode, how) return { table = t, mode = mode, rewrite = how == "rewrite", scan = how == "scan" } end

-- PostgreSQL, per op kind: function(o, facts) -> list of locks. facts.rewrites(o) tells whether a type change
-- rewrites (lint decides it from the old type).
local PG = {}
function PG.create_table(o)
  local out = { lock(o.table.name, AE) }
  for _, fk in ipairs(o.table.foreign_keys or {}) do
    if fk.reftable ~= o.table.name then out[#out + 1] = lock(fk.reftable, SRE) end
  end
  for _, c in ipairs(o.table.columns or {}) do
    if c.ref_table and c.ref_table ~= o.table.name then out[#out + 1] = lock(c.ref_table, SRE) end
  end
  return out
end
function PG.drop_table(o) return { lock(o.name, AE) } end
function PG.rename_table(o) return { lock(o.old, AE) } end
function PG.add_column(o, facts)
  local col = o.column
  local how = facts and facts.volatile and facts.volatile(col.server_default) and "rewrite"
    or (col.unique or col.primary_key or col.index) and "scan" or nil
  local out = { lock(o.table, AE, how) }
  if col.ref_table then out[#out + 1] = lock(col.ref_table, SRE) end
  return out
end
function PG.drop_column(o) return { lock(o.table, AE) } end
function PG.alter_column(o, facts)
  local ch = o.changes
  local how
  if ch.type ~= nil and (not facts or not facts.rewrites or facts.rewrites(o)) then
    how = "rewrite"
  elseif ch.nullable == false then
    how = "scan"
  end
  return { lock(o.table, AE, how) }
end
function PG.create_index(o) return { lock(o.table, o.concurrently and SUE or SHARE, "scan") } end
function PG.drop_index(o) return o.table and { lock(o.table, o.concurrently and SUE or AE) } or {} end
function PG.create_unique_constraint(o) return { lock(o.table, AE, not o.using_index and "scan" or nil) } end
PG.create_primary_key = PG.create_unique_constraint
function PG.create_foreign_key(o)
  local how = not o.not_valid and "scan" or nil
  local out = { lock(o.table, SRE, how) }
  if o.reftable ~= o.table then out[#out + 1] = lock(o.reftable, SRE) end
  return out
end
function PG.create_check_constraint(o) return { lock(o.table, AE, not o.not_valid and "scan" or nil) } end
function PG.validate_constraint(o) return { lock(o.table, SUE, "scan") } end
function PG.drop_constraint(o) return { lock(o.table, AE) } end
function PG.bulk_insert(o) return { lock(o.table, RE) } end
function PG.batch_alter_table(o, facts)
  local out = {}
  for _, sub in ipairs(o.ops) do
    local f = PG[sub.op]
    for _, l in ipairs(f and f(sub, facts) or {}) do out[#out + 1] = l end
  end
  return out
end

-- Raw SQL actions (luamig.sql_classify) -> locks
local RAW = {
  add_column = function(a, facts)
    local how = facts and facts.volatile and facts.volatile(a.default) and "rewrite" or nil
    local out = { lock(a.table, AE, how) }
    if a.references then out[#out + 1] = lock(a.references, SRE) end
    return out
  end,
  alter_type = function(a, facts)
    return { lock(a.table, AE, (not facts or not facts.raw_rewrites or facts.raw_rewrites(a)) and "rewrite" or nil) }
  end,
  set_not_null = function(a) return { lock(a.table, AE, "scan") } end,
  add_constraint = function(a)
    if a.ctype == "foreign_key" then
      local out = { lock(a.table, SRE, not a.not_valid and "scan" or nil) }
      if a.reftable and a.reftable ~= a.table then out[#out + 1] = lock(a.reftable, SRE) end
      return out
    end
    local how = (a.ctype == "check" and not a.not_valid or (a.ctype ~= "check" and not a.using_index)) and "scan" or nil
    return { lock(a.table, AE, how) }
  end,
  validate_constraint = function(a) return { lock(a.table, SUE, "scan") } end,
  create_index = function(a) return { lock(a.table, a.concurrently and SUE or SHARE, "scan") } end,
  drop_index = function() return {} end,
  vacuum_full = function(a) return a.table and { lock(a.table, AE, "rewrite") } or {} end,
  vacuum = function(a) return a.table and { lock(a.table, SUE, "scan") } or {} end,
  cluster = function(a) return a.table and { lock(a.table, AE, "rewrite") } or {} end,
  reindex = function(a) return a.table and { lock(a.table, a.concurrently and SUE or SHARE, "scan") } or {} end,
  lock = function(a) return { lock(a.table, a.mode) } end,
  dml = function(a) return { lock(a.table, RE) } end,
}

-- raw(sql) -> the list of statements of an op.execute, each { sql, actions (nil: not classified) }
function M.raw(o)
  if o.statements then return o.statements end
  local list = {}
  for i, s in ipairs(sql_text.split(tostring(o.sql))) do list[i] = { sql = s, actions = require("luamig.sql_classify").classify(s) } end
  o.statements = list
  return list
end

-- action_locks(a, facts) -> the locks of one classified raw action
function M.action_locks(a, facts)
  local f = RAW[a.kind]
  if f then return f(a, facts) end
  if a.kind == "create_table" then return { lock(a.table, AE) } end
  return a.table and { lock(a.table, AE) } or {}
end

-- locks(o, dialect_name, facts) -> list of { table, mode, rewrite, scan } for an op value
function M.locks(o, dialect_name, facts)
  if dialect_name ~= "postgresql" then
    local t = o.table
    if type(t) == "table" then t = t.name end
    t = t or o.name or o.old
    local rebuild = facts and facts.rebuilds and facts.rebuilds(o)
    return t and { { table = t, mode = "database write lock", rewrite = rebuild or false, scan = false } } or {}
  end
  if o.op == "execute" then
    local out = {}
    for _, st in ipairs(M.raw(o)) do
      for _, a in ipairs(st.actions or {}) do
        for _, l in ipairs(M.action_locks(a, facts)) do out[#out + 1] = l end
      end
    end
    return out
  end
  local f = PG[o.op]
  return f and f(o, facts) or {}
end

-- tables(o) -> the names of the tables an op value touches (the pre-flight's list), on PostgreSQL
function M.tables(o)
  local out = {}
  for _, l in ipairs(M.locks(o, "postgresql")) do out[#out + 1] = l.table end
  return out
end

return M
