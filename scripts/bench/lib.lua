-- Shared by the benchmarks: timing commands (median of several runs after a warm-up) and peak RSS.
local M = {}

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
M.q = q

-- A monotonic clock read in-process (luamig.core.clock, from the build beside the binary given to the benchmark):
-- spawning `date` around each run would add its own few milliseconds to every figure.
local clock
local function now()
  if not clock then
    local bin = arg and arg[1] or ""
    local dir = bin:match("^(.*)/[^/]*$") or "build"
    package.cpath = dir .. "/lib/?.so;" .. package.cpath
    clock = require("luamig.core").clock
  end
  return clock()
end

local has_perf
local function perf_available()
  if has_perf == nil then has_perf = os.execute("perf stat -o /dev/null -- true >/dev/null 2>&1") == true end
  return has_perf
end

-- A timer for one command: warm() runs it once (untimed but for its peak RSS), once() times one run, result() sums
-- up. "cd DIR && PROGRAM ARGS [< FILE]" runs without a shell of its own; anything else runs through sh. With perf
-- (Linux), a run's wall and CPU time are what `perf stat` measures from fork to exit, so that no wrapper's start-up
-- is counted; otherwise the in-process clock around /usr/bin/time. Peak RSS comes from /usr/bin/time (the warm-up).
-- prep, when given, is a command run (untimed) before the warm-up and before each timed run.
local function timer(cmd, prep)
  local statfile = os.tmpname()
  local dir, simple = cmd:match("^cd ('[^']*') && ([^<>|&;$`]*< [^<>|&;$`]+)$")
  if not dir then dir, simple = cmd:match("^cd ('[^']*') && ([^<>|&;$`]*)$") end
  local function under(tool)
    if dir then return string.format("cd %s && exec %s %s >/dev/null 2>&1", dir, tool, simple) end
    return string.format("%s sh -c %s >/dev/null 2>&1", tool, q(cmd))
  end
  local timed = under(string.format("/usr/bin/time -f '%%M %%U %%S' -o %s", q(statfile)))
  local perfed = perf_available() and under(string.format("perf stat -o %s --", q(statfile)))
  local function setup()
    if prep then assert(os.execute(prep .. " >/dev/null 2>&1"), "benchmark preparation failed: " .. prep) end
  end
  local t = { walls = {}, cpus = {}, rss = 0 }
  function t.warm()
    setup()
    assert(os.execute(timed), "benchmark command failed: " .. cmd)
    local f = io.open(statfile)
    t.rss = f:read("n")
    f:close()
  end
  function t.once()
    setup()
    local i = #t.walls + 1
    if perfed then
      assert(os.execute(perfed), "benchmark command failed: " .. cmd)
      local text = assert(io.open(statfile)):read("a")
      t.walls[i] = tonumber(text:match("([%d.]+) seconds time elapsed"))
      t.cpus[i] = tonumber(text:match("([%d.]+) seconds user")) + tonumber(text:match("([%d.]+) seconds sys"))
    else
      local t0 = now()
      local ok = os.execute(timed)
      t.walls[i] = now() - t0
      assert(ok, "benchmark command failed: " .. cmd)
      local g = io.open(statfile)
      local kb, user, sys = g:read("n", "n", "n")
      g:close()
      t.cpus[i] = user + sys
      if kb > t.rss then t.rss = kb end
    end
  end
  function t.result()
    os.remove(statfile)
    local walls, cpus = t.walls, t.cpus
    table.sort(walls)
    table.sort(cpus)
    local mid = (#walls + 1) // 2
    return { wall = walls[mid], best = walls[1], cpu = cpus[mid], rss = t.rss }
  end
  return t
end

-- time(cmd, runs, prep) -> { wall = median seconds, best = fastest wall seconds, cpu = median user+sys seconds,
-- rss = max resident KB } over `runs` runs after a warm-up. Wall time on a shared machine includes time the host
-- gave to others; CPU time is what the command itself cost.
function M.time(cmd, runs, prep)
  local t = timer(cmd, prep)
  t.warm()
  for _ = 1, runs or 5 do t.once() end
  return t.result()
end

-- time_set(cmds, runs, prep) -> a result (as time gives) per command, measured in rounds: each round runs every
-- command once, in turn, so that a slow spell of a shared machine (or of a database server) falls on all of them
-- alike instead of on whichever ran then.
function M.time_set(cmds, runs, prep)
  local ts = {}
  for i, cmd in ipairs(cmds) do
    ts[i] = timer(cmd, prep)
    ts[i].warm()
  end
  for _ = 1, runs or 5 do
    for _, t in ipairs(ts) do t.once() end
  end
  local out = {}
  for i, t in ipairs(ts) do out[i] = t.result() end
  return out
end

function M.write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

-- lua_models(count) -> a models module of count tables t0001...: seven columns each (an index, a unique constraint,
-- server defaults), a CHECK, and from the second on a foreign key to the first (a deeper chain of foreign keys
-- overflows SQLAlchemy's reflection, which compare.lua measures against the same model)
function M.lua_models(count)
  local out = { 'local model = require("luamig.model")', 'local t = require("luamig.types")' }
  for i = 1, count do
    local fk = i > 1 and '  { "first_id", t.integer, nullable = true, references = "t0001.id", ondelete = "SET NULL" },\n' or ""
    out[#out + 1] = string.format([[
model.Table("t%04d", {
  { "id", t.integer, primary_key = true },
  { "name", t.string(80), index = true },
  { "code", t.string(20), unique = true },
  { "amount", t.numeric(12, 2), server_default = 0 },
  { "ratio", t.float, nullable = true },
  { "active", t.boolean, server_default = true },
  { "body", t.text, nullable = true },
%s  model.check("amount >= 0", { name = "amount_positive" }),
})]], i, fk)
  end
  return table.concat(out, "\n") .. "\n"
end

-- linear_project(dir, n, url): a project of n migrations in a line, each creating a table, luamig.ini naming url
function M.linear_project(dir, n, url)
  os.execute("rm -rf " .. q(dir) .. " && mkdir -p " .. q(dir .. "/migrations/versions"))
  M.write(dir .. "/luamig.ini", "[luamig]\nscript_location = migrations\nurl = " .. url .. "\n")
  for i = 1, n do
    local rev, down = string.format("%012x", i), i > 1 and string.format("%q", string.format("%012x", i - 1)) or "nil"
    M.write(string.format("%s/migrations/versions/%s.lua", dir, rev), string.format([[
--- step %d
local t = require("luamig.types")
return {
  revision = %q,
  down_revision = %s,
  upgrade = function(op) op.create_table("t_%s", { { "id", t.integer, primary_key = true }, { "v", t.text } }) end,
  downgrade = function(op) op.drop_table("t_%s") end,
}
]], i, rev, down, rev, rev))
  end
end

function M.fmt_s(s)
  if s < 1 then return string.format("%.1f ms", s * 1000) end
  return string.format("%.2f s", s)
end

-- now() -> the monotonic clock, in seconds
M.now = now

return M
