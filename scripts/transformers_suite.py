"""Run transformers' own VideoMAE tests against this library's classes (a developer tool).

    python scripts/transformers_suite.py                 # ours in place of transformers' classes
    python scripts/transformers_suite.py --reference     # transformers' own classes, for the baseline
    python scripts/transformers_suite.py --compare       # both, and the tests whose outcome differs

What it runs: `tests/models/videomae/test_modeling_videomae.py` (models and, through
`ConfigTester`, the config) and `test_image_processing_videomae.py`, with the shared mixins
(`test_modeling_common.py`, `test_configuration_common.py`, `test_image_processing_common.py`,
`test_pipeline_mixin.py`) taken from the transformers source distribution of the pinned version,
downloaded from PyPI with pip. The sdist does not ship `tests/models/`: the two VideoMAE files are
read from the public repository at the commits pinned below (downloaded when GitHub is reachable,
or given with `--videomae-tests DIR`) and checked against their sha256. Nothing is copied into this
repository; everything lives in the cache folder.

Three helper modules the mixins import are not in the sdist either; the harness writes stand-ins:
`tests/generation/test_utils.py` (an empty `GenerationTesterMixin`: only `issubclass` checks use
it), `tests/exporters/test_export.py` (an empty `ExportTesterMixin`: the export tests drive
transformers' exporters, ONNX / ExecuTorch / OpenVINO / TensorRT, and are not run) and
`tests/utils/test_configuration_utils.py` (the `config_common_kwargs` dict of 5.x). The same
stand-ins serve both runs, so the baseline and ours are the same test set.

The swap: a conftest sets our classes as the attributes of `transformers` and
`transformers.models.videomae` before the test modules import them, so `from transformers import
VideoMAEModel`, the auto mappings (`MODEL_FOR_VIDEO_CLASSIFICATION_MAPPING`) and the image
processor lookup all give ours. Runs offline (HF_HUB_OFFLINE=1) on the CPU.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

TRANSFORMERS_VERSION = "5.24.0"
REPO_FILES = {  # file in tests/models/videomae -> (commit of huggingface/transformers, sha256)
    "test_modeling_videomae.py": (
        "040e1a7e4bb4f48ff62dfbbb1f6f8eff23e894ac",
        "d038e564821a08c3bf44e1bf58197065999958d1916eed18928676a00e6cb545",
    ),
    "test_image_processing_videomae.py": (
        "074975050c719fefd6f7bbff8152f2e5eaf2443f",
        "11534a737aa35fc375045143decb1d97a138ebe78bc6fd65d2d81a7475dc165c",
    ),
}
SDIST_FILES = ["test_modeling_common.py", "test_configuration_common.py", "test_image_processing_common.py",
               "test_pipeline_mixin.py", "test_training_mixin.py", "test_tensor_parallel_mixin.py"]
STANDINS = {
    "generation/test_utils.py": "class GenerationTesterMixin:\n    pass\n",
    "exporters/test_export.py": "class ExportTesterMixin:\n    pass\n",
    # transformers 5.x tests/utils/test_configuration_utils.py: the kwargs every config takes.
    "utils/test_configuration_utils.py": (
        "config_common_kwargs = {\n"
        '    "return_dict": False,\n    "output_hidden_states": True,\n    "output_attentions": True,\n'
        '    "dtype": "float16",\n    "chunk_size_feed_forward": 5,\n    "architectures": ["BertModel"],\n'
        '    "id2label": {0: "label"},\n    "label2id": {"label": "0"},\n    "problem_type": "regression",\n}\n'
    ),
    # Pipeline tests download tiny models from the hub: offline, an empty summary skips them.
    "utils/tiny_model_summary.json": "{}\n",
}
# Imported by the image processing mixin from the repository's utils/ folder (fixture images by URL).
FETCH_HELPER = "def url_to_local_path(url, **kwargs):\n    return url\n"
SWAP_CONFTEST = '''
import os

if os.environ.get("VIDEOMAE_SWAP") == "1":
    # The pipeline mixin re-imports transformers from a path (a new module object): import the
    # mixins first, then swap in the module that is current.
    import tests.test_image_processing_common  # noqa: F401
    import tests.test_modeling_common  # noqa: F401
    import tests.test_pipeline_mixin  # noqa: F401
    import transformers
    import transformers.models.videomae as hf_videomae
    from transformers.models.auto import image_processing_auto

    import videomae

    for _name in ("VideoMAEConfig", "VideoMAEModel", "VideoMAEForPreTraining", "VideoMAEForVideoClassification",
                  "VideoMAEImageProcessor", "VideoMAEFeatureExtractor"):
        setattr(transformers, _name, getattr(videomae, _name))
        setattr(hf_videomae, _name, getattr(videomae, _name))
    # One processor (tensor-based) in place of transformers' two backends.
    image_processing_auto.IMAGE_PROCESSOR_MAPPING_NAMES["videomae"] = {"torchvision": "VideoMAEImageProcessor"}
'''


def cache_dir() -> Path:
    return Path(os.environ.get("VIDEOMAE_SUITE_CACHE", Path.home() / ".cache" / "videomae" / "transformers-suite"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sdist_tests(cache: Path) -> Path:
    """The sdist's tests/ folder, downloaded from PyPI once."""
    root = cache / f"transformers-{TRANSFORMERS_VERSION}"
    if (root / "tests").is_dir():
        return root / "tests"
    cache.mkdir(parents=True, exist_ok=True)
    archive = cache / f"transformers-{TRANSFORMERS_VERSION}.tar.gz"
    if not archive.is_file():
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                        f"transformers=={TRANSFORMERS_VERSION}", "-d", str(cache)], check=True)
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(f"transformers-{TRANSFORMERS_VERSION}/tests/")]
        tar.extractall(cache, members=members, filter="data")
    return root / "tests"


def videomae_tests(cache: Path, given: Path | None) -> Path:
    """The two VideoMAE test files, checked against the pinned hashes."""
    folder = given or cache / "videomae-tests"
    folder.mkdir(parents=True, exist_ok=True)
    for name, (commit, digest) in REPO_FILES.items():
        path = folder / name
        if not path.is_file():
            url = f"https://raw.githubusercontent.com/huggingface/transformers/{commit}/tests/models/videomae/{name}"
            try:
                with urllib.request.urlopen(url, timeout=30) as response:
                    path.write_bytes(response.read())
            except OSError as err:
                raise SystemExit(f"{path}: missing, and {url} could not be downloaded ({err}); put the file "
                                 "there (or pass --videomae-tests DIR)") from None
        if sha256(path) != digest:
            raise SystemExit(f"{path}: sha256 {sha256(path)}, expected {digest} (the file at commit {commit})")
    return folder


def build_tree(cache: Path, given: Path | None) -> Path:
    """A tests/ package laid out as in the transformers repository."""
    src, vm = sdist_tests(cache), videomae_tests(cache, given)
    tree = cache / "tree"
    shutil.rmtree(tree, ignore_errors=True)
    tests = tree / "tests"
    (tests / "models" / "videomae").mkdir(parents=True)
    for name in SDIST_FILES:
        shutil.copy(src / name, tests / name)
    for rel, text in STANDINS.items():
        (tests / rel).parent.mkdir(parents=True, exist_ok=True)
        (tests / rel).write_text(text)
    for package in ["", "models", "models/videomae", "generation", "exporters", "utils"]:
        (tests / package / "__init__.py").touch()
    for name in REPO_FILES:
        shutil.copy(vm / name, tests / "models" / "videomae" / name)
    (tree / "utils").mkdir()
    (tree / "utils" / "fetch_hub_objects_for_ci.py").write_text(FETCH_HELPER)
    import transformers  # the mixins import `src/transformers` from the repository root: the installed one

    (tree / "src").mkdir()
    (tree / "src" / "transformers").symlink_to(Path(transformers.__file__).parent, target_is_directory=True)
    (tree / "conftest.py").write_text(SWAP_CONFTEST)
    return tree


def run(tree: Path, swap: bool, extra: list[str]) -> dict[str, str]:
    """Run pytest; returns {test id: passed | failed | skipped}."""
    report = tree / ("ours.xml" if swap else "reference.xml")
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", VIDEOMAE_SWAP="1" if swap else "0",
               CUDA_VISIBLE_DEVICES="")
    src = Path(__file__).resolve().parents[1] / "src"
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(src), str(tree), env.get("PYTHONPATH", "")] if p)
    subprocess.run([sys.executable, "-m", "pytest", "-q", "--tb=no", "-p", "no:warnings", "-p", "no:cacheprovider",
                    "--rootdir", str(tree),
                    f"--junitxml={report}", "tests/models/videomae", *extra], cwd=tree, env=env)
    outcomes: dict[str, str] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        test_id = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        tags = {child.tag for child in case}
        outcomes[test_id] = "failed" if tags & {"failure", "error"} else "skipped" if "skipped" in tags else "passed"
    return outcomes


def summary(outcomes: dict[str, str]) -> str:
    counts = {k: sum(v == k for v in outcomes.values()) for k in ("passed", "failed", "skipped")}
    return ", ".join(f"{n} {k}" for k, n in counts.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", action="store_true", help="run transformers' own classes only")
    parser.add_argument("--compare", action="store_true", help="run both and list the differences")
    parser.add_argument("--videomae-tests", type=Path, help="folder with the two pinned VideoMAE test files")
    parser.add_argument("--json", type=Path, help="write the outcomes as JSON here")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (e.g. -k config)")
    args = parser.parse_args()
    tree = build_tree(cache_dir(), args.videomae_tests)
    results: dict[str, dict[str, str]] = {}
    if args.reference or args.compare:
        results["transformers"] = run(tree, False, args.pytest_args)
    if not args.reference:
        results["videomae"] = run(tree, True, args.pytest_args)
    for name, outcomes in results.items():
        print(f"{name}: {summary(outcomes)}")
    if args.compare:
        ref, ours = results["transformers"], results["videomae"]
        for test_id in sorted(ref):
            if ref[test_id] != ours.get(test_id):
                print(f"  {test_id}: transformers {ref[test_id]}, videomae {ours.get(test_id)}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
