"""``mlipflow report NAME``: one self-contained HTML page (plots embedded as base64 PNG) per campaign or model.

Sections (each an HTML ``<section>`` with a stable id, rendered with the placeholder "not yet measured" when its
data is missing; numbers are only ever read from the store, never made up):

``verdict``           the campaign's targets, the measured figures, pass or fail each (benchmark stage)
``summary``           what the report covers and where the data came from
``dataset``           dataset growth over versions, frames per split, config type and labeler
``selection``         accurate / candidate / failed ratios per iteration and per structure family
``learning-curves``   per-epoch validation RMSE of each model in the registry
``errors``            error tables (RMSE, MAE, tails) with the reference labeler, parity and error plots, and the
                      learning curve of the campaign: every iteration's committee on the one MLMD test set
``uncertainty``       per iteration, the committee's predicted spread against its true error on the labeled picks
                      (rank correlation, error/spread ratio) and the true error of frames it called accurate
``properties``        property comparisons with the reference and the baselines, side by side
``stability``         verdicts of long MD runs
``speed``             MD steps/s and ns/day against atom count
``filtered``          labels a sanity filter rejected and labels that failed, with their reasons

The report reads what exists in ``stores.datasets``, ``stores.models``, ``stores.campaigns`` and the
``benchmarks`` collection defensively: a document of an unexpected shape is skipped with a logged warning.
"""

from __future__ import annotations

import html
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from mlipflow.benchmark.plotting import figure_to_base64, new_figure
from mlipflow.benchmark.results import load_results

logger = logging.getLogger(__name__)

SECTIONS = {
    "verdict": "Verdict: is the potential good enough?",
    "summary": "Summary",
    "dataset": "Dataset growth",
    "selection": "Accurate / candidate / failed per iteration and family",
    "learning-curves": "Learning curves",
    "errors": "Errors against the reference",
    "uncertainty": "Committee spread against true error",
    "properties": "Properties against the reference and baselines",
    "stability": "Stability in long MD",
    "speed": "Speed",
    "filtered": "Filtered and failed labels",
}
#: sections shown only when their benchmark was run (``mlipflow efficiency FILE``)
OPTIONAL_SECTIONS = {"efficiency": "Label efficiency: the campaign's selection against random picks"}
MISSING = '<p class="missing">not yet measured</p>'
SELECTION_STATES = ("accurate", "candidate", "failed")

CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.85em}
td,th{border:1px solid #ccc;padding:.25em .5em;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}
.missing{color:#a00;font-style:italic}.note{color:#555;font-size:.85em}
img{max-width:100%;display:block;margin:.5em 0}
"""


# ------------------------------------------------------------------------------------ html helpers
def _esc(value: Any) -> str:
    return html.escape(str(value))


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not np.isfinite(value):
            return str(value)
        return f"{value:.4g}"
    return _esc(value)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _img(b64: str, alt: str) -> str:
    return f'<img alt="{_esc(alt)}" src="data:image/png;base64,{b64}">'


# --------------------------------------------------------------------------------------- gathering
def _safe_list(collection: Any, query: dict[str, Any]) -> list[dict[str, Any]]:
    try:
        return list(collection.find(query))
    except Exception as exc:
        logger.warning("report: cannot read %s: %s", getattr(collection, "name", collection), exc)
        return []


def gather(stores: Any, name: str) -> dict[str, Any]:
    """Collect everything the report shows for ``name`` (a campaign, model, model name or dataset name)."""
    campaigns = _safe_list(stores.campaigns, {"$or": [{"_id": name}, {"name": name}]})
    dataset_names = {name}
    for c in campaigns:
        for key in ("dataset", "dataset_name"):
            if isinstance(c.get(key), str):
                dataset_names.add(c[key])
    models = _safe_list(
        stores.models,
        {"$or": [{"_id": name}, {"id": name}, {"name": name}, {"extra.campaign": name},
                 {"dataset_version": {"$regex": f"^({'|'.join(map(_regex_escape, dataset_names))})-"}}]},
    )
    for m in models:
        dv = m.get("dataset_version")
        if isinstance(dv, str) and "-" in dv:
            dataset_names.add(dv.rsplit("-", 1)[0])
    versions = sorted(
        _safe_list(stores.datasets, {"name": {"$in": sorted(dataset_names)}}),
        key=lambda d: (str(d.get("name")), str(d.get("created_at"))),
    )
    subjects = [name] + [str(m.get("_id")) for m in models]
    try:
        benchmarks = load_results(stores, subjects)
    except Exception as exc:
        logger.warning("report: cannot read benchmark results: %s", exc)
        benchmarks = []
    return {"name": name, "campaigns": campaigns, "models": models, "versions": versions, "benchmarks": benchmarks,
            "rejected": _rejected(stores, name)}


def _regex_escape(text: str) -> str:
    import re

    return re.escape(text)


# ----------------------------------------------------------------------------------------- sections
def _section_summary(data: dict[str, Any]) -> str:
    refs = sorted({b.get("reference", "none") for b in data["benchmarks"]})
    labelers = sorted({lab for v in data["versions"] for lab in (v.get("labelers") or {})})
    rows = [
        ["campaign documents", len(data["campaigns"])],
        ["dataset versions", len(data["versions"])],
        ["models", len(data["models"])],
        ["benchmark results", len(data["benchmarks"])],
        ["dataset labelers", ", ".join(labelers) or "—"],
        ["benchmark references", ", ".join(refs) or "—"],
    ]
    note = ('<p class="note">A reference marked (surrogate) is a cheap stand-in for DFT, not DFT; '
            "(dft) marks an electronic-structure reference.</p>")
    return _table(["item", "value"], rows) + note


def _section_dataset(data: dict[str, Any]) -> str:
    versions = data["versions"]
    if not versions:
        return MISSING
    rows, sizes = [], []
    for v in versions:
        counts = v.get("counts") or {}
        size = sum(int(x) for x in counts.values() if isinstance(x, int | float))
        sizes.append((str(v.get("_id")), counts))
        labelers = ", ".join(f"{k}: {n}" for k, n in (v.get("labelers") or {}).items())
        ctypes = ", ".join(f"{k}: {n}" for k, n in (v.get("config_types") or {}).items())
        rows.append([str(v.get("_id")), str(v.get("created_at", ""))[:19], size, counts.get("train"),
                     counts.get("valid"), counts.get("test"), labelers, ctypes])
    fig, (ax,) = new_figure(1, width=7)
    x = np.arange(len(sizes))
    bottom = np.zeros(len(sizes))
    for split in ("train", "valid", "test"):
        vals = np.array([float(c.get(split, 0) or 0) for _, c in sizes])
        ax.bar(x, vals, bottom=bottom, label=split)
        bottom += vals
    ax.set_xticks(x, [str(i + 1) for i in x])
    ax.set_xlabel("dataset version (oldest first)")
    ax.set_ylabel("frames")
    ax.legend()
    fig.tight_layout()
    table = _table(["version", "created", "frames", "train", "valid", "test", "labeler (kind)", "config types"], rows)
    return _img(figure_to_base64(fig), "dataset growth") + table


def _iterations(campaign: dict[str, Any]) -> list[dict[str, Any]]:
    its = campaign.get("iterations")
    if isinstance(its, dict):
        its = [{"iteration": k, **v} for k, v in its.items() if isinstance(v, dict)]
    return [i for i in its or [] if isinstance(i, dict)]


def _counts(entry: dict[str, Any]) -> dict[str, float]:
    src = entry.get("counts") if isinstance(entry.get("counts"), dict) else entry
    return {s: float(src.get(s, 0) or 0) for s in SELECTION_STATES}


def _section_selection(data: dict[str, Any]) -> str:
    parts = []
    for campaign in data["campaigns"]:
        its = _iterations(campaign)
        if not its:
            continue
        labels = [str(i.get("iteration", k)) for k, i in enumerate(its)]
        counts = [_counts(i) for i in its]
        fig, (ax,) = new_figure(1, width=7)
        bottom = np.zeros(len(its))
        for state in SELECTION_STATES:
            totals = np.array([sum(c.values()) or 1.0 for c in counts])
            vals = np.array([c[state] for c in counts]) / totals
            ax.bar(labels, vals, bottom=bottom, label=state)
            bottom += vals
        ax.set_xlabel("iteration")
        ax.set_ylabel("fraction of explored frames")
        ax.legend()
        fig.tight_layout()
        parts.append(_img(figure_to_base64(fig), f"selection ratios {campaign.get('name', '')}"))
        rows = []
        for label, it in zip(labels, its, strict=True):
            c = _counts(it)
            rows.append([label, "all", *(int(c[s]) for s in SELECTION_STATES)])
            fams = it.get("by_family") if isinstance(it.get("by_family"), dict) else {}
            for fam, fc in fams.items():
                if isinstance(fc, dict):
                    c = _counts(fc)
                    rows.append([label, fam, *(int(c[s]) for s in SELECTION_STATES)])
        parts.append(_table(["iteration", "family", *SELECTION_STATES], rows))
    return "".join(parts) or MISSING


def _section_learning(data: dict[str, Any]) -> str:
    parts, rows = [], []
    for m in data["models"]:
        points = [p for p in ((m.get("curves") or {}).get("points") or []) if isinstance(p, dict)]
        points = [p for p in points if (p.get("epoch") or 0) >= 0]
        if not points:
            continue
        fig, axes = new_figure(2, width=4.5)
        for head in sorted({p.get("head", "Default") for p in points}):
            pts = sorted((p for p in points if p.get("head", "Default") == head), key=lambda p: p["epoch"])
            ep = [p["epoch"] for p in pts]
            for ax, key, scale in ((axes[0], "rmse_e_per_atom", 1e3), (axes[1], "rmse_f", 1e3)):
                vals = [None if p.get(key) is None else p[key] * scale for p in pts]
                if any(v is not None for v in vals):
                    ax.plot(ep, [np.nan if v is None else v for v in vals], "o-", label=head)
        axes[0].set_ylabel("valid energy RMSE (meV/atom)")
        axes[1].set_ylabel("valid force RMSE (meV/Å)")
        for ax in axes:
            ax.set_xlabel("epoch")
            ax.legend(fontsize=7)
        fig.suptitle(str(m.get("_id")))
        fig.tight_layout()
        parts.append(_img(figure_to_base64(fig), f"learning curve {m.get('_id')}"))
        last = points[-1]
        rows.append([str(m.get("_id")), m.get("kind"), m.get("dataset_version"), last.get("epoch"),
                     None if last.get("rmse_e_per_atom") is None else 1e3 * last["rmse_e_per_atom"],
                     None if last.get("rmse_f") is None else 1e3 * last["rmse_f"], m.get("wall_time")])
    if not parts:
        return MISSING
    table = _table(["model", "kind", "dataset", "last epoch", "valid E RMSE (meV/atom)", "valid F RMSE (meV/Å)",
                    "wall time (s)"], rows)
    return table + "".join(parts)


def _dataset_labeler(data: dict[str, Any], version_id: Any) -> str:
    for v in data["versions"]:
        if v.get("_id") == version_id:
            return ", ".join(v.get("labelers") or {}) or "unknown"
    return "unknown (dataset version not in this store)"


def _section_errors(data: dict[str, Any]) -> str:
    parts = []
    rows = []
    for m in data["models"]:
        errors = m.get("errors") or {}
        labeler = _dataset_labeler(data, m.get("dataset_version"))
        for split, per_ct in errors.items():
            if not isinstance(per_ct, dict):
                continue
            for ct, e in per_ct.items():
                if isinstance(e, dict):
                    rows.append([str(m.get("_id")), split, ct, labeler,
                                 None if e.get("rmse_e_per_atom") is None else 1e3 * e["rmse_e_per_atom"],
                                 None if e.get("rmse_f") is None else 1e3 * e["rmse_f"], e.get("n_frames")])
    if rows:
        parts.append("<h3>Registry errors (from training)</h3>")
        parts.append(_table(["model", "split", "config type", "reference", "E RMSE (meV/atom)", "F RMSE (meV/Å)",
                             "frames"], rows))
    trajectory = [b for b in data["benchmarks"] if b.get("kind") == "errors" and "models" in (b.get("result") or {})]
    for b in trajectory:
        parts.append("<h3>MLMD-trajectory test set, every iteration's committee</h3>")
        parts.append(_test_set_errors(b))
    bench = [b for b in data["benchmarks"] if b.get("kind") == "errors" and b not in trajectory]
    if bench:
        parts.append("<h3>Benchmark errors</h3>")
        header = ["model", "test set", "reference", "group", "E RMSE (meV/atom)", "E MAE", "E p99", "E max",
                  "E RMSE offset-corr.", "E R²", "F RMSE (meV/Å)", "F MAE", "F p95", "F p99", "F max |ΔF|",
                  "S RMSE (GPa)"]
        rows, imgs = [], []
        for b in bench:
            res = b.get("result") or {}
            groups = [("all", res.get("overall") or {})]
            groups += [(f"config {k}", v) for k, v in (res.get("by_config_type") or {}).items()]
            groups += [(f"family {k}", v) for k, v in (res.get("by_family") or {}).items()]
            groups += [(f"element {k}", v) for k, v in (res.get("by_element") or {}).items()]
            for gname, g in groups:
                e, f = g.get("energy_per_atom") or {}, g.get("force_component") or {}
                fv, s = g.get("force_vector") or {}, g.get("stress") or {}
                rows.append([
                    b.get("model"), res.get("test_set", ""), b.get("reference", "none"), gname,
                    _milli(e.get("rmse")), _milli(e.get("mae")), _milli(e.get("p99")), _milli(e.get("max")),
                    _milli(e.get("rmse_offset_corrected")), e.get("r2"),
                    _milli(f.get("rmse")), _milli(f.get("mae")), _milli(f.get("p95")), _milli(f.get("p99")),
                    _milli(fv.get("max")), s.get("rmse"),
                ])
            imgs += [_img(b64, f"{b.get('model')} {title}") for title, b64 in (b.get("plots") or {}).items()]
        parts += [_table(header, rows), *imgs]
    return "".join(parts) or MISSING


def _section_verdict(data: dict[str, Any]) -> str:
    parts = []
    for campaign in data["campaigns"]:
        bench = campaign.get("benchmark") if isinstance(campaign.get("benchmark"), dict) else None
        name, state = campaign.get("name", campaign.get("_id")), campaign.get("state")
        if bench is None:
            parts.append(f"<p>campaign {_esc(name)}: state {_esc(state)}; its benchmark stage has not run yet "
                         "(it runs when the campaign stops)</p>")
            continue
        verdict = bench.get("verdict") or {}
        word = "PASS" if verdict.get("passed") else "FAIL"
        color = "#070" if verdict.get("passed") else "#a00"
        parts.append(f'<p style="font-size:1.3em">campaign {_esc(name)}: {_esc(state)}; verdict '
                     f'<b style="color:{color}">{word}</b></p>')
        parts.append(f'<p class="note">model {_esc(bench.get("model"))} (first member of committee '
                     f'{_esc(bench.get("committee"))}), against {_esc(bench.get("reference"))}</p>')
        rows = [[c.get("name"), c.get("target"), c.get("measured"), c.get("unit"),
                 "pass" if c.get("passed") else "FAIL"] for c in verdict.get("checks") or []]
        parts.append(_table(["target", "target value", "measured", "unit", "result"], rows))
    return "".join(parts) or MISSING


def _section_uncertainty(data: dict[str, Any]) -> str:
    parts = []
    for campaign in data["campaigns"]:
        rows, points = [], []
        for it in _iterations(campaign):
            a = it.get("assessment") if isinstance(it.get("assessment"), dict) else None
            spread = it.get("committee_spread") or {}
            windows = it.get("windows") or {}
            win = ", ".join(f"{f}: [{lo:.3g}, {hi:.3g}]" for f, (lo, hi) in windows.items())
            if a is None:
                rows.append([it.get("iteration"), spread.get("p50"), win, None, None, None, None, None])
                continue
            picks = [p for p in a.get("picks") or [] if isinstance(p, dict)]
            points += [(it.get("iteration"), p.get("max_force_spread"), p.get("max_force_error"), p.get("spot_check"))
                       for p in picks if p.get("max_force_spread") is not None]
            rows.append([it.get("iteration"), spread.get("p50"), win, len(picks), a.get("spearman"),
                         a.get("error_over_spread"), (a.get("summary") or {}).get("n_spot_checks"),
                         a.get("spot_check_max_error")])
        if not rows:
            continue
        parts.append(_table(["iteration", "validation spread p50 (eV/Å)", "trust windows applied (eV/Å)",
                             "labeled picks", "Spearman(spread, error)", "median error / spread", "spot checks",
                             "largest true error of a spot check (eV/Å)"], rows))
        if points:
            fig, (ax,) = new_figure(1, width=5.5)
            for k in sorted({p[0] for p in points}):
                sel = [p for p in points if p[0] == k]
                ax.scatter([p[1] for p in sel], [p[2] for p in sel], s=14, label=f"iteration {k}")
            checks = [p for p in points if p[3]]
            if checks:
                ax.scatter([p[1] for p in checks], [p[2] for p in checks], s=60, facecolors="none",
                           edgecolors="k", label="spot checks (called accurate)")
            hi = max(max(p[1] for p in points), max(p[2] for p in points))
            ax.plot([0, hi], [0, hi], "k--", lw=0.8)
            ax.set_xlabel("committee largest-atom force spread (eV/Å)")
            ax.set_ylabel("true largest-atom force error (eV/Å)")
            ax.legend(fontsize=7)
            fig.tight_layout()
            parts.append(_img(figure_to_base64(fig), "spread against error"))
    return "".join(parts) or MISSING


def _test_set_errors(b: dict[str, Any]) -> str:
    """The campaign's learning curve: every committee of every iteration on the one MLMD test set."""
    res = b.get("result") or {}
    models = [m for m in res.get("models") or [] if isinstance(m, dict)]
    rows = [[m.get("iteration"), m.get("kind"), m.get("model"), m.get("n_frames"), m.get("rmse_e_meV_atom"),
             m.get("rmse_f_meV_A"), m.get("mae_f_meV_A"), m.get("p95_f_meV_A"), m.get("max_f_meV_A")]
            for m in models]
    out = [f'<p class="note">{_esc(res.get("test_set", ""))}, labeled by {_esc(b.get("reference", ""))}</p>',
           _table(["trained in iteration", "kind", "model", "frames", "E RMSE (meV/atom)", "F RMSE (meV/Å)",
                   "F MAE", "F p95", "F max"], rows)]
    final = [m for m in models if m.get("kind") == "member"]
    if final:
        groups = final[-1].get("by_group") or {}
        out.append("<h4>final model by family, temperature and atoms</h4>")
        out.append(_table(["group", "F RMSE (meV/Å)", "F MAE", "F p95", "F max", "E RMSE (meV/atom)", "values"],
                          [[g, v.get("rmse_f_meV_A"), v.get("mae_f_meV_A"), v.get("p95_f_meV_A"),
                            v.get("max_f_meV_A"), v.get("rmse_e_meV_atom"), v.get("n")]
                           for g, v in sorted(groups.items())]))
        fig, axes = new_figure(2, width=4.5)
        for kind, style in (("member", "o-"), ("committee", "s--")):
            sel = [m for m in models if m.get("kind") == kind and m.get("iteration") is not None]
            if sel:
                x = [m["iteration"] for m in sel]
                axes[0].plot(x, [m["rmse_f_meV_A"] for m in sel], style, label=kind)
                axes[1].plot(x, [m["rmse_e_meV_atom"] for m in sel], style, label=kind)
        axes[0].set_ylabel("test F RMSE (meV/Å)")
        axes[1].set_ylabel("test E RMSE (meV/atom)")
        for ax in axes:
            ax.set_xlabel("committee of iteration")
            ax.legend(fontsize=7)
        fig.tight_layout()
        out.append(_img(figure_to_base64(fig), "learning curve across iterations"))
    return "".join(out)


def _milli(x: Any) -> float | None:
    return None if x is None else 1e3 * float(x)


def _section_kinds(data: dict[str, Any], kinds: tuple[str, ...]) -> str:
    bench = [b for b in data["benchmarks"] if b.get("kind") in kinds]
    if not bench:
        return MISSING
    parts = []
    for kind in kinds:
        items = [b for b in bench if b.get("kind") == kind]
        if not items:
            continue
        keys: list[str] = []
        for b in items:
            keys += [k for k in (b.get("summary") or {}) if k not in keys]
        rows = [[b.get("model"), b.get("reference", "none"), *((b.get("summary") or {}).get(k) for k in keys),
                 b.get("note", "")] for b in items]
        parts.append(f"<h3>{_esc(kind)}</h3>")
        parts.append(_table(["model", "reference", *keys, "note"], rows))
        for b in items:
            for title, b64 in (b.get("plots") or {}).items():
                parts.append(_img(b64, f"{b.get('model')} {title}"))
    return "".join(parts)


def _section_efficiency(data: dict[str, Any]) -> str | None:
    from mlipflow.benchmark.efficiency import report_section

    return report_section(data["benchmarks"])


def _rejected(stores: Any, name: str) -> list[dict[str, Any]]:
    """The campaign's filtered and failed labels (see :func:`mlipflow.labeling.ledger.rejected_labels`)."""
    from mlipflow.labeling.ledger import rejected_labels

    try:
        return rejected_labels(stores.frames, campaign=name)
    except Exception as exc:
        logger.warning("report: cannot read the filtered and failed labels: %s", exc)
        return []


def _section_filtered(data: dict[str, Any]) -> str:
    """Labels a sanity filter rejected or that failed, with their reasons (none: says so)."""
    rows = data.get("rejected") or []
    if not rows:  # nothing labeled yet is not the same as nothing rejected
        return "<p>no label of this campaign was filtered or failed</p>" if data.get("versions") else MISSING
    table = _table(["frame", "status", "iteration", "family", "formula", "atoms", "attempts", "reason"],
                   [[r["frame"][:12], r["status"], r["iteration"], r["family"], r["formula"], r["n_atoms"],
                     r["attempts"], r["reason"]] for r in rows])
    note = "kept in the store, never trained on; <code>mlipflow dataset filtered NAME</code> lists them"
    return f'<p class="note">{note}</p>{table}'


PROPERTY_KINDS = ("eos", "elastic", "phonon_dos", "rdf", "adf", "vdos", "diffusion", "arrhenius", "conductivity",
                  "energetics")


def render(data: dict[str, Any]) -> str:
    """The HTML page for gathered ``data`` (see :func:`gather`)."""
    bodies = {
        "verdict": _section_verdict(data),
        "summary": _section_summary(data),
        "dataset": _section_dataset(data),
        "selection": _section_selection(data),
        "learning-curves": _section_learning(data),
        "errors": _section_errors(data),
        "uncertainty": _section_uncertainty(data),
        "properties": _section_kinds(data, PROPERTY_KINDS),
        "stability": _section_kinds(data, ("stability",)),
        "speed": _section_kinds(data, ("speed",)),
        "filtered": _section_filtered(data),
    }
    optional = {"efficiency": _section_efficiency(data)}
    bodies.update({sid: body for sid, body in optional.items() if body})
    titles = {**SECTIONS, **OPTIONAL_SECTIONS}
    nav = " · ".join(f'<a href="#{sid}">{_esc(titles[sid])}</a>' for sid in bodies)
    sections = "".join(
        f'<section id="{sid}"><h2>{_esc(titles[sid])}</h2>{body}</section>' for sid, body in bodies.items()
    )
    when = datetime.now(UTC).isoformat(timespec="seconds")
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>mlipflow report: {_esc(data["name"])}'
        f"</title><style>{CSS}</style></head><body><h1>mlipflow report: {_esc(data['name'])}</h1>"
        f'<p class="note">generated {when}</p><nav>{nav}</nav>{sections}</body></html>'
    )


def report(name: str, out: str | Path | None = None, *, stores: Any = None) -> Path:
    """Write the report of ``name`` (campaign, model id, model name or dataset name) as one HTML file.

    Parameters
    ----------
    name
        What to report on.
    out
        Output file (default ``<MLIPFLOW_HOME>/reports/<name>.html``).
    stores
        Default :func:`mlipflow.storage.get_stores`.

    Returns
    -------
    Path
        The file written.
    """
    from mlipflow.storage import get_stores

    stores = stores or get_stores()
    path = Path(out) if out else Path(stores.settings.home) / "reports" / f"{name}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(gather(stores, name)), encoding="utf-8")
    logger.info("report of %s written to %s", name, path)
    return path
