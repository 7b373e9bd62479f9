#!/usr/bin/env bash
# Remake the pictures of the README (docs/figures/*.png) from the example configs: each config
# runs under mpirun -n 2 into results/figures/<name>, and the plot the README shows is copied,
# shrunk to 900 px wide with a 256-colour palette (a few tens of kB each). Runs inside the
# container: `make figures`. About 8 minutes on 2 cores.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
OUT="${FIGURE_RUNS:-results/figures}"

# config (in configs/) | plot of the run | picture in docs/figures
FIGURES=(
    "interfacial_void_li_llzo|interface.png|interfacial_void_interface.png"
    "interfacial_void_3d_li_llzo|fields.png|interfacial_void_3d_fields.png"
    "li_protrusion_li_llzo|interface.png|li_protrusion_llzo_interface.png"
    "li_protrusion_li_peo|interface.png|li_protrusion_peo_interface.png"
    "electrolyte_flaw_li_llzo|history.png|electrolyte_flaw_history.png"
    "sei_heterogeneous_li_lpscl|fields.png|sei_heterogeneous_fields.png"
    "polycrystal_li_llzo|fields.png|polycrystal_fields.png"
)

for entry in "${FIGURES[@]}"; do
    IFS="|" read -r name plot picture <<<"$entry"
    echo "=== $name -> docs/figures/$picture"
    mpirun -n 2 --oversubscribe python3 -m ecm_fem.cli run "configs/$name.yaml" \
        -o "$OUT/$name" --overwrite
    python3 - "$OUT/$name/plots/$plot" "docs/figures/$picture" <<'PY'
import sys
from PIL import Image

source, target = sys.argv[1:]
image = Image.open(source).convert("RGB")
width = 900
image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)
PY
done
ls -l docs/figures
