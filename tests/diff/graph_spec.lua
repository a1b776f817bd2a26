-- The revision graph against Alembic 1.8.1: generated graphs (several bases, merges, branch labels, depends_on) and
-- command sequences run by tests/diff/alembic_graphs.py with Alembic, then the same with the luamig binary on a
-- SQLite file. Compared after every command: accepted or refused, the migrations run in order, the version rows.
-- LUAMIG_DIFF_GRAPHS (default 200; `./scripts/test --graphs N`), LUAMIG_DIFF_CASES (command sequences a graph,
-- default 6) and LUAMIG_DIFF_SEED (default 1) choose the run.
local support = require("support")
local q = support.q

local GRAPHS = tonumber(os.getenv("LUAMIG_DIFF_GRAPHS") or "") or 200
local SEED = tonumber(os.getenv("LUAMIG_DIFF_SEED") or "") or 1
local CASES = tonumber(os.getenv("LUAMIG_DIFF_CASES") or "") or 6
local PYTHON = "/usr/bin/python3"

local function lua_list(t)
  local parts = {}
  for i, v in ipairs(t) do parts[i] = string.format("%q", v) end
  return "{ " .. table.concat(parts, ", ") .. " }"
end

local function write_graph(dir, graph)
  for _, r in ipairs(graph) do
    local down = #r.down == 0 and "nil" or (#r.down == 1 and string.format("%q", r.down[1]) or lua_list(r.down))
    support.write(dir .. "/versions/" .. r.id .. ".lua", table.concat({
      "local M = {",
      string.format("  revision = %q,", r.id),
      "  down_revision = " .. down .. ",",
      "  branch_labels = " .. (#r.labels > 0 and lua_list(r.labels) or "nil") .. ",",
      "  depends_on = " .. (#r.deps > 0 and lua_list(r.deps) or "nil") .. ",",
      "}",
      "local function log(op, dir)",
      "  op.execute(\"CREATE TABLE IF NOT EXISTS difflog (n INTEGER PRIMARY KEY, dir TEXT, rev TEXT)\")",
      "  op.execute(\"INSERT INTO difflog (dir, rev) VALUES (?, ?)\", { dir, M.revision })",
      "end",
      "function M.upgrade(op) log(op, 'up') end",
      "function M.downgrade(op) log(op, 'down') end",
      "return M", "",
    }, "\n"))
  end
end

-- One shell run per case: every step's exit code, first error line, migrations run and version rows (two
-- processes a step: luamig and the sqlite3 shell; the first query that fails, on a table not there yet, ends the
-- shell's output for that step).
local READ = "SELECT 'ver ' || version_num FROM luamig_version ORDER BY 1; "
  .. "SELECT 'ran ' || dir || ' ' || rev FROM difflog ORDER BY n; DELETE FROM difflog;"

local function run_case(dir, steps, n)
  local db = string.format("case%d.db", n)
  local lines = { "cd " .. q(dir) }
  for _, s in ipairs(steps) do
    local args = {}
    for i, t in ipairs(s.target) do args[i] = q(t) end
    lines[#lines + 1] = string.format("%s -q --url sqlite:///%s %s %s >/dev/null 2>err; echo \"rc $?\"; "
      .. "read -r first <err; echo \"msg $first\"", q(support.bin), db, s.command, table.concat(args, " "))
    lines[#lines + 1] = "sqlite3 " .. db .. " " .. q(READ) .. " 2>/dev/null; echo end"
  end
  local _, out = support.sh(table.concat(lines, "\n"))
  local results, cur = {}, { ran = {}, versions = {} }
  for l in out:gmatch("[^\n]+") do
    local k, v = l:match("^(%S+) ?(.*)$")
    if k == "rc" then cur.ok = v == "0"
    elseif k == "msg" then cur.msg = v
    elseif k == "ran" then cur.ran[#cur.ran + 1] = v
    elseif k == "ver" then cur.versions[#cur.versions + 1] = v
    elseif k == "end" then
      results[#results + 1] = cur
      cur = { ran = {}, versions = {} }
    end
  end
  return results
end

local function ran_text(list)
  local out = {}
  for i, r in ipairs(list) do out[i] = type(r) == "table" and (r[1] .. " " .. r[2]) or r end
  return table.concat(out, ", ")
end

local function graph_text(graph)
  local out = {}
  for _, r in ipairs(graph) do
    out[#out + 1] = string.format("  %s down={%s} deps={%s} labels={%s}", r.id, table.concat(r.down, ","),
      table.concat(r.deps, ","), table.concat(r.labels, ","))
  end
  return table.concat(out, "\n")
end

describe("#diff the revision graph against Alembic", function()
  it("agrees on every step of " .. GRAPHS .. " generated graphs", function()
    -- in memory where the machine has a tmpfs: thousands of small SQLite commits, each waiting for the disk
    -- otherwise (what is compared does not depend on durability)
    local shm = support.exists("/dev/shm/.") and os.execute("test -w /dev/shm")
    local work
    if shm then
      local _, made = support.sh("mktemp -d /dev/shm/luamig-diff.XXXXXX")
      work = made:match("^(/dev/shm/luamig%-diff%.%w+)")
    end
    work = work or support.tmpdir()
    local cases = work .. "/cases.lua"
    local code, out = support.sh(string.format("%s %s --graphs %d --cases %d --seed %d --workdir %s --out %s",
      PYTHON, q(support.root .. "/tests/diff/alembic_graphs.py"), GRAPHS, CASES, SEED, q(work .. "/alembic"), q(cases)))
    assert(code == 0, "the Alembic side failed: " .. out)
    local data = assert(loadfile(cases, "t", {}))()
    local steps, compared, excluded, refused = 0, 0, 0, 0
    local skips = {}
    local disagreements = {}
    for gi, entry in ipairs(data.graphs) do
      local dir = string.format("%s/luamig/g%04d", work, gi - 1)
      write_graph(dir, entry.graph)
      for ci, case in ipairs(entry.cases) do
        local got = run_case(dir, case, ci)
        for si, want in ipairs(case) do
          steps = steps + 1
          local mine = got[si]
          if want.skip then
            excluded = excluded + 1
            local why = want.skip:match("^alembic") and "alembic" or want.skip
            skips[why] = (skips[why] or 0) + 1
            break
          end
          compared = compared + 1
          if not want.ok then refused = refused + 1 end
          local same = mine and mine.ok == want.ok
          if same and want.ok then
            same = ran_text(mine.ran) == ran_text(want.ran)
              and table.concat(mine.versions, ",") == table.concat(want.versions, ",")
          end
          if not same then
            local prefix = {}
            for k = 1, si - 1 do prefix[k] = case[k].command .. " " .. table.concat(case[k].target, " ") end
            disagreements[#disagreements + 1] = string.format(
              "graph %d (%s/versions):\n%s\n after [%s], %s %s from {%s}:\n  alembic: %s ran [%s] versions {%s}\n"
              .. "  luamig:  %s ran [%s] versions {%s}",
              gi - 1, dir, graph_text(entry.graph), table.concat(prefix, "; "), want.command,
              table.concat(want.target, " "), table.concat(want.before, ","),
              want.ok and "ok" or ("refused (" .. tostring(want.error or want.warning) .. ")"), ran_text(want.ran),
              table.concat(want.versions, ","),
              mine and (mine.ok and "ok" or ("refused (" .. tostring(mine.msg) .. ")")) or "no result",
              mine and ran_text(mine.ran) or "", mine and table.concat(mine.versions, ",") or "")
            break
          end
        end
      end
    end
    print(string.format("\ngraph differential: %d graphs, %d steps, %d compared (%d refused by both), %d excluded "
      .. "(%d README's deliberate differences, %d Alembic failing inside itself), %d disagreements", #data.graphs,
      steps, compared, refused, excluded, skips.deliberate or 0, skips.alembic or 0, #disagreements))
    if #disagreements == 0 then
      if work:match("^/dev/shm/luamig%-diff%.") or work:match("^/tmp/") then os.execute("rm -rf " .. q(work)) end
    else
      support.write(work .. "/disagreements.txt", table.concat(disagreements, "\n\n") .. "\n")
      print("every disagreement: " .. work .. "/disagreements.txt")
    end
    assert(#disagreements == 0, #disagreements .. " disagreement(s); the first:\n"
      .. table.concat(disagreements, "\n\n", 1, math.min(3, #disagreements)))
  end)
end)
