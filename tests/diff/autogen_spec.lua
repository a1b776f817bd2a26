-- Autogenerate against Alembic 1.8.1: tests/diff/alembic_autogen.py applies four versions of one set of models
-- (written there as SQLAlchemy models and as luamig models: defaults of every kind, a length and a precision
-- change, an enum changed to a string on SQLite, new and dropped columns, tables and indexes, AUTOINCREMENT, a type
-- per dialect, include_object leaving a table out) with each tool's autogenerate, on SQLite and on the PostgreSQL
-- test server, with luamig's naming convention and with constraints left to the database; then reverts them one
-- by one, and compares the two databases' schemas and rows after every step.
local support = require("support")
local q = support.q

describe("#diff autogenerate against Alembic", function()
  it("leaves the same schema and rows after every step up to head and back to base", function()
    local work = support.tmpdir()
    local pg = os.getenv("LUAMIG_TEST_PG_URL")
    local code, out = support.sh(string.format("/usr/bin/python3 %s --luamig %s --work %s%s",
      q(support.root .. "/tests/diff/alembic_autogen.py"), q(support.bin), q(work),
      pg and pg ~= "" and (" --pg " .. q(pg)) or ""))
    local summary = out:match("(%d+ compared, %d+ disagreements[^\n]*)")
    print("\nautogenerate differential: " .. tostring(summary))
    assert(code == 0 and summary, out)
    assert.truthy(summary:match("^32 compared, 0 disagreements"), out)
    support.rmrf(work)
  end)
end)

describe("#diff a hand-written history against Alembic", function()
  it("leaves the same schema and rows after every step up to head and back to base", function()
    -- tests/diff/alembic_history.py: five migrations written for Alembic and as their luamig translation (batch of
    -- several ops, AUTOINCREMENT, an enum's type change, a rename, database-named constraints dropped by those
    -- names, a batch naming convention, enum types of their own, non-native enums, alter_column autoincrement,
    -- a type per dialect, rows)
    local work = support.tmpdir()
    local pg = os.getenv("LUAMIG_TEST_PG_URL")
    local code, out = support.sh(string.format("/usr/bin/python3 %s --luamig %s --work %s%s",
      q(support.root .. "/tests/diff/alembic_history.py"), q(support.bin), q(work),
      pg and pg ~= "" and (" --pg " .. q(pg)) or ""))
    local summary = out:match("(%d+ compared, %d+ disagreements)")
    print("\nhistory differential: " .. tostring(summary))
    assert(code == 0 and summary, out)
    assert.are.equal("20 compared, 0 disagreements", summary)
    support.rmrf(work)
  end)
end)
