"""The paper's evaluation (Section VI, Figs 3-6) run on the testbed: modelled with the controller's solver and
measured live on the real processes, plus what the paper does not report.

`experiments run fig3|fig4|fig5|fig6|all` or `experiments run --config FILE` writes one CSV per figure (each
point appended as it finishes, `--resume` skips finished points); `experiments report` turns them into
PNG figures and `docs/results.md`.
"""
