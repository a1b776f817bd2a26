-- The one exit-code table every command returns against (SPEC 6).
return {
  OK = 0,          -- done
  FAILED = 1,      -- bad input, a migration failed, lock not obtained in time
  USAGE = 2,       -- the command line itself is wrong
  DIFFERENCE = 3,  -- check / verify / current --check-heads found a difference
}
