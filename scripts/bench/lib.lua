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

-- time(cmd, runs) -> median seconds, max RSS in KB (from /usr/bin/time), over `runs` runs after one warm-up.
function M.time(cmd, runs)
  runs = runs or 5
  local rssfile = os.tmpname()
  local wrapped = string.format("/usr/bin/time -f %%M -o %s sh -c %s >/dev/null 2>&1", q(rssfile), q(cmd))
  assert(os.execute(wrapped), "benchmark command failed: " .. cmd)
  local times, rss = {}, 0
  for i = 1, runs do
    local t0 = now()
    local ok = os.execute(wrapped)
    times[i] = now() - t0
    assert(ok, "benchmark command failed: " .. cmd)
    local f = io.open(rssfile)
    local kb = tonumber(f:read("l"))
    f:close()
    if kb > rss then rss = kb end
  end
  os.remove(rssfile)
  table.sort(times)
  return times[(runs + 1) // 2], rss
end

function M.fmt_s(s)
  if s < 1 then return string.format("%.1f ms", s * 1000) end
  return string.format("%.2f s", s)
end

return M
