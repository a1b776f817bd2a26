-- Dialect lookup: luamig.dialect.get("sqlite") -> the SQL compiler for that database.
local DIALECTS = { sqlite = "luamig.dialect.sqlite", postgresql = "luamig.dialect.postgresql" }

local function get(name)
  local mod = DIALECTS[name]
  if not mod then return nil, "unknown dialect '" .. tostring(name) .. "'" end
  local ok, d = pcall(require, mod)
  if not ok then return nil, "dialect " .. name .. " is not available: " .. tostring(d) end
  return d
end

-- known(name) -> whether luamig has a dialect of that name
local function known(name) return DIALECTS[name] ~= nil end

return { get = get, known = known }
