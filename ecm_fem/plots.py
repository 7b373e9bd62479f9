"""The figures a user looks at first, made from a run folder's tables (so ``ecm-fem plot DIR`` can
remake them at any time): ``plots/history.png`` (V_we, V_cell and the applied current over time;
focusing factor over time), ``plots/interface.png`` (i_n, eta, with mechanics the Li pressure
and the electrolyte's normal stress, with a binary electrolyte the salt concentration, with
vacancies their concentration in the Li, along the interface, against the arc length in 2D, at
up to five output times) and ``plots/fields.png`` (phi, |i|, the salt and vacancy concentrations
and the von Mises stress at the last output time, from the VTX files: ``snapshot.py``).
Matplotlib with the Agg backend: no display needed.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from ecm_fem.snapshot import SnapshotError, field_figure

MAX_PROFILES = 5


class PlotError(ValueError):
    """The folder holds no run tables to plot."""


def _read_table(path: Path) -> dict[str, np.ndarray]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return {}
    return {k: np.array([float(r[k]) if r[k] not in ("", "nan") else np.nan for r in rows])
            for k in rows[0]}


def make_plots(run_dir: str | Path) -> list[Path]:
    """Write the PNGs of ``run_dir`` into ``run_dir/plots`` and return their paths (call on one
    rank). Raises ``PlotError`` when the folder has no history.csv."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    history_file = run_dir / "history.csv"
    if not history_file.is_file():
        raise PlotError(f"{run_dir}: no history.csv (is it an ecm_fem run folder?)")
    history = _read_table(history_file)
    if not history:
        raise PlotError(f"{history_file}: no time steps to plot")
    interface_file = run_dir / "interface.csv"
    profiles = _read_table(interface_file) if interface_file.is_file() else {}
    out = run_dir / "plots"
    out.mkdir(exist_ok=True)
    written = []

    t = history["time"]
    mechanics = "max_p_li" in history
    fig, axes = plt.subplots(2 + mechanics, 1, figsize=(7, 6 + 2.5 * mechanics), sharex=True,
                             layout="constrained")
    ax_v, ax_f = axes[:2]
    ax_v.plot(t, 1e3 * history["V_we"], "o-", label="V_we")
    ax_v.plot(t, 1e3 * history["V_cell"], "s--", mfc="none", label="V_cell")
    ax_v.set_ylabel("potential [mV]")
    ax_v.axhline(0.0, color="0.7", lw=0.8)
    ax_i = ax_v.twinx()
    ax_i.step(t, history["i_app"], where="pre", color="tab:red", alpha=0.6)
    ax_i.set_ylabel("applied current [A/m$^2$]", color="tab:red")
    ax_v.legend(loc="best")
    ax_f.plot(t, history["focusing_factor"], "o-", color="tab:green")
    ff = history["focusing_factor"][np.isfinite(history["focusing_factor"])]
    if len(ff):  # a uniform interface: show 1 plainly, not rounding noise around it
        pad = max(0.05 * (ff.max() - ff.min()), 0.01 * ff.max())
        ax_f.set_ylim(min(1.0, ff.min()) - pad, ff.max() + pad)
    ax_f.ticklabel_format(axis="y", useOffset=False)
    ax_f.set_ylabel("focusing factor max|i_n| / mean [-]")
    if mechanics:
        ax_p = axes[2]
        ax_p.plot(t, 1e-6 * history["max_p_li"], "o-", color="tab:purple", label="max p_Li")
        ax_p.set_ylabel("max p_Li [MPa]", color="tab:purple")
        tips = [k.removeprefix("KI_over_KIc_") for k in history if k.startswith("KI_over_KIc_")]
        if tips:  # K_I / K_Ic of every crack tip (K_I < 0: the crack is squeezed)
            ax_k = ax_p.twinx()
            for tip in tips:
                ax_k.plot(t, history[f"KI_over_KIc_{tip}"], "s--", mfc="none",
                          label=f"K_I / K_Ic, {tip}")
            ax_k.axhline(0.0, color="0.7", lw=0.8)
            ax_k.set_ylabel("K_I / K_Ic [-]")
            ax_k.legend(loc="best", fontsize="small")
    axes[-1].set_xlabel("time [s]")
    fig.suptitle(f"{run_dir.name}: cell history")
    written.append(_save(fig, out / "history.png"))
    plt.close(fig)

    if profiles:
        times = np.unique(profiles["time"])
        chosen = times[np.unique(np.linspace(0, len(times) - 1, MAX_PROFILES).round().astype(int))]
        stresses = "p_li" in profiles and bool(np.isfinite(profiles["p_li"]).any())
        salt = "c" in profiles and bool(np.isfinite(profiles["c"]).any())
        vacancies = "c_v" in profiles and bool(np.isfinite(profiles["c_v"]).any())
        # along the curve where it is known (2D): the walls of a flaw or a void do not collapse
        along = "s" if "s" in profiles and np.isfinite(profiles["s"]).all() else "x"
        # a 3D interface is a surface: its points against x are a cloud, not a curve
        style = "." if "z" in profiles and np.ptp(profiles["z"]) > 0 else ".-"
        n_panels = 2 + stresses + salt + vacancies
        fig, axes = plt.subplots(n_panels, 1, figsize=(7, 3 + 2.5 * (n_panels - 1)),
                                 sharex=True, layout="constrained")
        ax_i, ax_e = axes[:2]
        for time in chosen:
            sel = profiles["time"] == time
            order = np.argsort(profiles[along][sel], kind="stable")
            x = 1e6 * profiles[along][sel][order]
            line, = ax_i.plot(x, profiles["i_n"][sel][order], style, ms=3, label=f"t = {time:g} s")
            ax_e.plot(x, 1e3 * profiles["eta"][sel][order], style, ms=3)
            if stresses:
                axes[2].plot(x, 1e-6 * profiles["p_li"][sel][order], style, ms=3,
                             color=line.get_color())
                axes[2].plot(x, -1e-6 * profiles["sigma_nn_electrolyte"][sel][order], ":",
                             color=line.get_color())
            if salt:
                axes[2 + stresses].plot(x, profiles["c"][sel][order], style, ms=3,
                                        color=line.get_color())
            if vacancies:
                axes[-1].plot(x, profiles["c_v"][sel][order], style, ms=3,
                              color=line.get_color())
        if stresses:
            axes[2].set_ylabel("p_Li (solid), -sigma_nn electrolyte\n(dotted) [MPa]")
            axes[2].axhline(0.0, color="0.7", lw=0.8)
        if salt:
            axes[2 + stresses].set_ylabel("salt concentration c\nat the interface [mol/m$^3$]")
            axes[2 + stresses].set_ylim(bottom=0.0)
        if vacancies:
            axes[-1].set_ylabel("Li-vacancy concentration c_v\nat the interface [mol/m$^3$]")
            axes[-1].set_ylim(bottom=0.0)
        ax_i.set_ylabel("i_n [A/m$^2$] (anodic +)")
        ax_i.axhline(0.0, color="0.7", lw=0.8)
        ax_i.legend(loc="best", fontsize="small")
        ax_e.set_ylabel("eta = V_we - phi - U_mech [mV]")
        axes[-1].set_xlabel("arc length s along the interface from its left end [um]"
                            if along == "s" else "x along the interface [um]")
        fig.suptitle(f"{run_dir.name}: interface profiles")
        written.append(_save(fig, out / "interface.png"))
        plt.close(fig)

    if (run_dir / "fields").is_dir():
        try:
            fig = field_figure(run_dir)
        except SnapshotError as exc:
            raise PlotError(f"plots/fields.png not made: {exc}") from exc
        written.append(_save(fig, out / "fields.png"))
        plt.close(fig)
    return written


def _save(fig, path: Path) -> Path:
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.png")
    fig.savefig(tmp, dpi=120)
    os.replace(tmp, path)
    return path
