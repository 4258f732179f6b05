"""What the pages show, without Streamlit, one module per concern.

``runs`` (runs as the pages see them: live jobs and saved folders merged into rows, deleted
runs named), ``eta`` (time left for a run or a group) and ``latent`` (the radius R, the
distance a Latent panel shows, coinciding curves). The pages import the module they need;
nothing is re-exported here.
"""
