--- create notes
-- Revision ID: 3f1c0a9e5b21
-- Revises:
-- Create Date: 2026-11-25 01:00:00+00:00
local t = require("luamig.types")

local M = {
  revision = "3f1c0a9e5b21",
  down_revision = nil,
}

function M.upgrade(op)
  op.create_table("notes", {
    { "id", t.integer, primary_key = true },
    { "body", t.text, nullable = false },
    { "created_at", t.datetime, nullable = false, server_default = op.text("(CURRENT_TIMESTAMP)") },
  })
  op.bulk_insert("notes", { { id = 1, body = "migrated at start-up" } })
end

function M.downgrade(op)
  op.drop_table("notes")
end

return M
