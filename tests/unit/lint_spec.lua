-- Every Lua file compiles under luac5.4 -p, and no module writes a global or reads one that is not part of Lua's
-- standard environment (read from the bytecode listing: GETTABUP / SETTABUP on _ENV).
local S = require("support")

local STANDARD = {}
for name in ([[assert collectgarbage dofile error getmetatable ipairs load loadfile next pairs pcall print rawequal
  rawget rawlen rawset require select setmetatable tonumber tostring type xpcall _G _VERSION warn
  coroutine debug io math os package string table utf8]]):gmatch("%S+") do
  STANDARD[name] = true
end

local function lua_files()
  local code, out = S.sh("cd " .. S.q(S.root) .. " && find lua versions -name '*.lua' | sort")
  assert(code == 0, out)
  local files = {}
  for f in out:gmatch("[^\n]+") do files[#files + 1] = f end
  return files
end

describe("#unit lua sources", function()
  it("all compile under luac5.4 -p", function()
    local files = lua_files()
    assert.is_true(#files > 20)
    for _, f in ipairs(files) do
      local code, out = S.sh("luac5.4 -p " .. S.q(S.root .. "/" .. f))
      assert.equal(0, code, f .. ": " .. out)
    end
  end)

  it("use no globals beyond Lua's standard ones", function()
    local bad = {}
    for _, f in ipairs(lua_files()) do
      local _, listing = S.sh("luac5.4 -l -l -p " .. S.q(S.root .. "/" .. f))
      for line in listing:gmatch("[^\n]+") do
        local op, name = line:match("%s(SETTABUP)%s.-_ENV%s+\"([^\"]+)\"")
        if op then bad[#bad + 1] = f .. ": sets global " .. name end
        local gname = line:match("%sGETTABUP%s.-_ENV%s+\"([^\"]+)\"")
        if gname and not STANDARD[gname] then bad[#bad + 1] = f .. ": reads global " .. gname end
      end
    end
    assert.same({}, bad)
  end)
end)
