--- change
local t = require("luamig.types")
return {
  revision = "bbbb00000002",
  down_revision = "aaaa00000001",
  upgrade = function(op)
    op.create_index("ix_things_name", "things", { "name" })
    op.create_index("ix_things_name", "things", { "qty" })
  end,
  downgrade = function(op)

  end,
}
