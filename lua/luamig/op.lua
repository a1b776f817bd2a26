-- The `op` object a migration's upgrade(op) / downgrade(op) receives. Every call builds an op value (luamig.ops)
-- and hands it to the runner's `run` function, which executes it online or prints its SQL offline.
local ops = require("luamig.ops")
local schema = require("luamig.schema")

local pairs, ipairs, type, error = pairs, ipairs, type, error
local pack, unpack = table.pack, table.unpack

local BUILDERS = { "create_table", "drop_table", "rename_table", "add_column", "drop_column", "alter_column",
  "create_index", "drop_index", "create_unique_constraint", "create_foreign_key", "create_check_constraint",
  "create_primary_key", "drop_constraint", "execute", "bulk_insert" }

-- Where each builder takes its options table, for builders that name constraints.
local OPTS_ARG = { create_table = 3, add_column = 3 }

-- batch_alter_table's methods: the same ops with the table name bound.
local function batch_for(op, tbl)
  return {
    add_column = function(colspec, opts) return op.add_column(tbl, colspec, opts) end,
    drop_column = function(col, opts) return op.drop_column(tbl, col, opts) end,
    alter_column = function(col, changes) return op.alter_column(tbl, col, changes) end,
    create_index = function(name, cols, opts) return op.create_index(name, tbl, cols, opts) end,
    drop_index = function(name, opts) return op.drop_index(name, tbl, opts) end,
    create_unique_constraint = function(name, cols) return op.create_unique_constraint(name, tbl, cols) end,
    create_foreign_key = function(name, dst, lc, rc, opts) return op.create_foreign_key(name, tbl, dst, lc, rc, opts) end,
    create_check_constraint = function(name, expr) return op.create_check_constraint(name, tbl, expr) end,
    create_primary_key = function(name, cols) return op.create_primary_key(name, tbl, cols) end,
    drop_constraint = function(name, opts) return op.drop_constraint(name, tbl, opts) end,
  }
end

-- new(ctx) -> op
-- ctx.run(opvalue) executes an op value; ctx.dialect is the SQL compiler; ctx.bind the live connection (nil
-- offline); ctx.naming_convention applies to names the migration does not give.
local function new(ctx)
  local op = {}
  for _, name in ipairs(BUILDERS) do
    local ctor = ops[name]
    local opts_at = OPTS_ARG[name]
    op[name] = function(...)
      if opts_at and ctx.naming_convention then
        -- the project's naming convention applies unless the call names its own
        local args = pack(...)
        local opts = {}
        for k, v in pairs(args[opts_at] or {}) do opts[k] = v end
        if opts.naming_convention == nil then opts.naming_convention = ctx.naming_convention end
        args[opts_at] = opts
        return ctx.run(ctor(unpack(args, 1, opts_at > args.n and opts_at or args.n)))
      end
      return ctx.run(ctor(...))
    end
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
  op.inline_literal = function(v) return schema.text(ctx.dialect:literal(v)) end
  op.get_bind = function()
    if not ctx.bind then error("op.get_bind(): there is no connection in offline (--sql) mode", 0) end
    return ctx.bind
  end
  op.batch_alter_table = function(tbl, fn, opts)
    if type(fn) ~= "function" then error("batch_alter_table(table, function(batch) ... end)", 0) end
    local _ = opts
    return fn(batch_for(op, tbl))
  end
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
