-- The bench's stamping rule: every create and update gets the batch's `now` and the
-- flusher's subject (a rewrite on every command: the per-command cost of a rule).
return {
  { name = "stamp", models = "*", intercept = function(cmd, ctx)
      if cmd.action == "delete" then return end
      local p = cmd.props or {}
      p.stampedAt = ctx.now
      p.by = ctx.identity and ctx.identity.sub or "anonymous"
      return p
    end },
}
