-- The pool allocator of the executable (core/lm_alloc.c) against glibc's malloc (LUAMIG_MALLOC=system): `current`
-- with 500 migrations at head, `upgrade head` of 500 SQLite migrations (a transaction each, one transaction, and
-- --sql), `heads` and `upgrade head --sql` on 10,000 revisions. Both allocators run in turn, round by round (median
-- of 9 after a warm-up); the verdict is on CPU time.
-- usage: lua5.4 scripts/bench/alloc.lua LUAMIG_BINARY
local lib = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/lib.lua")
local bin = assert(arg[1], "usage: alloc.lua LUAMIG_BINARY")
local tmp = os.getenv("TMPDIR") or "/tmp"

local small, big = tmp .. "/luamig-bench-alloc-500", tmp .. "/luamig-bench-alloc-10000"
lib.linear_project(small, 500, "sqlite:///app.db")
lib.linear_project(big, 10000, "sqlite:///app.db")
local function sh(dir, cmd) return string.format("cd %s && %s", lib.q(dir), cmd) end
assert(os.execute(sh(small, lib.q(bin) .. " -q upgrade head")), "cannot prepare the 500-migration database")

local workloads = {
  { name = "current, 500 migrations at head", dir = small, args = "current" },
  { name = "upgrade head, 500 SQLite migrations", dir = small, args = "-q upgrade head",
    prep = "rm -f " .. lib.q(small .. "/app.db") },
  { name = "upgrade head --single-transaction, 500 SQLite", dir = small,
    args = "-q upgrade head --single-transaction", prep = "rm -f " .. lib.q(small .. "/app.db") },
  { name = "upgrade head --sql, 500 migrations", dir = small, args = "upgrade head --sql" },
  { name = "heads, 10,000 revisions", dir = big, args = "heads" },
  { name = "upgrade head --sql, 10,000 revisions", dir = big, args = "upgrade head --sql" },
}
print(string.format("%-46s | %-26s | %-26s | %s", "workload", "pool: wall (best) cpu", "system: wall (best) cpu",
  "system CPU vs pool"))
for _, w in ipairs(workloads) do
  local cmds = {
    sh(w.dir, "env LUAMIG_MALLOC=pool " .. lib.q(bin) .. " " .. w.args),
    sh(w.dir, "env LUAMIG_MALLOC=system " .. lib.q(bin) .. " " .. w.args),
  }
  local r = lib.time_set(cmds, 9, w.prep)
  local function cell(t) return string.format("%s (%s) %s", lib.fmt_s(t.wall), lib.fmt_s(t.best), lib.fmt_s(t.cpu)) end
  print(string.format("%-46s | %-26s | %-26s | %+.1f%%", w.name, cell(r[1]), cell(r[2]),
    (r[2].cpu / r[1].cpu - 1) * 100))
end
os.execute("rm -rf " .. lib.q(small) .. " " .. lib.q(big))
