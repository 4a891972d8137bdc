"""The same federation as fed.yaml, written as a plain Flower app (the ServerApp and ClientApp a Flower
user writes), run by suanli with fed-flower.yaml. Each client asks suanli for its own participant's
data path; the server runs Flower's FedAvg with its own held-out data."""

import torch
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg
from task import load, make_model

from suanli.federate.runner import app_config, data_path

client = ClientApp()
server = ServerApp()


@client.train()
def train(msg: Message, context: Context) -> Message:
    _, path = data_path(context)
    model = make_model()
    model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
    data = load(path)
    optimizer = torch.optim.SGD(model.parameters(), lr=float(app_config().get("lr", 0.1)))
    for x, y in torch.utils.data.DataLoader(data, batch_size=10, shuffle=True):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    metrics = MetricRecord({"train-loss": float(loss), "num-examples": len(data)})
    return Message(RecordDict({"arrays": ArrayRecord(model.state_dict()), "metrics": metrics}), reply_to=msg)


@server.main()
def main(grid: Grid, context: Context) -> None:
    test = load("data/test.npz")
    model = make_model()

    def evaluate(round_: int, arrays: ArrayRecord) -> MetricRecord:
        model.load_state_dict(arrays.to_torch_state_dict())
        x, y = test.tensors
        accuracy = float((model(x).argmax(1) == y).float().mean())
        print(f'{{"metric": "accuracy", "value": {accuracy}, "step": {round_}}}', flush=True)
        return MetricRecord({"accuracy": accuracy})

    rounds = int(app_config().get("rounds", 10))
    initial = ArrayRecord(make_model().state_dict())
    strategy = FedAvg(fraction_train=0.6, fraction_evaluate=0.0)
    strategy.start(grid=grid, initial_arrays=initial, num_rounds=rounds, evaluate_fn=evaluate)
