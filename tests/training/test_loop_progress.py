"""The training loop's progress bar in a notebook: no warning when ipywidgets is absent."""

import subprocess
import sys

# A Jupyter kernel as tqdm.autonotebook detects it (ipykernel.zmqshell loaded, a ZMQ shell), with
# ipywidgets absent: tqdm.auto then warns "IProgress not found" at import.
NOTEBOOK_WITHOUT_WIDGETS = """
import sys, types, warnings
caught = warnings.catch_warnings(record=True)
seen = caught.__enter__()
warnings.simplefilter("always")
sys.modules["ipykernel.zmqshell"] = types.ModuleType("ipykernel.zmqshell")
class ZMQInteractiveShell:
    pass
ipython = types.ModuleType("IPython")
ipython.get_ipython = lambda: ZMQInteractiveShell()
sys.modules["IPython"] = ipython
sys.modules["ipywidgets"] = None  # import ipywidgets -> ImportError
{body}
for w in seen:
    print(f"{{w.category.__name__}}: {{w.message}}", file=sys.stderr)
"""


def _run(body: str) -> subprocess.CompletedProcess:
    code = NOTEBOOK_WITHOUT_WIDGETS.format(body=body)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_the_fake_kernel_makes_tqdm_auto_warn():
    # the check below could not fail if this set-up did not reproduce the warning
    result = _run("import tqdm.auto")
    assert result.returncode == 0, result.stderr
    assert "IProgress not found" in result.stderr


def test_importing_the_training_loop_in_a_notebook_without_ipywidgets_does_not_warn():
    result = _run(
        "import tqdm.std\n"
        "import rcnn_from_scratch.training.loop as train\n"
        "assert train.tqdm is tqdm.std.tqdm, train.tqdm\n"
        "train.run_training(lambda step: {'loss': 1.0}, 3, progress=True)\n"
    )
    assert result.returncode == 0, result.stderr
    assert "IProgress" not in result.stderr
