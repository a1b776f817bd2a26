--- change
local t = require("luamig.types")
return {
  revision = "bbbb00000002",
  down_revision = "aaaa00000001",
  upgrade = function(op)
    op.execute("CREATE TRIGGER no_deletes BEFORE DELETE ON things BEGIN SELECT RAISE(ABORT, 'deleting things is not allowed'); END")
    op.execute("DELETE FROM things")
  end,
  downgrade = function(op)

  end,
}
