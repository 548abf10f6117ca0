"""lungct-cnn pools before its ReLU in training: the same function and gradients, faster."""

import torch
from torch import nn

from medsight.imaging.models.lungct_cnn import ConvBlock


def test_training_order_gives_the_same_values_and_gradients() -> None:
    torch.manual_seed(0)
    block = ConvBlock(nn.Conv3d(2, 4, 3, padding=1), nn.BatchNorm3d(4), nn.MaxPool3d(2))
    plain = nn.Sequential(block.conv, block.norm, nn.ReLU(), nn.MaxPool3d(2))
    x = torch.randn(2, 2, 8, 10, 12)
    block.train(), plain.train()
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_block, out_plain = block(a), plain(b)
    assert torch.equal(out_block, out_plain)
    grad = torch.randn_like(out_block)
    (wa,) = torch.autograd.grad(out_block, block.conv.weight, grad, retain_graph=True)
    (wb,) = torch.autograd.grad(out_plain, plain[0].weight, grad, retain_graph=True)
    assert torch.equal(wa, wb)
    assert torch.equal(
        torch.autograd.grad(out_block, a, grad)[0], torch.autograd.grad(out_plain, b, grad)[0]
    )


def test_eval_hook_on_relu_sees_the_unpooled_activation() -> None:
    block = ConvBlock(nn.Conv3d(1, 3, 3, padding=1), None, nn.MaxPool3d(2)).eval()
    seen: list[torch.Size] = []
    block.relu.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    with torch.no_grad():
        assert block(torch.rand(1, 1, 8, 8, 8)).shape == (1, 3, 4, 4, 4)
    assert seen == [torch.Size([1, 3, 8, 8, 8])]
