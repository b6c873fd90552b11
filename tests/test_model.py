import torch
import torch.nn.functional as F

from convsee.models.lenet import LAYERS, LeNet5


def test_layer_names_and_state_dict_keys():
    net = LeNet5()
    assert [n for n, _ in net.named_children()] == list(LAYERS)
    assert list(net.state_dict()) == [
        f"{n}.{p}" for n in ("conv1", "conv2", "fc1", "fc2", "fc3") for p in ("weight", "bias")
    ]


def test_forward_matches_first_principles():
    torch.manual_seed(1)
    net = LeNet5().eval()
    x = torch.randn(3, 1, 28, 28)
    h = F.max_pool2d(F.relu(F.conv2d(x, net.conv1.weight, net.conv1.bias)), 2)
    h = F.max_pool2d(F.relu(F.conv2d(h, net.conv2.weight, net.conv2.bias)), 2)
    h = h.flatten(1)
    h = F.relu(h @ net.fc1.weight.T + net.fc1.bias)
    h = F.relu(h @ net.fc2.weight.T + net.fc2.bias)
    logits = h @ net.fc3.weight.T + net.fc3.bias
    assert torch.allclose(net(x), logits, atol=1e-5)


def test_logits_can_be_negative_no_relu_on_output():
    torch.manual_seed(0)
    net = LeNet5()
    with torch.no_grad():
        net.fc3.bias.fill_(-5.0)
    out = net(torch.randn(4, 1, 28, 28))
    assert (out < 0).any()
    p = net.probabilities(torch.randn(4, 1, 28, 28))
    assert torch.allclose(p.sum(1), torch.ones(4)) and net.training  # mode restored


def test_fast_forward_gives_the_same_logits_and_gradients():
    torch.manual_seed(2)
    net = LeNet5()
    x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    assert torch.equal(net.fast_forward(x), net(x))
    F.cross_entropy(net(x), y).backward()
    ref = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    F.cross_entropy(net.fast_forward(x), y).backward()
    for (name, p), g in zip(net.named_parameters(), ref, strict=True):
        assert torch.allclose(p.grad, g, atol=1e-6), name
    # and in channels-last memory, as training uses it
    cl = LeNet5().to(memory_format=torch.channels_last)
    cl.load_state_dict(net.state_dict())
    assert torch.allclose(cl.fast_forward(x), net(x), atol=1e-5)
