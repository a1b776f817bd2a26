--- add tasks table
-- Revision ID: 7c2a0f93e1b4
-- Revises: 4d869b5fb06e
-- Create Date: 2025-11-01 09:00:00+00:00
local kit = require("luamig.kit.helpers")

local M = {
  revision = "7c2a0f93e1b4",
  down_revision = "4d869b5fb06e",
  branch_labels = nil,
  depends_on = nil,
}

function M.upgrade(op)
  kit.create_tasks_table(op)
end

function M.downgrade(op)
  kit.drop_tasks_table(op)
end

return M
