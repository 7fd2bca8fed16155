"""The run machinery: Ray session, resource sizing, trial executors, Tune pieces, progress lines.

`session` starts or joins Ray; `resources` sizes trials so that Ray Data never starves;
`executors` is what runs inside a trial; `tuning` turns a spec into Tune's pieces; `progress`
prints one line per finished trial.
"""
