-- The rules of `luamig lint`: what in a migration's op values takes a lock long enough to stop an application, loses
-- data or breaks the code still running, each with its safe recipe. check(entry, mig, run) adds the findings of one
-- recorded op: entry { o, line, in_tx, batch }, mig (the migration: created tables, strong locks so far), run (the
-- whole lint: dialect, PostgreSQL version, facts from the models and the database, emit).
local lock_plan = require("luamig.lock_plan")
local schema = require("luamig.schema")

local format, ipairs, type, tostring, tonumber, lower = string.format, ipairs, type, tostring, tonumber, string.lower

local M = {}

-- id -> { severity (the usual one), dialects, what }: the table README's "Safe deploys" shows
M.RULES = {
  { id = "drop-table", severity = "error|warning", sqlite = true, what = "data loss; breaks running code" },
  { id = "drop-column", severity = "error|warning", sqlite = true, what = "data loss; breaks running code" },
  { id = "rename-table", severity = "warning", sqlite = true, what = "breaks running code" },
  { id = "rename-column", severity = "warning", sqlite = true, what = "breaks running code" },
  { id = "change-column-type", severity = "error|warning", sqlite = true, what = "ACCESS EXCLUSIVE + table rewrite" },
  { id = "set-not-null", severity = "warning", what = "full scan under ACCESS EXCLUSIVE" },
  { id = "add-required-column", severity = "error", sqlite = true, what = "NOT NULL without a default on an existing table" },
  { id = "add-column-volatile-default", severity = "error", what = "a volatile default rewrites the table" },
  { id = "create-index-blocking", severity = "warning", what = "writes stop while the index builds" },
  { id = "drop-index-blocking", severity = "warning", what = "ACCESS EXCLUSIVE on the table" },
  { id = "concurrently-in-transaction", severity = "error", what = "CONCURRENTLY fails inside a transaction" },
  { id = "add-foreign-key-validating", severity = "warning", what = "scans under SHARE ROW EXCLUSIVE on both tables" },
  { id = "add-check-validating", severity = "warning", what = "scans under ACCESS EXCLUSIVE" },
  { id = "add-unique-constraint", severity = "warning", what = "builds the index under ACCESS EXCLUSIVE" },
  { id = "add-primary-key", severity = "warning", what = "builds the index under ACCESS EXCLUSIVE" },
  { id = "blocking-maintenance", severity = "warning", what = "VACUUM FULL, CLUSTER, REINDEX hold ACCESS EXCLUSIVE" },
  { id = "lock-convoy", severity = "error", what = "a strong lock held while another table is locked" },
  { id = "sqlite-rebuild", severity = "info", sqlite = true, only_sqlite = true, what = "copies the whole table" },
  { id = "raw-sql", severity = "info", sqlite = true, what = "a statement luamig cannot classify" },
}
M.BY_ID = {}
for _, r in ipairs(M.RULES) do M.BY_ID[r.id] = r end

-- applies(id, dialect_name) -> whether the rule runs on that dialect
function M.applies(id, dialect_name)
  local r = M.BY_ID[id]
  if dialect_name == "sqlite" then return r.sqlite == true end
  return not r.only_sqlite
end

-- Functions PostgreSQL marks volatile that people put into defaults (now() and CURRENT_TIMESTAMP are stable)
local VOLATILE = { "random%s*%(", "gen_random_uuid%s*%(", "uuid_generate_v%d%s*%(", "clock_timestamp%s*%(",
  "nextval%s*%(", "timeofday%s*%(", "txid_current%s*%(", "setseed%s*%(" }

-- volatile(default, version) -> true when a column default makes PostgreSQL rewrite the table on ADD COLUMN
function M.volatile(default, version)
  if default == nil or default == false then return false end
  if version and version < 11 then return true end -- before 11 every default is written into every row
  -- (a string, a number or a boolean is a literal: only SQL text, op.text(...), can call a function)
  if not schema.is_text(default) then return false end
  local text = lower(default.sql)
  for _, p in ipairs(VOLATILE) do if text:find(p) then return true end end
  return false
end

-- SQL type text -> { kind, length, precision, scale } as far as the rewrite question needs it
function M.sql_type(text)
  local s = lower(tostring(text)):gsub("%s+", " "):match("^%s*(.-)%s*$")
  local n = s:match("^varchar%s*%((%d+)%)$") or s:match("^character varying%s*%((%d+)%)$")
  if n then return { kind = "string", length = tonumber(n) } end
  if s == "varchar" or s == "character varying" then return { kind = "string" } end
  if s == "text" then return { kind = "text" } end
  local p, sc = s:match("^numeric%s*%((%d+)%s*,%s*(%d+)%)$")
  if not p then p, sc = s:match("^decimal%s*%((%d+)%s*,%s*(%d+)%)$") end
  if p then return { kind = "numeric", precision = tonumber(p), scale = tonumber(sc) } end
  p = s:match("^numeric%s*%((%d+)%)$") or s:match("^decimal%s*%((%d+)%)$")
  if p then return { kind = "numeric", precision = tonumber(p), scale = 0 } end
  if s == "numeric" or s == "decimal" then return { kind = "numeric" } end
  return { kind = s }
end

-- no_rewrite(old, new) -> true when PostgreSQL changes the type without rewriting the table: varchar longer or
-- unbounded, varchar to text, numeric precision up at the same scale (or unbounded)
function M.no_rewrite(old, new)
  if not old or not new then return false end
  if old.kind == "string" and new.kind == "string" then
    return new.length == nil or (old.length ~= nil and new.length >= old.length)
  end
  if (old.kind == "string" or old.kind == "text") and new.kind == "text" then return true end
  if old.kind == "numeric" and new.kind == "numeric" then
    if new.precision == nil then return true end
    return old.precision ~= nil and new.precision >= old.precision and (new.scale or 0) == (old.scale or 0)
  end
  return false
end

-- Findings ----------------------------------------------------------------------------------------------------

local function add(run, entry, rule, severity, tbl, col, message, safe)
  run.emit({ rule = rule, severity = severity, line = entry.line, table = tbl, column = col, message = message,
    safe = safe })
end

-- (the models describe the head: a downgrade goes where they do not reach)
local function modeled(run, tbl, col)
  local md = run.models
  if not md or run.direction == "downgrade" then return false end
  local def = md:get(tbl)
  if not def then return false end
  if col == nil then return true end
  for _, c in ipairs(def.columns) do if c.name == col then return true end end
  return false
end

local function drop_table(run, e, tbl)
  local err = modeled(run, tbl)
  add(run, e, "drop-table", err and "error" or "warning", tbl, nil,
    format("drops table %s%s: its rows are lost and running code that uses it fails", tbl,
      err and " while the models still define it" or ""),
    "remove the model and every use of the table and deploy that first; drop it in a later migration "
      .. "(M.lint = { ignore = { \"drop-table\" } } once it is unused)")
end

local function drop_column(run, e, tbl, col)
  local err = modeled(run, tbl, col)
  add(run, e, "drop-column", err and "error" or "warning", tbl, col,
    format("drops column %s.%s%s: its data is lost and running code that reads it fails", tbl, col,
      err and " while the models still define it" or ""),
    "remove the column from the models and every query and deploy that first; drop it in a later migration "
      .. "(M.lint = { ignore = { \"drop-column\" } } once it is unused)")
end

local function rename_table(run, e, old, new)
  add(run, e, "rename-table", "warning", old, nil,
    format("renames table %s to %s: running code that uses the old name fails until the new code is out", old, new),
    "expand and contract: create the new table (or a view under the new name), write to both, move the reads, "
      .. "then drop the old one")
end

local function rename_column(run, e, tbl, old, new)
  add(run, e, "rename-column", "warning", tbl, old,
    format("renames column %s.%s to %s: running code that uses the old name fails", tbl, old, new),
    "expand and contract: add the new column, write to both and backfill, move the reads, then drop the old column")
end

local TYPE_SAFE = "add a column of the new type, write to both and backfill in batches, move the reads, then drop "
  .. "the old column (PostgreSQL changes without a rewrite: varchar longer or unbounded, varchar to text, numeric "
  .. "precision up)"

local function change_type(run, e, tbl, col, rewrites)
  if run.dialect == "sqlite" then
    add(run, e, "change-column-type", "warning", tbl, col,
      format("changes the type of %s.%s: SQLite rebuilds the table, copying every row", tbl, col), TYPE_SAFE)
  elseif rewrites then
    add(run, e, "change-column-type", "error", tbl, col,
      format("changes the type of %s.%s: ACCESS EXCLUSIVE on %s while the whole table is rewritten", tbl, col, tbl),
      TYPE_SAFE)
  end
end

local function set_not_null(run, e, tbl, col)
  if run.dialect ~= "postgresql" then return end
  if run.version >= 12 and run.not_null_checked(tbl, col) then return end
  add(run, e, "set-not-null", "warning", tbl, col,
    format("sets %s.%s NOT NULL: PostgreSQL scans the whole table under ACCESS EXCLUSIVE", tbl, col),
    format("op.create_check_constraint(\"ck_%s_%s_not_null\", \"%s\", \"%s IS NOT NULL\", { not_valid = true }); in a "
      .. "later migration op.validate_constraint(\"ck_%s_%s_not_null\", \"%s\"), then the NOT NULL (PostgreSQL 12+ "
      .. "uses the validated check and skips the scan), then drop the check", tbl, col, tbl, col, tbl, col, tbl))
end

local function required_column(run, e, tbl, col)
  add(run, e, "add-required-column", "error", tbl, col,
    format("adds %s.%s NOT NULL without a server default to an existing table: it fails where the table has rows, "
      .. "and inserts of the running code fail", tbl, col),
    "add it nullable (or with a server_default), backfill it, then make it NOT NULL in a later migration")
end

local function volatile_default(run, e, tbl, col, default)
  local why = run.version < 11 and format("before PostgreSQL 11 any default (here %s) rewrites the table", default)
    or format("the volatile default %s makes PostgreSQL rewrite the table", default)
  add(run, e, "add-column-volatile-default", "error", tbl, col,
    format("adds %s.%s: %s under ACCESS EXCLUSIVE", tbl, col, why),
    "add the column without a default, then set the default (alter_column server_default) and backfill in batches")
end

local function index_blocking(run, e, tbl, name)
  add(run, e, "create-index-blocking", "warning", tbl, nil,
    format("creates index %s on %s without CONCURRENTLY: writes to %s stop while it builds (SHARE lock)",
      name or "(unnamed)", tbl, tbl),
    "op.autocommit_block(function() op.create_index(..., { concurrently = true }) end)")
end

local function drop_index_blocking(run, e, tbl, name)
  add(run, e, "drop-index-blocking", "warning", tbl, nil,
    format("drops index %s without CONCURRENTLY: ACCESS EXCLUSIVE on %s, reads and writes wait", name,
      tbl or "its table"),
    "op.autocommit_block(function() op.drop_index(..., { concurrently = true }) end)")
end

local function concurrently_in_tx(run, e, tbl, what)
  add(run, e, "concurrently-in-transaction", "error", tbl, nil,
    format("%s CONCURRENTLY inside the migration's transaction: PostgreSQL refuses it at run time", what),
    "put it in op.autocommit_block(function() ... end), or make the migration transactional = false")
end

local function fk_validating(run, e, tbl, name, reftable)
  add(run, e, "add-foreign-key-validating", "warning", tbl, nil,
    format("adds foreign key %s on %s: %s and %s stay locked (SHARE ROW EXCLUSIVE) while every row is checked",
      name or "(unnamed)", tbl, tbl, reftable or "the referred table"),
    format("create it with { not_valid = true }, then op.validate_constraint(\"%s\", \"%s\") in a later migration",
      name or "...", tbl))
end

local function check_validating(run, e, tbl, name)
  add(run, e, "add-check-validating", "warning", tbl, nil,
    format("adds check constraint %s on %s: ACCESS EXCLUSIVE while every row is checked", name or "(unnamed)", tbl),
    format("create it with { not_valid = true }, then op.validate_constraint(\"%s\", \"%s\") in a later migration",
      name or "...", tbl))
end

local function unique_blocking(run, e, rule, tbl, name, what)
  add(run, e, rule, "warning", tbl, nil,
    format("adds %s %s on %s: its index is built under ACCESS EXCLUSIVE, reads and writes wait", what,
      name or "(unnamed)", tbl),
    format("build a unique index first with op.autocommit_block(function() op.create_index(\"ix_...\", \"%s\", cols, "
      .. "{ unique = true, concurrently = true }) end), then add the constraint with { using_index = \"ix_...\" }", tbl))
end

local function maintenance(run, e, tbl, what)
  add(run, e, "blocking-maintenance", "warning", tbl, nil,
    format("%s holds ACCESS EXCLUSIVE on %s for the whole run", what, tbl or "its table"),
    run.version >= 12 and "REINDEX ... CONCURRENTLY; for bloat, pg_repack or pg_squeeze outside the migration"
      or "for bloat, pg_repack or pg_squeeze outside the migration (REINDEX CONCURRENTLY needs PostgreSQL 12)")
end

local function raw_sql(run, e, sql)
  add(run, e, "raw-sql", "info", nil, nil,
    format("a statement luamig cannot classify (%s): check its locks by hand", (sql:gsub("%s+", " ")):sub(1, 60)),
    "op functions where there is one; otherwise review it with `luamig lint --plan` in mind")
end

-- Per op kind (op values) ---------------------------------------------------------------------------------------

local OP = {}

function OP.drop_table(run, mig, e, o) if not mig.created[o.name] then drop_table(run, e, o.name) end end
function OP.rename_table(run, mig, e, o) if not mig.created[o.old] then rename_table(run, e, o.old, o.new) end end
function OP.drop_column(run, mig, e, o) if not mig.created[o.table] then drop_column(run, e, o.table, o.column) end end

function OP.add_column(run, mig, e, o)
  local col, tbl = o.column, o.table
  if mig.created[tbl] then return end
  if not col.nullable and col.server_default == nil then required_column(run, e, tbl, col.name) end
  if run.dialect ~= "postgresql" then return end
  if M.volatile(col.server_default, run.version) then
    volatile_default(run, e, tbl, col.name, tostring(col.server_default))
  end
  if col.ref_table then fk_validating(run, e, tbl, nil, col.ref_table) end
  if col.index or col.unique then index_blocking(run, e, tbl, nil) end
end

function OP.alter_column(run, mig, e, o)
  local ch, tbl = o.changes, o.table
  if mig.created[tbl] then return end
  if ch.new_column_name and ch.new_column_name ~= o.column then rename_column(run, e, tbl, o.column, ch.new_column_name) end
  if ch.type ~= nil then change_type(run, e, tbl, o.column, run.facts.rewrites(o)) end
  if ch.nullable == false and ch.existing_nullable ~= false then set_not_null(run, e, tbl, o.column) end
end

function OP.create_index(run, mig, e, o)
  if run.dialect ~= "postgresql" then return end
  if o.concurrently then
    if e.in_tx then concurrently_in_tx(run, e, o.table, "CREATE INDEX") end
  elseif not mig.created[o.table] then
    index_blocking(run, e, o.table, o.name)
  end
end

function OP.drop_index(run, mig, e, o)
  if run.dialect ~= "postgresql" then return end
  if o.concurrently then
    if e.in_tx then concurrently_in_tx(run, e, o.table, "DROP INDEX") end
  elseif not (o.table and (mig.created[o.table] or mig.dropped[o.table])) then
    -- (an index of a table the migration creates, or drops anyway, blocks nobody)
    drop_index_blocking(run, e, o.table, o.name)
  end
end

function OP.create_foreign_key(run, mig, e, o)
  if run.dialect ~= "postgresql" or mig.created[o.table] or o.not_valid then return end
  fk_validating(run, e, o.table, o.name, o.reftable)
end

function OP.create_check_constraint(run, mig, e, o)
  if run.dialect ~= "postgresql" then return end
  run.note_check(o.name, o.table, o.expr, not o.not_valid)
  if mig.created[o.table] or o.not_valid then return end
  check_validating(run, e, o.table, o.name)
end

function OP.validate_constraint(run, _, _, o)
  if run.dialect == "postgresql" then run.note_validated(o.name, o.table) end
end

function OP.create_unique_constraint(run, mig, e, o)
  if run.dialect ~= "postgresql" or mig.created[o.table] or o.using_index then return end
  unique_blocking(run, e, "add-unique-constraint", o.table, o.name, "unique constraint")
end

function OP.create_primary_key(run, mig, e, o)
  if run.dialect ~= "postgresql" or mig.created[o.table] or o.using_index then return end
  unique_blocking(run, e, "add-primary-key", o.table, o.name, "primary key")
end

-- Raw SQL actions ---------------------------------------------------------------------------------------------

local RAW = {}

function RAW.drop_table(run, mig, e, a) if not mig.created[a.table] then drop_table(run, e, a.table) end end
RAW.drop_column = OP.drop_column -- (the same fields: table, column)
function RAW.rename_table(run, mig, e, a) if not mig.created[a.table] then rename_table(run, e, a.table, a.to) end end
function RAW.rename_column(run, mig, e, a)
  if not mig.created[a.table] then rename_column(run, e, a.table, a.column, a.to) end
end

function RAW.add_column(run, mig, e, a)
  if mig.created[a.table] then return end
  if a.not_null and a.default == nil and not a.generated then required_column(run, e, a.table, a.column) end
  if run.dialect ~= "postgresql" then return end
  if a.default ~= nil and M.volatile(schema.text(a.default), run.version) then
    volatile_default(run, e, a.table, a.column, a.default)
  end
  if a.references then fk_validating(run, e, a.table, nil, a.references) end
end

function RAW.alter_type(run, mig, e, a)
  if not mig.created[a.table] then change_type(run, e, a.table, a.column, run.facts.raw_rewrites(a)) end
end

function RAW.set_not_null(run, mig, e, a)
  if not mig.created[a.table] then set_not_null(run, e, a.table, a.column) end
end

function RAW.add_constraint(run, mig, e, a)
  if run.dialect ~= "postgresql" then return end
  if a.ctype == "check" then
    run.note_check(a.name, a.table, a.expr, not a.not_valid)
  end
  if mig.created[a.table] then return end
  if a.ctype == "foreign_key" and not a.not_valid then
    fk_validating(run, e, a.table, a.name, a.reftable)
  elseif a.ctype == "check" and not a.not_valid then
    check_validating(run, e, a.table, a.name)
  elseif a.ctype == "unique" and not a.using_index then
    unique_blocking(run, e, "add-unique-constraint", a.table, a.name, "unique constraint")
  elseif a.ctype == "primary_key" and not a.using_index then
    unique_blocking(run, e, "add-primary-key", a.table, a.name, "primary key")
  end
end

function RAW.validate_constraint(run, _, _, a) if run.dialect == "postgresql" then run.note_validated(a.name, a.table) end end

-- (a raw CREATE / DROP INDEX has the fields of the op value: table, name, concurrently)
RAW.create_index = OP.create_index
RAW.drop_index = OP.drop_index

function RAW.vacuum_full(run, _, e, a) if run.dialect == "postgresql" then maintenance(run, e, a.table, "VACUUM FULL") end end
function RAW.cluster(run, _, e, a) if run.dialect == "postgresql" then maintenance(run, e, a.table, "CLUSTER") end end
function RAW.reindex(run, _, e, a)
  if run.dialect ~= "postgresql" then return end
  if a.concurrently then
    if e.in_tx then concurrently_in_tx(run, e, a.table, "REINDEX") end
  else
    maintenance(run, e, a.table or a.name, "REINDEX " .. a.target:upper())
  end
end

-- The lock convoy: in one transaction, a strong lock on an existing table held while a later statement locks
-- another existing table the transaction had not locked yet (one statement locking two tables is not a convoy,
-- nor is a later statement on tables already locked). locks: the statement's locks.
local function convoy(run, mig, e, locks)
  if not e.in_tx then
    mig.strong, mig.held = nil, nil
    return
  end
  local held = mig.held or {}
  mig.held = held
  local strong = mig.strong
  if strong and not mig.convoy_reported then
    for _, l in ipairs(locks) do
      if not held[l.table] and not mig.created[l.table] and not mig.dropped[l.table] then
        mig.convoy_reported = true
        add(run, e, "lock-convoy", "error", l.table, nil,
          format("locks %s (%s) while this transaction holds %s on %s since line %s: everything that touches %s "
            .. "waits behind both", l.table, l.mode, strong.mode, strong.table, tostring(strong.line), strong.table),
          format("split it: the change to %s in one migration, the change to %s in the next", strong.table, l.table))
        break
      end
    end
  end
  for _, l in ipairs(locks) do
    held[l.table] = true
    -- (a table the migration drops is one nobody may use any more: holding it blocks nobody who should wait)
    if not mig.strong and lock_plan.strong(l.mode) and not mig.created[l.table] and not mig.dropped[l.table] then
      mig.strong = { table = l.table, mode = l.mode, line = e.line }
    end
  end
end

-- dropped(entries) -> the set of tables a migration drops (its op values and its raw SQL)
function M.dropped(entries)
  local out = {}
  for _, e in ipairs(entries) do
    local o = e.o
    if o.op == "drop_table" then
      out[o.name] = true
    elseif o.op == "execute" then
      for _, st in ipairs(lock_plan.raw(o)) do
        for _, a in ipairs(st.actions or {}) do if a.kind == "drop_table" then out[a.table] = true end end
      end
    end
  end
  return out
end

local function rebuild_info(run, e, tbl)
  add(run, e, "sqlite-rebuild", "info", tbl, nil, run.facts.rebuild_text(tbl),
    "nothing to change where the table is small; a big table is copied while the database is locked")
end

-- check(entry, mig, run): the findings of one recorded op. (The locks, which only the convoy rule of PostgreSQL
-- needs, are worked out only there: on SQLite they would compile each op a second time.)
function M.check(e, mig, run)
  local o, pg = e.o, run.dialect == "postgresql"
  if o.op == "execute" then
    for _, st in ipairs(lock_plan.raw(o)) do
      if not st.actions then
        raw_sql(run, e, st.sql)
      else
        local locks = {}
        for _, a in ipairs(st.actions) do
          local f = RAW[a.kind]
          if f then f(run, mig, e, a) end
          if pg then
            for _, l in ipairs(lock_plan.action_locks(a, run.facts)) do locks[#locks + 1] = l end
          end
        end
        for _, a in ipairs(st.actions) do if a.kind == "create_table" then mig.created[a.table] = true end end
        if pg then convoy(run, mig, e, locks) end
      end
    end
    return
  end
  if o.op == "batch_alter_table" then
    if not pg and run.facts.rebuilds(o) then rebuild_info(run, e, o.table) end
    local locks = {}
    for _, sub in ipairs(o.ops) do
      local f = OP[sub.op]
      if f then f(run, mig, { o = sub, line = e.line, in_tx = e.in_tx }, sub) end
      if pg then
        for _, l in ipairs(lock_plan.locks(sub, run.dialect, run.facts)) do locks[#locks + 1] = l end
      end
    end
    if pg then convoy(run, mig, e, locks) end
    return
  end
  local f = OP[o.op]
  if f then f(run, mig, e, o) end
  if not pg and o.op ~= "create_table" and run.facts.rebuilds(o) then rebuild_info(run, e, o.table) end
  if o.op == "create_table" then mig.created[o.table.name] = true end
  if pg then convoy(run, mig, e, lock_plan.locks(o, run.dialect, run.facts)) end
end

return M
