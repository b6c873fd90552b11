import pytest
import torch
import torch.nn.functional as F

from convsee.models.lenet import LeNet5
from convsee.run.optim import Adam, NesterovSGD, one_cycle


def test_one_cycle_matches_torch_schedule():
    total, peak, warmup = 40, 0.08, 0.25
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=peak, momentum=0.9, nesterov=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=peak, total_steps=total, pct_start=warmup
    )
    for step in range(total):
        g = opt.param_groups[0]
        assert one_cycle(step, total, peak, warmup, 0.95) == (g["lr"], g["momentum"])
        opt.step()
        sched.step()
    lr0, m0 = one_cycle(0, total, peak, warmup, 0.95)
    assert lr0 == pytest.approx(peak / 25) and m0 == pytest.approx(0.95)
    lr_top, m_top = one_cycle(9, total, peak, warmup, 0.95)  # warmup ends at step 0.25*40-1
    assert lr_top == pytest.approx(peak) and m_top == pytest.approx(0.85)
    with pytest.raises(ValueError, match="outside the schedule"):
        one_cycle(total, total, peak, warmup, 0.95)


def test_nesterov_sgd_gives_the_same_weights_as_torch_optim():
    torch.manual_seed(0)
    ours, ref = LeNet5(), LeNet5()
    ref.load_state_dict(ours.state_dict())
    x, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
    total = 12
    opt = NesterovSGD(ours.parameters(), weight_decay=5e-4)
    ropt = torch.optim.SGD(
        ref.parameters(), lr=0.08, momentum=0.9, nesterov=True, weight_decay=5e-4
    )
    sched = torch.optim.lr_scheduler.OneCycleLR(
        ropt, max_lr=0.08, total_steps=total, pct_start=0.25
    )
    for step in range(total):
        xb, yb = x[step * 5 : step * 5 + 16], y[step * 5 : step * 5 + 16]
        opt.zero_grad()
        F.cross_entropy(ours(xb), yb).backward()
        opt.step(*one_cycle(step, total, 0.08, 0.25, 0.95))
        ropt.zero_grad()
        F.cross_entropy(ref(xb), yb).backward()
        ropt.step()
        sched.step()
    for (name, a), b in zip(ours.state_dict().items(), ref.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    # the state round-trips, and copies rather than aliases
    st = opt.state_dict()
    again = NesterovSGD(LeNet5().parameters())
    again.load_state_dict(st)
    assert all(torch.equal(a, b) for a, b in zip(again.buffers, opt.buffers, strict=True))
    st["buffers"][0].add_(1)
    assert not torch.equal(st["buffers"][0], opt.buffers[0])
    with pytest.raises(ValueError, match="buffers"):
        again.load_state_dict({"buffers": []})


def test_adam_gives_the_same_image_as_torch_optim():
    torch.manual_seed(0)
    net = LeNet5().eval()
    start = torch.randn(4, 1, 28, 28)
    results = []
    for make in (lambda p: Adam([p], lr=0.1), lambda p: torch.optim.Adam([p], lr=0.1)):
        p = start.clone().requires_grad_(True)
        opt = make(p)
        for _ in range(10):
            opt.zero_grad()
            (-net(torch.sigmoid(p))[:, 3].sum()).backward()
            opt.step()
        results.append(p.detach())
    assert torch.equal(*results)
    assert not torch.equal(results[0], start)
