-- The text luamig writes: new migration files and the files of `luamig init`.
local format, gsub, concat = string.format, string.gsub, table.concat

local function lua_string_or_nil(v)
  if v == nil then return "nil" end
  if type(v) == "table" then
    if #v == 0 then return "nil" end
    if #v == 1 then return format("%q", v[1]) end
    local parts = {}
    for i, s in ipairs(v) do parts[i] = format("%q", s) end
    return "{ " .. concat(parts, ", ") .. " }"
  end
  return format("%q", v)
end

-- migration(fields) -> the text of a new migration file.
-- fields: message, revision, down_revision (nil | id | list), branch_labels, depends_on, create_date,
-- upgrade_body, downgrade_body (indented Lua lines or nil)
local function migration(f)
  local downs = f.down_revision
  local revises = type(downs) == "table" and concat(downs, ", ") or (downs or "")
  local msg = gsub(f.message or "", "[\r\n]+", " ")
  return concat({
    "--- " .. msg,
    "-- Revision ID: " .. f.revision,
    "-- Revises: " .. revises,
    "-- Create Date: " .. f.create_date,
    'local t = require("luamig.types")',
    "",
    "local M = {",
    format("  revision = %q,", f.revision),
    "  down_revision = " .. lua_string_or_nil(downs) .. ",",
    "  branch_labels = " .. lua_string_or_nil(f.branch_labels) .. ",",
    "  depends_on = " .. lua_string_or_nil(f.depends_on) .. ",",
    "}",
    "",
    "function M.upgrade(op)",
    f.upgrade_body or "",
    "end",
    "",
    "function M.downgrade(op)",
    f.downgrade_body or "",
    "end",
    "",
    "return M",
    "",
  }, "\n"):gsub("\nfunction M%.upgrade%(op%)\n\nend", "\nfunction M.upgrade(op)\nend")
    :gsub("\nfunction M%.downgrade%(op%)\n\nend", "\nfunction M.downgrade(op)\nend")
end

local INI = [[
# luamig configuration. Relative paths are relative to this file's directory.
[luamig]
# the folder holding env.lua, helpers.lua and versions/
script_location = %s
# migration file names, e.g. 20251024_1430_a1b2c3d4e5f6_add_user_table.lua
file_template = %%%%(year)d%%%%(month).2d%%%%(day).2d_%%%%(hour).2d%%%%(minute).2d_%%%%(rev)s_%%%%(slug)s
timezone = UTC
truncate_slug_length = 40
# the database; --url and DATABASE_URL take precedence
url = sqlite:///./app.db
# Lua modules defining your models, required before autogenerate (space separated)
models =
version_table = luamig_version
transaction_per_migration = true
# seconds to wait for another luamig run holding the lock
lock_timeout = 60
statement_timeout = 0
# PostgreSQL: how long a migration statement may wait for a table lock (seconds; 0 = no limit, no retries), and
# how many times a migration that timed out is tried again
ddl_lock_timeout = 5
ddl_lock_retries = 5
# PostgreSQL: the migration lock: auto (a session advisory lock on a direct connection, a lease behind a
# transaction pooler), session, transaction, lease or none; the lease's time to live and renewal interval (seconds)
lock = auto
lease_ttl = 30
lease_heartbeat = 5
# luamig lint: rule ids to skip (comma separated), and the PostgreSQL version it assumes offline
lint_disable =
# lint_postgres_version = 15
# commands run on every generated file; REVISION_SCRIPT_FILENAME is replaced by its path
post_write_hooks =
]]

local MAKEFILE = [[
# Migration shortcuts: make migrate MSG='add user table', make upgrade, make downgrade
LUAMIG ?= luamig

.PHONY: migrate upgrade downgrade

migrate:
	$(LUAMIG) revision --autogenerate -m "$(MSG)"

upgrade:
	$(LUAMIG) upgrade head

downgrade:
	$(LUAMIG) downgrade -1
]]

local ENV = [[
-- env.lua: loaded before every command that reads the migrations. context.config holds the settings and
-- context.x the -x KEY=VALUE pairs of the command line. Require your models here so that they take part.
local model = require("luamig.model")

return {
  -- the models that autogenerate and check compare with the database
  target_metadata = model.metadata,
  -- return false to leave an object out of autogenerate and check. kind: "table", "column", "index",
  -- "unique_constraint", "foreign_key_constraint" or "check_constraint"; reflected: true for what the database
  -- has, false for the models'; compare_to: the same object on the other side, or nil
  include_object = function(name, kind, reflected, compare_to)
    return true
  end,
}
]]

local HELPERS_GENERIC = [[
-- Migration helpers: functions that take `op`, shared by several migrations.
-- In a migration: local helpers = require("%s.helpers")
local t = require("luamig.types")

local M = {}

-- function M.create_widgets_table(op)
--   op.create_table("widgets", {
--     { "name", t.string, nullable = false },
--     { "id", t.ulid, nullable = false },
--     op.primary_key { "id" },
--   })
-- end

return M
]]

local HELPERS_KIT = [[
-- Migration helpers: functions that take `op`, shared by several migrations. They mix freely with the kit's
-- (configs, artifacts, config_artifacts, tasks):
--   local kit = require("luamig.kit.helpers")
--   local helpers = require("%s.helpers")
--   function M.upgrade(op) kit.create_configs_table(op); helpers.create_users_table(op) end
local t = require("luamig.types")

local M = {}

function M.create_users_table(op)
  op.create_table("users", {
    { "email", t.string, nullable = false },
    { "name", t.string, nullable = false },
    { "is_active", t.boolean, nullable = false, server_default = true },
    { "id", t.ulid, nullable = false },
    { "created_at", t.datetime, nullable = false, server_default = op.text("(CURRENT_TIMESTAMP)") },
    { "updated_at", t.datetime, nullable = false, server_default = op.text("(CURRENT_TIMESTAMP)") },
    { "tags", t.json, nullable = false, server_default = "[]" },
    op.primary_key { "id" },
    op.unique { "email" },
  })
  op.create_index(op.f("ix_users_email"), "users", { "email" }, { unique = false })
end

function M.drop_users_table(op)
  op.drop_index(op.f("ix_users_email"), "users")
  op.drop_table("users")
end

return M
]]

return {
  migration = migration,
  ini = function(script_location) return format(INI, script_location) end,
  makefile = function() return MAKEFILE end,
  env = function() return ENV end,
  helpers = function(kind, module_prefix)
    return format(kind == "helpers" and HELPERS_KIT or HELPERS_GENERIC, module_prefix)
  end,
}
