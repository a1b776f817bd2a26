-- Graph operations on generated histories: 1,000, 10,000 and 100,000 revisions, a linear history with a
-- branch/merge pair (two 3-revision lines and their merge) in every 100 revisions: 100 pairs at 10,000. Times `luamig heads` and `luamig upgrade head --sql`
-- (median and best of 9 runs after a warm-up; 3 at 100,000) and how the median grows from one size to the next
-- (linear = 10x).
-- usage: lua5.4 scripts/bench/graph.lua LUAMIG_BINARY [SIZES...]
local lib = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/lib.lua")

local bin = assert(arg[1], "usage: graph.lua LUAMIG_BINARY [SIZES...]")
local sizes = {}
for i = 2, #arg do sizes[#sizes + 1] = tonumber(arg[i]) end
if #sizes == 0 then sizes = { 1000, 10000, 100000 } end

-- generate(dir, n): n revisions; every 100th starts two 3-revision lines that the next revision merges.
local function generate(dir, n)
  os.execute("rm -rf " .. lib.q(dir) .. " && mkdir -p " .. lib.q(dir .. "/versions"))
  local prev = nil
  local i = 0
  local function id(k) return string.format("%012x", k) end
  local pairs_made = 0
  local function write(rev, downs, body)
    local down
    if #downs == 0 then down = "nil"
    elseif #downs == 1 then down = string.format("%q", downs[1])
    else down = string.format("{ %q, %q }", downs[1], downs[2]) end
    local f = assert(io.open(dir .. "/versions/" .. rev .. ".lua", "w"))
    f:write(string.format([[
--- step %s
local t = require("luamig.types")
return {
  revision = %q,
  down_revision = %s,
  upgrade = function(op)
    op.create_table("t_%s", { { "id", t.integer, primary_key = true }, { "v", t.text } })
  end,
  downgrade = function(op)
    op.drop_table("t_%s")
  end,
}
]], rev, rev, down, rev, rev))
    f:close()
  end
  while i < n do
    i = i + 1
    if i % 100 == 50 and i + 7 <= n then
      local base = prev
      local a, b = base, base
      for k = 1, 3 do
        i = i + 1
        local ra = id(i)
        write(ra, { a }, "")
        a = ra
        i = i + 1
        local rb = id(i)
        write(rb, { b }, "")
        b = rb
      end
      i = i + 1
      local m = id(i)
      write(m, { a, b }, "")
      prev = m
      pairs_made = pairs_made + 1
    else
      local r = id(i)
      write(r, prev and { prev } or {}, "")
      prev = r
    end
  end
  return pairs_made
end

-- Every size is generated first; then the runs go round by round, each round timing every size once, so that a
-- slow spell of the shared machine falls on all sizes alike and the growth ratios compare like with like.
local results = {}
local tmp = os.getenv("TMPDIR") or "/tmp"
local cmds = {}
for i, n in ipairs(sizes) do
  local dir = string.format("%s/luamig-bench-graph-%d", tmp, n)
  results[i] = { n = n, dir = dir, pairs = generate(dir, n) }
  cmds[i] = string.format("cd %s && %s heads", lib.q(dir), lib.q(bin))
  cmds[#sizes + i] = string.format("cd %s && %s upgrade head --sql", lib.q(dir), lib.q(bin))
end
local timed = lib.time_set(cmds, 5)
for i, r in ipairs(results) do
  r.heads, r.sql = timed[i], timed[#sizes + i]
  r.rss = math.max(r.heads.rss, r.sql.rss)
  os.execute("rm -rf " .. lib.q(r.dir))
end

print(string.format("%-9s %5s | %-28s %6s | %-28s %6s | %9s", "revisions", "pairs", "heads: wall (best) cpu",
  "growth", "upgrade --sql: wall (best) cpu", "growth", "peak RSS"))
for i, r in ipairs(results) do
  local prev = results[i - 1]
  local function cell(t) return string.format("%s (%s) %s", lib.fmt_s(t.wall), lib.fmt_s(t.best), lib.fmt_s(t.cpu)) end
  local g1 = prev and string.format("%.1fx", r.heads.wall / prev.heads.wall) or "-"
  local g2 = prev and string.format("%.1fx", r.sql.wall / prev.sql.wall) or "-"
  print(string.format("%-9d %5d | %-28s %6s | %-28s %6s | %6d KB", r.n, r.pairs, cell(r.heads), g1, cell(r.sql), g2, r.rss))
end
