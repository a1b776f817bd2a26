--- change
local t = require("luamig.types")
return {
  revision = "bbbb00000002",
  down_revision = "aaaa00000001",
  upgrade = function(op)
    op.execute("CREATE TABLE made (id INTEGER)")
  end,
  downgrade = function(op)
    op.execute("DROP TABLE made")
    error("cannot go back")
  end,
}
