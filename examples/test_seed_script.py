"""The seed's own scripts, nearly verbatim, recorded with `optcheck.record`.

The other examples declare runs with the marker; these keep the seed's hand-written loops
(its DataLoader training loop, its LambdaLR script) and add two lines: a `record` context
around the loop and `rec.log(loss=...)` per step. Seeds are explicit generators, so the
tests neither use nor disturb the global RNG.
"""

import pytest
import torch
import torch.utils.data as Data
from torch.optim.lr_scheduler import LambdaLR


@pytest.mark.optcheck(optimizer="Adam(lr=0.01, betas=(0.9, 0.99))", record=["loss", "lr", "grad_norm"])
def test_seed_training_loop(optcheck):
    net, optimizer, _ = optcheck.build()  # the seed's Net(1, 10, 1), seeded
    data = torch.Generator().manual_seed(0)
    x = torch.unsqueeze(torch.linspace(-1, 1, 1000), dim=1)
    y = x.pow(2) + 0.1 * torch.normal(torch.zeros(*x.size()), generator=data)
    loader = Data.DataLoader(Data.TensorDataset(x, y), batch_size=32, shuffle=True,
                             generator=torch.Generator().manual_seed(1))
    loss_func = torch.nn.MSELoss()
    with optcheck.record(optimizer, model=net) as rec:
        for epoch in range(12):
            rec.epoch = epoch
            for batch_x, batch_y in loader:
                batch_x, batch_y = batch_x.to(optcheck.device), batch_y.to(optcheck.device)  # --optcheck-device
                prediction = net(batch_x)
                loss = loss_func(prediction, batch_y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                rec.log(loss=loss)
    optcheck.check(rec.trajectory)


def test_seed_lambda_script(optcheck):
    """The seed's LambdaLR script: 100 epochs of `optimizer.step(); scheduler.step()`."""
    lambda1 = lambda epoch: epoch // 30  # the seed's code
    model = [torch.nn.Parameter(torch.randn(2, 2, generator=torch.Generator().manual_seed(0)))]
    optimizer = torch.optim.SGD(model, 0.1)
    scheduler = LambdaLR(optimizer=optimizer, lr_lambda=[lambda1])
    with optcheck.record(optimizer, scheduler, record=["lr"]) as rec:
        for epoch in range(100):
            rec.epoch = epoch
            optimizer.step()
            scheduler.step()
    lrs = rec.trajectory["lr"][:, 0]
    assert lrs[0] == 0.0 and lrs[30] == 0.1 and lrs[99] == pytest.approx(0.3)
    optcheck.check(rec.trajectory)
