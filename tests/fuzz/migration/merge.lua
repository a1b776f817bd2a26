--- add things
local t = require("luamig.types")
return {
  revision = "bbbb00000002",
  down_revision = { "aaaa00000001", "cccc00000003" },
  branch_labels = "feature",
  depends_on = nil,
  transactional = false,
  upgrade = function(op) op.create_table("x", { { "id", t.integer } }) end,
  downgrade = function(op) op.drop_table("x") end,
}
