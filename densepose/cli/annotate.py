"""``densepose annotate``: the annotation tool (serve, users, import, export) and the accuracy study."""
from __future__ import annotations

import argparse

from pathlib import Path

from densepose.errors import UserError


def register(subparsers) -> None:
    p = subparsers.add_parser("annotate", help="annotation web app and annotator accuracy study",
                              description="Annotate DensePose data in the browser, export DensePose-COCO, "
                                          "and measure annotator accuracy on synthetic images.")
    sub = p.add_subparsers(dest="annotate_command", metavar="ACTION")
    p.set_defaults(func=lambda args: p.print_help() or 2)

    s = sub.add_parser("serve", help="run the web app")
    s.add_argument("--project", required=True, help="project directory")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.set_defaults(func=run_serve)

    s = sub.add_parser("add-user", help="add an annotator and print their login token")
    s.add_argument("--project", required=True)
    s.add_argument("name")
    s.add_argument("--admin", action="store_true", help="may import, upload, export and see all tasks")
    s.set_defaults(func=run_add_user)

    s = sub.add_parser("import", help="import images (a folder) or images with person boxes (COCO JSON)")
    s.add_argument("--project", required=True)
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--images", help="folder of JPEG/PNG images (persons are boxed in the app)")
    g.add_argument("--coco", help="COCO JSON with person boxes")
    s.add_argument("--image-root", help="folder the COCO file_name entries are relative to")
    s.add_argument("--truth", help="dense/ folder of `densepose synth` (exact I, U, V per pixel) for the study")
    s.set_defaults(func=run_import)

    s = sub.add_parser("export", help="write the annotations as DensePose-COCO JSON")
    s.add_argument("--project", required=True)
    s.add_argument("--out", required=True, help="output JSON file (images are under PROJECT/images)")
    s.set_defaults(func=run_export)

    s = sub.add_parser("simulate", help="let a simulated annotator (noise model) do the open tasks")
    s.add_argument("--project", required=True)
    s.add_argument("--user", required=True, help="the user the simulated annotator works as")
    s.add_argument("--sigma", type=float, default=0.02, help="std of the 3D click offset in metres (default 0.02)")
    s.add_argument("--confusion", type=float, default=0.03, help="probability of a left/right part confusion")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--max-persons", type=int, default=None)
    s.set_defaults(func=run_simulate)

    s = sub.add_parser("study", help="annotator accuracy (paper Fig. 5): fraction within x cm per annotator, "
                                     "error per part, heat map over the body")
    s.add_argument("project")
    s.add_argument("--out", default=None, help="output folder (default PROJECT/study)")
    s.set_defaults(func=run_study)


def _surface(project: str):
    from densepose.annotate import db
    from densepose.surface import load_surface

    con = db.connect(project)
    try:
        name = db.get_meta(con, "surface", "anny")
    finally:
        con.close()
    return load_surface(name)


def run_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn
    except ImportError:
        raise UserError("the annotation server needs uvicorn and starlette: pip install 'densepose[annotate]'") from None
    from densepose.annotate.app import create_app

    app = create_app(args.project)
    print(f"serving {Path(args.project).resolve()} at http://{args.host}:{args.port}/")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def run_add_user(args: argparse.Namespace) -> int:
    from densepose.annotate.db import add_user

    token = add_user(args.project, args.name, admin=args.admin)
    print(token)
    return 0


def run_import(args: argparse.Namespace) -> int:
    from densepose.annotate import importer

    if args.images:
        if args.truth or args.image_root:
            raise UserError("--truth and --image-root go with --coco, not --images")
        n = importer.import_folder(args.project, args.images)
        print(f"imported {n} images into {args.project}")
    else:
        if not args.image_root:
            raise UserError("--coco needs --image-root (the folder its file_name entries are relative to)")
        n, m = importer.import_coco(args.project, args.coco, args.image_root, args.truth)
        print(f"imported {n} images and {m} persons into {args.project}" + (" with dense truth" if args.truth else ""))
    return 0


def run_export(args: argparse.Namespace) -> int:
    from densepose.annotate.export import export_project

    counts = export_project(args.project, args.out)
    print(f"wrote {args.out}: {counts['images']} images, {counts['persons']} persons, {counts['annotated']} with "
          f"DensePose ({counts['points']} points); image root {Path(args.project) / 'images'}")
    return 0


def run_simulate(args: argparse.Namespace) -> int:
    from densepose.annotate import db
    from densepose.annotate.simulate import simulate

    con = db.connect(args.project)
    try:
        db.user_by_name(con, args.user)  # fail before the surface is loaded
    finally:
        con.close()
    res = simulate(args.project, args.user, _surface(args.project), sigma=args.sigma, confusion=args.confusion,
                   seed=args.seed, max_persons=args.max_persons)
    print(f"simulated annotator {args.user}: {res['persons']} persons, {res['clicks']} clicks, {res['skipped']} skipped; "
          f"{res['left_for_people']} tasks it cannot do (no dense truth) left unclaimed for people")
    return 0


def run_study(args: argparse.Namespace) -> int:
    from densepose.annotate.study import run_study as study

    out = Path(args.out) if args.out else Path(args.project) / "study"
    report = study(args.project, _surface(args.project), out)
    within = ", ".join(f"{v:.0%} within {k}" for k, v in report["within"].items())
    print(f"{report['clicks']} clicks, mean geodesic error {report['mean_cm']:.2f} cm (median {report['median_cm']:.2f}); "
          f"{within}")
    for title, table in (("annotator", report["per_annotator"]), ("part", report["per_part"])):
        for name, r in table.items():
            print(f"  {title} {name:16s} {r['mean_cm']:6.2f} cm mean, {r['median_cm']:6.2f} cm median  ({r['clicks']} clicks)")
    print(f"wrote {out / 'study.json'}, {out / 'study.png'}, heatmap.png, heatmap_front.png, heatmap_back.png "
          f"(colour scale 0-{report['heat_scale_cm'][1]:g} cm)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m densepose.cli.annotate ACTION ...``: the annotate commands alone (used by tests)."""
    import sys

    parser = argparse.ArgumentParser(prog="densepose annotate")
    register(parser.add_subparsers())
    args = parser.parse_args(["annotate", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
