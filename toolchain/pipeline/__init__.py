"""`tinyml pipeline`: train -> compress -> export -> compile -> build -> run -> report, cached per stage.

`api` is the stage API (compile, build, run, compress, and `deploy`: compile -> build -> run, `tinyml run`) that both
the `tinyml` subcommands and `run.PipelineRun` call; `deploy` holds the run stage's artifact (`DeviceRun`); `bench`
runs `api.deploy` over models x boards."""
