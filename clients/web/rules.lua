-- rules.lua - the rules of the Flushout article's todo app, run by the hub on every command
-- of a `todos:*` model (flushout-hub --interceptors clients/web/rules.lua; `make run` does).
--
--   * createdAt and by are the hub's: a create of a todo gets createdAt = the batch's time
--     (ctx.now, ms since the epoch) and by = the sender's identity (ctx.identity.sub, from
--     its token; none on an open hub), whatever the client sent; an update may not set them.
--   * a list holds at most 50 todos;
--   * a todo's text is a string of at most 200 characters.
-- A rejection returns false and the message the page shows to the user.
local MAX_TODOS = 50
local MAX_TEXT = 200

-- Characters, not bytes: every byte that does not continue a UTF-8 sequence starts one.
local function length(s)
  local _, n = string.gsub(s, "[^\128-\191]", "")
  return n
end

local function count(t)
  local n = 0
  for _ in pairs(t) do
    n = n + 1
  end
  return n
end

local function check_text(props)
  if props == nil or props.text == nil then
    return true
  end
  if type(props.text) ~= "string" then
    return false, "a todo's text must be a string"
  end
  if length(props.text) > MAX_TEXT then
    return false, string.format("a todo's text is at most %d characters (this one has %d)", MAX_TEXT, length(props.text))
  end
  return true
end

return {
  {
    models = "todos:*",
    intercept = function(cmd, ctx)
      if cmd.action == "delete" then
        return
      end
      local ok, why = check_text(cmd.props)
      if not ok then
        return false, why
      end
      local is_todo = #cmd.path == 1 and cmd.path[1] == "todos"
      if cmd.action == "create" and is_todo then
        local todos = ctx.get({ "todos" })
        if type(todos) == "table" and count(todos) >= MAX_TODOS then
          return false, string.format("a list holds at most %d todos", MAX_TODOS)
        end
        local props = {}
        for k, v in pairs(cmd.props or {}) do
          props[k] = v
        end
        props.createdAt = ctx.now
        props.by = ctx.identity and ctx.identity.sub or nil
        return props
      end
      if cmd.action == "update" and #cmd.path == 2 and cmd.path[1] == "todos" and cmd.props then
        if cmd.props.createdAt ~= nil or cmd.props.by ~= nil then
          return false, "createdAt and by are set by the hub"
        end
      end
    end,
  },
}
