local ini = require("luamig.ini")

describe("#unit ini", function()
  it("reads sections, key = value and key: value, lower-cases keys and trims", function()
    local f = assert(ini.parse("[luamig]\nScript_Location = migrations \nurl: sqlite:///x.db\n", "t.ini"))
    assert.equal("migrations", f:get("luamig", "script_location"))
    assert.equal("sqlite:///x.db", f:get("luamig", "url"))
    assert.is_nil(f:get("luamig", "missing"))
  end)

  it("drops full-line and whitespace-preceded inline comments but keeps # and ; inside values", function()
    local f = assert(ini.parse("# top\n; also\n[s]\na = 1 ; one\nb = x#y\nc = p;q   # trailing\n", "t.ini"))
    assert.equal("1", f:get("s", "a"))
    assert.equal("x#y", f:get("s", "b"))
    assert.equal("p;q", f:get("s", "c"))
  end)

  it("joins indented continuation lines with newlines", function()
    local f = assert(ini.parse("[s]\nhooks =\n  black REVISION_SCRIPT_FILENAME\n  ruff x\nnext = 2\n", "t.ini"))
    assert.equal("black REVISION_SCRIPT_FILENAME\nruff x", f:get("s", "hooks"))
    assert.equal("2", f:get("s", "next"))
  end)

  it("interpolates %(here)s, other keys, DEFAULT keys and %%", function()
    local f = assert(ini.parse("[DEFAULT]\nbase = /srv\n[s]\ndir = %(here)s/m\ntpl = %%(rev)s_%%(slug)s\nother = %(base)s/%(dir)s\n", "t.ini"))
    f.defaults.here = "/proj"
    assert.equal("/proj/m", f:get("s", "dir"))
    assert.equal("%(rev)s_%(slug)s", f:get("s", "tpl"))
    assert.equal("/srv//proj/m", f:get("s", "other"))
  end)

  it("reports an unknown interpolation key and a lone % with the file, section and key", function()
    local f = assert(ini.parse("[s]\na = %(nope)s\nb = 50%\n", "cfg.ini"))
    local v, err = f:value("s", "a")
    assert.is_nil(v)
    assert.equal("cfg.ini: [s] a: '%(nope)s' refers to an unknown key", err)
    local _, err2 = f:value("s", "b")
    assert.matches("cfg.ini: %[s%] b: '%%' must be followed by", err2)
  end)

  it("detects interpolation loops", function()
    local f = assert(ini.parse("[s]\na = %(b)s\nb = %(a)s\n", "cfg.ini"))
    local _, err = f:value("s", "a")
    assert.matches("too deep", err)
  end)

  it("rejects malformed lines with file and line number", function()
    local cases = {
      { "[s]\njust words\n", "t.ini:2: expected '[section]' or 'key = value', got 'just words'" },
      { "a = 1\n[s]\n", "t.ini:1: 'key = value' before any [section] header" },
      { "[s]\na = 1\na = 2\n", "t.ini:3: key 'a' appears twice in [s]" },
      { "[s]\n[s]\n", "t.ini:2: section [s] appears twice" },
      { "[s\na = 1\n", "t.ini:1: expected '[section]' or 'key = value', got '[s'" },
      { "[s]\n= value\n", "t.ini:2: expected '[section]' or 'key = value', got '= value'" },
    }
    for _, c in ipairs(cases) do
      local f, err = ini.parse(c[1], "t.ini")
      assert.is_nil(f)
      assert.equal(c[2], err)
    end
  end)

  it("accepts CRLF line endings and an empty file", function()
    local f = assert(ini.parse("[s]\r\na = 1\r\n", "t.ini"))
    assert.equal("1", f:get("s", "a"))
    assert.truthy(ini.parse("", "t.ini"))
  end)
end)
