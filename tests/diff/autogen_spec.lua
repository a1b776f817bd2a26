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
