"""What the pages show and do, without Streamlit, one module per page or concern.

``runs`` (runs as the pages see them: live jobs and saved folders merged into rows, deleted
runs named), ``eta`` (time left for a run or a group), ``latent`` (the radius R, the distance
a Latent panel shows, coinciding curves), ``images`` (the Your images page), and for
experiments ``experiment_spec`` (a spec from the page's fields and back), ``lambda_sweep``
(the λ page's experiment), ``experiment_progress`` (watching, starting, run states, cost and
time left) and ``experiment_results`` (cell tables, figures, report exports). The pages
import the module they need; nothing is re-exported here.
"""
