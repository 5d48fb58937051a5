"""torchvision's published files: the 91 COCO names, old key names to today's, the cache folders, and
the download with its hash check against a local HTTP server (torch's own figures where installed)."""

import hashlib
import http.server
import os
import socket
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from rcnn_from_scratch.checkpoints import torchvision as tv
from rcnn_from_scratch.checkpoints.torch_format import CheckpointError
from rcnn_from_scratch.checkpoints.torchvision import (
    COCO_CATEGORIES,
    PUBLISHED,
    WeightsDownloadError,
    check_state_dict,
    fetch_weights,
    find_weights,
    read_torch_checkpoint,
    remap_torchvision_keys,
    torch_hub_checkpoints_dir,
    weights_dir,
)
from rcnn_from_scratch.cli import PUBLISHED_WEIGHTS, main

PAYLOAD = b"not really weights, but bytes with a known SHA-256\n" * 2000  # ~100 kB: a few reads
PREFIX = hashlib.sha256(PAYLOAD).hexdigest()[:8]
WRONG = format(int(PREFIX, 16) ^ 0xFFFFFFFF, "08x")  # every hex digit differs from PREFIX


# ------------------------------------------------------------------------------ COCO categories


def test_coco_categories_have_91_ids_background_at_0_and_na_at_the_ids_coco_skipped():
    assert len(COCO_CATEGORIES) == 91
    assert COCO_CATEGORIES[0] == "__background__"
    na = [i for i, name in enumerate(COCO_CATEGORIES) if name == "N/A"]
    assert na == [12, 26, 29, 30, 45, 66, 68, 69, 71, 83]
    # a few ids that COCO's annotation files give (instances_val2017.json "categories")
    assert (COCO_CATEGORIES[1], COCO_CATEGORIES[18], COCO_CATEGORIES[90]) == (
        "person", "dog", "toothbrush",
    )  # fmt: skip


def test_coco_categories_equal_torchvisions():
    models = pytest.importorskip("torchvision.models.detection")
    meta = models.MaskRCNN_ResNet50_FPN_Weights.COCO_V1.meta
    assert list(COCO_CATEGORIES) == meta["categories"]


# ------------------------------------------------------------------------------ published files


def test_published_hash_prefixes_are_the_8_hex_digits_in_the_file_names():
    assert PUBLISHED["maskrcnn_resnet50_fpn"].sha256_prefix == "bf2d0c1e"
    assert PUBLISHED["fasterrcnn_resnet50_fpn"].sha256_prefix == "258fb6c6"
    for w in PUBLISHED.values():
        assert w.url.endswith("/" + w.filename) and w.url.startswith("https://")


def test_published_urls_and_figures_equal_torchvisions_enums():
    models = pytest.importorskip("torchvision.models.detection")
    enums = {
        "maskrcnn_resnet50_fpn": models.MaskRCNN_ResNet50_FPN_Weights.COCO_V1,
        "fasterrcnn_resnet50_fpn": models.FasterRCNN_ResNet50_FPN_Weights.COCO_V1,
    }
    assert set(PUBLISHED) == set(enums)
    for name, enum in enums.items():
        ours = PUBLISHED[name]
        assert ours.url == enum.url
        assert ours.num_params == enum.meta["num_params"]
        assert ours.metrics == enum.meta["_metrics"]["COCO-val2017"]
        assert abs(ours.size_bytes_approx / 2**20 - enum.meta["_file_size"]) < 0.0005


# ------------------------------------------------------------------------------ key names


def a(shape=(2,)):
    return np.zeros(shape, np.float32)


OLD_TO_NEW = {
    "backbone.fpn.inner_blocks.0.weight": "backbone.fpn.inner_blocks.0.0.weight",
    "backbone.fpn.inner_blocks.3.bias": "backbone.fpn.inner_blocks.3.0.bias",
    "backbone.fpn.layer_blocks.2.weight": "backbone.fpn.layer_blocks.2.0.weight",
    "rpn.head.conv.weight": "rpn.head.conv.0.0.weight",
    "rpn.head.conv.bias": "rpn.head.conv.0.0.bias",
    "roi_heads.mask_head.mask_fcn1.weight": "roi_heads.mask_head.0.0.weight",
    "roi_heads.mask_head.mask_fcn4.bias": "roi_heads.mask_head.3.0.bias",
}
UNCHANGED = [
    "backbone.body.layer1.0.downsample.0.weight",
    "rpn.head.cls_logits.weight",
    "roi_heads.box_head.fc6.weight",
    "roi_heads.mask_predictor.mask_fcn_logits.weight",  # mask_fcn, but not the old head's
    "roi_heads.mask_predictor.conv5_mask.weight",
]


def test_remap_renames_the_old_module_names_and_keeps_the_arrays_and_order():
    state = {k: a() for k in [*OLD_TO_NEW, *UNCHANGED]}
    out = remap_torchvision_keys(state)
    assert list(out) == [*OLD_TO_NEW.values(), *UNCHANGED]
    for old, new in OLD_TO_NEW.items():
        assert out[new] is state[old]
    assert list(state) == [*OLD_TO_NEW, *UNCHANGED]  # the input is left alone


def test_remap_passes_todays_names_unchanged():
    state = {k: a() for k in [*OLD_TO_NEW.values(), *UNCHANGED]}
    assert remap_torchvision_keys(state) == state


@pytest.mark.parametrize("old", list(OLD_TO_NEW))
def test_remap_refuses_a_file_with_both_the_old_and_the_new_name_naming_both(old):
    new = OLD_TO_NEW[old]
    with pytest.raises(CheckpointError, match=rf"{old}.*{new}|{new}.*{old}"):
        remap_torchvision_keys({new: a(), old: a()})


def test_remap_drops_num_batches_tracked_and_strips_data_parallels_module_prefix():
    state = {
        "module.backbone.body.bn1.weight": a(),
        "module.backbone.body.bn1.num_batches_tracked": np.array(7),
        "module.rpn.head.conv.weight": a(),
        "backbone.body.layer1.0.bn2.num_batches_tracked": np.array(3),
    }
    assert list(remap_torchvision_keys(state)) == [
        "backbone.body.bn1.weight", "rpn.head.conv.0.0.weight",
    ]  # fmt: skip
    with pytest.raises(CheckpointError, match="module.rpn.head.conv.weight"):
        remap_torchvision_keys({"rpn.head.conv.weight": a(), "module.rpn.head.conv.weight": a()})


def _old_name(key):
    """Today's key -> the name in the COCO v1 files (the inverse of the remap, written out by hand)."""
    parts = key.split(".")
    if parts[:2] == ["backbone", "fpn"] and parts[4:5] == ["0"]:
        return ".".join(parts[:4] + parts[5:])
    if key.startswith("rpn.head.conv.0.0."):
        return "rpn.head.conv." + parts[-1]
    if parts[:2] == ["roi_heads", "mask_head"]:
        return f"roi_heads.mask_head.mask_fcn{int(parts[2]) + 1}.{parts[-1]}"
    return key


def test_remap_agrees_with_torchvisions_load_hooks_on_the_whole_mask_rcnn():
    torch = pytest.importorskip("torch")
    detection = pytest.importorskip("torchvision.models.detection")
    torch.manual_seed(0)
    model = detection.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91)
    today = model.state_dict()
    old = OrderedDict((_old_name(k), v) for k, v in today.items())  # no _metadata: version None
    assert (
        sum(k != _old_name(k) for k in today) == 16 + 2 + 8
    )  # 8 fpn convs, the rpn conv, 4 mask convs
    model.load_state_dict(old, strict=True)  # torchvision's hooks rename every old key

    ours = remap_torchvision_keys(old)
    assert list(ours) == [k for k in today if not k.endswith("num_batches_tracked")]
    assert all(ours[k] is today[k] for k in ours)


def test_read_torch_checkpoint_renames_a_torch_saved_old_file(tmp_path):
    torch = pytest.importorskip("torch")
    old = {
        "module.rpn.head.conv.weight": torch.arange(6, dtype=torch.float32).reshape(1, 1, 2, 3),
        "roi_heads.mask_head.mask_fcn2.bias": torch.tensor([0.5, -1.0]),
        "backbone.body.bn1.num_batches_tracked": torch.tensor(4),
    }
    torch.save(old, tmp_path / "old.pth")
    state = read_torch_checkpoint(tmp_path / "old.pth")
    assert list(state) == ["rpn.head.conv.0.0.weight", "roi_heads.mask_head.1.0.bias"]
    np.testing.assert_array_equal(
        state["rpn.head.conv.0.0.weight"], np.arange(6.0).reshape(1, 1, 2, 3)
    )
    np.testing.assert_array_equal(state["roi_heads.mask_head.1.0.bias"], [0.5, -1.0])


# ------------------------------------------------------------------------------ check_state_dict

EXPECTED = {"w": (2, 3), "b": (2,), "c": (4,)}


def good():
    return {"w": np.ones((2, 3), np.float32), "b": np.zeros(2, np.float32), "c": np.ones(4)}


def test_check_state_dict_accepts_exact_keys_shapes_and_finite_floats():
    check_state_dict(good(), EXPECTED, "file.pth")  # returns None, raises nothing


def test_check_state_dict_names_missing_unexpected_and_misshaped_keys_with_both_shapes():
    state = good()
    del state["c"]
    state["extra"] = a()
    state["w"] = np.ones((3, 2), np.float32)
    with pytest.raises(CheckpointError) as err:
        check_state_dict(state, EXPECTED, "file.pth")
    message = str(err.value)
    assert message.startswith("file.pth")
    assert "1 missing keys (c)" in message and "1 unexpected keys (extra)" in message
    assert "w (3, 2) in the file, (2, 3) in the model" in message


def test_check_state_dict_lists_only_the_first_missing_keys():
    expected = {f"k{i}": (1,) for i in range(20)}
    with pytest.raises(
        CheckpointError, match=r"20 missing keys \(k0, k1, k2, k3, k4, \.\.\. \(15 more\)\)"
    ):
        check_state_dict({}, expected, "f")


@pytest.mark.parametrize(
    "value, words",
    [
        (np.array([1.0, np.nan]), "NaN or infinite"),
        (np.array([np.inf, 0.0], np.float32), "NaN or infinite"),
        (np.array([1, 2]), "int64, not a floating-point"),
        ([1.0, 2.0], "list, not a floating-point"),
    ],
)
def test_check_state_dict_refuses_non_finite_and_non_float_values(value, words):
    state = good()
    state["b"] = value
    with pytest.raises(CheckpointError, match=f"file.pth: b .*{words}"):
        check_state_dict(state, EXPECTED, "file.pth")


# ------------------------------------------------------------------------------ cache folders


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for var in ("RCNN_FROM_SCRATCH_HOME", "XDG_CACHE_HOME", "TORCH_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return monkeypatch


def test_weights_dir_follows_its_variable_then_xdg_then_home(clean_env, tmp_path):
    assert weights_dir() == tmp_path / "home/.cache/rcnn-from-scratch/weights"
    clean_env.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert weights_dir() == tmp_path / "xdg/rcnn-from-scratch/weights"
    clean_env.setenv("RCNN_FROM_SCRATCH_HOME", "~/rfs")
    assert weights_dir() == tmp_path / "home/rfs/weights"


def test_torch_hub_dir_follows_torch_home_then_xdg_then_home(clean_env, tmp_path):
    assert torch_hub_checkpoints_dir() == tmp_path / "home/.cache/torch/hub/checkpoints"
    clean_env.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert torch_hub_checkpoints_dir() == tmp_path / "xdg/torch/hub/checkpoints"
    clean_env.setenv("TORCH_HOME", "~/th")
    assert torch_hub_checkpoints_dir() == tmp_path / "home/th/hub/checkpoints"


@pytest.mark.parametrize("variables", [{}, {"XDG_CACHE_HOME": "xdg"}, {"TORCH_HOME": "~/th"}])
def test_torch_hub_dir_equals_torch_hubs_own(clean_env, tmp_path, variables):
    hub = pytest.importorskip("torch.hub")
    for var, value in variables.items():
        clean_env.setenv(var, value if value.startswith("~") else str(tmp_path / value))
    assert torch_hub_checkpoints_dir() == Path(hub.get_dir()) / "checkpoints"


def test_find_weights_looks_in_our_folder_then_in_torchs(clean_env, tmp_path):
    filename = PUBLISHED["maskrcnn_resnet50_fpn"].filename
    clean_env.setenv("TORCH_HOME", str(tmp_path / "torch"))
    clean_env.setenv("RCNN_FROM_SCRATCH_HOME", str(tmp_path / "ours"))
    assert find_weights("maskrcnn_resnet50_fpn") is None
    in_torch = tmp_path / "torch/hub/checkpoints" / filename
    in_torch.parent.mkdir(parents=True)
    in_torch.write_bytes(b"x")
    assert find_weights("maskrcnn_resnet50_fpn") == in_torch
    assert find_weights("fasterrcnn_resnet50_fpn") is None
    ours = tmp_path / "ours/weights" / filename
    ours.parent.mkdir(parents=True)
    ours.write_bytes(b"x")
    assert find_weights("maskrcnn_resnet50_fpn") == ours


def test_an_unknown_name_is_a_value_error_listing_the_names(tmp_path):
    for call in (lambda: find_weights("resnet9000"), lambda: fetch_weights("resnet9000", tmp_path)):
        with pytest.raises(ValueError, match="fasterrcnn_resnet50_fpn, maskrcnn_resnet50_fpn"):
            call()


# ------------------------------------------------------------------------------ the download


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict  # path -> (body, Content-Length to announce)
    requests: list

    def do_GET(self):
        self.requests.append(self.path)
        if self.path not in self.files:
            self.send_error(404)
            return
        body, length = self.files[self.path]
        self.send_response(200)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body)  # then the connection closes, short of `length` if it was larger

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """``serve(name, body, length=None) -> url`` on a local HTTP server; ``serve.requests`` lists
    the paths asked for."""
    files, requests = {}, []
    handler = type("Handler", (_Handler,), {"files": files, "requests": requests})
    httpd = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()

    def serve(name, body, length=None):
        files["/" + name] = (body, len(body) if length is None else length)
        return f"http://127.0.0.1:{httpd.server_port}/{name}"

    serve.requests = requests
    yield serve
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=10)


@pytest.fixture
def refused_url():
    """A URL on 127.0.0.1 whose port is bound but never listens: every connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth"


def test_fetch_downloads_verifies_and_then_reuses_the_file(server, tmp_path):
    url = server(f"tiny-{PREFIX}.pth", PAYLOAD)
    path = fetch_weights("maskrcnn_resnet50_fpn", tmp_path / "new", url=url, progress=False)
    assert path == tmp_path / "new" / f"tiny-{PREFIX}.pth"  # the URL's name, in the folder asked
    assert path.read_bytes() == PAYLOAD
    assert os.listdir(tmp_path / "new") == [path.name]
    again = fetch_weights("maskrcnn_resnet50_fpn", tmp_path / "new", url=url, progress=False)
    assert again == path and len(server.requests) == 1  # present: not downloaded twice


def test_fetch_from_a_mirror_keeps_the_published_name_and_checks_the_published_hash(
    server, tmp_path
):
    filename = PUBLISHED["maskrcnn_resnet50_fpn"].filename
    url = server(filename, PAYLOAD)
    with pytest.raises(
        WeightsDownloadError, match=f"expected sha256 prefix bf2d0c1e, got {PREFIX}"
    ):
        fetch_weights("maskrcnn_resnet50_fpn", tmp_path, url=url, progress=False)
    assert os.listdir(tmp_path) == []


def test_a_wrong_hash_raises_one_line_and_leaves_no_file(server, tmp_path):
    url = server(f"tiny-{WRONG}.pth", PAYLOAD)
    with pytest.raises(WeightsDownloadError) as err:
        fetch_weights("maskrcnn_resnet50_fpn", tmp_path, url=url, progress=False)
    message = str(err.value)
    assert f"expected sha256 prefix {WRONG}, got {PREFIX}: the download is corrupt" in message
    assert "\n" not in message
    assert os.listdir(tmp_path) == []


def test_a_connection_closed_mid_body_raises_and_leaves_no_file(server, tmp_path):
    url = server(f"tiny-{PREFIX}.pth", PAYLOAD, length=len(PAYLOAD) + 1000)
    with pytest.raises(
        WeightsDownloadError, match=f"{len(PAYLOAD)} of {len(PAYLOAD) + 1000} bytes"
    ):
        fetch_weights("maskrcnn_resnet50_fpn", tmp_path, url=url, progress=False)
    assert os.listdir(tmp_path) == []


def test_an_http_error_is_named_in_the_one_line_message(server, tmp_path):
    url = server(f"tiny-{PREFIX}.pth", PAYLOAD).replace("tiny", "missing")
    with pytest.raises(WeightsDownloadError, match="HTTP 404") as err:
        fetch_weights("maskrcnn_resnet50_fpn", tmp_path, url=url, progress=False)
    assert "\n" not in str(err.value) and os.listdir(tmp_path) == []


def test_no_network_says_where_to_put_a_file_downloaded_elsewhere(refused_url, tmp_path, clean_env):
    clean_env.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(WeightsDownloadError) as err:
        fetch_weights("maskrcnn_resnet50_fpn", tmp_path / "w", url=refused_url, progress=False)
    message = str(err.value)
    assert message.startswith(f"could not download {refused_url} (")
    assert "refused" in message.lower() and "\n" not in message
    target = tmp_path / "w" / PUBLISHED["maskrcnn_resnet50_fpn"].filename
    assert f"Without a network: download it elsewhere and put it at {target}" in message
    assert str(tmp_path / "torch/hub/checkpoints") in message
    assert os.listdir(tmp_path / "w") == []


def test_ctrl_c_during_the_download_leaves_no_temporary_file(tmp_path, monkeypatch):
    def interrupted(url, out, *args):
        out.write(PAYLOAD[:100])
        raise KeyboardInterrupt

    monkeypatch.setattr(tv, "_stream", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fetch_weights(
            "maskrcnn_resnet50_fpn", tmp_path, url="http://127.0.0.1/x.pth", progress=False
        )
    assert os.listdir(tmp_path) == []


def test_a_url_that_is_not_http_is_a_value_error_naming_url(tmp_path):
    with pytest.raises(ValueError, match="url must"):
        fetch_weights("maskrcnn_resnet50_fpn", tmp_path, url="ftp://example.org/w.pth")


# ------------------------------------------------------------------------------ the command line


def test_fetch_weights_command_has_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["fetch-weights", "--help"])
    assert exit_.value.code == 0 and "maskrcnn_resnet50_fpn" in capsys.readouterr().out


def test_fetch_weights_command_offers_every_published_name():
    assert PUBLISHED_WEIGHTS == sorted(PUBLISHED)


def test_fetch_weights_command_prints_the_path(server, tmp_path, capsys):
    url = server(f"tiny-{PREFIX}.pth", PAYLOAD)
    assert (
        main(["fetch-weights", "fasterrcnn_resnet50_fpn", "--dir", str(tmp_path), "--url", url])
        == 0
    )
    path = tmp_path / f"tiny-{PREFIX}.pth"
    assert capsys.readouterr().out.strip() == str(path) and path.read_bytes() == PAYLOAD


def test_fetch_weights_command_without_network_is_one_line_and_exit_code_2(
    refused_url, tmp_path, capsys
):
    argv = ["fetch-weights", "maskrcnn_resnet50_fpn", "--dir", str(tmp_path), "--url", refused_url]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: could not download") and captured.err.count("\n") == 1
    assert captured.out == ""
