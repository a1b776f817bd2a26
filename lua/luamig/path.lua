-- Path strings: joining, splitting and showing paths relative to the current directory.
local core = require("luamig.core")

local sub, match, find = string.sub, string.match, string.find

local function is_absolute(p)
  return sub(p, 1, 1) == "/"
end

-- join(a, b): b if it is absolute, else a/b with one separator.
local function join(a, b)
  if b == nil or b == "" then return a end
  if is_absolute(b) or a == nil or a == "" or a == "." then return b end
  if sub(a, -1) == "/" then return a .. b end
  return a .. "/" .. b
end

local function dirname(p)
  local d = match(p, "^(.*)/[^/]*$")
  if d == nil then return "." end
  if d == "" then return "/" end
  return d
end

local function basename(p)
  return match(p, "([^/]*)$")
end

-- normalize("a/./b/../c") -> "a/c"; keeps a leading "/" and leading "..".
local function normalize(p)
  local absolute = is_absolute(p)
  local parts = {}
  for seg in string.gmatch(p, "[^/]+") do
    if seg == ".." then
      if #parts > 0 and parts[#parts] ~= ".." then
        parts[#parts] = nil
      elseif not absolute then
        parts[#parts + 1] = ".."
      end
    elseif seg ~= "." then
      parts[#parts + 1] = seg
    end
  end
  local s = table.concat(parts, "/")
  if absolute then return "/" .. s end
  return s == "" and "." or s
end

-- absolute(p [, base]): p made absolute against base (default: the current directory), normalized.
local function absolute(p, base)
  if is_absolute(p) then return normalize(p) end
  return normalize(join(base or core.getcwd(), p))
end

-- The current directory and a slash, read once: luamig never changes it.
local cwd_cache

-- display(p): p relative to the current directory when it lies below it, for messages.
local function display(p)
  local prefix = cwd_cache
  if not prefix then
    prefix = (core.getcwd() or "\0") .. "/"
    cwd_cache = prefix
  end
  if find(p, prefix, 1, true) == 1 then return sub(p, #prefix + 1) end
  return p
end

local function exists(p)
  return core.filetype(p) ~= nil
end

local function isdir(p)
  return core.filetype(p) == "directory"
end

-- read_file(p) -> contents, or nil, the system's message without the path (callers name the file)
local function read_file(p)
  local f, err = io.open(p, "rb")
  local s
  if f then
    s, err = f:read("a")
    f:close()
    if s then return s end
  end
  err = tostring(err)
  if sub(err, 1, #p + 2) == p .. ": " then err = sub(err, #p + 3) end
  return nil, err
end

-- write_file(p, s): writes s to p, creating or truncating it; true or nil, err.
local function write_file(p, s)
  local f, err = io.open(p, "wb")
  if not f then return nil, err end
  local ok, werr = f:write(s)
  local cok, cerr = f:close()
  if not ok then return nil, werr end
  if not cok then return nil, cerr end
  return true
end


return {
  is_absolute = is_absolute,
  join = join,
  dirname = dirname,
  basename = basename,
  normalize = normalize,
  absolute = absolute,
  display = display,
  exists = exists,
  isdir = isdir,
  read_file = read_file,
  write_file = write_file,
}
