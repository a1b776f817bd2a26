local url = require("luamig.url")

describe("#unit url", function()
  it("parses the sqlite forms as SQLAlchemy does", function()
    assert.equal("app.db", url.parse("sqlite:///app.db").path)
    assert.equal("./app.db", url.parse("sqlite:///./app.db").path)
    assert.equal("/abs/path.db", url.parse("sqlite:////abs/path.db").path)
    assert.equal(":memory:", url.parse("sqlite:///:memory:").path)
    assert.equal(":memory:", url.parse("sqlite://").path)
    local u = url.parse("sqlite+aiosqlite:///./app.db")
    assert.equal("sqlite", u.dialect)
    assert.equal("aiosqlite", u.driver)
    assert.equal("./app.db", u.path)
    assert.equal("my db.db", url.parse("sqlite:///my%20db.db").path)
  end)

  it("parses postgresql URLs with user, password, host, port, database and parameters", function()
    local u = assert(url.parse("postgresql+asyncpg://app:s%40cret@db.local:6543/prod?sslmode=require&connect_timeout=5"))
    assert.same({ "postgresql", "asyncpg", "app", "s@cret", "db.local", 6543, "prod", "require", "5" },
      { u.dialect, u.driver, u.user, u.password, u.host, u.port, u.database, u.params.sslmode, u.params.connect_timeout })
    local s = assert(url.parse("postgres:///mydb?host=/tmp/sock"))
    assert.equal("postgresql", s.dialect)
    assert.equal("/tmp/sock", s.host)
    assert.equal("mydb", s.database)
    local v6 = assert(url.parse("postgresql://u@[::1]:5432/d"))
    assert.equal("::1", v6.host)
  end)

  it("masks passwords in URLs and in free text", function()
    assert.equal("postgresql://app:***@h/db", url.mask("postgresql://app:hunter2@h/db"))
    assert.equal("postgresql://app@h/db", url.mask("postgresql://app@h/db"))
    -- a query password runs to the next "&", as the parser reads it: the rest of such a line is hidden too
    assert.equal("x postgresql://u:***@h/d?password=***", url.mask("x postgresql://u:pw@h/d?password=pw2 y"))
    assert.equal("postgresql://u:***@h/d?password=***&sslmode=require",
      url.mask("postgresql://u:pw@h/d?password=pw 2&sslmode=require"))
    -- whatever the parser takes for the password is hidden: spaces, line breaks, a user name with a space
    assert.equal("postgresql://u:***@h/d", url.mask("postgresql://u:sec ret@h/d"))
    -- a password that begins as a masked one would is still a password; a masked message stays as it is
    assert.equal("postgresql:///d?password=***", url.mask("postgresql:///d?password=***:secret"))
    assert.equal("postgresql:///d?password=***", url.mask("postgresql:///d?password=***,x"))
    local msg = "cannot connect to 'postgresql:///d?password=***': refused; see postgresql:///d?password=***."
    assert.equal(msg, url.mask(msg))
    assert.equal("postgresql://u:***@h/d", url.mask("postgresql://u:sec\nret@h/d"))
    assert.equal("postgresql://my user:***@h/d", url.mask("postgresql://my user:pw@h/d"))
    assert.equal("sec ret", url.parse("postgresql://u:sec ret@h/d").password)
    -- an escaped query key could spell "password" past the mask: refused
    local u, err = url.parse("postgresql://h/d?pass%77ord=secret")
    assert.is_nil(u)
    assert.equal("bad database URL 'postgresql://h/d?pass%77ord=***': a query key cannot be percent-escaped", err)
  end)

  it("rejects bad URLs with one message naming the (masked) URL", function()
    local cases = {
      { "", "empty database URL" },
      { "app.db", "bad database URL 'app.db': expected a URL such as sqlite:///app.db or postgresql://user@host/db" },
      { "mysql://u:pw@h/d", "bad database URL 'mysql://u:***@h/d': unknown scheme 'mysql' (expected sqlite:// or postgresql://)" },
      { "sqlite://host/app.db", "bad database URL 'sqlite://host/app.db': a sqlite URL takes no host: use sqlite:///relative.db or sqlite:////absolute/path.db" },
      { "postgresql://u:pw@h:99999/d", "bad database URL 'postgresql://u:***@h:99999/d': port '99999' is not a number from 1 to 65535" },
      { "postgresql://u:pw@h:abc/d", "bad database URL 'postgresql://u:***@h:abc/d': port 'abc' is not a number from 1 to 65535" },
      { "sqlite:///bad%zz.db", "bad database URL 'sqlite:///bad%zz.db': bad percent-escape in the path" },
    }
    for _, c in ipairs(cases) do
      local u, err = url.parse(c[1])
      assert.is_nil(u)
      assert.equal(c[2], err)
    end
  end)

  it("builds a libpq conninfo with quoted values", function()
    local u = assert(url.parse("postgresql://o'neil:p w@h:5433/d?sslmode=disable"))
    assert.equal("host='h' port='5433' dbname='d' user='o\\'neil' password='p w' sslmode='disable'", url.conninfo(u))
  end)
  it("parses several hosts in the authority (libpq's multi-host form)", function()
    local u = assert(url.parse("postgresql://u:secret@h1:5432,h2:5433/db?target_session_attrs=read-write"))
    assert.equal("h1,h2", u.host)
    assert.equal("5432,5433", u.port)
    assert.same({ "h1", "h2" }, u.hosts)
    assert.equal("host='h1,h2' port='5432,5433' dbname='db' user='u' password='secret' target_session_attrs='read-write'",
      url.conninfo(u))
    assert.equal("postgresql://u:***@h1:5432,h2:5433/db?target_session_attrs=read-write",
      url.mask("postgresql://u:secret@h1:5432,h2:5433/db?target_session_attrs=read-write"))
    assert.equal("host='::1,h2' port='5432,' dbname='d'", url.conninfo(assert(url.parse("postgresql://[::1]:5432,h2/d"))))
    assert.equal("host='a,b' dbname='d'", url.conninfo(assert(url.parse("postgresql://a,b/d"))))
    local _, err = url.parse("postgresql://a:1,b:99999/d")
    assert.equal("bad database URL 'postgresql://a:1,b:99999/d': port '99999' is not a number from 1 to 65535", err)
    _, err = url.parse("postgresql://a,,b/d")
    assert.equal("bad database URL 'postgresql://a,,b/d': a URL with several hosts names each of them", err)
  end)
end)
