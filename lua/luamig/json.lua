-- A JSON encoder for --json output: tables with only 1..n keys are arrays (json.array marks an empty one),
-- other tables are objects with sorted keys; json.null stands for null.
local format, concat, sort, type, pairs, tostring = string.format, table.concat, table.sort, type, pairs, tostring
local gsub, byte, math_type = string.gsub, string.byte, math.type

local null = setmetatable({}, { __tostring = function() return "null" end })
local ArrayMT = {}

local ESC = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

local function encode_string(s)
  return '"' .. gsub(s, '[%c"\\]', function(c) return ESC[c] or format("\\u%04x", byte(c)) end) .. '"'
end

local encode

local function is_array(t)
  if getmetatable(t) == ArrayMT then return true end
  local n = #t
  if n == 0 then return false end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

function encode(v, out)
  local tv = type(v)
  if v == nil or v == null then
    out[#out + 1] = "null"
  elseif tv == "boolean" then
    out[#out + 1] = tostring(v)
  elseif tv == "number" then
    if math_type(v) == "integer" then
      out[#out + 1] = tostring(v)
    elseif v ~= v or v == math.huge or v == -math.huge then
      out[#out + 1] = "null"
    else
      out[#out + 1] = format("%.17g", v)
    end
  elseif tv == "string" then
    out[#out + 1] = encode_string(v)
  elseif tv == "table" then
    if is_array(v) then
      out[#out + 1] = "["
      for i = 1, #v do
        if i > 1 then out[#out + 1] = "," end
        encode(v[i], out)
      end
      out[#out + 1] = "]"
    else
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = tostring(k) end
      sort(keys)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = encode_string(k)
        out[#out + 1] = ":"
        local val = v[k]
        if val == nil then val = v[tonumber(k)] end
        encode(val, out)
      end
      out[#out + 1] = "}"
    end
  else
    error("cannot encode a " .. tv .. " as JSON", 0)
  end
end

-- encode(v) -> JSON text
local function encode_value(v)
  local out = {}
  encode(v, out)
  return concat(out)
end

-- array(t) -> t, marked so that it encodes as [] even when empty
local function array(t)
  return setmetatable(t or {}, ArrayMT)
end

return { encode = encode_value, null = null, array = array }
