"""Which section names and keys each fork's parser reads (names and keys only): AlexeyAB
and pjreddie ``parse_net_options`` (src/parser.c), hank-ai's layer-name table
(src-lib/darknet_enums.cpp) and ``CfgFile`` (src-lib/darknet_cfg.cpp). Where the versions
read differ, a table accepts what any of them accepts (``fog``, ``cutout``, ...).
"""

from __future__ import annotations

import difflib

#: hankai ``parse_net_section``'s ``[net]`` keys, in its lookup order.
HANKAI_NET_ORDER: tuple[str, ...] = tuple(
    "max_batches batch learning_rate learning_rate_min sgdr_cycle sgdr_mult momentum "
    "decay subdivisions time_steps track augment_speed sequential_subdivisions "
    "try_fix_nan weights_reject_freq equidistant_point badlabels_rejection_percentage "
    "num_sigmas_reject_badlabels ema_alpha use_cuda_graph loss_scale dynamic_minibatch "
    "optimized_memory workspace_size_limit_MB adam height width channels inputs flip "
    "blur gaussian_noise fog cutout mixup cutmix mosaic letter_box mosaic_bound "
    "contrastive contrastive_jit_flip contrastive_color label_smooth_eps resize_step "
    "attention adversarial_lr max_chart_loss angle aspect saturation exposure hue "
    "power policy burn_in show_receptive_field".split()
)

#: hankai ``[net]`` keys read only under a condition: key -> the condition, in words.
HANKAI_NET_WHEN: dict[str, str] = {
    **dict.fromkeys(("B1", "B2", "eps"), "adam=1"),
    **dict.fromkeys(("steps", "scales", "seq_scales"), "policy=steps or sgdr"),
    "step": "policy=step or sigmoid",
    "scale": "policy=step",
    "gamma": "policy=exp or sigmoid",
}

_HK_NET = frozenset((*HANKAI_NET_ORDER, *HANKAI_NET_WHEN))

#: Every ``[net]`` key each fork reads under some condition (policy, ``adam``); AlexeyAB:
#: hankai's (hankai forked it) but fog and cutout, plus the crop keys and unsupervised.
NET_KEYS: dict[str, frozenset[str]] = {
    "alexeyab": _HK_NET - {"fog", "cutout"} | {"max_crop", "min_crop", "unsupervised"},
    "pjreddie": frozenset(
        "batch learning_rate momentum decay subdivisions time_steps adam B1 B2 eps height "
        "width channels inputs max_crop min_crop angle aspect saturation exposure hue "
        "policy burn_in power step scale steps scales gamma max_batches notruth random "
        "max_ratio min_ratio center clip".split()
    ),
    "hankai": _HK_NET,
}

#: Keys hankai reads in every layer section (after the layer's own keys).
HANKAI_COMMON_KEYS: frozenset[str] = frozenset(
    "clip onlyforward dont_update burnin_update stopbackward train_only_bn dontload "
    "dontloadscales learning_rate".split()
)

_YOLO_CORE = (
    "classes num max mask max_delta counters_per_class label_smooth_eps scale_x_y "
    "objectness_smooth iou_normalizer obj_normalizer cls_normalizer fp_normalizer "
    "delta_normalizer iou_loss iou_thresh_kind beta_nms nms_kind jitter resize "
    "focal_loss ignore_thresh truth_thresh iou_thresh random map anchors"
)
_LAYER_KEYS: dict[str, str] = {
    "convolutional": (
        "filters groups size stride_x stride_y stride dilation antialiasing pad "
        "padding activation assisted_excitation share_index batch_normalize cbn binary "
        "xnor bin_output sway rotate stretch stretch_sway flipped dot angle grad_centr "
        "reverse coordconv stream wait_stream"
    ),
    "yolo": _YOLO_CORE
    + (
        " new_coords track_history_size sim_thresh dets_for_track dets_for_show "
        "track_ciou_norm embedding_layer"
    ),
    "Gaussian_yolo": _YOLO_CORE + " uc_normalizer yolo_point",
    "route": "layers groups group_id stream wait_stream",
    "shortcut": "activation weights_type weights_normalization from",
    "maxpool": (
        "stride stride_x stride_y size padding maxpool_depth out_channels antialiasing "
        "maxpool_zero_nonmax"
    ),
    "local_avgpool": "stride stride_x stride_y size padding",
    "upsample": "stride scale",
    "connected": "output activation batch_normalize",
    "softmax": "groups temperature tree spatial noloss",
    "dropout": "dropblock probability dropblock_size_rel dropblock_size_abs",
    "avgpool": "",
    "reorg3d": "stride reverse",
    "cost": "type scale ratio",
    "scale_channels": "from scale_wh activation",
    "sam": "from activation",
    "region": (
        "coords classes num max log sqrt softmax focal_loss rescore classfix absolute "
        "bias_match jitter resize thresh random coord_scale object_scale "
        "noobject_scale mask_scale class_scale tree map anchors"
    ),
    "contrastive": (
        "classes yolo_layer temperature cls_normalizer max_delta contrastive_neg_max"
    ),
    "crnn": (
        "size stride dilation pad padding output hidden groups batch_normalize xnor "
        "activation shortcut"
    ),
    "rnn": "output hidden batch_normalize logistic activation shortcut",
    "lstm": "output batch_normalize",
}

#: hankai's layer-name table: section name (exact, case-sensitive) -> layer kind, the
#: key of :data:`HANKAI_LAYER_KEYS` (each kind is also its own name). ``None``: the name
#: is in the table but ``create_network`` has no case for it ("layer type ... not
#: recognized").
HANKAI_LAYER_NAMES: dict[str, str | None] = {
    **{kind: kind for kind in _LAYER_KEYS},
    **dict(
        alias.split(":")
        for alias in "conv:convolutional conn:connected max:maxpool avg:avgpool "
        "local_avg:local_avgpool soft:softmax".split()
    ),
    **dict.fromkeys(("net", "network", "empty", "silence", "blank")),
}

#: The keys each hankai layer kind reads itself (the common keys come on top).
HANKAI_LAYER_KEYS = {kind: frozenset(k.split()) for kind, k in _LAYER_KEYS.items()}

#: Keys a hankai layer kind requires (``find_int`` without a default is fatal).
HANKAI_REQUIRED_KEYS = dict.fromkeys(("scale_channels", "sam"), ("from",))

#: Layer kinds after which hankai checks the network size (multiples of 32, >= 32).
HANKAI_DETECTORS: frozenset[str] = frozenset({"yolo", "Gaussian_yolo", "region"})


#: The integer per-layer training keys each fork reads in every layer section (the float
#: ``learning_rate`` comes on top in all three): AlexeyAB and pjreddie
#: ``parse_network_cfg_custom``/``parse_network_cfg`` (src/parser.c, ``option_find_int_quiet``;
#: pjreddie reads no dont_update, burnin_update, train_only_bn), hank-ai
#: ``CfgFile::create_network`` (src-lib/darknet_cfg.cpp, ``find_int``).
LAYER_TRAINING_KEYS: dict[str, tuple[str, ...]] = {
    fork: tuple(
        "stopbackward onlyforward dont_update burnin_update train_only_bn".split()
    )
    for fork in ("alexeyab", "hankai")
} | {"pjreddie": ("stopbackward", "onlyforward")}

#: Section names whose layer has weights darknet's update changes (the layer makers that
#: set an ``update`` function: convolutional, connected, local, batchnorm and the
#: recurrent layers; a ``[shortcut]`` only with ``weights_type``, see the parser).
WEIGHTED_SECTIONS: frozenset[str] = frozenset(
    "conv convolutional conn connected local batchnorm crnn rnn gru lstm conv_lstm "
    "deconvolutional implicit".split()
)


def did_you_mean(key: str, known: frozenset[str]) -> str | None:
    """The known key ``key`` was probably meant to be (case or a close spelling), or None."""
    if key in known:
        return None
    folded = [k for k in sorted(known) if k.lower() == key.lower()]
    close = folded or difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.75)
    return close[0] if close else None
