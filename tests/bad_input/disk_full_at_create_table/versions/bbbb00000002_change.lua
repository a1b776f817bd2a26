--- change
local t = require("luamig.types")
return {
  revision = "bbbb00000002",
  down_revision = "aaaa00000001",
  upgrade = function(op)
    op.execute("PRAGMA max_page_count = 1")
    op.execute("CREATE TABLE made (id INTEGER)")
    op.execute("INSERT INTO made SELECT value FROM generate_series(1, 1000)")
  end,
  downgrade = function(op)

  end,
}
