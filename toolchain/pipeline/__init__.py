"""`tinyml pipeline`: train -> compress -> export -> compile -> build -> run -> report, cached per stage.

`deploy` is the compile -> build -> run -> compare hub (`tinyml run`); `bench` runs it over models x boards."""
