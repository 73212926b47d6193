"""Visual Turing test: blinded real-vs-synthetic reading studies (build, serve, analyze).

The engine-side API is :func:`longisynth.vtt.study.build_study`,
:func:`longisynth.vtt.server.create_app` and :func:`longisynth.vtt.analysis.analyze`; the CLI
entry points are in :mod:`longisynth.vtt.cli`.
"""
