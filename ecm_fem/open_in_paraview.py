"""Open the fields of this ecm_fem run folder in ParaView, coloured and ready to look at.

A run copies this script next to its results; it finds the files relative to itself, so the run
folder can be moved or copied. It needs only ParaView (5.13 or newer), not ecm_fem.

    pvpython open_in_paraview.py                                # what loads (files, arrays, steps)
    pvpython open_in_paraview.py --screenshot run.png           # a 1200x800 picture, off-screen
    xvfb-run -a pvpython open_in_paraview.py --screenshot run.png   # the same without a display
    pvpython open_in_paraview.py --field pressure --time first --screenshot p.png
    pvpython open_in_paraview.py path/to/another/run --screenshot other.png
    paraview --state=RUN_FOLDER/open_in_paraview.py             # the GUI (or File > Load State)
    cd RUN_FOLDER && paraview --script=open_in_paraview.py      # the GUI, from the run folder

With --script (and "Run Script" in the GUI's Python shell) ParaView does not tell the script
where it lives, so the run folder is then the current directory. Every ``fields/*.bp`` (VTX,
written by DOLFINx) is opened with the ADIOS2VTXReader. The main view shows the magnitude of the
current density in the electrolyte (the rest of the cell in grey); runs with mechanics get a
second view with the von Mises stress of the whole cell, on a log scale. ``--field NAME`` shows
that array alone (phi, current_density, u, von_mises, pressure, ...).
Runs on several ranks hold the points and cells shared between ranks once per rank: harmless
for colouring, but filters that integrate count them twice.
"""

import argparse
import os
import sys

import numpy as np
from paraview import servermanager, simple
from vtkmodules.util import numpy_support

UNITS = {"phi": "V", "current_density": "A/m^2", "u": "m", "stress": "Pa", "von_mises": "Pa",
         "pressure": "Pa", "equivalent_creep_strain": "-"}
TITLES = {"phi": "ionic potential", "current_density": "current density",
          "u": "displacement", "stress": "stress (norm)", "von_mises": "von Mises stress",
          "pressure": "pressure", "equivalent_creep_strain": "equivalent creep strain"}
MAGNITUDES = {"current_density", "u", "stress", "von_mises", "equivalent_creep_strain"}
SYMMETRIC = {"pressure"}  # blue (tension) - white (0) - red (compression)
LOG_SCALE = {"von_mises"}
CLIP_PERCENTILE = 99
WHOLE_CELL = "displacement"  # the file on the mesh of the whole cell (Li and electrolyte)
MAIN_FIELD, MECHANICS_FIELD = "current_density", "von_mises"
RESOLUTION = [1200, 800]


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", nargs="?", help="run folder (default: this script's folder)")
    parser.add_argument("--screenshot", metavar="FILE.png", help="render off-screen, save, exit")
    parser.add_argument("--field", metavar="NAME", help="colour by this array only")
    parser.add_argument("--time", default="last", help="last (default), first or a time in s")
    return parser.parse_args(argv)


def default_run_dir():
    script = globals().get("__file__")  # None under paraview --script
    return os.path.dirname(os.path.abspath(script)) if script else os.getcwd()


def open_fields(run_dir):
    """A reader per ``fields/*.bp`` folder, by name (``phi``, ``current_density``, ...)."""
    fields_dir = os.path.join(run_dir, "fields")
    names = sorted(n for n in os.listdir(fields_dir) if n.endswith(".bp")) \
        if os.path.isdir(fields_dir) else []
    if not names:
        sys.exit(f"open_in_paraview: no fields/*.bp in {run_dir} (is it an ecm_fem run folder?)")
    return {name[:-3]: simple.ADIOS2VTXReader(registrationName=name,
                                              FileName=os.path.join(fields_dir, name))
            for name in names}


def array_names(reader):
    return [(name, "POINTS") for name in reader.PointData.keys() if not name.startswith("vtk")] \
        + [(name, "CELLS") for name in reader.CellData.keys()]


def print_summary(run_dir, readers):
    print(f"run folder: {run_dir}")
    for name, reader in readers.items():
        info = reader.GetDataInformation()
        times = list(reader.TimestepValues)
        arrays = ", ".join(f"{a} ({where.lower()})" for a, where in array_names(reader))
        span = f"t = {times[0]:g} .. {times[-1]:g} s" if times else "no time"
        print(f"  fields/{name}.bp: {info.GetNumberOfPoints()} points, "
              f"{info.GetNumberOfCells()} cells, {len(times)} time steps ({span}); {arrays}")


def choose_time(readers, request):
    """The time step to show: first, last or the stored time nearest to a value in s."""
    times = sorted({t for r in readers.values() for t in r.TimestepValues})
    if not times:
        return 0.0
    if request in ("first", "last"):
        return times[0] if request == "first" else times[-1]
    return min(times, key=lambda t: abs(t - float(request)))


def find_array(readers, field):
    """(reader, association) of the first file holding array ``field``, or None."""
    for reader in readers.values():
        for name, association in array_names(reader):
            if name == field:
                return reader, association
    return None


def values_at(reader, association, field, time):
    """The values of ``field`` at ``time`` (magnitudes of vectors and tensors) as one array."""
    reader.UpdatePipeline(time)
    blocks = servermanager.Fetch(reader).NewIterator()
    blocks.InitTraversal()
    values = []
    while not blocks.IsDoneWithTraversal():
        block = blocks.GetCurrentDataObject()
        data = block.GetPointData() if association == "POINTS" else block.GetCellData()
        array = numpy_support.vtk_to_numpy(data.GetArray(field))
        values.append(np.linalg.norm(array, axis=1) if array.ndim == 2 else array)
        blocks.GoToNextItem()
    return np.concatenate(values)


def colour_range(values, field):
    """(low, high, log scale) of the colour map. A singular peak at a crack tip or a corner
    would take the whole map, so it ends at the 99th percentile (the view's title gives the
    true range): magnitudes from 0, the pressure symmetric about 0 (white), other fields from
    their 1st percentile. The von Mises stress spans decades around a flaw: a log scale."""
    p_low, p_high = np.percentile(values, [100 - CLIP_PERCENTILE, CLIP_PERCENTILE])
    if field in LOG_SCALE:
        return max(p_low, values.max() * 1e-6), values.max(), True
    if field in SYMMETRIC:
        p_high = max(abs(p_low), abs(p_high))
        p_low = -p_high
    elif field in MAGNITUDES:
        p_low = 0.0
    span = max(p_high - p_low, 1e-6 * max(abs(p_low), abs(p_high)), 1e-30)  # not round-off
    return p_low, p_low + span, False


def show_field(view, reader, association, field, time, flat):
    """Colour ``reader`` by ``field`` with a titled colour bar and a title with the range."""
    values = values_at(reader, association, field, time)
    low, high, log_scale = colour_range(values, field)
    display = simple.Show(reader, view)
    display.Representation = "Surface"
    if flat:  # unlit, so that the colours are those of the colour bar
        display.Ambient, display.Diffuse = 1.0, 0.0
    simple.ColorBy(display, (association, field, "Magnitude"))
    lut = simple.GetColorTransferFunction(field)
    lut.ApplyPreset("Cool to Warm" if field in SYMMETRIC else "Viridis (matplotlib)", True)
    lut.AutomaticRescaleRangeMode = "Never"
    lut.RescaleTransferFunction(low, high)
    if log_scale:
        lut.MapControlPointsToLogSpace()
        lut.UseLogScale = 1
    title, unit = TITLES.get(field, field), UNITS.get(field, "?")
    bar = simple.GetScalarBar(lut, view)
    bar.Title = f"{title} ({unit})"
    bar.ComponentTitle = ""
    bar.TitleFontSize = bar.LabelFontSize = 16
    bar.ScalarBarLength = 0.6
    bar.AddRangeLabels = 0
    bar.UseCustomLabels = 1
    bar.CustomLabels = list((np.geomspace if log_scale else np.linspace)(low, high, 5))
    bar.AutomaticLabelFormat = 0
    bar.LabelFormat = "%-#.3g"
    display.SetScalarBarVisibility(view, True)
    label = simple.Text(registrationName=f"title {field}",
                        Text=f"{title}\n{values.min():.3g} .. {values.max():.3g} {unit} at t = "
                             f"{time:g} s")
    label_display = simple.Show(label, view)
    label_display.WindowLocation = "Upper Center"
    label_display.Justification = "Center"
    label_display.FontSize = 16
    clock = simple.Show(simple.AnnotateTime(registrationName=f"time {field}",
                                            Format="t = {time:g} s"), view)
    clock.WindowLocation = "Lower Left Corner"
    clock.FontSize = 16


def show_backdrop(view, readers, shown, bounds):
    """The whole cell (the displacement's mesh) in light grey behind the coloured field: the
    Li around the electrolyte's fields."""
    cell = readers.get(WHOLE_CELL)
    if cell is None or cell is shown:
        return
    backdrop = simple.Show(cell, view)
    backdrop.ColorArrayName = ["POINTS", ""]
    backdrop.AmbientColor = backdrop.DiffuseColor = [0.85, 0.85, 0.85]
    backdrop.Ambient, backdrop.Diffuse = 1.0, 0.0
    x0, x1, y0, y1, _, _ = bounds
    backdrop.Translation = [0.0, 0.0, -1e-3 * max(x1 - x0, y1 - y0)]  # behind, seen along z


def frame(views, bounds, flat):
    """The same camera for all views, on the bounds of every file; a flat (2D) mesh is seen
    along z with the 2D interaction mode."""
    x0, x1, y0, y1, z0, z1 = bounds
    for view in views:
        view.OrientationAxesVisibility = 0
        if flat:
            view.InteractionMode = "2D"
            view.CameraFocalPoint = [(x0 + x1) / 2, (y0 + y1) / 2, z0]
            view.CameraPosition = [(x0 + x1) / 2, (y0 + y1) / 2, z0 + 1.0]
            view.CameraViewUp = [0.0, 1.0, 0.0]
        margin = 0.08 * (y1 - y0)  # room for the title above the mesh
        view.ResetCamera(x0, x1, y0 - margin, y1 + margin, z0, z1, False)
    for number, other in enumerate(views[1:], start=1):
        simple.AddCameraLink(views[0], other, f"ecm_fem camera {number}")


def build_views(readers, field, time):
    """The main view (``field`` or the current density) and, with mechanics, the stress view."""
    wanted = [field] if field else [MAIN_FIELD, MECHANICS_FIELD]
    shown = [(name, find_array(readers, name)) for name in wanted]
    shown = [(name, found) for name, found in shown if found]
    if not shown:
        available = sorted({a for r in readers.values() for a, _ in array_names(r)})
        sys.exit(f"open_in_paraview: no array {field!r}; available: {', '.join(available)}")
    boxes = np.array([r.GetDataInformation().GetBounds() for r in readers.values()])
    bounds = np.column_stack([boxes[:, 0::2].min(axis=0), boxes[:, 1::2].max(axis=0)]).ravel()
    x0, x1, y0, y1, z0, z1 = bounds
    flat = z1 - z0 <= 1e-12 * max(x1 - x0, y1 - y0)
    simple.LoadPalette("WhiteBackground")
    views = [simple.GetActiveViewOrCreate("RenderView")]
    layout = simple.GetLayout(views[0])
    if len(shown) == 2:
        views.append(simple.CreateView("RenderView"))
        simple.AssignViewToLayout(view=views[1], layout=layout, hint=0)
    for view, (name, (reader, association)) in zip(views, shown, strict=True):
        view.ViewTime = time
        show_field(view, reader, association, name, time, flat)
        show_backdrop(view, readers, reader, bounds)
    frame(views, bounds, flat)
    return layout


def main(argv):
    args = parse_args(argv)
    run_dir = os.path.abspath(args.run_dir or default_run_dir())
    readers = open_fields(run_dir)
    print_summary(run_dir, readers)
    time = choose_time(readers, args.time)
    scene = simple.GetAnimationScene()
    scene.UpdateAnimationUsingDataTimeSteps()
    scene.AnimationTime = time
    layout = build_views(readers, args.field, time)
    print(f"showing t = {time:g} s")
    if args.screenshot:
        layout.SetSize(*RESOLUTION)
        simple.SaveScreenshot(args.screenshot, layout, ImageResolution=RESOLUTION)
        print(f"screenshot: {os.path.abspath(args.screenshot)}")


if __name__ in ("__main__", "__vtkconsole__"):  # the latter: loaded as a ParaView state file
    main(sys.argv[1:])
