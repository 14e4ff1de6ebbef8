"""Keep the development utterances of speakers that no adapter compared here trained on.

speechocean762-full's development split (12 speakers, ``data.dev_speakers=12``) is held out of the
full-data runs' training; 8 of its speakers are also outside the 800-utterance subset. Given
adapters' ``evaluate.py ... split=dev`` folders, this writes their predictions and references for
those speakers' 160 utterances, named ``<name>-predictions.json`` and ``<name>-references.json``,
in OUT (README.md beside this file has the commands)::

    python bench/unseen_speakers/select_unseen.py OUT NAME=EVAL_DIR [NAME=EVAL_DIR ...]
"""

import json
import sys
from pathlib import Path

from apa.data import Speechocean762

subset = {u.speaker for u in Speechocean762("../shared/data/speechocean762").utterances("train")}
dev = Speechocean762(root="../shared/data/speechocean762-full", dev_speakers=12, dev_seed=0).utterances("dev")
kept = [u.id for u in dev if u.speaker not in subset]
out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
for named in sys.argv[2:]:
    name, _, folder = named.partition("=")
    for kind in ("predictions", "references"):
        entries = json.loads((Path(folder) / f"{kind}.json").read_text())
        (out / f"{name}-{kind}.json").write_text(json.dumps({uid: entries[uid] for uid in kept}, indent=1))
print(f"{len(kept)} utterances of {len({u.speaker for u in dev if u.id in kept})} speakers")
