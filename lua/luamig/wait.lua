-- Waiting, in one place: for a PostgreSQL result and for time. A plain run blocks (libpq waits for its result,
-- core.sleep for time). Inside a fleet's worker (luamig.fleet runs each target in a coroutine) the worker yields
-- to the fleet's scheduler instead, which resumes it when its connection's socket is readable or its time has
-- come; the other targets run meanwhile. Where a yield is not possible (a C function between the worker and
-- here), it blocks as a plain run does.
local core = require("luamig.core")

local running, isyieldable, yield = coroutine.running, coroutine.isyieldable, coroutine.yield

-- the fleet's worker coroutines (weak: a finished worker goes with its coroutine)
local workers = setmetatable({}, { __mode = "k" })

local M = {}

-- adopt(co): co is a worker of a fleet's scheduler
function M.adopt(co) workers[co] = true end

-- cooperative() -> whether the caller runs in a fleet's worker that may yield here
function M.cooperative()
  local co = running()
  return workers[co] == true and isyieldable()
end

-- sleep(seconds)
function M.sleep(seconds)
  if seconds <= 0 then return end
  if M.cooperative() then
    yield({ wake = core.clock() + seconds })
  else
    core.sleep(seconds)
  end
end

-- readable(fd): returns when fd is ready for reading (a worker only)
function M.readable(fd) yield({ fd = fd }) end

return M
