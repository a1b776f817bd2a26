-- Shared by the benchmarks: timing commands (median of several runs after a warm-up) and peak RSS.
local M = {}

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
M.q = q

local function now()
  local p = io.popen("date +%s.%N")
  local s = p:read("l")
  p:close()
  return tonumber(s)
end

-- time(cmd, runs) -> { wall = median seconds, best = fastest wall seconds, cpu = median user+sys seconds,
-- rss = max resident KB } over `runs` runs after a warm-up. Wall time on a shared machine includes time the host
-- gave to others; CPU time is what the command itself cost.
function M.time(cmd, runs)
  runs = runs or 5
  local statfile = os.tmpname()
  local wrapped = string.format("/usr/bin/time -f '%%M %%U %%S' -o %s sh -c %s >/dev/null 2>&1", q(statfile), q(cmd))
  assert(os.execute(wrapped), "benchmark command failed: " .. cmd)
  local walls, cpus, rss = {}, {}, 0
  for i = 1, runs do
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
