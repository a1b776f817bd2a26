-- luamig upgrade [TARGET=head]: apply migrations.
local migrate = require("luamig.cmd.migrate")
local fleet = require("luamig.fleet")

return {
  summary = "apply migrations up to a target (default head)",
  usage = "luamig upgrade [TARGET=head] [--sql] [--tag TAG] [--single-transaction]\n  [--backup] [--resume] [--timeout SECONDS] [--reconnect N]\n  [--targets FILE | --targets-sql SQL] [--parallel N] [--on-error continue|stop] [--canary K]",
  description = "TARGET: head, heads, a revision id or unique prefix, +N, rev+N, base+N, label@head, label@+1;\n"
    .. "with --sql also FROM:TO (without FROM the SQL starts from an empty database).",
  args_help = "at most one TARGET",
  max_args = 1,
  options = { migrate.SQL_OPTION, migrate.TAG_OPTION, migrate.SINGLE_OPTION, migrate.BACKUP_OPTION,
    migrate.RESUME_OPTION, migrate.TIMEOUT_OPTION, migrate.RECONNECT_OPTION, table.unpack(fleet.OPTIONS) },
  run = function(ctx, args)
    return migrate.run(ctx, "upgrade", args[1] or "head", { single_transaction = ctx.options.single_transaction,
      backup = ctx.options.backup, resume = ctx.options.resume })
  end,
}
