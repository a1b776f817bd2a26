-- compare_kit.lua DIALECT (run in a project holding versions/k1.lua, generated for the kit models): the op values the
-- kit helpers make and those of the generated migration must be the same, upgrade and downgrade.
local op_api = require("luamig.op")
local dialects = require("luamig.dialect")
local helpers = require("luamig.kit.helpers")

local d = assert(dialects.get(arg[1]))

local function recorder()
  local list = {}
  local op = op_api.new({ dialect = d, run = function(o) list[#list + 1] = o end })
  return op, list
end

local function same(a, b, path)
  if type(a) ~= type(b) then return false, path .. ": " .. type(a) .. " vs " .. type(b) end
  if type(a) ~= "table" then
    if a == b then return true end
    return false, path .. ": " .. tostring(a) .. " vs " .. tostring(b)
  end
  if getmetatable(a) ~= getmetatable(b) then return false, path .. ": different kinds of value" end
  for k, v in pairs(a) do
    local ok, why = same(v, b[k], path .. "." .. tostring(k))
    if not ok then return false, why end
  end
  for k in pairs(b) do
    if a[k] == nil then return false, path .. "." .. tostring(k) .. ": missing on the helpers' side" end
  end
  return true
end

local env = setmetatable({}, { __index = _G })
local M = assert(loadfile("versions/k1.lua", "t", env))()

local up_h, list_h = recorder()
for _, n in ipairs({ "artifacts", "configs", "config_artifacts", "tasks" }) do helpers["create_" .. n .. "_table"](up_h) end
local up_g, list_g = recorder()
M.upgrade(up_g)
local ok, why = same(list_h, list_g, "upgrade")
if not ok then io.stderr:write(why, "\n") os.exit(1) end

local down_h, dlist_h = recorder()
for _, n in ipairs({ "tasks", "config_artifacts", "configs", "artifacts" }) do helpers["drop_" .. n .. "_table"](down_h) end
local down_g, dlist_g = recorder()
M.downgrade(down_g)
ok, why = same(dlist_h, dlist_g, "downgrade")
if not ok then io.stderr:write(why, "\n") os.exit(1) end
io.stdout:write(string.format("same %d ops up, %d ops down\n", #list_g, #dlist_g))
