"""The release recipe's tables: which experiment configs train each shipped molecule model and classifier,
and each preset's overrides (:mod:`domains.molecules.release` runs them)."""

from __future__ import annotations

# shipped name -> experiment config (configs/experiment/<name>.yaml)
MODELS: dict[str, str] = {
    "moses_udlm": "moses_udlm_selfies",
    "moses_mdlm": "moses_mdlm_selfies",
    "qm9_udlm": "qm9_udlm",
    "qm9_mdlm": "qm9_mdlm",
    "qm9_ar": "qm9_ar",
}

# shipped name -> experiment configs that continue its run one after the other (each starts from the run
# before it: ``init_from=<runs>/<previous>/checkpoint``); the last one is exported. Only the presets in
# CONTINUING_PRESETS take these stages: the GPU recipe's step budget replaces them.
CONTINUED: dict[str, tuple[str, ...]] = {
    "moses_udlm": (
        "moses_udlm_selfies_continued",
        "moses_udlm_selfies_positions",
        "moses_udlm_selfies_positions_continued",
        "moses_udlm_selfies_single_targets_085",
    ),
    "moses_mdlm": ("moses_mdlm_selfies_positions",),
    "qm9_udlm": (
        "qm9_udlm_continued",
        "qm9_udlm_positions",
        "qm9_udlm_positions_continued",
        "qm9_udlm_positions_continued2",
    ),
    "qm9_mdlm": ("qm9_mdlm_continued", "qm9_mdlm_continued2"),
}
CONTINUING_PRESETS = ("cpu", "tiny")

# shipped classifier name -> the denoiser it serves (experiment configs/experiment/<name>.yaml)
CLASSIFIERS: dict[str, str] = {
    "moses_udlm_regressor": "moses_udlm",
    "moses_mdlm_regressor": "moses_mdlm",
    "qm9_udlm_regressor": "qm9_udlm",
    "qm9_mdlm_regressor": "qm9_mdlm",
    "qm9_ar_regressor": "qm9_ar",
    "qm9_udlm_denoised_regressor": "qm9_udlm",
    "qm9_mdlm_denoised_regressor": "qm9_mdlm",
    "qm9_ar_denoised_regressor": "qm9_ar",
}
# shipped classifier name -> its experiment config, where the two names differ
CLASSIFIER_EXPERIMENTS: dict[str, str] = {"moses_udlm_regressor": "moses_udlm_regressor_own"}

# training overrides of the GPU recipe (shared by denoisers and classifiers, except the step budget)
_GPU_TRAINER = [
    "trainer.batch_size=512",
    "trainer.lr=5.0e-4",
    "trainer.warmup_steps=2000",
    "trainer.ckpt_every=2000",
    "trainer.val_every=5000",
    "trainer.log_every=500",
    "trainer.device=cuda",
    "trainer.precision=auto",
]
_TINY_TRAINER = [
    "trainer.max_steps=10",
    "trainer.batch_size=32",
    "trainer.warmup_steps=2",
    "trainer.log_every=5",
    "trainer.val_every=10",
    "trainer.val_batches=1",
    "trainer.ckpt_every=10",
]

# preset -> overrides of the denoisers' runs and of the classifiers' runs
PRESETS: dict[str, dict[str, list[str]]] = {
    # the experiment files as they are: the CPU recipe of the shipped models
    "cpu": {"denoiser": [], "classifier": []},
    # one GPU (or several, under torchrun): the largest networks that still ship (SHIP_LIMIT_MIB), all the
    # training data, 60,000 steps of batch 512 per denoiser (the CPU recipe: 4,000-5,000 steps of 128)
    "gpu": {
        "denoiser": ["network=mol_gpu", "domain.max_train=null", "trainer.max_steps=60000", *_GPU_TRAINER],
        "classifier": [
            # trained from scratch at this size (start_from_denoiser=true needs the denoiser's width and heads)
            "start_from_denoiser=false",
            "classifier.dim=160",
            "classifier.depth=4",
            "classifier.heads=5",
            "trainer.max_steps=20000",
            *_GPU_TRAINER,
        ],
    },
    # a smoke run of the whole recipe in seconds (tests)
    "tiny": {
        "denoiser": ["network=tiny", "domain.max_train=256", "domain.num_val=64", "domain.workers=1", *_TINY_TRAINER],
        "classifier": _TINY_TRAINER,
    },
}

# preset -> shipped denoiser -> overrides of that model's runs only, after the preset's own. The MOSES models
# take the shipped fifth stage's entry dropout (see its config): with 0.3, a condition holding one property
# came up in 0.5% of the training rows, with 0.85 in 7.0%
MODEL_OVERRIDES: dict[str, dict[str, list[str]]] = {
    "gpu": {name: ["objective.value_dropout=0.85"] for name in ("moses_udlm", "moses_mdlm")},
}
