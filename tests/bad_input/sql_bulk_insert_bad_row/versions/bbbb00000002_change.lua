--- change
local t = require("luamig.types")
return {
  revision = "bbbb00000002",
  down_revision = "aaaa00000001",
  upgrade = function(op)
    op.bulk_insert("things", { { id = 3, name = "three" }, { id = 4 } })
  end,
  downgrade = function(op)

  end,
}
