--- initial schema
-- Revision ID: 4d869b5fb06e
-- Revises:
-- Create Date: 2025-10-24 14:30:00+00:00
local kit = require("luamig.kit.helpers")

local M = {
  revision = "4d869b5fb06e",
  down_revision = nil,
  branch_labels = nil,
  depends_on = nil,
}

function M.upgrade(op)
  kit.create_configs_table(op)
  kit.create_artifacts_table(op)
  kit.create_config_artifacts_table(op)
end

function M.downgrade(op)
  kit.drop_config_artifacts_table(op)
  kit.drop_artifacts_table(op)
  kit.drop_configs_table(op)
end

return M
