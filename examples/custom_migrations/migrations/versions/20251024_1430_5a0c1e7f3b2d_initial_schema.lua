--- initial schema
-- Revision ID: 5a0c1e7f3b2d
-- Revises:
-- Create Date: 2025-10-24 14:30:00+00:00
local kit = require("luamig.kit.helpers")
local helpers = require("migrations.helpers")

local M = {
  revision = "5a0c1e7f3b2d",
  down_revision = nil,
}

function M.upgrade(op)
  kit.create_configs_table(op)
  kit.create_artifacts_table(op)
  kit.create_config_artifacts_table(op)
  kit.create_tasks_table(op)
  helpers.create_users_table(op)
  helpers.create_orders_table(op)
  helpers.seed_admin(op)
end

function M.downgrade(op)
  helpers.drop_orders_table(op)
  helpers.drop_users_table(op)
  kit.drop_tasks_table(op)
  kit.drop_config_artifacts_table(op)
  kit.drop_artifacts_table(op)
  kit.drop_configs_table(op)
end

return M
