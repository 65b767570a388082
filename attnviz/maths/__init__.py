"""Formulas on arrays, with no model: the Q/K/V steps of one head, attention rollout, head
statistics and behaviour labels, divergence between heads, agreement between two importance
scores, the worked example's toy inputs. numpy (and pandas for tables) only; no torch."""
