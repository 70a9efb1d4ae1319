"""Denoiser network: shapes, conditioning, time flag, causal option, parameter counts."""

from __future__ import annotations

import pytest
import torch

from guided_diffusion.conditioning import Condition, concat_conditions
from guided_diffusion.networks import Denoiser, DenoiserConfig


def net(**kw) -> Denoiser:
    cfg = {"num_states": 9, "seq_len": 12, "dim": 32, "depth": 2, "heads": 4, **kw}
    model = Denoiser(DenoiserConfig(**cfg))
    # adaLN-Zero starts with zero output: perturb so that inputs matter
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


@pytest.mark.parametrize("positions", ["rotary", "learned", "rotary+learned"])
def test_output_shape_and_dtype(positions):
    model = net(positions=positions)
    out = model(torch.randint(0, 9, (3, 12)), torch.rand(3))
    assert out.shape == (3, 12, 9) and out.dtype == torch.float32
    assert model(torch.randint(0, 9, (3, 7)), torch.rand(3)).shape == (3, 7, 9)


@pytest.mark.parametrize(("positions", "distinct"), [("rotary", False), ("learned", True), ("rotary+learned", True)])
def test_only_absolute_positions_tell_positions_apart_when_every_token_is_the_same(positions, distinct):
    """The masked prior is one token repeated: rotary attention then mixes identical values, so without an
    absolute embedding every position gets the same output (the first unmasked tokens of padded data would
    all be drawn from the average over positions)."""
    model = net(positions=positions)
    with torch.no_grad():
        logits = model(torch.full((2, 12), 8), torch.ones(2))  # [2, 12, 9]
    spread = float((logits - logits[:, :1]).abs().max())
    assert (spread > 1e-3) is distinct, spread


def test_time_flag():
    x = torch.randint(0, 9, (2, 12))
    blind = net(time_conditioning=False)
    torch.testing.assert_close(blind(x, torch.zeros(2)), blind(x, torch.ones(2)))
    seeing = net(time_conditioning=True)
    assert not torch.allclose(seeing(x, torch.zeros(2)), seeing(x, torch.ones(2)))


def test_labels_and_null_label_differ_and_values_can_be_nulled_per_entry():
    model = net(num_classes=3, num_properties=2)
    x = torch.randint(0, 9, (1, 12)).expand(4, -1)
    t = torch.rand(1).expand(4)
    labels = torch.tensor([0, 1, -1, -1])
    values = torch.tensor([[0.5, -1.0], [0.5, -1.0], [float("nan"), -1.0], [float("nan"), float("nan")]])
    out = model(x, t, Condition(labels=labels, values=values))
    assert not torch.allclose(out[0], out[1])  # label 0 vs 1
    assert not torch.allclose(out[2], out[3])  # second value present vs nulled
    null = model(x[:1], t[:1], None)
    torch.testing.assert_close(out[3:], null)  # everything nulled == no condition


def test_bad_condition_is_rejected():
    model = net(num_classes=2, num_properties=1)
    x = torch.randint(0, 9, (1, 12))
    with pytest.raises(ValueError, match="labels"):
        model(x, torch.rand(1), Condition(labels=torch.tensor([5])))
    with pytest.raises(ValueError, match="property values"):
        model(x, torch.rand(1), Condition(values=torch.zeros(1, 3)))


def test_causal_network_does_not_look_ahead():
    model = net(causal=True)
    x = torch.randint(0, 9, (1, 12))
    y = x.clone()
    y[0, 8:] = (y[0, 8:] + 1) % 9
    t = torch.rand(1)
    a, b = model(x, t), model(y, t)
    torch.testing.assert_close(a[0, :8], b[0, :8])
    assert not torch.allclose(a[0, 8:], b[0, 8:])


def test_bidirectional_network_looks_everywhere():
    model = net()
    x = torch.randint(0, 9, (1, 12))
    y = x.clone()
    y[0, -1] = (y[0, -1] + 1) % 9
    assert not torch.allclose(model(x, torch.zeros(1))[0, 0], model(y, torch.zeros(1))[0, 0])


def test_concat_conditions_fills_nulls():
    cond = concat_conditions(
        [Condition(labels=torch.tensor([2])), None], [3, 2], num_properties=0, device=torch.device("cpu")
    )
    assert cond.labels.tolist() == [2, 2, 2, -1, -1]


def test_config_validation():
    with pytest.raises(ValueError, match="divisible"):
        DenoiserConfig(num_states=4, seq_len=4, dim=30, heads=4)
    with pytest.raises(ValueError, match="positions"):
        DenoiserConfig(num_states=4, seq_len=4, positions="sinusoid")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seq_len"):
        net()(torch.randint(0, 9, (1, 13)), torch.rand(1))


def test_rotary_rotates_channel_pairs_and_scores_depend_on_offsets_only():
    from guided_diffusion.networks.rotary import Rotary

    rot = Rotary(8, 16)
    x = torch.randn(2, 3, 10, 8)
    inv = 1.0 / 10000 ** (torch.arange(0, 8, 2).float() / 8)
    ang = torch.outer(torch.arange(10).float(), inv)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    reference = torch.stack([x1 * ang.cos() - x2 * ang.sin(), x1 * ang.sin() + x2 * ang.cos()], -1).flatten(-2)
    torch.testing.assert_close(rot(x), reference, atol=1e-5, rtol=1e-5)
    q, k = torch.randn(8), torch.randn(8)
    seq_q = rot(q.expand(1, 1, 16, 8))[0, 0]
    seq_k = rot(k.expand(1, 1, 16, 8))[0, 0]
    torch.testing.assert_close(seq_q[3] @ seq_k[1], seq_q[9] @ seq_k[7], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("positions", ["rotary", "rotary+learned"])
@pytest.mark.parametrize("time_conditioning", [True, False])
def test_a_classifier_started_from_a_denoiser_computes_its_unconditional_hidden_states(time_conditioning, positions):
    from classifiers.network import ClassifierConfig, NoisyClassifier, init_from_denoiser

    denoiser = net(num_properties=2, time_conditioning=time_conditioning, positions=positions)
    config = ClassifierConfig(num_states=9, seq_len=12, num_outputs=2, dim=32, depth=2, heads=4, positions=positions)
    classifier = NoisyClassifier(config)
    x, t = torch.randint(0, 9, (3, 12)), torch.rand(3)
    assert not torch.allclose(classifier.hidden_states(x, t), denoiser.hidden_states(x, t)[0])
    init_from_denoiser(classifier, denoiser)
    torch.testing.assert_close(classifier.hidden_states(x, t), denoiser.hidden_states(x, t, None)[0])
    soft = torch.nn.functional.one_hot(x, 9).float()  # what first-order guidance feeds it
    torch.testing.assert_close(classifier.hidden_states(soft, t), denoiser.hidden_states(x, t, None)[0])


def test_a_shallower_classifier_starts_from_the_denoisers_first_blocks():
    from classifiers.network import ClassifierConfig, NoisyClassifier, init_from_denoiser

    denoiser = net(time_conditioning=True)
    classifier = NoisyClassifier(ClassifierConfig(num_states=9, seq_len=12, num_outputs=1, dim=32, depth=1, heads=4))
    init_from_denoiser(classifier, denoiser)
    x, t = torch.randint(0, 9, (3, 12)), torch.rand(3)
    expected = denoiser.blocks[0](denoiser.embed(x), denoiser.conditioning(t, None, 3))
    torch.testing.assert_close(classifier.hidden_states(x, t), expected)
    assert not torch.allclose(expected, denoiser.hidden_states(x, t, None)[0])  # the second block still acts


def test_a_classifier_of_another_size_cannot_start_from_a_denoiser():
    from classifiers.network import ClassifierConfig, NoisyClassifier, init_from_denoiser

    classifier = NoisyClassifier(ClassifierConfig(num_states=9, seq_len=12, num_outputs=1, dim=32, depth=3, heads=4))
    with pytest.raises(ValueError, match="depth 3 vs 2 \\(at most the denoiser's\\)"):
        init_from_denoiser(classifier, net())
    blind = NoisyClassifier(
        ClassifierConfig(num_states=9, seq_len=12, num_outputs=1, dim=32, depth=2, heads=4, time_conditioning=False)
    )
    with pytest.raises(ValueError, match="sees t or a condition"):
        init_from_denoiser(blind, net(time_conditioning=True))
    with pytest.raises(ValueError, match="positions rotary vs rotary\\+learned"):
        init_from_denoiser(
            NoisyClassifier(ClassifierConfig(9, 12, 1, dim=32, depth=2, heads=4)), net(positions="rotary+learned")
        )


def test_a_classifier_with_learned_positions_tells_positions_apart_when_every_token_is_the_same():
    from classifiers.network import ClassifierConfig, NoisyClassifier

    for positions, distinct in (("rotary", False), ("rotary+learned", True)):
        classifier = NoisyClassifier(ClassifierConfig(9, 12, 1, dim=32, depth=2, heads=4, positions=positions))
        with torch.no_grad():
            for p in classifier.parameters():
                p.add_(0.05 * torch.randn_like(p))
            h = classifier.hidden_states(torch.full((1, 12), 8), torch.ones(1))  # [1, 12, D]
        assert (float((h - h[:, :1]).abs().max()) > 1e-3) is distinct, positions
    with pytest.raises(ValueError, match="positions"):
        ClassifierConfig(9, 12, 1, positions="learned")  # type: ignore[arg-type]
