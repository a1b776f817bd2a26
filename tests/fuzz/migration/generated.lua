--- add users
--
-- Revision ID: 4d869b5fb06e
-- Revises:
-- Create Date: 2025-10-24 14:30:00
local t = require("luamig.types")

return {
  revision = "4d869b5fb06e",
  down_revision = nil,
  branch_labels = nil,
  depends_on = nil,

  upgrade = function(op)
    op.create_table("users", {
      { "id", t.integer, primary_key = true },
      { "email", t.string(255), nullable = false, unique = true },
    })
  end,

  downgrade = function(op)
    op.drop_table("users")
  end,
}
