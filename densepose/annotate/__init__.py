"""The annotation tool of the paper (§2): a web app for part painting and surface correspondences,
its DensePose-COCO export, the campaign owner's dashboard and review, and the annotator accuracy
study with a simulated annotator.

Modules: ``db`` (SQLite project, users), ``importer``, ``tasks`` (what an annotator may do),
``review`` (what the owner does), ``dashboard``, ``sampling`` (step-2 points), ``views`` (rendered
part views), ``clicks`` (a click -> surface point), ``server`` + ``routes_work`` + ``routes_admin``
+ ``app`` (Starlette), ``export``, ``truth``, ``simulate``, ``study`` + ``study_figure``.
See README.md beside this file.
"""
