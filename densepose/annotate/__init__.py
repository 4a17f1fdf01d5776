"""The annotation tool of the paper (§2): a web app for part painting and surface correspondences,
its DensePose-COCO export, and the annotator accuracy study with a simulated annotator.

Modules: ``db`` (SQLite project, users), ``importer``, ``tasks`` (what an annotator may do),
``sampling`` (step-2 points), ``views`` (rendered part views), ``app`` (Starlette), ``export``,
``study`` (errors, heat maps, simulated annotator). See README.md beside this file.
"""
