-- The `op` object a migration's upgrade(op) / downgrade(op) receives. Every call builds an op value (luamig.ops)
-- and hands it to the runner's `run` function, which executes it online or prints its SQL offline.
local ops = require("luamig.ops")
local schema = require("luamig.schema")

local pairs, ipairs, type, error = pairs, ipairs, type, error
local pack, unpack = table.pack, table.unpack

-- Every constructor of luamig.ops is an op function of the same name (batch_alter_table has its own, below; label
-- and reverse make no op), so that a new op kind needs no line here.
local NOT_BUILDERS = { label = true, reverse = true, batch_alter_table = true }
local BUILDERS = {}
for name, f in pairs(ops) do
  if type(f) == "function" and not NOT_BUILDERS[name] then BUILDERS[#BUILDERS + 1] = name end
end
table.sort(BUILDERS)

-- Where each builder takes its options table, for builders that name constraints.
local OPTS_ARG = { create_table = 3, add_column = 3 }

-- batch_alter_table's methods: the same ops with the table name bound, each handing its op value to add.
local function batch_for(build, tbl, add, naming_convention)
  local function nc(opts)
    if not naming_convention then return opts end
    local o = {}
    for k, v in pairs(opts or {}) do o[k] = v end
    if o.naming_convention == nil then o.naming_convention = naming_convention end
    return o
  end
  return {
    add_column = function(colspec, opts) add(build("add_column", tbl, colspec, nc(opts))) end,
    drop_column = function(col, opts) add(build("drop_column", tbl, col, opts)) end,
    alter_column = function(col, changes) add(build("alter_column", tbl, col, changes)) end,
    create_index = function(name, cols, opts) add(build("create_index", name, tbl, cols, opts)) end,
    drop_index = function(name, opts) add(build("drop_index", name, tbl, opts)) end,
    create_unique_constraint = function(name, cols) add(build("create_unique_constraint", name, tbl, cols)) end,
    create_foreign_key = function(name, dst, lc, rc, opts) add(build("create_foreign_key", name, tbl, dst, lc, rc, opts)) end,
    create_check_constraint = function(name, expr) add(build("create_check_constraint", name, tbl, expr)) end,
    create_primary_key = function(name, cols) add(build("create_primary_key", name, tbl, cols)) end,
    drop_constraint = function(name, opts) add(build("drop_constraint", name, tbl, opts)) end,
  }
end

---The `op` a migration's upgrade(op) and downgrade(op) receive: each function of luamig.ops (create_table,
---add_column, ...) with the same parameters, run as it is called; and the helpers below.
---@class luamig.Op : luamig.ops
---@field dialect "sqlite"|"postgresql" the database's dialect
---@field NULL table the SQL NULL in bulk_insert rows and execute params

-- new(ctx) -> op
-- ctx.run(opvalue) executes an op value; ctx.dialect is the SQL compiler; ctx.bind the live connection (nil
-- offline); ctx.naming_convention applies to names the migration does not give.
local function new(ctx)
  local op = {}
  -- build(name, ...) -> the op value of a builder's call, the project's naming convention applied unless the call
  -- names its own
  local function build(name, ...)
    local ctor = ops[name]
    local opts_at = OPTS_ARG[name]
    if opts_at and ctx.naming_convention ~= nil then
      local args = pack(...)
      local opts = {}
      for k, v in pairs(args[opts_at] or {}) do opts[k] = v end
      if opts.naming_convention == nil then opts.naming_convention = ctx.naming_convention end
      args[opts_at] = opts
      return ctor(unpack(args, 1, opts_at > args.n and opts_at or args.n))
    end
    return ctor(...)
  end
  for _, name in ipairs(BUILDERS) do
    op[name] = function(...) return ctx.run(build(name, ...)) end
  end
  op.f = schema.f
  op.text = schema.text
  op.NULL = schema.NULL
  op.primary_key = schema.primary_key
  op.unique = schema.unique
  op.foreign_key = schema.foreign_key
  op.check = schema.check
  op.index = schema.index
  op.dialect = ctx.dialect.name
  ---A value as a SQL literal of this dialect, to put into SQL text (an --sql run has no bind parameters).
  ---@param v string|number|boolean
  ---@return luamig.Text
  op.inline_literal = function(v) return schema.text(ctx.dialect:literal(v)) end
  ---The live connection: bind:query(sql, params) -> rows, bind:exec(sql, params); none in an --sql run.
  ---@return { query: fun(self, sql: string, params?: table): table[], exec: fun(self, sql: string, params?: table): integer }
  op.get_bind = function()
    if not ctx.bind then error("op.get_bind(): there is no connection in offline (--sql) mode", 0) end
    return ctx.bind
  end
  -- The batch's ops are collected and run together when fn returns (on SQLite one rebuild for all of them);
  -- batch.execute runs its statement at once.
  ---Alters one table with a batch of ops (on SQLite one table rebuild for all of them when any needs one).
  ---@param tbl string the table
  ---@param fn fun(batch: table) adds the ops: batch.add_column(...), batch.drop_column(...), ...
  ---@param opts? { recreate?: "auto"|"always"|"never", sqlite_autoincrement?: boolean, naming_convention?: table<string, string> }
  op.batch_alter_table = function(tbl, fn, opts)
    if type(fn) ~= "function" then error("batch_alter_table(table, function(batch) ... end)", 0) end
    if opts ~= nil and type(opts) ~= "table" then error("batch_alter_table: the options must be a table", 0) end
    opts = opts or {}
    local list = {}
    local batch = batch_for(build, tbl, function(o) list[#list + 1] = o end, opts.naming_convention)
    batch.execute = function(sql, params) return op.execute(sql, params) end
    fn(batch)
    return ctx.run(ops.batch_alter_table(tbl, list, opts))
  end
  ---Runs an op value: what luamig.ops builds, luamig.model.create_ops gives and autogenerate compares. Constraints
  ---of a create_table that have no name get one from the project's naming convention, as op.create_table gives.
  ---@param o luamig.OpValue
  op.apply = function(o)
    if type(o) ~= "table" or type(o.op) ~= "string" or not ops[o.op] then
      error("op.apply takes an op value ({ op = \"create_table\", ... })", 0)
    end
    local v = {}
    for k, x in pairs(o) do if k ~= "reverse" then v[k] = x end end
    if v.op == "create_table" then v.table = schema.name_unnamed(v.table, ctx.naming_convention) end
    return ctx.run(v)
  end
  ---Runs fn's statements outside a transaction (CREATE INDEX CONCURRENTLY, VACUUM).
  ---@param fn fun()
  op.autocommit_block = function(fn)
    if type(fn) ~= "function" then error("autocommit_block(function() ... end)", 0) end
    if not ctx.autocommit_block then
      error("autocommit_block: this run cannot leave its transaction", 0)
    end
    return ctx.autocommit_block(fn)
  end
  return op
end

return { new = new }
