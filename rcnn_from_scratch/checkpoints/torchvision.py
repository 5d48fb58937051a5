"""torchvision's published COCO weights: which files, their key names, where they live, the download.

torchvision publishes the weights of its detectors as ``torch.save`` files on
``https://download.pytorch.org/models/``. The two this package can run are the v1 COCO models:

- ``maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth`` (Mask R-CNN, 169.84 MiB, box AP 37.9, mask AP 34.6);
- ``fasterrcnn_resnet50_fpn_coco-258fb6c6.pth`` (Faster R-CNN, 159.743 MiB, box AP 37.0).

(``resnet50-0676ba61.pth`` is the ImageNet backbone they were trained from; its keys lack the
``backbone.body.`` prefix and it carries the classifier ``fc.*``.)

**The hash in the name.** The 8 hex digits after the dash are the first 8 of the file's SHA-256.
torch checks them after a download, and so does :func:`fetch_weights`. 8 hex digits are 32 bits:
enough to catch a truncated or corrupted download, far too few to stop someone who wants to hand you
a different file. That is a corruption check, not security. Safety comes from how the file is read:
``torch_format.read_state_dict`` never runs pickle, it interprets only the handful of opcodes and
globals that a state dict needs, so a hostile file can fail to load but cannot run code.

**Old key names.** The files were saved by older torchvision code whose modules had other names
(``rpn.head.conv.weight`` where today's model has ``rpn.head.conv.0.0.weight``).
:func:`remap_torchvision_keys` renames them as torchvision's ``_load_from_state_dict`` hooks do.

**Where the files are cached.** torch keeps downloads in ``$TORCH_HOME/hub/checkpoints``
(``TORCH_HOME`` defaults to ``$XDG_CACHE_HOME/torch``, which defaults to ``~/.cache/torch``); this
package keeps its own in ``$RCNN_FROM_SCRATCH_HOME/weights`` (default
``$XDG_CACHE_HOME/rcnn-from-scratch/weights``). :func:`find_weights` looks in ours, then in torch's,
so a file torchvision already downloaded is used as it is.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import urlparse
from urllib.request import Request, urlopen

import numpy as np

from .torch_format import CheckpointError, read_state_dict

__all__ = [
    "COCO_CATEGORIES",
    "HASH_REGEX",
    "PUBLISHED",
    "WeightsDownloadError",
    "WeightsFile",
    "check_state_dict",
    "fetch_weights",
    "find_weights",
    "read_torch_checkpoint",
    "remap_torchvision_keys",
    "torch_hub_checkpoints_dir",
    "weights_dir",
]

# index = COCO category id; the ids that COCO skipped are 'N/A' (torchvision's _meta.py)
COCO_CATEGORIES: tuple[str, ...] = (
    "__background__", "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train",
    "truck", "boat", "traffic light", "fire hydrant", "N/A", "stop sign", "parking meter", "bench",
    "bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "N/A",
    "backpack", "umbrella", "N/A", "N/A", "handbag", "tie", "suitcase", "frisbee", "skis",
    "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "N/A", "wine glass", "cup", "fork", "knife", "spoon", "bowl",
    "banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut",
    "cake", "chair", "couch", "potted plant", "bed", "N/A", "dining table", "N/A", "N/A", "toilet",
    "N/A", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave", "oven",
    "toaster", "sink", "refrigerator", "N/A", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
)  # fmt: skip

# torch.hub's rule for the hash in a file name: the hex digits between a dash and a dot
HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")

_CHUNK = 128 * 1024  # bytes read per step of a download


@dataclass(frozen=True)
class WeightsFile:
    """One published weights file (the figures of torchvision 0.29.1's ``Weights`` entries).

    Args:
        name: the builder's name, e.g. ``"maskrcnn_resnet50_fpn"``.
        url: where torchvision downloads it from.
        filename: the URL's last part; the cache file name.
        sha256_prefix: the hex digits in the file name: the first digits of the file's SHA-256.
        num_params: parameters of the model (frozen batch-norm buffers not counted).
        size_bytes_approx: the file size (torchvision states it in MiB to 3 decimals, so +-524 B).
        metrics: COCO val2017 figures, e.g. ``{"box_map": 37.9, "mask_map": 34.6}``.
    """

    name: str
    url: str
    filename: str
    sha256_prefix: str
    num_params: int
    size_bytes_approx: int
    metrics: dict


def _published(name: str, filename: str, mib: float, num_params: int, **metrics) -> WeightsFile:
    return WeightsFile(
        name=name,
        url="https://download.pytorch.org/models/" + filename,
        filename=filename,
        sha256_prefix=HASH_REGEX.search(filename).group(1),
        num_params=num_params,
        size_bytes_approx=round(mib * 1024 * 1024),
        metrics=metrics,
    )


PUBLISHED: dict[str, WeightsFile] = {
    w.name: w
    for w in (
        _published("maskrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth", 169.84,
                   44_401_393, box_map=37.9, mask_map=34.6),
        _published("fasterrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn_coco-258fb6c6.pth", 159.743,
                   41_755_286, box_map=37.0),
    )
}  # fmt: skip


class WeightsDownloadError(RuntimeError):
    """A download failed or came out corrupt; the message is one line saying what to do."""


# ------------------------------------------------------------------------------------ key names

# (old name in the COCO v1 files, today's name); torchvision's _load_from_state_dict hooks in
# feature_pyramid_network.py (FeaturePyramidNetwork), rpn.py (RPNHead), mask_rcnn.py (MaskRCNNHeads)
_OLD_NAMES = [
    (re.compile(r"^(backbone\.fpn\.(?:inner|layer)_blocks\.\d+)\.(weight|bias)$"), r"\1.0.\2"),
    (re.compile(r"^rpn\.head\.conv\.(weight|bias)$"), r"rpn.head.conv.0.0.\1"),
    (
        re.compile(r"^roi_heads\.mask_head\.mask_fcn([1-9]\d*)\.(weight|bias)$"),
        lambda m: f"roi_heads.mask_head.{int(m.group(1)) - 1}.0.{m.group(2)}",
    ),
]


def _today_name(key: str) -> str:
    for pattern, new in _OLD_NAMES:
        renamed, count = pattern.subn(new, key)
        if count:
            return renamed
    return key


def remap_torchvision_keys(state: dict) -> dict:
    """Rename a torchvision state dict's old module names to today's, in the file's key order.

    The renames (those of torchvision's ``_load_from_state_dict`` hooks for modules saved before
    version 2):

    - ``backbone.fpn.{inner,layer}_blocks.{i}.{weight,bias}`` -> ``...blocks.{i}.0.{weight,bias}``;
    - ``rpn.head.conv.{weight,bias}`` -> ``rpn.head.conv.0.0.{weight,bias}``;
    - ``roi_heads.mask_head.mask_fcn{j+1}.{weight,bias}`` -> ``roi_heads.mask_head.{j}.0.{...}``.

    Besides, a leading ``module.`` (what ``nn.DataParallel`` adds) is stripped and
    ``num_batches_tracked`` counters are dropped (frozen batch norm ignores them too). Names that are
    already today's pass unchanged, so the function can be applied to any file, old or new.

    Args:
        state: ``{key: array}`` as read from a file; not modified.

    Returns:
        A new dict ``{today's key: the same array}``.

    Raises:
        CheckpointError: two keys of the file land on one name (an old and a new name of one
            parameter, or ``x`` and ``module.x``); the message names both.
    """
    if not isinstance(state, dict):
        raise ValueError(f"state must be a dict of name -> array; got {type(state).__name__}")
    out: dict = {}
    came_from: dict[str, str] = {}
    for key, value in state.items():
        if not isinstance(key, str):
            raise CheckpointError(f"state dict keys must be strings; got {key!r}")
        name = key.removeprefix("module.")
        if name.rsplit(".", 1)[-1] == "num_batches_tracked":
            continue
        name = _today_name(name)
        if name in out:
            raise CheckpointError(
                f"the file holds both {came_from[name]!r} and {key!r}, two names of the "
                f"parameter {name!r}; keep one"
            )
        out[name] = value
        came_from[name] = key
    return out


def read_torch_checkpoint(path) -> dict[str, np.ndarray]:
    """A torchvision ``.pth`` file as ``{today's key: array}``, without torch and without pickle.

    Args:
        path: a file written by ``torch.save(model.state_dict())``, e.g. the published
            ``maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth``.

    Returns:
        ``{key: np.ndarray}`` with the dtypes and shapes of the file (float32 for the published
        weights; conv weights ``(out, in, kh, kw)``, transposed conv ``(in, out, kh, kw)``, linear
        ``(out, in)``), keys renamed by :func:`remap_torchvision_keys`.

    Raises:
        CheckpointError: the file is not a readable state dict, or two of its keys collide.
    """
    state = read_state_dict(path)
    try:
        return remap_torchvision_keys(state)
    except CheckpointError as err:
        raise CheckpointError(f"{path}: {err}") from None


def _list(keys: list, limit: int = 5) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def check_state_dict(state: dict, expected: dict[str, tuple[int, ...]], source: str) -> None:
    """Check that ``state`` has exactly the keys and shapes a model expects, and finite floats.

    Args:
        state: ``{key: array}``, e.g. from :func:`read_torch_checkpoint`.
        expected: ``{key: shape}`` of the model's parameters and buffers, all floating point.
        source: what ``state`` came from (a file name), to start the message with.

    Raises:
        CheckpointError: naming the first missing keys, the first unexpected keys and the first
            keys of the wrong shape (with the file's and the model's shape); else the first value
            that is not a floating-point array or holds NaN or infinity.
    """
    if not isinstance(state, dict) or not isinstance(expected, dict):
        raise ValueError("state and expected must be dicts keyed by parameter name")
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    misshaped = [
        f"{k} {tuple(np.shape(state[k]))} in the file, {tuple(expected[k])} in the model"
        for k in expected
        if k in state and tuple(np.shape(state[k])) != tuple(expected[k])
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys ({_list(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys ({_list(unexpected)})")
    if misshaped:
        problems.append(f"{len(misshaped)} keys of the wrong shape ({_list(misshaped, 3)})")
    if problems:
        raise CheckpointError(f"{source} does not fit the model: " + "; ".join(problems))
    for key in expected:
        value = state[key]
        if not isinstance(value, np.ndarray) or not np.issubdtype(value.dtype, np.floating):
            kind = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
            raise CheckpointError(f"{source}: {key} is {kind}, not a floating-point array")
        if not np.isfinite(value).all():
            raise CheckpointError(f"{source}: {key} holds NaN or infinite values")


# ------------------------------------------------------------------------------------ cache folders


def _env_path(variable: str, default: str) -> str:
    # an empty variable counts as unset (torch would make it the current folder)
    return os.environ.get(variable) or default


def weights_dir() -> Path:
    """This package's download folder: ``$RCNN_FROM_SCRATCH_HOME/weights`` if that variable is set,
    else ``$XDG_CACHE_HOME/rcnn-from-scratch/weights`` (``XDG_CACHE_HOME`` defaults to ``~/.cache``).
    The folder need not exist yet."""
    home = os.environ.get("RCNN_FROM_SCRATCH_HOME")
    if not home:
        home = os.path.join(_env_path("XDG_CACHE_HOME", "~/.cache"), "rcnn-from-scratch")
    return Path(os.path.expanduser(home)) / "weights"


def torch_hub_checkpoints_dir() -> Path:
    """Where ``torch.hub`` keeps downloaded weights: ``$TORCH_HOME/hub/checkpoints``, with
    ``TORCH_HOME`` defaulting to ``$XDG_CACHE_HOME/torch`` and that to ``~/.cache/torch``."""
    cache = _env_path("XDG_CACHE_HOME", "~/.cache")
    torch_home = _env_path("TORCH_HOME", os.path.join(cache, "torch"))
    return Path(os.path.expanduser(torch_home)) / "hub" / "checkpoints"


def _published_file(name: str) -> WeightsFile:
    if name not in PUBLISHED:
        raise ValueError(f"name must be one of {', '.join(sorted(PUBLISHED))}; got {name!r}")
    return PUBLISHED[name]


def find_weights(name: str) -> Path | None:
    """The published file ``name`` if it is on this machine, else ``None``.

    Args:
        name: a key of :data:`PUBLISHED`, e.g. ``"maskrcnn_resnet50_fpn"``.

    Returns:
        The path of its file (by its published file name) in :func:`weights_dir` if there, else
        in :func:`torch_hub_checkpoints_dir` if there, else ``None``. Nothing is downloaded or hashed.
    """
    filename = _published_file(name).filename
    for folder in (weights_dir(), torch_hub_checkpoints_dir()):
        if (folder / filename).is_file():
            return folder / filename
    return None


# ------------------------------------------------------------------------------------ the download


def fetch_weights(
    name: str,
    directory=None,
    url: str | None = None,
    progress: bool = True,
    timeout: float = 30.0,
) -> Path:
    """Download a published weights file, check its hash, and return its path.

    The bytes go to a temporary file beside the target while their SHA-256 is computed; only a
    complete download whose digest starts with the file name's hash is moved into place
    (``os.replace``, so no reader ever sees half a file). On any failure, Ctrl-C included, the
    temporary file is removed. A file already at the target is returned as it is, unchecked (as
    torch does).

    Args:
        name: a key of :data:`PUBLISHED`, e.g. ``"maskrcnn_resnet50_fpn"``.
        directory: folder to put the file in; default :func:`weights_dir`. Created if missing.
        url: download from here instead (a mirror, or a test server). The file keeps the published
            name unless the URL's last part is another name: then that one. The hash checked is the
            one in that name, or the published one if the name has none.
        progress: show a tqdm progress bar on stderr.
        timeout: seconds to wait for the connection or for any one read.

    Returns:
        The path of the verified file: ``directory / filename``.

    Raises:
        ValueError: unknown ``name``, or a ``url`` that is not http(s):// or file://.
        WeightsDownloadError: no network, an HTTP error, a connection cut short or a hash that does
            not match; the message is one line.
    """
    published = _published_file(name)
    url = published.url if url is None else url
    parts = urlparse(url)
    if parts.scheme not in ("http", "https", "file"):
        raise ValueError(f"url must start with http://, https:// or file://; got {url!r}")
    filename = os.path.basename(parts.path) or published.filename
    found = HASH_REGEX.search(filename)
    prefix = found.group(1) if found and found.group(1) else published.sha256_prefix
    folder = Path(os.path.expanduser(directory)) if directory is not None else weights_dir()
    target = folder / filename
    if target.is_file():
        return target

    def failed(reason: str) -> WeightsDownloadError:
        reason = " ".join(reason.split())  # one line, whatever the server or the OS said
        return WeightsDownloadError(
            f"could not download {url} ({reason}). Without a network: download it elsewhere and "
            f"put it at {target}, or in {torch_hub_checkpoints_dir()}"
        )

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise WeightsDownloadError(f"cannot create the folder {folder}: {err}") from None
    partial = folder / f"{filename}.{uuid.uuid4().hex}.partial"
    try:
        with open(partial, "xb") as out:
            digest, received, expected = _stream(url, out, filename, progress, timeout, failed)
        if expected is not None and received != expected:
            raise failed(f"the connection closed after {received} of {expected} bytes")
        if not digest.startswith(prefix):
            raise WeightsDownloadError(
                f"{url}: expected sha256 prefix {prefix}, got {digest[: len(prefix)]}: the download "
                f"is corrupt and was not kept; try again, or download it elsewhere and put it at "
                f"{target}"
            )
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def _stream(url, out, filename, progress, timeout, failed):
    """Copy ``url`` into the open file ``out``; returns (sha256 hex digest, bytes received,
    Content-Length or None). Network errors come out as ``failed(reason)``."""
    from tqdm.auto import tqdm

    sha256 = hashlib.sha256()
    received = 0
    try:
        with urlopen(
            Request(url, headers={"User-Agent": "rcnn-from-scratch"}), timeout=timeout
        ) as u:
            length = u.headers.get("Content-Length")
            expected = int(length) if length is not None and length.isdigit() else None
            with tqdm(total=expected, disable=not progress, desc=filename, unit="B",
                      unit_scale=True, unit_divisor=1024) as bar:  # fmt: skip
                while chunk := u.read(_CHUNK):
                    out.write(chunk)
                    sha256.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except HTTPError as err:
        raise failed(f"HTTP {err.code} {err.reason}") from None
    except URLError as err:
        raise failed(str(err.reason)) from None
    except (OSError, http.client.HTTPException) as err:  # timeouts, resets, cut-off chunks
        raise failed(f"{type(err).__name__}: {err}" if str(err) else type(err).__name__) from None
    return sha256.hexdigest(), received, expected
