-- The LuaCATS annotations of the `op` API (what the Lua language server shows and completes): every function a
-- migration's op exports is documented right above its definition, with one ---@param line per parameter, named
-- as the function names them, in order.
local op_api = require("luamig.op")
local ops = require("luamig.ops")
local sqlite = require("luamig.dialect.sqlite")

local lines_of = {}
local function source_lines(source)
  if not lines_of[source] then
    local t = {}
    for l in io.lines((source:gsub("^@", ""))) do t[#t + 1] = l end
    lines_of[source] = t
  end
  return lines_of[source]
end

-- doc(fn) -> the ---@param names above fn's definition, in order, and whether a --- comment is there at all
local function doc(fn)
  local info = debug.getinfo(fn, "S")
  local lines = source_lines(info.source)
  local params, any = {}, false
  local i = info.linedefined - 1
  while i >= 1 and lines[i]:match("^%s*%-%-%-") do
    any = true
    local name = lines[i]:match("^%s*%-%-%-@param%s+([%w_]+)")
    if name then table.insert(params, 1, name) end
    i = i - 1
  end
  return params, any
end

local function param_names(fn)
  local out = {}
  for k = 1, debug.getinfo(fn, "u").nparams do out[k] = debug.getlocal(fn, k) end
  return out
end

describe("#unit the op API's annotations", function()
  local op = op_api.new({ dialect = sqlite, run = function() end })
  local names = {}
  for k, v in pairs(op) do if type(v) == "function" then names[#names + 1] = k end end
  table.sort(names)

  it("cover every exported op function", function()
    assert.is_true(#names >= 27, "op exports " .. #names .. " functions")
    for _, name in ipairs(names) do
      -- op.create_table(...) hands its arguments on to ops.create_table: that constructor carries the documentation
      local fn = op[name]
      local u = debug.getinfo(fn, "u")
      if u.isvararg and u.nparams == 0 and ops[name] then fn = ops[name] end
      local documented, any = doc(fn)
      assert.is_true(any, "op." .. name .. " has no --- annotation above its definition")
      assert.are.same(param_names(fn), documented, "op." .. name .. ": the ---@param names differ from the function's")
    end
  end)

  it("notices a parameter without its ---@param line", function()
    local chunk = assert(load("---Two parameters, one documented.\n---@param a string\nreturn function(a, b) end",
      "@" .. os.tmpname()))
    local fn = chunk()
    -- (doc reads the source file: write the chunk where its name points)
    local src = debug.getinfo(fn, "S").source:gsub("^@", "")
    local f = assert(io.open(src, "w"))
    f:write("---Two parameters, one documented.\n---@param a string\nreturn function(a, b) end\n")
    f:close()
    local documented = doc(fn)
    os.remove(src)
    assert.are_not.same(param_names(fn), documented)
  end)
end)
