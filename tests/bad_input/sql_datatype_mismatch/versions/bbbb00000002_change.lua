--- change
local t = require("luamig.types")
return {
  revision = "bbbb00000002",
  down_revision = "aaaa00000001",
  upgrade = function(op)
    op.execute("CREATE TABLE strict_t (n INTEGER) STRICT")
    op.execute("INSERT INTO strict_t VALUES ('abc')")
  end,
  downgrade = function(op)

  end,
}
