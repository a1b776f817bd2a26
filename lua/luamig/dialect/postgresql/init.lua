-- The PostgreSQL dialect: types per SPEC 4.1, transactional DDL with every ALTER TABLE form, named enum types,
-- comments, and CREATE INDEX CONCURRENTLY.
local Base = require("luamig.dialect.base")
local schema = require("luamig.schema")

local format, concat, ipairs, error, tostring, setmetatable = string.format, table.concat, ipairs, error, tostring, setmetatable

local PG = Base:extend({ name = "postgresql", TRUE = "true", FALSE = "false" })

-- integer keys the database numbers itself (SQLAlchemy's SERIAL rendering)
PG.SERIAL = { integer = "SERIAL", biginteger = "BIGSERIAL", smallinteger = "SMALLSERIAL" }
PG.SIMPLE = { integer = "INTEGER", biginteger = "BIGINT", smallinteger = "SMALLINT", float = "DOUBLE PRECISION",
  text = "TEXT", boolean = "BOOLEAN", date = "DATE", json = "JSONB", blob = "BYTEA", uuid = "UUID",
  ulid = "VARCHAR(26)" }

function PG:special_type_sql(ty)
  local k = ty.kind
  if k == "datetime" then return ty.timezone and "TIMESTAMP WITH TIME ZONE" or "TIMESTAMP WITHOUT TIME ZONE" end
  if k == "time" then return ty.timezone and "TIME WITH TIME ZONE" or "TIME WITHOUT TIME ZONE" end
  if k == "enum" then
    if ty.native_enum == false then
      local n = 1
      for _, v in ipairs(ty.values) do if #v > n then n = #v end end
      return format("VARCHAR(%d)", n)
    end
    if not ty.name then error("postgresql: an enum type needs a name: t.enum{ \"a\", \"b\", name = \"e\" }", 0) end
    return self:quote(ty.name)
  end
  return nil
end

-- native_enum = false: a VARCHAR with a CHECK listing the values (unless create_constraint = false)
function PG:column_type_constraint(col)
  local ty = col.type
  if ty.kind ~= "enum" or ty.native_enum ~= false or ty.create_constraint == false then return nil end
  local vals = {}
  for i, v in ipairs(ty.values) do vals[i] = self:string_literal(v) end
  return format("CHECK (%s IN (%s))", self:quote(col.name), concat(vals, ", "))
end

-- type_check_name(table, column) -> the name PostgreSQL gives the unnamed CHECK a column's type writes
function PG:type_check_name(tbl, col)
  return tbl .. "_" .. col .. "_check"
end

-- needs_type(ty) -> whether a column of this type needs its CREATE TYPE first (a native enum)
function PG:needs_type(ty)
  return ty.kind == "enum" and ty.native_enum ~= false
end

-- CREATE TYPE for an enum, reused when the type exists with the same labels (a downgrade drops the table, not the
-- type); one that exists with other labels is an error naming both lists.
function PG:enum_sql(ty)
  local vals = {}
  for i, v in ipairs(ty.values) do vals[i] = self:string_literal(v) end
  local list = concat(vals, ", ")
  local where = format("t.typname = %s AND t.typnamespace = current_schema()::regnamespace", self:string_literal(ty.name))
  local message = format("enum type %s exists with the labels (%%), not (%s)", ty.name, list):gsub("'", "''")
  return format("DO $$ DECLARE have text; BEGIN "
    .. "IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type t WHERE %s) THEN CREATE TYPE %s AS ENUM (%s); "
    .. "ELSE SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder) INTO have "
    .. "FROM pg_catalog.pg_enum e JOIN pg_catalog.pg_type t ON t.oid = e.enumtypid WHERE %s; "
    .. "IF have IS DISTINCT FROM %s THEN RAISE EXCEPTION '%s', have; END IF; "
    .. "END IF; END $$", where, self:quote(ty.name), list, where, self:string_literal(list), message)
end

-- default_prober(conn) -> probe(sql, type_sql), finish(): probe gives the text PostgreSQL stores for a column of that
-- type with DEFAULT sql (what reflection reads back: 1 for '1' on an integer, '-5'::integer for -5), or nil when it
-- cannot say; each asked once. The probes are temporary tables inside one transaction that finish() rolls back:
-- nothing stays. finish() -> true, or nil, message when that ROLLBACK fails. A savepoint that cannot be rolled back
-- to ends the probing (the answers are then nil: the defaults are compared as written).
function PG:default_prober(conn)
  local cache, open, broken = {}, false, false
  local function probe(sql, ty)
    local key = ty .. "\0" .. sql
    if cache[key] ~= nil then return cache[key] or nil end
    local got = false
    if not open and not broken and not conn:in_transaction() and conn:exec("BEGIN") then open = true end
    if open and not broken and conn:exec("SAVEPOINT luamig_default_probe") then
      if conn:exec(format("CREATE TEMPORARY TABLE luamig_default_probe (c %s DEFAULT %s)", ty, sql)) then
        local rows = conn:query("SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid) AS expr FROM pg_catalog.pg_attrdef d "
          .. "WHERE d.adrelid = 'luamig_default_probe'::regclass")
        got = rows and rows[1] and rows[1].expr or false
      end
      if not conn:exec("ROLLBACK TO SAVEPOINT luamig_default_probe") then broken, got = true, false end
    end
    cache[key] = got
    return got or nil
  end
  local function finish()
    if not open then return true end
    open = false
    local ok, err = conn:exec("ROLLBACK")
    if not ok then return nil, "cannot roll back the transaction of the default probes: " .. tostring(err) end
    return true
  end
  return probe, finish
end

function PG:table_comment_sql(t, out)
  if t.comment then
    out[#out + 1] = format("COMMENT ON TABLE %s IS %s", self:quote(t.name), self:string_literal(t.comment))
  end
  for _, c in ipairs(t.columns) do
    if c.comment then
      out[#out + 1] = format("COMMENT ON COLUMN %s.%s IS %s", self:quote(t.name), self:quote(c.name),
        self:string_literal(c.comment))
    end
  end
end

function PG:index_sql(ix, tablename, if_not_exists)
  local s = format("CREATE %sINDEX %s%s%s ON %s (%s)", ix.unique and "UNIQUE " or "", ix.concurrently and "CONCURRENTLY " or "",
    if_not_exists and "IF NOT EXISTS " or "", self:quote(ix.name), self:quote(tablename), self:quote_list(ix.columns))
  if ix.where then s = s .. " WHERE " .. tostring(ix.where) end
  return s
end

local C = setmetatable({}, { __index = Base.compilers })

function C.create_table(d, o)
  local out = {}
  for _, col in ipairs(o.table.columns) do
    if d:needs_type(col.type) then out[#out + 1] = d:enum_sql(col.type) end
  end
  for _, st in ipairs(Base.compilers.create_table(d, o)) do out[#out + 1] = st end
  return out
end

function C.add_column(d, o)
  local col = o.column
  local out = {}
  if d:needs_type(col.type) then out[1] = d:enum_sql(col.type) end
  local s = format("ALTER TABLE %s ADD COLUMN %s", d:quote(o.table), d:column_sql(col))
  if col.primary_key then s = s .. " PRIMARY KEY" end
  if col.unique and not col.index then
    s = s .. " " .. d:named(schema.conv_name(o.naming_convention, "uq", { table = o.table, columns = { col.name } }),
      "UNIQUE")
  end
  if col.ref_table then
    s = s .. " " .. d:named(schema.conv_name(o.naming_convention, "fk", { table = o.table, columns = { col.name },
      reftable = col.ref_table }), format("REFERENCES %s (%s)", d:quote(col.ref_table), d:quote(col.ref_column)))
    if col.ondelete then s = s .. " ON DELETE " .. d:action("ondelete", col.ondelete) end
    if col.onupdate then s = s .. " ON UPDATE " .. d:action("onupdate", col.onupdate) end
  end
  out[#out + 1] = s
  if col.index then
    out[#out + 1] = d:index_sql({ name = schema.conv_name(o.naming_convention, "ix", { table = o.table, columns = { col.name } }),
      columns = { col.name }, unique = col.unique }, o.table)
  end
  if col.comment then
    out[#out + 1] = format("COMMENT ON COLUMN %s.%s IS %s", d:quote(o.table), d:quote(col.name), d:string_literal(col.comment))
  end
  return out
end

function C.alter_column(d, o)
  local ch, t, c = o.changes, d:quote(o.table), d:quote(o.column)
  local out = {}
  if ch.type ~= nil then
    local s = format("ALTER TABLE %s ALTER COLUMN %s TYPE %s", t, c, d:type_sql(ch.type))
    -- without USING, PostgreSQL refuses types with no assignment cast (varchar to integer): cast explicitly
    s = s .. " USING " .. (ch.using and tostring(ch.using) or (c .. "::" .. d:type_sql(ch.type)))
    if d:needs_type(ch.type) then out[#out + 1] = d:enum_sql(ch.type) end
    out[#out + 1] = s
  end
  if ch.nullable ~= nil then
    out[#out + 1] = format("ALTER TABLE %s ALTER COLUMN %s %s NOT NULL", t, c, ch.nullable and "DROP" or "SET")
  end
  if ch.server_default ~= nil then
    if ch.server_default == schema.NULL then
      out[#out + 1] = format("ALTER TABLE %s ALTER COLUMN %s DROP DEFAULT", t, c)
    else
      out[#out + 1] = format("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s", t, c, d:default_sql(ch.server_default))
    end
  end
  if ch.comment ~= nil then
    out[#out + 1] = format("COMMENT ON COLUMN %s.%s IS %s", t, c, ch.comment == schema.NULL and "NULL" or d:string_literal(ch.comment))
  end
  if ch.new_column_name then
    out[#out + 1] = format("ALTER TABLE %s RENAME COLUMN %s TO %s", t, c, d:quote(ch.new_column_name))
  end
  return out
end

-- using_index: the constraint takes over an existing unique index (PostgreSQL renames it to the constraint's name)
local function key_constraint(d, o, kind)
  if o.using_index then
    return { format("ALTER TABLE %s ADD CONSTRAINT %s %s USING INDEX %s", d:quote(o.table), d:quote(o.name), kind,
      d:quote(o.using_index)) }
  end
  return { format("ALTER TABLE %s ADD CONSTRAINT %s %s (%s)", d:quote(o.table), d:quote(o.name), kind,
    d:quote_list(o.columns)) }
end

function C.create_unique_constraint(d, o) return key_constraint(d, o, "UNIQUE") end
function C.create_primary_key(d, o) return key_constraint(d, o, "PRIMARY KEY") end

-- not_valid: added without checking the rows already there (validate_constraint checks them later)
function C.create_foreign_key(d, o)
  return { format("ALTER TABLE %s ADD CONSTRAINT %s %s%s", d:quote(o.table), d:quote(o.name), d:fk_clause(o),
    o.not_valid and " NOT VALID" or "") }
end

function C.create_check_constraint(d, o)
  return { format("ALTER TABLE %s ADD CONSTRAINT %s CHECK (%s)%s", d:quote(o.table), d:quote(o.name), o.expr,
    o.not_valid and " NOT VALID" or "") }
end

function C.validate_constraint(d, o)
  return { format("ALTER TABLE %s VALIDATE CONSTRAINT %s", d:quote(o.table), d:quote(o.name)) }
end

function C.drop_constraint(d, o)
  return { format("ALTER TABLE %s DROP CONSTRAINT %s", d:quote(o.table), d:quote(o.name)) }
end

function C.drop_index(d, o)
  return { format("DROP INDEX %s%s%s", o.concurrently and "CONCURRENTLY " or "", o.if_exists and "IF EXISTS " or "",
    d:quote(o.name)) }
end

function C.create_enum(d, o)
  local ty = { kind = "enum", name = o.name, values = o.values }
  if o.if_not_exists then
    -- an existing type of that name is fine, whatever its labels (checkfirst)
    local vals = {}
    for i, v in ipairs(o.values) do vals[i] = d:string_literal(v) end
    return { format("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type t WHERE t.typname = %s AND "
      .. "t.typnamespace = current_schema()::regnamespace) THEN CREATE TYPE %s AS ENUM (%s); END IF; END $$",
      d:string_literal(ty.name), d:quote(ty.name), concat(vals, ", ")) }
  end
  local vals = {}
  for i, v in ipairs(o.values) do vals[i] = d:string_literal(v) end
  return { format("CREATE TYPE %s AS ENUM (%s)", d:quote(o.name), concat(vals, ", ")) }
end

function C.drop_enum(d, o)
  return { format("DROP TYPE %s%s", o.if_exists and "IF EXISTS " or "", d:quote(o.name)) }
end

PG.compilers = C

-- Bookkeeping SQL
PG.table_exists_sql = "SELECT 1 AS present FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename = ?"
PG.serial_pk = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
PG.begin_sql = "BEGIN"

-- updated_at_trigger_sql(tbl, name) -> the statements that make the trigger keeping updated_at current (each
-- table has its own trigger function, dropped with it), and those that drop it
function PG:updated_at_trigger_sql(tbl, name)
  local qt, trg, fn = self:quote(tbl), self:quote(name), self:quote("set_updated_at_" .. tbl)
  return { format("CREATE OR REPLACE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
      .. "NEW.updated_at = CURRENT_TIMESTAMP; RETURN NEW; END $$", fn),
      format("CREATE TRIGGER %s BEFORE UPDATE ON %s FOR EACH ROW EXECUTE FUNCTION %s()", trg, qt, fn) },
    { format("DROP TRIGGER IF EXISTS %s ON %s", trg, qt), format("DROP FUNCTION IF EXISTS %s()", fn) }
end

-- reflect_tables(conn, vt, include, only) -> the tables as definitions (luamig.dialect.postgresql.reflect)
function PG.reflect_tables(_, conn, vt, include, only)
  return require("luamig.dialect.postgresql.reflect").tables(conn, vt, include, only)
end

-- the schema outside luamig's own tables (? = the version table, three times), one line per object: what
-- `luamig test` compares
PG.snapshot_sql = "SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' "
  .. "|| coalesce(column_default, '-') AS line FROM information_schema.columns WHERE table_schema = current_schema() "
  .. "AND table_name NOT IN (?, 'luamig_history') UNION ALL "
  .. "SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename NOT IN (?, 'luamig_history') "
  .. "UNION ALL SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) "
  .. "FROM pg_constraint WHERE connamespace = current_schema()::regnamespace "
  .. "AND conrelid::regclass::text NOT IN (?, 'luamig_history') UNION ALL "
  .. "SELECT 'type ' || typname FROM pg_type WHERE typnamespace = current_schema()::regnamespace AND typtype = 'e'"

-- --backup is SQLite's: what to use instead
PG.backup_hint = "back PostgreSQL up with pg_dump"

-- connect(u, cfg, shown) -> { conn, url }, or nil, message (luamig.dialect.postgresql.conn)
function PG.connect(_, u, cfg, shown) return require("luamig.dialect.postgresql.conn").connect(u, cfg, shown) end

-- acquire_lock(db, cfg, say) -> the lock of the mode lock_mode chose (luamig.dialect.postgresql.lock);
-- lock_holder(db, cfg) -> the server pid of another session holding the session lock, or nil
function PG.acquire_lock(_, db, cfg, say)
  return require("luamig.dialect.postgresql.lock").acquire(db, cfg, say, db.lock_mode or "session")
end
function PG.lock_holder(_, db, cfg) return require("luamig.dialect.postgresql.lock").held_by(db, cfg) end
function PG.lock_mode(_, db, cfg) return require("luamig.dialect.postgresql.server").lock_mode(cfg, db.server) end
function PG.writable(_, db)
  local msg = require("luamig.dialect.postgresql.server").read_only_message(db.url, db.server)
  if msg then return nil, msg end
  return true
end

-- ddl_lock_timeout: SET LOCAL inside a migration's transaction; a session SET around statements that run outside
-- one (lifted with SET lock_timeout = DEFAULT when the migration ends)
function PG.lock_guard_sql(_, seconds, in_transaction)
  return format("SET %slock_timeout = %d", in_transaction and "LOCAL " or "", math.max(1, math.floor(seconds * 1000 + 0.5)))
end
PG.lock_unguard_sql = "SET lock_timeout = DEFAULT"
-- SQLSTATE 55P03: lock_not_available, what lock_timeout raises
function PG.lock_timed_out(_, err) return type(err) == "table" and err.code == "55P03" end

local BLOCKERS = "SELECT DISTINCT a.pid, a.state, a.application_name, c.relname, "
  .. "floor(extract(epoch FROM now() - a.xact_start))::int AS secs, "
  .. "left(regexp_replace(coalesce(a.query, ''), '\\s+', ' ', 'g'), 80) AS query "
  .. "FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_class c ON c.oid = l.relation "
  .. "JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid "
  .. "WHERE l.granted AND l.pid <> pg_backend_pid() AND a.xact_start IS NOT NULL "
  .. "AND a.xact_start <= now() - make_interval(secs => ?::float8) AND pg_catalog.pg_table_is_visible(c.oid) "
local ORDER = " ORDER BY secs DESC, a.pid"

-- A CREATE INDEX CONCURRENTLY that timed out leaves an INVALID index of its name behind, on which the retry would
-- fail ("already exists"): it is dropped first. Only an invalid one: an index that was already there stays.
function PG.clean_after_lock_timeout(d, conn, o)
  if not (o and o.op == "create_index" and o.concurrently) then return end
  local rows = conn:query("SELECT 1 AS invalid FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = "
    .. "i.indexrelid WHERE c.relname = ? AND NOT i.indisvalid AND pg_catalog.pg_table_is_visible(c.oid)", { o.name })
  if rows and rows[1] then conn:exec("DROP INDEX CONCURRENTLY IF EXISTS " .. d:quote(o.name)) end
end

function PG.blockers(_, conn, tables, older_than)
  if #tables == 0 then return {} end
  return conn:query(BLOCKERS .. "AND c.relname = ANY (string_to_array(?, ','))" .. ORDER,
    { older_than or 0, table.concat(tables, ",") }) or {}
end

-- oldest_transaction(conn) -> how long (seconds) the oldest transaction of another client session has been open,
-- or nil when there is none: pg_stat_activity alone, the cheap look a run takes before its migrations (pg_locks,
-- in blockers, only when a transaction is old enough to matter)
function PG.oldest_transaction(_, conn)
  local rows = conn:query("SELECT extract(epoch FROM now() - min(xact_start))::float8 AS age FROM "
    .. "pg_catalog.pg_stat_activity WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'")
  return rows and rows[1] and tonumber(rows[1].age)
end

return PG
