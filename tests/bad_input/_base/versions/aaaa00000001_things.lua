--- things
local t = require("luamig.types")
return {
  revision = "aaaa00000001",
  down_revision = nil,
  upgrade = function(op)
    op.create_table("things", { { "id", t.integer, primary_key = true }, { "name", t.string(50), nullable = false }, { "qty", t.integer } })
    op.bulk_insert("things", { { id = 1, name = "one", qty = 1 }, { id = 2, name = "two", qty = 2 } })
  end,
  downgrade = function(op)
    op.drop_table("things")
  end,
}
