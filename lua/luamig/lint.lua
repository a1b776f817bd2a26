-- `luamig lint`'s engine: runs each migration's upgrade (or downgrade) against a recording `op`, which keeps every
-- op value with the line of the call that made it and whether it runs inside the migration's transaction; then
-- the rules (luamig.lint_rules) look at the op values with what the models and, when connected, the database
-- say. Nothing is written. plan() gives the locks of the same op values (luamig.lock_plan).
local op_api = require("luamig.op")
local ops = require("luamig.ops")
local rules = require("luamig.lint_rules")
local lock_plan = require("luamig.lock_plan")
local types = require("luamig.types")
local script_dir = require("luamig.script_dir")

local format, ipairs, type, tostring, xpcall = string.format, ipairs, type, tostring, xpcall
local lower, concat, tonumber, pcall = string.lower, table.concat, tonumber, pcall

local M = {}

-- record(r, direction, dialect, cfg) -> the entries { o, line, in_tx } of one migration's upgrade or downgrade, or
-- nil, message, the entries recorded before its code failed
function M.record(r, direction, dialect, cfg)
  local entries = {}
  local chunk = r.chunkname or ("@" .. r.shown)
  local in_tx = r.transactional
  local line_in, error_text = script_dir.line_in, script_dir.error_text
  local function keep(o) entries[#entries + 1] = { o = o, line = line_in(chunk), in_tx = in_tx } end
  -- op.get_bind() in a lint: statements are recorded like op.execute, queries see no rows
  local bind = {
    exec = function(_, sql, params)
      keep(ops.execute(sql, params))
      return 0
    end,
    query = function() return {} end,
  }
  local op = op_api.new({ dialect = dialect, run = keep, bind = bind, naming_convention = cfg.naming_convention,
    autocommit_block = function(fn)
      local was = in_tx
      in_tx = false
      fn()
      in_tx = was
    end })
  local fn = r.module[direction]
  if fn == nil then return entries end
  local where
  local ok, err = xpcall(fn, function(e)
    where = line_in(chunk)
    return error_text(e)
  end, op)
  if not ok then
    if err:sub(1, #r.shown + 1) == r.shown .. ":" then return nil, err, entries end
    return nil, format("%s%s: %s", r.shown, where and (":" .. where) or "", err), entries
  end
  return entries
end

-- ignored(r) -> the set of rule ids the migration silences (M.lint = { ignore = { ... } }), or nil, message
local function ignored(r)
  local l = r.module.lint
  if l == nil then return {} end
  if type(l) ~= "table" or (l.ignore ~= nil and type(l.ignore) ~= "table") then
    return nil, format("%s: lint must be a table { ignore = { \"rule-id\", ... } }", r.shown)
  end
  local out = {}
  for i, id in ipairs(l.ignore or {}) do
    if type(id) ~= "string" or not rules.BY_ID[id] then
      return nil, format("%s: lint.ignore[%d] is not a rule id (%s)", r.shown, i, tostring(id))
    end
    out[id] = true
  end
  return out
end

-- luamig type -> the shape the rewrite question needs
local function shape(ty)
  if not types.is_type(ty) then return nil end
  if ty.kind == "string" then return { kind = "string", length = ty.length } end
  if ty.kind == "numeric" then return { kind = "numeric", precision = ty.precision, scale = ty.scale } end
  if ty.kind == "raw" and ty.sql then return rules.sql_type(ty.sql) end
  return { kind = ty.kind }
end

local function same_shape(a, b)
  return a.kind == b.kind and a.length == b.length and a.precision == b.precision and a.scale == b.scale
end

-- not_null_column(expr) -> the column of a "col IS NOT NULL" check, or nil
local function not_null_column(expr)
  if type(expr) ~= "string" then return nil end
  local s = lower(expr):gsub("^%s*%(", ""):gsub("%)%s*$", "")
  return s:match('^%s*"?([%w_]+)"?%s+is%s+not%s+null%s*$')
end

-- facts(run, db) -> the questions rules ask of the models and, when connected, the database
local function make_facts(run, db, dialect)
  local facts = {}
  local conn = db and db.conn
  local column_types = {}
  -- the column's type in the database (PostgreSQL), or nil
  local function db_type(tbl, col)
    if not conn or run.dialect ~= "postgresql" then return nil end
    local key = tbl .. "." .. col
    if column_types[key] == nil then
      local rows = conn:query("SELECT data_type, character_maximum_length AS len, numeric_precision AS p, "
        .. "numeric_scale AS s FROM information_schema.columns WHERE table_schema = current_schema() "
        .. "AND table_name = ? AND column_name = ?", { tbl, col })
      local r = rows and rows[1]
      if not r then
        column_types[key] = false
      elseif r.data_type == "character varying" then
        column_types[key] = { kind = "string", length = tonumber(r.len) }
      elseif r.data_type == "numeric" then
        column_types[key] = { kind = "numeric", precision = tonumber(r.p), scale = tonumber(r.s) }
      else
        column_types[key] = { kind = r.data_type }
      end
    end
    return column_types[key] or nil
  end
  function facts.rewrites(o)
    local new = shape(o.changes.type)
    local old = shape(o.changes.existing_type) or db_type(o.table, o.column)
    if not old or not new then return true end
    return not (same_shape(old, new) or rules.no_rewrite(old, new))
  end
  function facts.raw_rewrites(a)
    local old, new = db_type(a.table, a.column), rules.sql_type(a.type)
    if not old then return true end
    return not (same_shape(old, new) or rules.no_rewrite(old, new))
  end
  function facts.volatile(default) return rules.volatile(default, run.version) end
  -- SQLite: does the op copy its table?
  function facts.rebuilds(o)
    if run.dialect ~= "sqlite" then return false end
    if o.op == "batch_alter_table" then
      if o.recreate == "always" then return true end
      if o.recreate == "never" then return false end
      for _, sub in ipairs(o.ops) do if facts.rebuilds(sub) then return true end end
      return false
    end
    if o.op == "execute" or o.op == "bulk_insert" or o.op == "create_table" then return false end
    local ok, list = pcall(dialect.compile, dialect, o)
    if not ok then return false end
    for _, st in ipairs(list) do
      if type(st) == "table" and (st.rebuild and not st.try_alter) then return true end
    end
    return false
  end
  function facts.rebuild_text(tbl)
    local n
    if conn and run.dialect == "sqlite" then
      local rows = conn:query(format("SELECT count(*) AS n FROM %s", dialect:quote(tbl)))
      n = rows and rows[1] and rows[1].n
    end
    return format("SQLite rebuilds %s: every row is copied into a new table while the database is locked%s", tbl,
      n and format(" (%s rows now)", tostring(n)) or "")
  end
  return facts
end

-- The checks a migration adds and validates: what makes a later SET NOT NULL safe (PostgreSQL 12+).
local function check_book(run, db)
  local pending, validated = {}, {}
  function run.note_check(name, tbl, expr, valid)
    local col = not_null_column(expr)
    if not col then return end
    if valid then validated[tbl .. "." .. col] = true else pending[tbl .. "." .. tostring(name)] = col end
  end
  function run.note_validated(name, tbl)
    local col = pending[tbl .. "." .. name]
    if col then validated[tbl .. "." .. col] = true end
  end
  function run.not_null_checked(tbl, col)
    if validated[tbl .. "." .. col] then return true end
    if not (db and run.dialect == "postgresql") then return false end
    local rows = db.conn:query("SELECT pg_get_constraintdef(c.oid) AS def FROM pg_constraint c JOIN pg_class t ON "
      .. "t.oid = c.conrelid WHERE c.contype = 'c' AND c.convalidated AND t.relname = ? AND "
      .. "pg_table_is_visible(t.oid)", { tbl })
    for _, r in ipairs(rows or {}) do
      local d = tostring(r.def):gsub("^CHECK%s*", "")
      if not_null_column(d) == lower(col) then
        validated[tbl .. "." .. col] = true
        return true
      end
    end
    return false
  end
end

-- run(revs, opts) -> findings, plan; or nil, message
-- revs: revision records (materialized) in the order they apply; opts: dialect (object), cfg, db (connection or
-- nil), models (MetaData or nil), version (PostgreSQL major), downgrade (lint downgrades too, newest first),
-- plan (also collect the locks)
function M.run(revs, opts)
  local dialect, cfg = opts.dialect, opts.cfg
  local disabled = {}
  for _, id in ipairs(cfg.lint_disable or {}) do
    if not rules.BY_ID[id] then return nil, format("lint_disable: '%s' is not a rule id", id) end
    disabled[id] = true
  end
  local findings, plan = {}, opts.plan and {} or nil
  local run = { dialect = dialect.name, version = opts.version or 15, models = opts.models }
  run.facts = make_facts(run, opts.db, dialect)
  check_book(run, opts.db)
  local function lint_one(r, direction)
    local entries, err = M.record(r, direction, dialect, cfg)
    if not entries then return nil, err end
    local skip, serr = ignored(r)
    if not skip then return nil, serr end
    run.emit = function(f)
      if disabled[f.rule] or skip[f.rule] or not rules.applies(f.rule, run.dialect) then return end
      f.revision, f.file, f.direction = r.revision, r.shown, direction
      findings[#findings + 1] = f
    end
    run.direction = direction
    local mig = { created = {}, dropped = rules.dropped(entries) }
    local steps = plan and {} or nil
    for _, e in ipairs(entries) do
      rules.check(e, mig, run)
      if steps then
        steps[#steps + 1] = { line = e.line, op = e.o.op == "execute" and "execute" or ops.label(e.o),
          transaction = e.in_tx, locks = lock_plan.locks(e.o, run.dialect, run.facts) }
      end
    end
    if plan then
      plan[#plan + 1] = { revision = r.revision, file = r.shown, direction = direction, transactional = r.transactional,
        ops = steps }
    end
    return true
  end
  for _, r in ipairs(revs) do
    local ok, err = lint_one(r, "upgrade")
    if not ok then return nil, err end
  end
  if opts.downgrade then
    for i = #revs, 1, -1 do
      local ok, err = lint_one(revs[i], "downgrade")
      if not ok then return nil, err end
    end
  end
  return findings, plan
end

-- Output --------------------------------------------------------------------------------------------------------

function M.text(f)
  return format("%s:%s: %s (%s): %s\n  safe: %s", f.file, tostring(f.line or "?"), f.rule, f.severity, f.message, f.safe)
end

-- GitHub workflow commands: % CR LF escaped in the message, also : and , in properties
local function gh_data(s) return (tostring(s):gsub("%%", "%%25"):gsub("\r", "%%0D"):gsub("\n", "%%0A")) end
local function gh_prop(s) return (gh_data(s):gsub(":", "%%3A"):gsub(",", "%%2C")) end
local GH = { error = "error", warning = "warning", info = "notice" }

function M.github(f)
  return format("::%s file=%s,line=%s,title=%s::%s. Safe: %s", GH[f.severity], gh_prop(f.file), tostring(f.line or 1),
    gh_prop(f.rule), gh_data(f.message), gh_data(f.safe))
end

-- plan_lines(plan) -> the --plan text
function M.plan_lines(plan)
  local out = {}
  for _, m in ipairs(plan) do
    out[#out + 1] = format("%s %s %s (%s)", m.direction, m.revision, m.file,
      m.transactional and "in a transaction" or "transactional = false")
    for _, s in ipairs(m.ops) do
      local parts = {}
      for _, l in ipairs(s.locks) do
        parts[#parts + 1] = format("%s %s%s", l.table, l.mode, l.rewrite and ", rewrites it" or l.scan and ", scans it" or "")
      end
      out[#out + 1] = format("  %s:%s %s [%s]: %s", m.file, tostring(s.line or "?"), s.op,
        s.transaction and "transaction" or "autocommit", #parts > 0 and concat(parts, "; ") or "no table lock")
    end
  end
  return out
end

return M
