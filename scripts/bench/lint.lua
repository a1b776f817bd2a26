-- luamig lint against `upgrade head --sql` (the baseline, measured in the same rounds) on 500 generated
-- migrations, offline for each dialect: both load every file, run each upgrade(op) and look at its op values; lint
-- applies the rules where --sql compiles and writes the SQL. Each migration does a realistic mix: a table with an
-- index, then on earlier tables a column, an index, a foreign key NOT VALID, a type change and a raw statement (on
-- SQLite, whose --sql cannot write a table rebuild, a second column and an index instead of the last two).
-- usage: lua5.4 scripts/bench/lint.lua LUAMIG_BINARY [MIGRATIONS]
local lib = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/lib.lua")

local bin = assert(arg[1], "usage: lint.lua LUAMIG_BINARY [MIGRATIONS]")
local n = tonumber(arg[2] or "500")
local tmp = os.getenv("TMPDIR") or "/tmp"

-- generate(dir, sqlite): the project of n migrations
local function generate(dir, sqlite)
  os.execute("rm -rf " .. lib.q(dir) .. " && mkdir -p " .. lib.q(dir .. "/versions"))
  lib.write(dir .. "/luamig.ini", "[luamig]\nscript_location = .\n")
  for i = 1, n do
    local rev, down = string.format("%012x", i), i > 1 and string.format("%q", string.format("%012x", i - 1)) or "nil"
    local base = i - (i - 1) % 5
    local body
    if i % 5 == 1 then
      body = string.format([[
    op.create_table("t_%d", { { "id", t.integer, primary_key = true }, { "name", t.string(80) }, { "v", t.integer } })
    op.create_index("ix_t_%d_name", "t_%d", { "name" })]], i, i, i)
    elseif i % 5 == 2 then
      body = string.format([[    op.add_column("t_%d", { "c_%d", t.text })]], base, i)
    elseif i % 5 == 3 then
      body = string.format([[
    op.autocommit_block(function()
      op.create_index("ix_t_%d_v", "t_%d", { "v" }, { concurrently = true })
    end)]], base, base)
    elseif sqlite then
      body = i % 5 == 4 and string.format([[    op.add_column("t_%d", { "d_%d", t.integer })]], base, i)
        or string.format([[
    op.create_index("ix_t_%d_%d", "t_%d", { "v", "name" })
    op.execute("UPDATE t_%d SET v = 0 WHERE v IS NULL")]], base, i, base, base)
    else
      body = i % 5 == 4
        and string.format([[    op.create_foreign_key("fk_t_%d_first", "t_%d", "t_1", { "v" }, { "id" }, { not_valid = true })]], base, base)
        or string.format([[
    op.alter_column("t_%d", "name", { type = t.string(200), existing_type = t.string(80) })
    op.execute("UPDATE t_%d SET v = 0 WHERE v IS NULL")]], base, base)
    end
    lib.write(string.format("%s/versions/%s.lua", dir, rev), string.format([[
--- step %d
local t = require("luamig.types")
return {
  revision = %q,
  down_revision = %s,
  upgrade = function(op)
%s
  end,
  downgrade = function() end,
}
]], i, rev, down, body))
  end
end

local cmds = {}
local names = {}
local dirs = {}
for _, d in ipairs({ "sqlite", "postgresql" }) do
  local dir = string.format("%s/luamig-bench-lint-%s-%d", tmp, d, n)
  dirs[#dirs + 1] = dir
  generate(dir, d == "sqlite")
  local url = d == "sqlite" and "sqlite:///./bench.db" or "postgresql:///bench?host=/nonexistent"
  cmds[#cmds + 1] = string.format("cd %s && %s --url %s upgrade head --sql > /dev/null", lib.q(dir), lib.q(bin), lib.q(url))
  names[#names + 1] = d .. ": upgrade head --sql"
  cmds[#cmds + 1] = string.format("cd %s && %s lint --all --dialect %s > /dev/null 2>&1", lib.q(dir), lib.q(bin), d)
  names[#names + 1] = d .. ": lint --all"
end
local res = lib.time_set(cmds, tonumber(os.getenv("LINT_ROUNDS") or "9"))
print(string.format("%d migrations", n))
print(string.format("%-32s | %-30s | %9s | %s", "command", "wall: median (best) cpu", "peak RSS", "lint / --sql"))
for i, r in ipairs(res) do
  local ratio = ""
  if i % 2 == 0 then
    ratio = string.format("%.2fx wall, %.2fx CPU", r.wall / res[i - 1].wall, r.cpu / res[i - 1].cpu)
  end
  print(string.format("%-32s | %-30s | %6d KB | %s", names[i], string.format("%s (%s) %s", lib.fmt_s(r.wall),
    lib.fmt_s(r.best), lib.fmt_s(r.cpu)), r.rss, ratio))
end
os.execute("rm -rf " .. lib.q(dir))
