-- Two builds of luamig on the same workloads, round by round (the median of the rounds after a warm-up each): what a change
-- of the engine did to the figures of README's tables. Workloads: `current` with 500 migrations at head, `upgrade
-- head` of 500 SQLite migrations (a transaction each, and --single-transaction), `heads` on 1,000 and 10,000
-- revisions, `upgrade head --sql` on 10,000; with PG_BENCH_URL (a database to create and drop), `upgrade head` of 500
-- PostgreSQL migrations. VERSUS_ROUNDS sets the number of rounds (default 9; more where the machine is noisy).
-- usage: lua5.4 scripts/bench/versus.lua OLD_BINARY NEW_BINARY
local lib = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/lib.lua")
local old, new = assert(arg[1], "usage: versus.lua OLD NEW"), assert(arg[2], "usage: versus.lua OLD NEW")
local tmp = os.getenv("TMPDIR") or "/tmp"
local pg = os.getenv("PG_BENCH_URL")


local function sh(dir, cmd) return string.format("cd %s && %s", lib.q(dir), cmd) end

-- Each build works in a copy of its own: the two may keep their caches in different formats.
local root = tmp .. "/luamig-versus"
os.execute("rm -rf " .. lib.q(root))
local function projects(name, n, url)
  lib.linear_project(root .. "/old/" .. name, n, url)
  lib.linear_project(root .. "/new/" .. name, n, url)
  return name
end
local p500, p1k, p10k = projects("500", 500, "sqlite:///app.db"), projects("1000", 1000, "sqlite:///app.db"),
  projects("10000", 10000, "sqlite:///app.db")
local at_head = projects("head", 500, "sqlite:///app.db")
for _, side in ipairs({ "old", "new" }) do
  assert(os.execute(sh(root .. "/" .. side .. "/head", lib.q(new) .. " -q upgrade head")),
    "cannot prepare the database at head")
end

local workloads = {
  { name = "current, 500 migrations at head (SQLite)", dir = at_head, args = "current" },
  { name = "upgrade head, 500 SQLite, a transaction each", dir = p500, args = "-q upgrade head",
    prep = "rm -f " .. lib.q(root .. "/old/500/app.db") .. " " .. lib.q(root .. "/new/500/app.db") },
  { name = "upgrade head, 500 SQLite, one transaction", dir = p500, args = "-q upgrade head --single-transaction",
    prep = "rm -f " .. lib.q(root .. "/old/500/app.db") .. " " .. lib.q(root .. "/new/500/app.db") },
  { name = "heads, 1,000 revisions", dir = p1k, args = "heads" },
  { name = "heads, 10,000 revisions", dir = p10k, args = "heads" },
  { name = "upgrade head --sql, 10,000 revisions", dir = p10k, args = "upgrade head --sql" },
}
if pg then
  local ppg = projects("pg", 500, pg)
  local admin = pg:gsub("/([%w_]+)%?", "/postgres?")
  local dbname = pg:match("/([%w_]+)%?")
  workloads[#workloads + 1] = { name = "upgrade head, 500 PostgreSQL, a transaction each", dir = ppg,
    args = "-q upgrade head", prep = string.format("PGOPTIONS='-c client_min_messages=warning' psql -X -q %s -c 'DROP DATABASE IF EXISTS %s' -c 'CREATE DATABASE %s'",
      lib.q(admin), dbname, dbname) }
end

print(string.format("%-50s | %-26s | %-26s | %s", "workload", "old: wall (best) cpu", "new: wall (best) cpu",
  "new CPU vs old"))
for _, w in ipairs(workloads) do
  -- the binary's output goes to /dev/null (lib's timer), also for --sql
  local r = lib.time_set({ sh(root .. "/old/" .. w.dir, lib.q(old) .. " " .. w.args),
    sh(root .. "/new/" .. w.dir, lib.q(new) .. " " .. w.args) }, tonumber(os.getenv("VERSUS_ROUNDS")) or 9, w.prep)
  local function cell(t) return string.format("%s (%s) %s", lib.fmt_s(t.wall), lib.fmt_s(t.best), lib.fmt_s(t.cpu)) end
  print(string.format("%-50s | %-26s | %-26s | %+.1f%%", w.name, cell(r[1]), cell(r[2]), (r[2].cpu / r[1].cpu - 1) * 100))
end
os.execute("rm -rf " .. lib.q(root))
