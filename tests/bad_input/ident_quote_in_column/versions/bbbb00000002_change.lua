--- change
local t = require("luamig.types")
return {
  revision = "bbbb00000002",
  down_revision = "aaaa00000001",
  upgrade = function(op)
    op.add_column("things", { [[it's "quoted"]], t.text })
    op.execute("SELECT nope FROM things")
  end,
  downgrade = function(op)

  end,
}
