-- The bad-input corpus: tests/bad_input/NAME/ is a project tree, laid over the shared tests/bad_input/_base/ (a
-- luamig.ini and a first migration that makes a table with two rows), plus a file `case` saying how to run it:
--   run: ARGS            the luamig command line (after `luamig`)
--   code: N              the exit code it must end with
--   error: LINE          the first line of its error (the first stderr line starting "luamig:"), exactly
--   error~: PATTERN      ... or a Lua pattern it must match
--   setup: ARGS          (optional, repeatable) luamig runs before, each exiting 0, e.g. to apply a first migration
--   prepare: SHELL       (optional) a command run in the tree first ($LUAMIG names the binary)
--   cleanup: SHELL       (optional) a command run in the tree afterwards, whatever happened
--   secret: TEXT         (optional) text that must appear in no output (a password)
--   user: nobody         (optional) run as that user when the tests run as root (for permission cases)
--   base: no            (optional) leave _base/ out
-- For every case: the exit code, the error line, no Lua traceback (unless the command has --verbose), no secret in
-- stdout or stderr, and app.db exactly as it was before the command: its schema, data and version rows (the
-- sqlite3 shell's .dump), or, when that cannot read it, its bytes.
local S = require("support")

local CORPUS = S.root .. "/tests/bad_input"

local function read_case(path)
  local c = { setup = {} }
  for line in io.lines(path) do
    local k, v = line:match("^([%w~]+):%s?(.*)$")
    if k == "setup" then
      c.setup[#c.setup + 1] = v
    elseif k then
      c[k] = v
    end
  end
  return c
end

local function snapshot(db)
  if not S.exists(db) then return "(no database)" end
  local code, out = S.sh("sqlite3 -batch " .. S.q(db) .. " .dump")
  if code == 0 and not out:find("Error:", 1, true) then return out end
  local _, sum = S.sh("sha256sum " .. S.q(db))
  return "bytes " .. sum
end

local function cases()
  local p = assert(io.popen("ls " .. S.q(CORPUS)))
  local names = {}
  for n in p:lines() do
    if S.exists(CORPUS .. "/" .. n .. "/case") then names[#names + 1] = n end
  end
  p:close()
  return names
end

local is_root = select(2, S.sh("id -u")):match("^0") ~= nil

describe("#cli bad-input corpus", function()
  local names = cases()

  it("has at least 60 cases", function()
    assert.is_true(#names >= 60, "only " .. #names .. " cases")
  end)

  for _, name in ipairs(names) do
    it(name, function()
      local c = read_case(CORPUS .. "/" .. name .. "/case")
      assert(c.run and c.code and (c.error or c["error~"]), name .. ": case needs run, code and error")
      local dir = S.tmpdir()
      if c.base ~= "no" then assert(os.execute("cp -R " .. S.q(CORPUS .. "/_base") .. "/. " .. S.q(dir))) end
      assert(os.execute("cp -R " .. S.q(CORPUS .. "/" .. name) .. "/. " .. S.q(dir)))
      os.remove(dir .. "/case")
      local env = { LUAMIG = S.bin }
      local ok, err = pcall(function()
        if c.prepare then
          local code, out = S.sh("cd " .. S.q(dir) .. " && export LUAMIG=" .. S.q(S.bin) .. " && " .. c.prepare)
          assert(code == 0, "prepare failed: " .. out)
        end
        for _, args in ipairs(c.setup) do
          local r = S.run(args, { cwd = dir, env = env })
          assert(r.code == 0, "setup `" .. args .. "` failed: " .. r.err)
        end
        local before = snapshot(dir .. "/app.db")
        local r
        if c.user and is_root then
          assert(os.execute("chmod -R a+rX " .. S.q(dir) .. " && chmod a+rx " .. S.q(dir:match("^(.*)/[^/]*$"))))
          r = S.run(c.run, { cwd = dir, env = env, bin = S.bin, as = c.user })
        else
          r = S.run(c.run, { cwd = dir, env = env })
        end
        local all = r.out .. r.err
        assert.equal(tonumber(c.code), r.code, all)
        if c.error then
          assert.equal(c.error, r.errline, all)
        else
          assert.matches(c["error~"], r.errline or "", nil, false, all)
        end
        if not c.run:find("%-%-verbose") and not c.run:find("%-v ") then
          assert.is_nil(all:find("stack traceback", 1, true), "a traceback without --verbose:\n" .. all)
          assert.is_nil(all:find("internal error", 1, true), "an internal error:\n" .. all)
        end
        if c.secret then assert.is_nil(all:find(c.secret, 1, true), "the secret shows:\n" .. all) end
        assert.equal(before, snapshot(dir .. "/app.db"), "the database changed")
      end)
      if c.cleanup then S.sh("cd " .. S.q(dir) .. " && " .. c.cleanup) end
      S.rmrf(dir)
      if not ok then error(err, 0) end
    end)
  end
end)
