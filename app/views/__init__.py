"""What the pages show and do, without Streamlit, one module per page or concern.

``runs`` (runs as the pages see them: live jobs and saved folders merged into rows, deleted
runs named), ``eta`` (time left for a run or a group), ``latent`` (the radius R, the distance
a Latent panel shows, coinciding curves) and ``images`` (the Your images page). The pages
import the module they need; nothing is re-exported here.
"""
