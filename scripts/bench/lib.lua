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

-- time(cmd, runs) -> { wall = median seconds, best = fastest wall seconds, cpu = median user+sys seconds,
-- rss = max resident KB } over `runs` runs after a warm-up. Wall time on a shared machine includes time the host
-- gave to others; CPU time is what the command itself cost.
-- prep, when given, is a command run (untimed) before the warm-up and before each timed run.
function M.time(cmd, runs, prep)
  runs = runs or 5
  local statfile = os.tmpname()
  -- "cd DIR && PROGRAM ARGS" with nothing else of the shell in it runs under time directly; anything else through sh
  local dir, simple = cmd:match("^cd ('[^']*') && ([^<>|&;$`]*)$")
  local wrapped
  if dir then
    wrapped = string.format("cd %s && exec /usr/bin/time -f '%%M %%U %%S' -o %s %s >/dev/null 2>&1", dir, q(statfile), simple)
  else
    wrapped = string.format("/usr/bin/time -f '%%M %%U %%S' -o %s sh -c %s >/dev/null 2>&1", q(statfile), q(cmd))
  end
  local function setup()
    if prep then assert(os.execute(prep .. " >/dev/null 2>&1"), "benchmark preparation failed: " .. prep) end
  end
  setup()
  assert(os.execute(wrapped), "benchmark command failed: " .. cmd)
  local walls, cpus, rss = {}, {}, 0
  for i = 1, runs do
    setup()
    local t0 = now()
    local ok = os.execute(wrapped)
    walls[i] = now() - t0
    assert(ok, "benchmark command failed: " .. cmd)
    local f = io.open(statfile)
    local kb, user, sys = f:read("n", "n", "n")
    f:close()
    cpus[i] = user + sys
    if kb > rss then rss = kb end
  end
  os.remove(statfile)
  table.sort(walls)
  table.sort(cpus)
  local mid = (runs + 1) // 2
  return { wall = walls[mid], best = walls[1], cpu = cpus[mid], rss = rss }
end

function M.fmt_s(s)
  if s < 1 then return string.format("%.1f ms", s * 1000) end
  return string.format("%.2f s", s)
end

return M
