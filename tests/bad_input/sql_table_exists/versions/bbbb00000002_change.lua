--- change
local t = require("luamig.types")
return {
  revision = "bbbb00000002",
  down_revision = "aaaa00000001",
  upgrade = function(op)
    op.create_table("things", { { "id", t.integer } })
  end,
  downgrade = function(op)

  end,
}
