--- change
local t = require("luamig.types")
return {
  revision = "bbbb00000002",
  down_revision = "aaaa00000001",
  upgrade = function(op)
    op.execute("CREATE TABLE made (id INTEGER)")
    local rows = nil
    return rows[1]
  end,
  downgrade = function(op)

  end,
}
