"""`tinyml pipeline`: train -> compress -> export -> compile -> build -> run -> report, cached per stage."""
