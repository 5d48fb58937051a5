"""Parity of the NumPy ResNet-50-FPN detectors with torchvision's, stage by stage (issue 13).

torchvision builds each model with ``weights=None`` and every parameter and batch-norm statistic
drawn from a seed (BatchNorm eps 0.0, as the COCO v1 files need); its state dict goes to a zip and a
legacy ``.pth`` (the legacy one under the old key names of the published files), and ours loads both.
Three scikit-image photographs of different aspect ratios then go through both models at the
default size (short side 800). Compared, end to end and with torchvision's own intermediates fed
into our later stages so that one early difference does not cascade:

* transformed input: 1e-5 absolute;
* the pyramid ``'0'`` .. ``'pool'``, the RPN's objectness and deltas per level, the box and mask
  heads' outputs: 1e-4 relative (max abs difference / max abs value);
* anchors: 1e-4 px; proposals: matched one to one by IoU > 0.999, at least 99 % matched;
* detections: each detection matched to one of the other side with the same label and IoU > 0.99,
  boxes within 0.01 px, scores within 1e-4. A detection without a partner must be explained by a
  threshold (the rule, :func:`explain_unmatched`): its score within 1e-3 of ``box_score_thresh``;
  the side holding it is full (``box_detections_per_img``) and its score within 1e-3 of the other
  side's lowest; a same-label box of the other side overlaps it with IoU within 1e-3 of the NMS
  threshold 0.5; or it comes from a proposal only its side has. Unexplained ones fail the test;
* masks of matched detections: >= 99.9 % of the thresholded pixels equal, probabilities within 1e-4
  where both are further than 0.01 from 0.5.

``pytest -s`` prints the measured maxima; with ``RCNN_PARITY_REPORT=<path>`` they are also written
there. Selected by ``-m parity``; skipped without torch (CI has none). A few minutes on 2 cores.
"""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

from torchvision.models import detection  # noqa: E402
from torchvision.models.detection.rpn import concat_box_prediction_layers  # noqa: E402
from torchvision.ops import box_iou as tv_box_iou  # noqa: E402

from rcnn_from_scratch.models import resnet_fpn  # noqa: E402
from rcnn_from_scratch.postprocess import (  # noqa: E402
    paste_masks_torchvision,
    postprocess_detections,
)
from rcnn_from_scratch.proposals.proposal_layer import ProposalConfig, select_proposals  # noqa: E402

pytestmark = pytest.mark.parity

MODELS = {"maskrcnn_resnet50_fpn": 0, "fasterrcnn_resnet50_fpn": 1}  # name -> seed
PHOTOS = ("astronaut", "coffee", "chelsea")  # 512 x 512, 400 x 600, 300 x 451: shipped offline
LEVELS = resnet_fpn.LEVELS
ROI_LEVELS = resnet_fpn.ROI_LEVELS
REPORT: dict[str, dict[str, float | str]] = {}


# --- torchvision's side ---------------------------------------------------------------------------


def randomise(model, seed: int):
    """Every parameter and batch-norm statistic from ``seed``; sizes keep the activations O(1)
    through the 50 layers (He std for every convolution and linear layer, batch-norm weights in
    [0.5, 1], variances in [0.5, 2], eps 0.0), then a few heads rescaled: RPN logits of std ~2 and
    small deltas (varied proposals of sane sizes), a classifier whose best scores are 0.1 .. 0.5
    (detections above 0.05 on every image), small box deltas."""
    g = torch.Generator().manual_seed(seed)

    def normal(shape, std):
        return torch.randn(shape, generator=g) * std

    def uniform(shape, low, high):
        return low + (high - low) * torch.rand(shape, generator=g)

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                n = module.num_features
                module.eps = 0.0
                module.weight.copy_(uniform(n, 0.5, 1.0))
                module.bias.copy_(normal(n, 0.1))
                module.running_mean.copy_(normal(n, 0.1))
                module.running_var.copy_(uniform(n, 0.5, 2.0))
            elif isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)):
                w = module.weight
                transposed = isinstance(module, torch.nn.ConvTranspose2d)
                fan_in = w.shape[0] if transposed else w[0].numel()
                w.copy_(normal(w.shape, (2.0 / fan_in) ** 0.5))
                if module.bias is not None:
                    module.bias.copy_(normal(module.bias.shape, 0.05))
        head = model.rpn.head
        head.cls_logits.weight.mul_(0.3)
        head.bbox_pred.weight.mul_(0.03)
        head.bbox_pred.bias.mul_(0.1)
        predictor = model.roi_heads.box_predictor
        predictor.cls_score.weight.mul_(0.2)
        predictor.bbox_pred.weight.mul_(0.1)
    return model


OLD_NAMES = (
    (r"^rpn\.head\.conv\.0\.0\.", "rpn.head.conv."),
    (r"^backbone\.fpn\.(inner|layer)_blocks\.(\d)\.0\.", r"backbone.fpn.\1_blocks.\2."),
    (
        r"^roi_heads\.mask_head\.(\d)\.0\.",
        lambda m: f"roi_heads.mask_head.mask_fcn{int(m[1]) + 1}.",
    ),
)


def old_key(name: str) -> str:
    """Current torchvision key -> the name the published COCO v1 files use."""
    for pattern, replacement in OLD_NAMES:
        name = re.sub(pattern, replacement, name)
    return name


def to_numpy(t) -> np.ndarray:
    return t.detach().cpu().numpy()


def torchvision_record(model, image: np.ndarray) -> dict:
    """torchvision's intermediates under our ``inspect`` names, by direct calls of its submodules
    (the same calls, in the same order, as ``GeneralizedRCNN.forward`` and ``RegionProposalNetwork
    .forward`` in eval mode)."""
    x = torch.from_numpy(image).permute(2, 0, 1).float() / 255
    rec: dict = {}
    with torch.no_grad():
        images, _ = model.transform([x])
        size = tuple(images.image_sizes[0])
        rec.update(input=to_numpy(images.tensors), image_size=size)
        features = model.backbone(images.tensors)
        for k, name in enumerate(LEVELS):
            rec[f"P{k + 2}"] = to_numpy(features[name])
        rpn, feats = model.rpn, list(features.values())
        objectness, deltas = rpn.head(feats)
        anchors = rpn.anchor_generator(images, feats)[0]
        per_level = [o[0].numel() for o in objectness]
        bounds = np.cumsum([0] + per_level)
        for k, name in enumerate(LEVELS):
            o, d = objectness[k], deltas[k]  # (1, A, h, w), (1, 4 A, h, w)
            A, h, w = o.shape[1:]
            part = slice(bounds[k], bounds[k + 1])
            rec[f"objectness/{name}"] = to_numpy(o.permute(0, 2, 3, 1).reshape(-1))
            rec[f"deltas/{name}"] = to_numpy(
                d.view(1, A, 4, h, w).permute(0, 3, 4, 1, 2).reshape(-1, 4)
            )
            rec[f"anchors/{name}"] = to_numpy(anchors[part])
        obj, dd = concat_box_prediction_layers(objectness, deltas)
        decoded = rpn.box_coder.decode(dd, [anchors]).view(1, -1, 4)
        boxes, scores = rpn.filter_proposals(decoded, obj, images.image_sizes, per_level)
        proposals = boxes[0]
        rec.update(proposals=to_numpy(proposals), proposal_scores=to_numpy(scores[0]))
        heads = model.roi_heads
        rec["roi_levels"] = to_numpy(
            _map_levels(heads.box_roi_pool, features, [proposals], images.image_sizes)
        )
        pooled = heads.box_roi_pool(features, [proposals], images.image_sizes)
        class_logits, box_regression = heads.box_predictor(heads.box_head(pooled))
        rec.update(class_logits=to_numpy(class_logits), box_regression=to_numpy(box_regression))
        detections, _ = heads(features, [proposals], images.image_sizes)
        rec["detections_resized"] = {k: to_numpy(v) for k, v in detections[0].items()}
        if heads.has_mask():
            det_boxes = detections[0]["boxes"]
            mask_pooled = heads.mask_roi_pool(features, [det_boxes], images.image_sizes)
            rec["mask_logits"] = to_numpy(heads.mask_predictor(heads.mask_head(mask_pooled)))
        final = model.transform.postprocess(detections, images.image_sizes, [image.shape[:2]])
        det = {k: to_numpy(v) for k, v in final[0].items()}
        if "masks" in det:
            det["mask_probabilities"] = det.pop("masks")[:, 0]
            det["masks"] = det["mask_probabilities"] > 0.5
        rec["detections"] = det
        rec["features"] = {k: to_numpy(v) for k, v in features.items()}  # for our later stages
    return rec


def _map_levels(pooler, features, boxes, image_sizes):
    """torchvision's LevelMapper on ``boxes`` (index 0 = P2), set up as its forward sets it up."""
    x_filtered = [features[k] for k in pooler.featmap_names]
    if pooler.scales is None or pooler.map_levels is None:
        from torchvision.ops.poolers import _setup_scales

        pooler.scales, pooler.map_levels = _setup_scales(
            x_filtered, image_sizes, pooler.canonical_scale, pooler.canonical_level
        )
    return pooler.map_levels(boxes)


# --- comparisons ------------------------------------------------------------------------------------


def relative_error(ours, theirs) -> float:
    """max |ours - theirs| / max |theirs| (0 for two empty arrays)."""
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    if theirs.size == 0:
        return 0.0
    return float(np.abs(ours - theirs).max() / max(np.abs(theirs).max(), 1e-30))


def iou_matrix(a, b) -> np.ndarray:
    return to_numpy(tv_box_iou(torch.as_tensor(a, dtype=torch.float64),
                               torch.as_tensor(b, dtype=torch.float64)))  # fmt: skip


def match_one_to_one(iou: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy one-to-one matching, rows in order: ``partner[i]`` the column matched to row ``i``
    (the unused column of highest IoU above ``threshold``) or -1."""
    partner = np.full(iou.shape[0], -1)
    used = np.zeros(iou.shape[1], bool)
    for i in range(iou.shape[0]):  # one row of whole-array work per RoI
        row = np.where(used, -1.0, iou[i])
        if row.size and row.max() > threshold:
            partner[i] = int(row.argmax())
            used[partner[i]] = True
    return partner


def match_detections(a: dict, b: dict) -> np.ndarray:
    """``partner[i]``: the detection of ``b`` with ``a``'s label ``i`` and IoU > 0.99, or -1."""
    iou = iou_matrix(a["boxes"], b["boxes"])
    iou[a["labels"][:, None] != b["labels"][None, :]] = 0.0
    return match_one_to_one(iou, 0.99)


def source_proposal(det_box, label, proposals, box_regression, image_size) -> int:
    """The proposal whose class-``label`` box decodes to ``det_box`` (torchvision's coder)."""
    from torchvision.models.detection._utils import BoxCoder

    coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
    rel = torch.as_tensor(box_regression).view(len(proposals), -1, 4)[:, label]
    boxes = coder.decode_single(rel, torch.as_tensor(proposals))
    h, w = image_size
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
    return int(np.abs(to_numpy(boxes) - det_box).max(axis=1).argmin())


def explain_unmatched(i, side: dict, other: dict, side_rec: dict, matched_proposals, config):
    """Why detection ``i`` of ``side`` (in the resized frame) has no partner in ``other``, or None."""
    score, label, box = side["scores"][i], side["labels"][i], side["boxes"][i]
    if abs(score - config.box_score_thresh) < 1e-3:
        return "score threshold"
    full = len(side["scores"]) == config.box_detections_per_img
    if full and len(other["scores"]) and abs(score - other["scores"].min()) < 1e-3:
        return "detections-per-image cut"
    same = other["labels"] == label
    if same.any():
        iou = iou_matrix(box[None], other["boxes"][same])[0]
        if np.any(np.abs(iou - config.box_nms_thresh) < 1e-3):
            return "NMS threshold"
    k = source_proposal(box, label, side_rec["proposals"], side_rec["box_regression"],
                        side_rec["image_size"])  # fmt: skip
    if not matched_proposals[k]:
        return "proposal of one side only"
    return None


def record(model_name: str, key: str, value) -> None:
    REPORT.setdefault(model_name, {})[key] = value


def worst(model_name: str, key: str, value: float) -> None:
    table = REPORT.setdefault(model_name, {})
    table[key] = max(float(value), float(table.get(key, 0.0)))


# --- fixtures ---------------------------------------------------------------------------------------


def photographs():
    import skimage.data

    return {name: getattr(skimage.data, name)() for name in PHOTOS}


@pytest.fixture(scope="module", params=list(MODELS))
def case(request, tmp_path_factory):
    """Both models on the three photographs: torchvision's records, ours, and the weights files."""
    name = request.param
    torch.manual_seed(0)
    theirs = randomise(getattr(detection, name)(weights=None, weights_backbone=None).eval(),
                       MODELS[name])  # fmt: skip
    folder = tmp_path_factory.mktemp(name)
    state = theirs.state_dict()
    # published files hold no num_batches_tracked (trained with FrozenBatchNorm2d); the zip keeps
    # them, as a torch.save(model.state_dict()) of a model with BatchNorm2d does
    zip_path, legacy_path = folder / "zip.pth", folder / "legacy.pth"
    torch.save(state, zip_path)
    legacy = {old_key(k): v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    torch.save(legacy, legacy_path, _use_new_zipfile_serialization=False)
    builder = getattr(resnet_fpn, name)
    ours = builder(weights=zip_path)
    ours_legacy = builder(weights=legacy_path)
    records = {}
    for photo, image in photographs().items():
        records[photo] = (torchvision_record(theirs, image), ours.inspect(image), image)
    yield {"name": name, "theirs": theirs, "ours": ours, "ours_legacy": ours_legacy,
           "state": state, "records": records}  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    if not REPORT:
        return
    lines = ["Parity with torchvision (random weights, eps 0.0, 3 photographs at min_size 800)"]
    for model_name, table in REPORT.items():
        lines.append(f"{model_name}:")
        lines.extend(f"  {key}: {value:.3g}" if isinstance(value, float) else f"  {key}: {value}"
                     for key, value in table.items())  # fmt: skip
    text = "\n".join(lines)
    print("\n" + text)
    path = os.environ.get("RCNN_PARITY_REPORT")
    if path:
        with open(path, "w") as f:
            f.write(text + "\n")


# --- tests --------------------------------------------------------------------------------------------


def test_zip_and_legacy_files_give_identical_parameters_equal_to_torchvisions(case):
    ours, legacy = case["ours"].state_dict(), case["ours_legacy"].state_dict()
    expected = {k: v.numpy() for k, v in case["state"].items()
                if not k.endswith("num_batches_tracked")}  # fmt: skip
    assert sorted(ours) == sorted(legacy) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(ours[key], legacy[key], err_msg=key)
        np.testing.assert_array_equal(ours[key], value, err_msg=key)


def test_transformed_input_matches_to_1e_5(case):
    for photo, (theirs, ours, _) in case["records"].items():
        assert tuple(ours["image_size"]) == theirs["image_size"], photo
        assert ours["input"].shape == theirs["input"].shape, photo
        err = float(np.abs(ours["input"] - theirs["input"]).max())
        worst(case["name"], "input max abs diff", err)
        assert err <= 1e-5, photo


def test_pyramid_levels_match_to_1e_4_relative(case):
    for photo, (theirs, ours, _) in case["records"].items():
        for k, name in enumerate(LEVELS):
            p = f"P{k + 2}"
            err = relative_error(ours[p], theirs[p])
            worst(case["name"], f"pyramid '{name}' rel", err)
            assert err <= 1e-4, (photo, name)
            # random weights kept the activations O(1): neither exploded nor vanished
            assert 0.1 < np.abs(theirs[p]).std() < 100, (photo, name)


def test_anchors_and_rpn_outputs_match_per_level(case):
    for photo, (theirs, ours, _) in case["records"].items():
        for name in LEVELS:
            np.testing.assert_allclose(ours[f"anchors/{name}"], theirs[f"anchors/{name}"],
                                       atol=1e-4, err_msg=f"{photo} {name}")  # fmt: skip
            for kind in ("objectness", "deltas"):
                err = relative_error(ours[f"{kind}/{name}"], theirs[f"{kind}/{name}"])
                worst(case["name"], f"rpn {kind} rel", err)
                assert err <= 1e-4, (photo, kind, name)


def _proposal_matches(ours_boxes, theirs_boxes):
    iou = iou_matrix(ours_boxes, theirs_boxes)
    return match_one_to_one(iou, 0.999)


def test_proposals_are_the_same_set_up_to_threshold_flips(case):
    for photo, (theirs, ours, _) in case["records"].items():
        partner = _proposal_matches(ours["proposals"], theirs["proposals"])
        n = max(len(ours["proposals"]), len(theirs["proposals"]))
        matched = int((partner >= 0).sum())
        worst(case["name"], "proposals unmatched (of ~1000, worst photo)", n - matched)
        assert matched >= 0.99 * n, (photo, matched, n)
        i = partner >= 0
        err = float(np.abs(ours["proposals"][i] - theirs["proposals"][partner[i]]).max())
        worst(case["name"], "matched proposals max px diff", err)
        score_err = float(np.abs(ours["proposal_scores"][i]
                                 - theirs["proposal_scores"][partner[i]]).max())  # fmt: skip
        worst(case["name"], "matched proposal scores max abs diff", score_err)
        assert err <= 0.01 and score_err <= 1e-4, photo


def test_our_proposal_layer_on_torchvisions_rpn_outputs_gives_its_proposals(case):
    config = case["ours"].config
    pc = ProposalConfig(pre_nms_top_n=config.rpn_pre_nms_top_n_test,
                        post_nms_top_n=config.rpn_post_nms_top_n_test,
                        nms_thresh=config.rpn_nms_thresh, score_thresh=config.rpn_score_thresh)  # fmt: skip
    for photo, (theirs, _, _) in case["records"].items():
        parts = [theirs[f"{kind}/{name}"] for kind in ("objectness", "deltas", "anchors")
                 for name in LEVELS]  # fmt: skip
        n = len(LEVELS)
        obj, dd, anchors = (np.concatenate(parts[j * n : (j + 1) * n]) for j in range(3))
        boxes, scores = select_proposals(
            obj, dd, anchors, theirs["image_size"], pc, case["ours"].rpn_coder,
            num_anchors_per_level=[len(theirs[f"objectness/{k}"]) for k in LEVELS],
        )  # fmt: skip
        partner = _proposal_matches(boxes, theirs["proposals"])
        unmatched = int((partner < 0).sum()) + abs(len(boxes) - len(theirs["proposals"]))
        worst(case["name"], "proposals unmatched, our layer on tv RPN outputs", unmatched)
        assert unmatched <= 0.01 * len(theirs["proposals"]), photo


def test_roi_levels_follow_torchvisions_level_mapper(case):
    for photo, (theirs, ours, _) in case["records"].items():
        partner = _proposal_matches(ours["proposals"], theirs["proposals"])
        i = partner >= 0
        ours_levels = np.asarray(ours["roi_levels"])[i]
        theirs_levels = theirs["roi_levels"][partner[i]]
        offset = ours_levels.min() - theirs_levels.min()  # ours may count from P2 = 2
        assert offset in (0, 2), photo
        disagree = int((ours_levels - offset != theirs_levels).sum())
        worst(case["name"], "roi level disagreements", disagree)
        assert disagree <= 0.001 * len(theirs_levels) + 1, photo


def test_box_head_on_torchvisions_features_and_proposals_matches(case):
    model = case["ours"]
    for photo, (theirs, _, _) in case["records"].items():
        features = {k: theirs["features"][k] for k in ROI_LEVELS}
        pooled = model.box_roi_pool(features, [theirs["proposals"]], [theirs["image_size"]])
        cls_score, bbox_pred = model.box_head(pooled)
        for key, value in (("class_logits", cls_score), ("box_regression", bbox_pred)):
            err = relative_error(value, theirs[key])
            worst(case["name"], f"box head {key} rel (tv proposals)", err)
            assert err <= 1e-4, (photo, key)


def test_postprocess_on_torchvisions_head_outputs_gives_its_detections(case):
    model, config = case["ours"], case["ours"].config
    for photo, (theirs, _, _) in case["records"].items():
        det = postprocess_detections(theirs["class_logits"], theirs["box_regression"],
                                     theirs["proposals"], theirs["image_size"],
                                     config.box_score_thresh, config.box_nms_thresh,
                                     config.box_detections_per_img, model.box_coder)  # fmt: skip
        expected = theirs["detections_resized"]
        assert len(det["scores"]) == len(expected["scores"]), photo
        np.testing.assert_array_equal(det["labels"], expected["labels"], err_msg=photo)
        np.testing.assert_allclose(det["boxes"], expected["boxes"], atol=1e-3, err_msg=photo)
        np.testing.assert_allclose(det["scores"], expected["scores"], atol=1e-6, err_msg=photo)


def test_detections_match_up_to_explained_threshold_flips(case):
    config = case["ours"].config
    for photo, (theirs, ours, _) in case["records"].items():
        a, b = ours["detections_resized"], theirs["detections_resized"]
        assert len(a["scores"]) > 10, photo  # the classifier's scale left detections to compare
        record(case["name"], f"{photo}: detections ours / torchvision",
               f"{len(a['scores'])} / {len(b['scores'])}")  # fmt: skip
        partner = match_detections(a, b)
        i = partner >= 0
        proposals = _proposal_matches(ours["proposals"], theirs["proposals"])
        ours_matched = proposals >= 0
        theirs_matched = np.zeros(len(theirs["proposals"]), bool)
        theirs_matched[proposals[ours_matched]] = True
        reverse = match_detections(b, a)
        reasons = [
            explain_unmatched(k, a, b, ours, ours_matched, config) for k in np.flatnonzero(~i)
        ]
        reasons += [explain_unmatched(k, b, a, theirs, theirs_matched, config)
                    for k in np.flatnonzero(reverse < 0)]  # fmt: skip
        worst(case["name"], "unmatched detections (threshold-adjacent, worst photo)", len(reasons))
        for reason in set(reasons):
            record(case["name"], f"{photo}: unmatched because of {reason}", reasons.count(reason))
        assert None not in reasons, (photo, reasons)
        assert len(reasons) <= 0.05 * len(b["scores"]) + 2, (photo, reasons)
        # the final detections, in the original image's pixels
        fa, fb = ours["detections"], theirs["detections"]
        box_err = float(np.abs(fa["boxes"][i] - fb["boxes"][partner[i]]).max(initial=0))
        score_err = float(np.abs(fa["scores"][i] - fb["scores"][partner[i]]).max(initial=0))
        worst(case["name"], "matched detection boxes max px diff", box_err)
        worst(case["name"], "matched detection scores max abs diff", score_err)
        assert box_err <= 0.01 and score_err <= 1e-4, photo
        assert fa["boxes"].dtype == np.float32 and fa["labels"].dtype == np.int64


def test_mask_head_on_torchvisions_detections_matches(case):
    model = case["ours"]
    if not model.has_masks:
        pytest.skip("Faster R-CNN has no masks")
    for photo, (theirs, _, image) in case["records"].items():
        features = {k: theirs["features"][k] for k in ROI_LEVELS}
        boxes = theirs["detections_resized"]["boxes"]
        pooled = model.mask_roi_pool(features, [boxes], [theirs["image_size"]])
        logits = model.mask_head(pooled)
        err = relative_error(logits, theirs["mask_logits"])
        worst(case["name"], "mask logits rel (tv detections)", err)
        assert err <= 1e-4, photo
        # pasting torchvision's own 28 x 28 probabilities with our paste_masks
        probs = 1 / (1 + np.exp(-theirs["mask_logits"].astype(np.float64)))
        probs = probs[np.arange(len(boxes)), theirs["detections_resized"]["labels"]][:, None]
        pasted = paste_masks_torchvision(probs.astype(np.float32), theirs["detections"]["boxes"],
                                         image.shape[:2])[:, 0]  # fmt: skip
        expected = theirs["detections"]["mask_probabilities"]
        paste_err = float(np.abs(pasted - expected).max(initial=0))
        worst(case["name"], "pasted masks max abs diff (tv probabilities)", paste_err)
        assert paste_err <= 1e-4, photo


def test_masks_match_on_matched_detections(case):
    if not case["ours"].has_masks:
        pytest.skip("Faster R-CNN has no masks")
    for photo, (theirs, ours, image) in case["records"].items():
        a, b = ours["detections"], theirs["detections"]
        assert a["masks"].shape == (len(a["scores"]), *image.shape[:2])
        assert a["masks"].dtype == bool and a["mask_probabilities"].dtype == np.float32
        partner = match_detections(ours["detections_resized"], theirs["detections_resized"])
        i = partner >= 0
        ma, mb = a["masks"][i], b["masks"][partner[i]]
        equal = float((ma == mb).mean()) if ma.size else 1.0
        worst(case["name"], "mask pixels differing (fraction)", 1 - equal)
        assert equal >= 0.999, photo
        pa, pb = a["mask_probabilities"][i], b["mask_probabilities"][partner[i]]
        far = (np.abs(pa - 0.5) > 0.01) & (np.abs(pb - 0.5) > 0.01)
        err = float(np.abs(pa - pb)[far].max(initial=0))
        worst(case["name"], "mask probabilities max abs diff (far from 0.5)", err)
        assert err <= 1e-4, photo
