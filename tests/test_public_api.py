"""The package's top level exports the torchvision-named ops and each stage's entry points."""

import inspect

import rcnn_from_scratch as rfs


def test_every_name_in_all_is_exported_and_documented():
    for name in rfs.__all__:
        obj = getattr(rfs, name)
        if callable(obj):
            assert inspect.getdoc(obj), f"{name} has no docstring"


def test_torchvision_signatures_are_kept():
    assert list(inspect.signature(rfs.roi_align).parameters) == [
        "input", "boxes", "output_size", "spatial_scale", "sampling_ratio", "aligned",
    ]  # fmt: skip
    assert list(inspect.signature(rfs.roi_pool).parameters) == [
        "input", "boxes", "output_size", "spatial_scale",
    ]  # fmt: skip
    assert list(inspect.signature(rfs.nms).parameters) == ["boxes", "scores", "iou_threshold"]
    assert list(inspect.signature(rfs.batched_nms).parameters) == [
        "boxes", "scores", "idxs", "iou_threshold",
    ]  # fmt: skip
    assert list(inspect.signature(rfs.box_iou).parameters) == ["boxes1", "boxes2"]


def test_every_detector_has_pretrained_and_predict_at_the_top_level():
    for name in ("RCNN", "FastRCNN", "FasterRCNN", "MaskRCNN"):
        cls = getattr(rfs, name)
        assert callable(cls.pretrained) and callable(cls.predict), name


def test_the_real_scale_builders_keep_torchvisions_names():
    for name in ("maskrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn"):
        params = inspect.signature(getattr(rfs, name)).parameters
        assert list(params)[0] == "weights" and params["weights"].default is None, name
    assert list(inspect.signature(rfs.read_torch_checkpoint).parameters) == ["path"]
